"""BLAKE3 content hashing with a stat cache: unchanged files are not read again."""

from __future__ import annotations

import os
import time
from pathlib import Path

from atmos_tasks.hashing import StatCache, hash_json
from vendor_cache.digest import file_digest


def age(path: Path, seconds: float = 60) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_cache_answers_from_stat_and_notices_changes(tmp_path: Path) -> None:
    module = tmp_path / "mod"
    module.mkdir()
    main = module / "main.tf"
    main.write_text("a")
    age(main)
    cache = StatCache(tmp_path / "cache.json")
    first = cache.file(main)
    assert first == file_digest(main)
    cache.save()
    stamp = main.stat()
    # Same size and mtime with different bytes: the cache answers without reading the file.
    main.write_text("b")
    os.utime(main, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert StatCache(tmp_path / "cache.json").file(main) == first
    # A real edit changes the mtime: the file is hashed again.
    main.write_text("bb")
    age(main, 30)
    assert StatCache(tmp_path / "cache.json").file(main) == file_digest(main) != first


def test_recently_modified_files_are_not_cached(tmp_path: Path) -> None:
    main = tmp_path / "main.tf"
    main.write_text("fresh")
    cache = StatCache(tmp_path / "cache.json")
    cache.file(main)
    cache.save()
    assert not (tmp_path / "cache.json").exists()


def test_hash_json_is_canonical() -> None:
    assert hash_json({"a": 1, "b": [1, 2]}) == hash_json({"b": [1, 2], "a": 1})
    assert hash_json({"a": 1}) != hash_json({"a": "1"})
