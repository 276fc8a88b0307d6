"""Content hashing for up-to-date checks: BLAKE3 with a stat cache (SPEC §6).

A file whose (size, mtime, inode) is unchanged is not read again. Files modified within the last
two seconds are hashed but not cached: a second write inside the same timestamp tick would
otherwise go unnoticed (the "racy clean" problem Git also guards against).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import blake3

from atmos_tasks.atomic import write_atomic
from vendor_cache.digest import digest_entries, file_digest, is_executable, iter_tree

RACY_SECONDS = 2.0


def hash_json(value: Any) -> str:
    """BLAKE3 of canonical JSON: the identity of a configuration."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return blake3.blake3(text.encode()).hexdigest()


class StatCache:
    """Maps (path, size, mtime, inode) to a file's BLAKE3, persisted between runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, list[Any]] | None = None
        self._dirty = False
        self._added: set[str] = set()  # kept by this instance since it loaded the file

    def _load(self) -> dict[str, list[Any]]:
        if self._entries is None:
            try:
                loaded = json.loads(self.path.read_text())
                self._entries = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self._entries = {}
        return self._entries

    def file(self, path: Path | str, info: os.stat_result | None = None) -> str:
        """`path`: a `Path`, or text as `str(Path)` writes it (taken as it is)."""
        key = path if isinstance(path, str) else str(path)
        return self._file(key, info or os.stat(key))

    def _file(self, key: str, info: os.stat_result) -> str:
        """`file` of the path written `key` (as `str(Path)` writes it)."""
        entries = self._load()
        stamp = [info.st_size, info.st_mtime_ns, info.st_ino]
        cached = entries.get(key)
        if cached is not None and cached[:3] == stamp:
            return str(cached[3])
        digest = file_digest(key)
        if time.time() - info.st_mtime > RACY_SECONDS:
            entries[key] = [*stamp, digest]
            self._added.add(key)
            self._dirty = True
        return digest

    def tree(self, root: Path | str) -> str:
        """`tree_digest` of `root`, each file's digest from this cache. (Its paths are joined as
        text: a graph of 300 components checks 300 module folders on every run.)"""
        base = str(root).rstrip("/")
        return digest_entries(
            (rel, is_executable(info), self._file(f"{base}/{rel}", info)) for rel, info in iter_tree(root)
        )

    def save(self) -> None:
        """Write what this instance kept over the file as it is now: another process (a rollout
        of another target in the same checkout) may have kept other files' digests meanwhile."""
        if not self._dirty or self._entries is None:
            return
        try:
            loaded = json.loads(self.path.read_text())
        except (OSError, ValueError):
            loaded = None
        merged = loaded if isinstance(loaded, dict) else {}
        merged.update((key, self._entries[key]) for key in self._added)
        write_atomic(self.path, json.dumps(merged, separators=(",", ":")))
        self._entries = merged
        self._added.clear()
        self._dirty = False
