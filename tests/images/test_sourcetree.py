"""The source hash: what is shipped is what is hashed, and nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from atmos_tasks.hashing import StatCache
from atmos_tasks.images.errors import BuildError
from atmos_tasks.images.planner import make_plan, source_hash
from atmos_tasks.images.sourcetree import DEFAULT_EXCLUDE, iter_source
from tests.images.conftest import AppFactory, write_tree
from vendor_cache.digest import tree_digest


def test_same_content_same_hash_whatever_the_place_and_timestamps(app: AppFactory) -> None:
    a, b = app("node", "a"), app("node", "b")
    for path in b.rglob("*"):
        os.utime(path, (1, 1))
    assert source_hash(a) == source_hash(b)


def test_matches_the_vendor_tree_digest_when_nothing_is_excluded(app: AppFactory) -> None:
    tree = app("go")
    assert source_hash(tree) == tree_digest(tree)


def test_content_paths_and_exec_bit_change_the_hash(app: AppFactory) -> None:
    tree = app("static")
    before = source_hash(tree)
    (tree / "index.html").write_text("<p>changed</p>")
    changed = source_hash(tree)
    assert changed != before
    (tree / "assets" / "site.css").rename(tree / "assets" / "main.css")
    renamed = source_hash(tree)
    assert renamed != changed
    (tree / "index.html").chmod(0o755)
    assert source_hash(tree) != renamed


def test_default_exclusions_do_not_change_the_hash(app: AppFactory) -> None:
    tree = app("rust")
    before = source_hash(tree)
    write_tree(
        tree,
        {
            ".git/HEAD": "ref: refs/heads/main\n",
            ".atmos/state/x": "{}",
            "node_modules/left-pad/index.js": "",
            "target/release/ingest": "binary",
            "src/__pycache__/m.cpython-311.pyc": "",
            "tool.pyc": "",
            ".venv/bin/python": "",
        },
    )
    assert source_hash(tree) == before
    # Only Cargo's target/ at the root is build output; a nested one is source.
    write_tree(tree, {"src/target/mod.rs": "pub fn x() {}\n"})
    assert source_hash(tree) != before


def test_extra_exclusions_from_settings_apply_to_the_hash(app: AppFactory) -> None:
    tree = app("static")
    plan = make_plan(tree, {"exclude": ["assets/", "*.map", "/docs/*.md"]})
    before = source_hash(tree, plan.copy.exclude)
    write_tree(tree, {"assets/new.css": "", "bundle.js.map": "{}", "docs/notes.md": "", "deep/docs/x.md": ""})
    rels = [entry.rel for entry in iter_source(tree, plan.copy.exclude)]
    assert rels == ["deep/docs/x.md", "index.html"]
    assert source_hash(tree, plan.copy.exclude) != before  # deep/docs/x.md is not excluded
    (tree / "deep" / "docs" / "x.md").unlink()
    assert source_hash(tree, plan.copy.exclude) == before


def test_symbolic_links_are_hashed_as_links_and_never_followed(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "t", {"index.html": "x", "real/file.txt": "data"})
    (tree / "alias").symlink_to("real")
    (tree / "loop").symlink_to(".")
    entries = {entry.rel: entry for entry in iter_source(tree)}
    assert entries["alias"].link == "real"
    assert "alias/file.txt" not in entries
    before = source_hash(tree)
    (tree / "alias").unlink()
    (tree / "alias").symlink_to("index.html")
    assert source_hash(tree) != before


def test_a_stat_cache_gives_the_same_hash(app: AppFactory, tmp_path: Path) -> None:
    tree = app("python-poetry")
    cache = StatCache(tmp_path / "stat-cache.json")
    assert source_hash(tree, DEFAULT_EXCLUDE, cache.file) == source_hash(tree)


def test_unusable_patterns_and_missing_trees_are_errors(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"exclude pattern '\.\./secrets' is not usable"):
        source_hash(tmp_path, ["../secrets"])
    with pytest.raises(BuildError, match="does not exist"):
        source_hash(tmp_path / "missing")


def test_directory_patterns_spare_files_and_unrooted_patterns_match_names_anywhere(tmp_path: Path) -> None:
    tree = write_tree(
        tmp_path / "t",
        {
            "out": "a file named like the directory pattern",
            "x/out/y.txt": "",
            "a/b/c.log": "",
            "a/keep.txt": "",
        },
    )
    rels = [entry.rel for entry in iter_source(tree, ["out/", "*.log", "/nothing/"])]
    assert rels == ["a/keep.txt", "out"]
