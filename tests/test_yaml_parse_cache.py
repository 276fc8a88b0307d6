"""Parsed YAML kept in the repository's working data (`yamlio.load_data` with a `ParseCache`).

A file is parsed again whenever its text, the name it is shown as or the parsing code differs; a
kept parse that disagrees with a fresh one is refused while verifying; the cache is a hint (damaged,
unwritable: parse); a file the limits refuse is refused every time, never kept.
"""

from __future__ import annotations

import pickle
import stat
from pathlib import Path

import pytest

from atmos_tasks import yamlio
from atmos_tasks.config import load_config
from atmos_tasks.errors import AtmosError
from atmos_tasks.yamlfunctions import YamlFunction
from atmos_tasks.yamlio import ParseCache, load_data
from vendor_cache.yamllimits import MAX_DEPTH


def _no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise AssertionError("the file was parsed")

    monkeypatch.setattr(yamlio, "_fast", refuse)


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.pickle")) if folder.is_dir() else []


def test_an_unchanged_file_is_served_without_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text("vars:\n  region: eu-west-1\n  when: 2024-01-01\n")
    cache = ParseCache(tmp_path / "parsed")
    first = load_data(path, "stack.yaml", cache)
    assert first == {"vars": {"region": "eu-west-1", "when": "2024-01-01"}}
    [entry] = _entries(cache.folder)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600  # a file may hold secrets
    _no_parsing(monkeypatch)
    second = load_data(path, "stack.yaml", cache)
    assert second == first
    second["vars"]["region"] = "changed by a caller"
    assert load_data(path, "stack.yaml", cache) == first  # every caller gets its own copy


def test_changed_text_is_parsed_again_and_replaces_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    cache = ParseCache(tmp_path / "parsed")
    path.write_text("a: 1\n")
    assert load_data(path, "stack.yaml", cache) == {"a": 1}
    path.write_text("a: 2\n")
    assert load_data(path, "stack.yaml", cache) == {"a": 2}
    assert len(_entries(cache.folder)) == 1  # one entry per file, not one per version


def test_yaml_functions_keep_the_name_the_file_is_shown_as(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text("vars:\n  token: !env TOKEN\n")
    cache = ParseCache(tmp_path / "parsed")
    token = load_data(path, "one.yaml", cache)["vars"]["token"]
    assert token == YamlFunction("!env", "TOKEN", "one.yaml", 2, 10)
    assert load_data(path, "two.yaml", cache)["vars"]["token"].file == "two.yaml"
    assert load_data(path, "one.yaml", cache)["vars"]["token"].file == "one.yaml"


def test_new_parsing_code_is_not_served_an_old_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text("a: 1\n")
    cache = ParseCache(tmp_path / "parsed")
    load_data(path, "stack.yaml", cache)
    entry, key = yamlio._parsed_entry(cache.folder, path.read_text(), "stack.yaml")
    monkeypatch.setattr(yamlio, "_PARSED_FORMAT", yamlio._PARSED_FORMAT + 1)
    yamlio._parsing_code.cache_clear()  # taken once per process: a new process, new code
    moved_entry, moved_key = yamlio._parsed_entry(cache.folder, path.read_text(), "stack.yaml")
    assert moved_entry == entry and moved_key != key
    assert yamlio._parsed_get(entry, moved_key) is None
    monkeypatch.undo()
    yamlio._parsing_code.cache_clear()


DAMAGED = [b"", b"not a pickle", pickle.dumps(("key", {"a": 9})), pickle.dumps([1, 2])]


@pytest.mark.parametrize("damage", DAMAGED)
def test_a_damaged_or_foreign_entry_is_no_entry(tmp_path: Path, damage: bytes) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text("a: 1\n")
    cache = ParseCache(tmp_path / "parsed")
    load_data(path, "stack.yaml", cache)
    [entry] = _entries(cache.folder)
    entry.write_bytes(damage)
    assert load_data(path, "stack.yaml", cache) == {"a": 1}
    assert pickle.loads(entry.read_bytes())[1] == {"a": 1}  # written again


def test_verifying_refuses_a_kept_parse_that_differs(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text("a: 1\n")
    load_data(path, "stack.yaml", ParseCache(tmp_path / "parsed"))
    [entry] = _entries(tmp_path / "parsed")
    key, _data = pickle.loads(entry.read_bytes())
    entry.write_bytes(pickle.dumps((key, {"a": 2})))
    assert load_data(path, "stack.yaml", ParseCache(tmp_path / "parsed")) == {"a": 2}  # served as kept
    with pytest.raises(AtmosError) as caught:
        load_data(path, "stack.yaml", ParseCache(tmp_path / "parsed", verifying=True))
    [problem] = caught.value.problems
    assert problem.location.file == "stack.yaml"
    assert "differs" in problem.message and "ATMOS_TASKS_GRAPH_CACHE=off" in (problem.hint or "")


def test_a_cache_that_is_a_file_still_loads(tmp_path: Path) -> None:
    """A folder that cannot be made (a file in its place) keeps nothing and leaves nothing."""
    folder = tmp_path / "parsed"
    folder.write_text("in the way")
    path = tmp_path / "stack.yaml"
    path.write_text("a: 1\n")
    assert load_data(path, "stack.yaml", ParseCache(folder)) == {"a": 1}
    assert load_data(path, "stack.yaml", ParseCache(folder)) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parsed", "stack.yaml"]


def test_a_file_beyond_the_limits_is_refused_every_time_and_never_kept(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n")
    cache = ParseCache(tmp_path / "parsed")
    for _ in range(2):
        with pytest.raises(AtmosError):
            load_data(path, "deep.yaml", cache)
    assert _entries(cache.folder) == []


def test_invalid_yaml_is_reported_with_its_place_and_never_kept(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\na: 2\n")
    cache = ParseCache(tmp_path / "parsed")
    for _ in range(2):
        with pytest.raises(AtmosError) as caught:
            load_data(path, "bad.yaml", cache)
        assert caught.value.problems[0].location.line == 2
    assert _entries(cache.folder) == []


@pytest.mark.parametrize(("switch", "expected"), [("off", None), ("verify", True), ("", False)])
def test_the_graph_cache_switch_governs_the_parse_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, switch: str, expected: bool | None
) -> None:
    monkeypatch.setenv("ATMOS_TASKS_GRAPH_CACHE", switch)
    found = load_config(tmp_path).parse_cache()
    if expected is None:
        assert found is None
    else:
        assert found == ParseCache(tmp_path / ".atmos" / "cache" / "yaml", verifying=expected)


def test_verifying_a_file_holding_nan_finds_no_difference(tmp_path: Path) -> None:
    """`.nan` is not equal to itself: parses are compared by what they pickle to."""
    path = tmp_path / "stack.yaml"
    path.write_text("vars:\n  ratio: .nan\n")
    cache = ParseCache(tmp_path / "parsed", verifying=True)
    load_data(path, "stack.yaml", cache)
    ratio = load_data(path, "stack.yaml", cache)["vars"]["ratio"]
    assert ratio != ratio  # NaN, served after the comparison


def test_an_entry_others_could_have_written_is_never_unpickled(tmp_path: Path) -> None:
    """Checked out from a commit, an entry is readable by others (0644): not one of ours."""
    path = tmp_path / "stack.yaml"
    path.write_text("a: 1\n")
    cache = ParseCache(tmp_path / "parsed")
    load_data(path, "stack.yaml", cache)
    [entry] = _entries(cache.folder)
    key, _data = pickle.loads(entry.read_bytes())
    entry.write_bytes(pickle.dumps((key, {"a": "planted"})))
    entry.chmod(0o644)
    assert load_data(path, "stack.yaml", cache) == {"a": 1}
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600  # written again, ours
    assert load_data(path, "stack.yaml", cache) == {"a": 1}


def test_another_commits_worktree_keeps_no_parse(tmp_path: Path) -> None:
    from dataclasses import replace

    config = replace(load_config(tmp_path), work_root=tmp_path / "main")
    assert config.parse_cache() is None
