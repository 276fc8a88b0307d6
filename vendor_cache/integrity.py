"""What an object holds, read without following a single link, against what it should hold.

An object is a tree of regular files (mode 0444, or 0555 when executable) and folders (0555), and
nothing else. `scan` lists it through directory descriptors opened with `O_NOFOLLOW`, so a folder or
file replaced by a symlink is seen as that symlink and never entered or read; `damage` compares the
listing with the one kept when the object was stored and with the object's own name, its digest,
and names each difference: content changed, added, missing, type (a symlink, a file where a folder
belongs, a device), mode.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import blake3

from vendor_cache.digest import CHUNK, IGNORED_DIRS, IGNORED_FILES, digest_entries

FILE, FOLDER, SYMLINK, OTHER = "file", "folder", "symlink", "other"
FILE_MODE, EXEC_MODE, FOLDER_MODE = 0o444, 0o555, 0o555
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_NONBLOCK", 0)


@dataclass(frozen=True)
class Found:
    """One entry of an object as it is on disk. `mode` (permission bits) and `digest` (a regular
    file's BLAKE3) are read only when asked for; `target` is a symlink's."""

    kind: str
    mode: int | None = None
    digest: str | None = None
    target: str | None = None

    def describe(self) -> str:
        if self.kind == SYMLINK:
            return f"a symlink to {self.target}"
        return {FILE: "a file", FOLDER: "a folder"}.get(self.kind, "a special file (device, FIFO or socket)")


@dataclass(frozen=True)
class Damage:
    """One difference between an object and what it should hold.

    `kind` is `content`, `added`, `missing`, `type` or `mode`; `path` is relative to the object
    (`.` for the object's own folder)."""

    path: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


# What a walk for names and types only finds, shared (a walk of a 1,000-file module makes 1,000).
_A_FILE, _A_FOLDER = Found(FILE), Found(FOLDER)


def scan(root: str | os.PathLike[str], *, modes: bool = False, hashes: bool = False) -> dict[str, Found]:
    """Every entry below `root` by relative path (names that tree digests ignore aside), plus `.`
    for `root` itself, without following any symlink. Without `modes` and `hashes` this reads only
    the folders (the entries' types come with them)."""
    found: dict[str, Found] = {}
    try:
        top = os.open(root, _DIR_FLAGS)
    except OSError:
        info = os.lstat(root)
        found["."] = _found(info, os.readlink(root) if stat.S_ISLNK(info.st_mode) else None)
        return found
    try:
        found["."] = Found(FOLDER, stat.S_IMODE(os.fstat(top).st_mode) if modes else None)
        _scan(top, "", found, modes=modes, hashes=hashes)
    finally:
        os.close(top)
    return found


def _scan(fd: int, prefix: str, found: dict[str, Found], *, modes: bool, hashes: bool) -> None:
    with os.scandir(fd) as entries:
        listed = list(entries)
    for entry in listed:
        name, rel = entry.name, prefix + entry.name
        if entry.is_symlink():
            if name in IGNORED_DIRS or name in IGNORED_FILES:
                continue
            found[rel] = Found(SYMLINK, target=os.readlink(name, dir_fd=fd))
        elif entry.is_dir(follow_symlinks=False):
            if name in IGNORED_DIRS:
                continue
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError:  # replaced meanwhile: whatever it is now, it is not this folder
                found[rel] = _found(os.stat(name, dir_fd=fd, follow_symlinks=False))
                continue
            try:
                found[rel] = Found(FOLDER, stat.S_IMODE(os.fstat(sub).st_mode)) if modes else _A_FOLDER
                _scan(sub, rel + "/", found, modes=modes, hashes=hashes)
            finally:
                os.close(sub)
        elif entry.is_file(follow_symlinks=False):
            if name in IGNORED_FILES:
                continue
            if hashes:
                found[rel] = _hash(fd, name)
            elif modes:
                found[rel] = Found(FILE, stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode))
            else:
                found[rel] = _A_FILE
        else:
            found[rel] = Found(OTHER)


def _hash(fd: int, name: str) -> Found:
    """A regular file's mode and digest, read through a descriptor that cannot be a link's."""
    try:
        handle = os.open(name, _FILE_FLAGS, dir_fd=fd)
    except OSError:  # a symlink (ELOOP) or gone since the folder was read
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        return _found(info, os.readlink(name, dir_fd=fd) if stat.S_ISLNK(info.st_mode) else None)
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            return _found(info)
        hasher = blake3.blake3()
        while chunk := os.read(handle, CHUNK):
            hasher.update(chunk)
        return Found(FILE, stat.S_IMODE(info.st_mode), hasher.hexdigest())
    finally:
        os.close(handle)


def _found(info: os.stat_result, target: str | None = None) -> Found:
    kind = (
        FILE
        if stat.S_ISREG(info.st_mode)
        else FOLDER
        if stat.S_ISDIR(info.st_mode)
        else SYMLINK
        if stat.S_ISLNK(info.st_mode)
        else OTHER
    )
    return Found(kind, stat.S_IMODE(info.st_mode), target=target)


def damage(found: dict[str, Found], listing: dict[str, Any], digest: str | None = None) -> list[Damage]:
    """How `found` (from `scan`) differs from `listing` (`dirs`, `files` and, when the object was
    stored with them, `hashes`: `{path: [executable, file digest]}`).

    Modes are compared when `found` has them, contents when it has digests; with `digest`, the
    regular files must also hash to it, so a listing that is itself wrong cannot hide a change. A
    path below a folder that is missing or is something else is not reported again.
    """
    hashes: dict[str, Any] = listing.get("hashes") or {}
    expected: dict[str, str] = {
        ".": FOLDER,
        **dict.fromkeys(listing["dirs"], FOLDER),
        **dict.fromkeys(listing["files"], FILE),
    }
    problems: list[Damage] = []
    broken: set[str] = set()  # folders whose content is reported through them
    detailed = digest is not None or any(f.mode is not None or f.digest is not None for f in found.values())
    # Names and types only (what materialising asks), all as listed: one pass, no sorting.
    if (
        not detailed
        and found.keys() == expected.keys()
        and all(found[rel].kind == kind for rel, kind in expected.items())
    ):
        return problems

    def under_broken(rel: str) -> bool:
        return any(rel.startswith(folder + "/") for folder in broken)

    for rel in sorted(set(expected) | set(found)):
        if broken and under_broken(rel):
            continue
        want, have = expected.get(rel), found.get(rel)
        if have is None:
            problems.append(Damage(rel, "missing", "missing"))
            broken.add(rel)
        elif want is None:
            problems.append(Damage(rel, "added", f"added ({have.describe()})"))
            broken.add(rel)
        elif have.kind != want:
            problems.append(Damage(rel, "type", f"{have.describe()}, where {Found(want).describe()} belongs"))
            broken.add(rel)
        else:
            problems.extend(_compare(rel, have, hashes.get(rel)))
    if digest is not None and not problems and _digest(found) != digest:
        problems.append(Damage(".", "content", f"its files do not hash to its name {digest}"))
    return problems


def _compare(rel: str, have: Found, known: Any) -> Iterable[Damage]:
    if have.kind == FOLDER:
        if have.mode is not None and have.mode != FOLDER_MODE:
            yield Damage(rel, "mode", f"mode {have.mode:04o}, expected {FOLDER_MODE:04o}")
        return
    executable = bool(known[0]) if known is not None else None
    if have.mode is not None:
        allowed = (FILE_MODE, EXEC_MODE) if executable is None else (EXEC_MODE if executable else FILE_MODE,)
        if have.mode not in allowed:
            shown = " or ".join(f"{mode:04o}" for mode in allowed)
            yield Damage(rel, "mode", f"mode {have.mode:04o}, expected {shown}")
    if known is not None and have.digest is not None and have.digest != known[1]:
        yield Damage(rel, "content", "content changed")


def _digest(found: dict[str, Found]) -> str:
    return digest_entries(
        (rel, bool(entry.mode is not None and entry.mode & stat.S_IXUSR), entry.digest or "")
        for rel, entry in sorted(found.items())
        if entry.kind == FILE
    )
