"""Which graphs may be answered from a settled mark, and what the answer runs (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from atmos_tasks import settled
from atmos_tasks.invocation import from_argv
from atmos_tasks.settled import eligible, shortcut, skeleton
from atmos_tasks.uptodate import LastStatus, Settled


def graph(extra: list[dict[str, Any]] = ()) -> list[dict[str, Any]]:  # type: ignore[assignment]
    return [
        {"basename": "_atmos", "actions": ["x"], "uptodate": [False]},
        {"basename": "plan", "name": "app:dev:a", "actions": ["x"], "uptodate": [Settled("k", ("planned",))]},
        {"basename": "apply", "name": "app:dev:a", "actions": ["x"], "uptodate": [LastStatus("applied")]},
        {"basename": "plan", "name": "app:dev", "actions": None, "task_dep": ["plan:app:dev:a"]},
        {"basename": "record", "name": "app:dev", "actions": ["x"], "uptodate": [False], "getargs": {"a": 1}},
        {"basename": "rollout", "name": "app:dev", "actions": None, "meta": {"atmos": {"kind": "rollout"}}},
        *extra,
    ]


def own(root: Path, **changed: Any) -> dict[str, Any]:
    """The options doit resolves for a run of this package's own configuration."""
    from atmos_tasks.reporter import RolloutReporter

    options = {"always": False, "backend": "sqlite3", "check_file_uptodate": "md5", "codec_cls": "json"}
    options.update(reporter=RolloutReporter, dep_file=str(root / ".atmos" / "doit.sqlite"))
    return {**options, **changed}


def test_whole_rollouts_of_plans_and_applies_may_settle(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setattr(settled, "doit_options", lambda: own(tmp_path))
    assert eligible(graph(), from_argv(["rollout:app:dev"]), tmp_path)
    assert not eligible(graph(), from_argv(["apply:app:dev:a"]), tmp_path)
    assert not eligible(graph(), from_argv(["list"]), tmp_path)
    vendor = {"basename": "vendor", "name": "app:dev:a", "actions": ["x"], "uptodate": [True]}
    assert not eligible(graph([vendor]), from_argv(["rollout:app:dev"]), tmp_path)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", "/tmp/summary.md")
    assert not eligible(graph(), from_argv(["rollout:app:dev"]), tmp_path)
    # Outside a doit command: no options, nothing answered.
    monkeypatch.setattr(settled, "doit_options", lambda: None)
    assert not settled.whole_rollouts(from_argv(["rollout:app:dev"]), tmp_path)


def test_only_a_run_on_this_packages_database_reporter_and_checker_may_be_answered(tmp_path: Path) -> None:
    from doit.reporter import JsonReporter

    assert settled.own_run(own(tmp_path), tmp_path)
    assert not settled.own_run(own(tmp_path, always=True), tmp_path)
    assert not settled.own_run(own(tmp_path, dep_file=str(tmp_path / "other.sqlite")), tmp_path)
    assert not settled.own_run(own(tmp_path, backend="json"), tmp_path)
    assert not settled.own_run(own(tmp_path, check_file_uptodate="timestamp"), tmp_path)
    assert not settled.own_run(own(tmp_path, reporter=JsonReporter), tmp_path)
    assert not settled.own_run(own(tmp_path, reporter="json"), tmp_path)
    assert settled.own_run(own(tmp_path, reporter="atmos"), tmp_path)  # its entry point's name
    assert not settled.own_run(own(tmp_path, single=True), tmp_path)  # `-s`: nothing runs
    assert not settled.own_run(own(tmp_path, codec_cls=dict), tmp_path)
    assert not settled.own_run(None, tmp_path)


def test_doit_options_are_read_from_the_command_that_loads_the_tasks(tmp_path: Path) -> None:
    """doit's own parser (abbreviations, configuration files) gives the options; the task
    creator finds them in `DoitCmdBase.execute`'s frame."""
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    seen: list[Any] = []

    def task_probe() -> dict[str, Any]:
        seen.append(settled.doit_options())
        return {"actions": None}

    main = DoitMain(ModuleTaskLoader({"task_probe": task_probe}), extra_config={"GLOBAL": {}})
    database = tmp_path / "db.sqlite"
    assert main.run(["--alw", "--db=" + str(database), "--check=timestamp", "probe"]) == 0
    (options,) = seen
    assert options["always"] is True
    assert options["dep_file"] == str(database)
    assert options["check_file_uptodate"] == "timestamp"
    assert settled.doit_options() is None
    # A configuration file's `always` is among them too.
    config = tmp_path / "doit.cfg"
    config.write_text("[run]\nalways = True\n")
    main = DoitMain(ModuleTaskLoader({"task_probe": task_probe}), config_filenames=(str(config),))
    assert main.run(["--db-file", str(database), "probe"]) == 0
    assert seen[-1]["always"] is True
    # Only doit's `run` command: `list` (or a plugin's command) loads the tasks, runs none.
    assert main.run(["list"]) == 0
    assert seen[-1] is None


def test_the_answer_runs_the_recorded_record_only() -> None:
    summary = {"deployment": "app", "target": "dev", "recorded": []}
    kept = shortcut(graph(), {"summaries": {"app:dev": summary}, "since": "then"})
    assert kept is not None
    assert [t["basename"] for t in kept] == ["_atmos", "record", "rollout"]
    record = kept[1]
    function, args = record["actions"][0]
    assert function(*args) == summary and record["getargs"] == {} and record["task_dep"] == []
    assert kept[2]["meta"]["atmos"]["settled"] == "then"
    # A mark without this target's answer: no answer (the whole graph runs).
    assert shortcut(graph(), {"summaries": {}, "since": "then"}) is None


def test_the_skeleton_kept_beside_a_graph_gives_the_same_answer() -> None:
    """A settled run loads only the skeleton: the record without what it would have run, the
    rollout and the hint task; answered from it, it runs what the whole graph's answer runs."""
    kept = skeleton(graph())
    assert kept is not None
    assert [t["basename"] for t in kept] == ["_atmos", "record", "rollout"]
    assert kept[1]["actions"] == [] and kept[1]["getargs"] == {}
    mark = {"summaries": {"app:dev": {"deployment": "app", "target": "dev"}}, "since": "then"}
    whole, small = shortcut(graph(), mark), shortcut(kept, mark)
    assert whole is not None and small is not None
    assert [(t["basename"], t.get("name"), t.get("meta")) for t in whole] == [
        (t["basename"], t.get("name"), t.get("meta")) for t in small
    ]
    assert whole[1]["actions"][0][1] == small[1]["actions"][0][1]
    # A graph that cannot settle keeps none.
    vendor = {"basename": "vendor", "name": "app:dev:a", "actions": ["x"], "uptodate": [True]}
    assert skeleton(graph([vendor])) is None
