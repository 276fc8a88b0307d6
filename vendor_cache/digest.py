"""BLAKE3 digests of files and trees (SPEC §7).

A tree digest is BLAKE3 over the sorted list of (relative path, executable bit, file BLAKE3), so
the same content reached from two sources, or checked out at different times, has one digest.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import blake3

CHUNK = 1 << 20
DIGEST = re.compile(r"^[0-9a-f]{64}$")
# Terraform's own working files never belong to a module's content.
IGNORED_DIRS = frozenset({".terraform", ".git"})
IGNORED_FILES = frozenset({"terraform.tfstate", "terraform.tfstate.backup", ".terraform.tfstate.lock.info"})


def file_digest(path: Path | str) -> str:
    hasher = blake3.blake3()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def iter_tree(root: Path | str, *, follow_dir_links: bool = False) -> Iterator[tuple[str, os.stat_result]]:
    """(relative posix path, stat) of every regular file under `root`, in sorted order.

    A symlink to a file counts as that file. A symlink to a folder is skipped unless
    `follow_dir_links` (a workspace's folders are links into its object); a link back to a folder
    being walked is skipped all the same.
    """
    entries: list[tuple[str, os.stat_result]] = []

    def walk(directory: str, prefix: str, walking: frozenset[tuple[int, int]]) -> None:
        with os.scandir(directory) as scan:
            for entry in scan:
                rel = f"{prefix}{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in IGNORED_DIRS:
                        info = entry.stat(follow_symlinks=False)
                        walk(entry.path, rel + "/", walking | {(info.st_dev, info.st_ino)})
                elif entry.is_symlink() and entry.is_dir(follow_symlinks=True):
                    info = entry.stat(follow_symlinks=True)
                    if (
                        follow_dir_links
                        and entry.name not in IGNORED_DIRS
                        and (info.st_dev, info.st_ino) not in walking
                    ):
                        walk(entry.path, rel + "/", walking | {(info.st_dev, info.st_ino)})
                elif entry.is_file(follow_symlinks=True) and entry.name not in IGNORED_FILES:
                    entries.append((rel, entry.stat(follow_symlinks=True)))

    top = os.stat(root)
    walk(str(root), "", frozenset({(top.st_dev, top.st_ino)}))
    entries.sort(key=lambda item: item[0])
    yield from entries


def digest_entries(entries: Iterable[tuple[str, bool, str]]) -> str:
    """Tree digest of (relative path, executable, file digest) entries given in sorted path order."""
    hasher = blake3.blake3()
    for rel, executable, digest in entries:
        hasher.update(f"{rel}\0{'x' if executable else '-'}\0{digest}\n".encode())
    return hasher.hexdigest()


def is_executable(info: os.stat_result) -> bool:
    return bool(info.st_mode & stat.S_IXUSR)


def tree_digest(
    root: Path,
    hash_file: Callable[[Path, os.stat_result], str] | None = None,
    *,
    follow_dir_links: bool = False,
) -> str:
    """Digest of the tree at `root`; `hash_file` may answer from a stat cache."""
    return digest_entries(
        (rel, is_executable(info), hash_file(root / rel, info) if hash_file else file_digest(root / rel))
        for rel, info in iter_tree(root, follow_dir_links=follow_dir_links)
    )
