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


def test_a_tree_digest_from_the_cache_is_the_tree_digest_and_misses_nothing(tmp_path: Path) -> None:
    import os
    import time

    from atmos_tasks.graphcache import _tree_digest
    from vendor_cache.digest import tree_digest

    root = tmp_path / "module"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "main.tf").write_text("a")
    (root / "sub" / "x.tf").write_text("b")
    (root / "sub" / "deeper" / "run.sh").write_text("c")
    os.chmod(root / "sub" / "deeper" / "run.sh", 0o755)
    (root / "link.tf").symlink_to(root / "main.tf")
    old = time.time() - 60
    for path in [root / "main.tf", root / "sub" / "x.tf", root / "sub" / "deeper" / "run.sh"]:
        os.utime(path, (old, old))
    cache = StatCache(tmp_path / "cache.json")
    before = tree_digest(root)
    assert cache.tree(root) == before
    assert cache.tree(root) == before  # answered from the cache: the same
    (root / "sub" / "x.tf").write_text("B")
    os.utime(root / "sub" / "x.tf", (old + 1, old + 1))
    assert cache.tree(root) == tree_digest(root) != before
    assert _tree_digest(cache, str(root)) == tree_digest(root)
    assert _tree_digest(cache, str(tmp_path / "gone")) == "missing"
    assert _tree_digest(cache, str(root / "main.tf")) == "missing"


def test_a_folder_whose_content_moves_while_it_is_read_is_no_missing_tree(tmp_path: Path) -> None:
    """A file deleted between the folder's listing and its digest: the folder is there, so its
    digest is not "missing" (a cached graph that saw no folder must not be served): it raises."""
    import pytest

    from atmos_tasks.graphcache import _tree_digest

    root = tmp_path / "module"
    root.mkdir()
    (root / "main.tf").write_text("a")
    cache = StatCache(tmp_path / "cache.json")

    def vanished(key: str, info: os.stat_result) -> str:
        raise FileNotFoundError(2, "No such file or directory", key)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cache, "_file", vanished)
        with pytest.raises(FileNotFoundError):
            _tree_digest(cache, str(root))
        assert _tree_digest(cache, str(tmp_path / "gone")) == "missing"
