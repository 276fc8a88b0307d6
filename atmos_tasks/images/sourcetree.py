"""What of a source tree goes into an image, its content hash, and reproducible tars of it.

The same walk feeds the source hash (the build task's key), the Docker build context and the OCI
layer, so what is hashed is exactly what is shipped: excluded paths, timestamps, owners and empty
directories never reach any of them.

Exclusion patterns are a small subset of `.gitignore`: a pattern without `/` matches a file or
directory name anywhere (`node_modules`, `*.pyc`); a pattern with a `/` matches the path from the
root (`/target`, `docs/*.md`); a trailing `/` matches directories only. An excluded directory is not
descended into. Matching is case-sensitive and `*` may cross `/` in rooted patterns.
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
import stat
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import blake3

from atmos_tasks.images.errors import BuildError
from vendor_cache.digest import file_digest

# Tool caches, dependency folders and build output are re-created inside the image; copying them
# would make the image depend on the builder's machine. `/target/` is Cargo's output at the root.
DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".git",
    ".atmos",
    ".DS_Store",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".terraform",
    ".venv",
    "__pycache__",
    "*.pyc",
    "node_modules",
    "/target/",
)

FILE_MODE = 0o644
EXEC_MODE = 0o755
DIR_MODE = 0o755


@dataclass(frozen=True)
class SourceEntry:
    """A file or symbolic link of the tree, by relative POSIX path."""

    rel: str
    path: Path
    executable: bool = False
    link: str | None = None

    @property
    def mode(self) -> int:
        return EXEC_MODE if self.executable or self.link is not None else FILE_MODE


@dataclass(frozen=True)
class _Pattern:
    glob: str
    rooted: bool
    dirs_only: bool


def compile_patterns(patterns: Iterable[str]) -> list[_Pattern]:
    compiled = []
    for raw in patterns:
        glob = raw.strip("/")
        if not glob or ".." in glob.split("/"):
            raise BuildError(
                f"exclude pattern {raw!r} is not usable: use a name like 'dist' or a path like '/build/'"
            )
        compiled.append(_Pattern(glob, rooted="/" in raw.rstrip("/"), dirs_only=raw.endswith("/")))
    return compiled


class _Excluder:
    """All patterns joined into one regular expression per (subject, directories-only) pair, so
    each tree entry costs at most four matches however many patterns there are."""

    def __init__(self, patterns: Iterable[_Pattern]) -> None:
        groups: dict[tuple[bool, bool], list[str]] = {}
        for p in patterns:
            groups.setdefault((p.rooted, p.dirs_only), []).append(fnmatch.translate(p.glob))
        self._checks = [
            (rooted, dirs_only, re.compile("|".join(f"(?:{r})" for r in regexes)))
            for (rooted, dirs_only), regexes in groups.items()
        ]

    def __call__(self, rel: str, name: str, is_dir: bool) -> bool:
        return any(
            regex.match(rel if rooted else name) is not None
            for rooted, dirs_only, regex in self._checks
            if is_dir or not dirs_only
        )


def require_source_dir(source_dir: Path | str) -> Path:
    root = Path(source_dir)
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise BuildError(
            f"source directory {source_dir} {what}: point the nixpack component's vars.source at the "
            "folder that holds the application"
        )
    return root


def iter_source(source_dir: Path | str, exclude: Sequence[str] = DEFAULT_EXCLUDE) -> list[SourceEntry]:
    """Files and symbolic links under `source_dir` that survive `exclude`, sorted by path.

    Symbolic links are kept as links (never followed), so a link to a directory cannot loop and a
    link out of the tree does not pull outside files in. Sockets and devices are skipped.
    """
    root = require_source_dir(source_dir)
    excluded = _Excluder(compile_patterns(exclude))
    entries: list[SourceEntry] = []

    def walk(directory: Path, prefix: str) -> None:
        with os.scandir(directory) as scan:
            for item in scan:
                rel = prefix + item.name
                is_dir = item.is_dir(follow_symlinks=False)
                if excluded(rel, item.name, is_dir):
                    continue
                if item.is_symlink():
                    entries.append(SourceEntry(rel, Path(item.path), link=os.readlink(item.path)))
                elif is_dir:
                    walk(Path(item.path), rel + "/")
                elif item.is_file(follow_symlinks=False):
                    executable = bool(item.stat(follow_symlinks=False).st_mode & stat.S_IXUSR)
                    entries.append(SourceEntry(rel, Path(item.path), executable=executable))

    walk(root, "")
    entries.sort(key=lambda entry: entry.rel)
    return entries


def source_hash(
    source_dir: Path | str,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    hash_file: Callable[[Path, os.stat_result], str] | None = None,
) -> str:
    """BLAKE3 over (sorted relative path, executable bit, file BLAKE3) of what would be shipped.

    The line format is the vendor cache's tree digest, so a tree with nothing excluded and no
    symbolic links has the same digest in both; a link contributes `l` and the BLAKE3 of its
    target text. `hash_file` may answer from a stat cache (see `atmos_tasks.hashing.StatCache.file`).
    """
    hasher = blake3.blake3()
    for entry in iter_source(source_dir, exclude):
        if entry.link is not None:
            kind, digest = "l", blake3.blake3(entry.link.encode()).hexdigest()
        else:
            kind = "x" if entry.executable else "-"
            digest = hash_file(entry.path, entry.path.stat()) if hash_file else file_digest(entry.path)
        hasher.update(f"{entry.rel}\0{kind}\0{digest}\n".encode())
    return hasher.hexdigest()


@dataclass(frozen=True)
class TarMember:
    """One member of a reproducible tar: a directory, a file from disk or bytes, or a link."""

    name: str
    path: Path | None = None
    data: bytes | None = None
    mode: int = FILE_MODE
    link: str | None = None

    @property
    def is_dir(self) -> bool:
        return self.path is None and self.data is None and self.link is None


def members_under(prefix: str, entries: Iterable[SourceEntry]) -> list[TarMember]:
    """Tar members placing `entries` under `prefix` ("" for the root), with every parent directory."""
    base = prefix.strip("/")
    members: dict[str, TarMember] = {}

    def add_parents(name: str) -> None:
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            members.setdefault(directory, TarMember(directory, mode=DIR_MODE))

    for entry in entries:
        name = f"{base}/{entry.rel}" if base else entry.rel
        add_parents(name)
        if entry.link is not None:
            members[name] = TarMember(name, link=entry.link, mode=entry.mode)
        else:
            members[name] = TarMember(name, path=entry.path, mode=entry.mode)
    if base:
        add_parents(base + "/")
    return list(members.values())


def write_tar(members: Iterable[TarMember], fileobj: BinaryIO, mtime: int = 0) -> None:
    """Write `members` sorted by name with one fixed mtime, owner root:root and fixed modes.

    The bytes depend only on names, contents, modes and `mtime`: never on the files' own
    timestamps, owners, umask or the directory the tree lives in.
    """
    with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in sorted(members, key=lambda m: m.name):
            info = tarfile.TarInfo(member.name)
            info.mtime = mtime
            info.mode = member.mode
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if member.is_dir:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif member.link is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = member.link
                tar.addfile(info)
            elif member.data is not None:
                info.size = len(member.data)
                tar.addfile(info, io.BytesIO(member.data))
            else:
                assert member.path is not None
                with open(member.path, "rb") as handle:
                    info.size = os.fstat(handle.fileno()).st_size
                    tar.addfile(info, handle)
