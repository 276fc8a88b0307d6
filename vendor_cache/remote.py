"""A second store elsewhere (a registry, a bucket) that a `Store` asks before fetching a source.

A remote answers two questions, each by something a runner computed before: which object a source
resolved to (by the store's fetch identity: the source without its `//` subdirectory, the version,
the path globs), and the object itself (by its tree digest), as a tar archive. What a remote hands
back is checked like a download from anywhere: extracted with the archive rules, hashed, and its
tree digest compared with the one asked for before it becomes an object. A remote that fails, or
that sends something else, is a miss: the store fetches the source as it would without one.

The store tells the remote what it fetched from a source (`push`) and what it refused (`refused`);
both are best-effort on the remote's side and never raise into a vendoring.
"""

from __future__ import annotations

import gzip
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vendor_cache.digest import is_executable, iter_tree

MEDIA_TYPE = "application/vnd.atmos-tasks.vendor-object.v1.tar+gzip"


@dataclass(frozen=True)
class Resolved:
    """What a source resolved to: the object's tree digest and, for Git, the commit. An answer
    that is not `shared` serves the vendoring that asked only: the store keeps the object but not
    the answer in its index, where other targets would find it."""

    digest: str
    commit: str | None
    shared: bool = True


class Remote(Protocol):
    def resolve(self, identity: str) -> Resolved | None:
        """The object `identity` (a fetch identity, as text) resolved to on some runner, if known."""
        ...

    def pull(self, digest: str, archive: Path) -> bool:
        """Write the object `digest` as a tar archive (`pack`'s) to `archive`; False when absent."""
        ...

    def push(self, identity: str, resolved: Resolved, archive: Path) -> None:
        """Store the object (`archive`, from `pack`) and what `identity` resolved to. Never raises."""
        ...

    def refused(self, digest: str, why: str) -> None:
        """An object pulled for `digest` failed its checks (and was not stored). Never raises."""
        ...


def pack(tree: Path, archive: Path) -> None:
    """The object's files as a tar.gz whose bytes depend on their paths, content and executable
    bits only (sorted, no times, no owners): two runners packing one object push one blob."""
    with (
        open(archive, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for rel, info in iter_tree(tree):
            member = tarfile.TarInfo(rel)
            member.size = info.st_size
            member.mode = 0o555 if is_executable(info) else 0o444
            with open(tree / rel, "rb") as handle:
                tar.addfile(member, handle)
