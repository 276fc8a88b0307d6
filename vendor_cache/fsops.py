"""Filesystem primitives the store is built from: temp names, removal of read-only trees, file locks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Every temporary file or directory the store creates carries this prefix, so nothing half-made is
# ever mistaken for an object (objects are named by 64 hex digits) or a workspace.
TEMP_PREFIX = ".vendor-tmp-"


def temp_name() -> str:
    return f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX)


def make_temp_dir(parent: Path) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / temp_name()
    path.mkdir()
    return path


def remove_tree(path: Path) -> None:
    """Remove a file or a tree, including read-only directories; a missing path is already removed."""
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    for directory, _, _ in os.walk(path):
        os.chmod(directory, 0o700)
    shutil.rmtree(path, ignore_errors=False)


def make_read_only(tree: Path) -> None:
    """Drop write permission on every directory below `tree` (files are made read-only as they are written).

    `tree` itself stays writable: renaming a directory needs write permission on it (its `..` entry
    changes), so the caller seals it after the rename.
    """
    for directory, _, _ in os.walk(tree, topdown=False):
        if directory != str(tree):
            os.chmod(directory, 0o555)


def touch(path: Path) -> None:
    """Mark a store entry as used now; `clean --older-than` reads this back from the mtime."""
    # Not owning the entry (a cache shared between users) only costs the age bookkeeping.
    with contextlib.suppress(OSError):
        os.utime(path)


@contextmanager
def flock(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold an flock on `path` (created if needed). The kernel releases it if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
