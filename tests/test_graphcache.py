"""The graph cache's key parts (the end-to-end behaviour is tests/e2e/test_graph_cache.py)."""

from __future__ import annotations

import os
from pathlib import Path

from atmos_tasks import graphcache, inputs
from atmos_tasks.gitrepo import WorkingTree
from atmos_tasks.hashing import StatCache


def test_the_watched_environment_notes_what_is_read_by_name(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATMOS_BENCH_SEEN", "1")
    with graphcache.observing() as observed:
        assert os.environ.get("ATMOS_BENCH_SEEN") == "1"
        assert "ATMOS_BENCH_ABSENT" not in os.environ
        child = os.environ.copy()  # a Git process's environment: its variables are keyed apart
        assert child["ATMOS_BENCH_SEEN"] == "1"
    assert observed.env == {"ATMOS_BENCH_SEEN", "ATMOS_BENCH_ABSENT"}
    assert not isinstance(os.environ, graphcache._WatchedEnviron)


def test_a_subprocess_started_while_watching_notes_path_by_name_only() -> None:
    """`os.get_exec_path()` (every subprocess without `env=`) asks for b"PATH" too: only names are
    noted, so what was read can be listed and looked up again."""
    import subprocess

    with graphcache.observing() as observed:
        os.get_exec_path()
        subprocess.run(["true"], check=True)
    assert all(isinstance(name, str) for name in observed.env)
    assert "PATH" in observed.env


def test_a_template_clock_read_makes_the_graph_volatile() -> None:
    from atmos_tasks.gotemplate.runtime import current_now

    with graphcache.observing() as observed:
        current_now()
    assert observed.volatile == {"a stack template read the clock (now)"}


def test_outside_an_observed_compilation_inputs_are_not_noted() -> None:
    inputs.file("/nowhere")
    inputs.volatile("nothing")  # no error, nothing kept


def test_the_lookup_key_follows_uncommitted_content(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("one\n")
    cache = StatCache(tmp_path / "stat.json")
    tree = WorkingTree(head="0" * 40, branch="main", dirty=["a.yaml"])
    first = graphcache.lookup_key(tmp_path, "invocation", tree, cache)
    assert graphcache.lookup_key(tmp_path, "invocation", tree, cache) == first
    (tmp_path / "a.yaml").write_text("two\n")
    assert graphcache.lookup_key(tmp_path, "invocation", tree, cache) != first
    assert graphcache.lookup_key(tmp_path, "other invocation", tree, cache) != first


def test_graphs_compare_regardless_of_set_order() -> None:
    one = [{"a": frozenset({"x", "y", "z"}), "f": test_graphs_compare_regardless_of_set_order}]
    two = [{"f": test_graphs_compare_regardless_of_set_order, "a": frozenset({"z", "y", "x"})}]
    assert graphcache._canonical(one) == graphcache._canonical(two)
    assert graphcache._canonical(one) != graphcache._canonical([{"a": frozenset({"x"})}])


def test_a_file_is_keyed_by_its_content_when_read(tmp_path: Path) -> None:
    """A file that changes while the compilation runs no longer matches the graph it fed."""
    (tmp_path / "stack.yaml").write_text("one\n")
    with graphcache.observing(tmp_path) as observed:
        inputs.file(tmp_path / "stack.yaml")
        read_then = observed.files[str(tmp_path / "stack.yaml")]
        (tmp_path / "stack.yaml").write_text("two, written while compiling\n")
        inputs.file(tmp_path / "stack.yaml")  # read again: the first digest stands
    assert observed.files == {str(tmp_path / "stack.yaml"): read_then}
    cache = StatCache(tmp_path / "other.json")
    assert read_then != graphcache._file_digest(cache, str(tmp_path / "stack.yaml"))


def test_the_time_zone_is_in_the_key(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cache = StatCache(tmp_path / "stat.json")
    tree = WorkingTree(head="0" * 40, branch="main", dirty=[])
    monkeypatch.setenv("TZ", "UTC")
    utc = graphcache.lookup_key(tmp_path, "invocation", tree, cache)
    monkeypatch.setenv("TZ", "America/New_York")
    assert graphcache.lookup_key(tmp_path, "invocation", tree, cache) != utc


def test_records_that_move_while_compiling_are_not_kept(tmp_path: Path) -> None:
    """A ref read while compiling that another run moves before the graph is stored: not stored."""
    import subprocess

    from atmos_tasks.gitrepo import GitRepo

    def git(*args: str) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
        env["GIT_COMMITTER_EMAIL"] = "t@t"
        done = subprocess.run(["git", *args], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    git("init", "-q", "-b", "main")
    git("commit", "-q", "--allow-empty", "-m", "one")
    head = git("rev-parse", "HEAD")
    cache = graphcache.GraphCache(tmp_path)
    for moved in (False, True):
        with graphcache.observing(tmp_path) as observed:
            GitRepo(tmp_path).for_each_ref(["refs/atmos/deployments/app/dev/"], ["refname", "objectname"])
        if moved:  # another target's rollout records between the read and the store
            git("update-ref", "refs/atmos/deployments/app/dev/a", head)
        cache.store(f"key{moved}", observed, [("app", "dev")], [{"basename": "x"}])
        stored = (tmp_path / ".atmos/cache/graphs" / f"key{moved}.pickle").exists()
        assert stored is not moved


def test_reading_a_graph_keeps_the_digests_it_had_to_take(tmp_path: Path) -> None:
    """A module written seconds before the rollout that stored the graph is too new for the stat
    cache then; the first run that reads the graph hashes it and keeps the digest, so the runs
    after it stat the file instead of reading it (300 of them at 300 components)."""
    import json
    import time

    module = tmp_path / "components" / "terraform" / "vpc"
    module.mkdir(parents=True)
    (module / "main.tf").write_text('variable "cidr" {}\n')
    just_written = time.time() + 60  # too new to keep, however long the store takes
    os.utime(module / "main.tf", (just_written, just_written))
    kept = tmp_path / ".atmos" / "cache" / "stat-cache.json"

    def kept_paths() -> set[str]:
        return set(json.loads(kept.read_text())) if kept.exists() else set()

    with graphcache.observing(tmp_path) as observed:
        inputs.tree(str(module))
    graphcache.GraphCache(tmp_path).store("key", observed, [("app", "dev")], [{"basename": "x"}])
    assert str(module / "main.tf") not in kept_paths()

    an_hour_ago = time.time() - 3600  # the same file, as a later run finds it
    os.utime(module / "main.tf", (an_hour_ago, an_hour_ago))
    assert graphcache.GraphCache(tmp_path).load("key") is not None
    assert str(module / "main.tf") in kept_paths()

    (module / "main.tf").write_text('variable "cidr" { default = "10.0.0.0/16" }\n')
    assert graphcache.GraphCache(tmp_path).load("key") is None  # what was kept never hides a change


def test_a_stat_cache_saved_keeps_what_another_process_kept_meanwhile(tmp_path: Path) -> None:
    """Two rollouts of different targets in one checkout each load the stat cache, hash other
    files and save: neither drops the digests the other kept."""
    import time

    an_hour_ago = time.time() - 3600
    for name in ("a.tf", "b.tf"):
        (tmp_path / name).write_text(f"# {name}\n")
        os.utime(tmp_path / name, (an_hour_ago, an_hour_ago))
    path = tmp_path / "stat-cache.json"
    one, two = StatCache(path), StatCache(path)
    one.file(tmp_path / "a.tf")
    two.file(tmp_path / "b.tf")  # loaded before `one` saved
    one.save()
    two.save()
    assert set(StatCache(path)._load()) == {str(tmp_path / "a.tf"), str(tmp_path / "b.tf")}
