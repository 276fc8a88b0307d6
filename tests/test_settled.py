"""Which graphs may be answered from a settled mark, and what the answer runs (pure)."""

from __future__ import annotations

from typing import Any

from atmos_tasks.invocation import from_argv
from atmos_tasks.settled import always_execute, eligible, shortcut, skeleton
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


def test_whole_rollouts_of_plans_and_applies_may_settle(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert eligible(graph(), from_argv(["rollout:app:dev"]))
    assert not eligible(graph(), from_argv(["apply:app:dev:a"]))
    assert not eligible(graph(), from_argv(["list"]))
    vendor = {"basename": "vendor", "name": "app:dev:a", "actions": ["x"], "uptodate": [True]}
    assert not eligible(graph([vendor]), from_argv(["rollout:app:dev"]))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", "/tmp/summary.md")
    assert not eligible(graph(), from_argv(["rollout:app:dev"]))


def test_always_execute_is_found_among_short_options() -> None:
    assert always_execute(["-a", "rollout:app:dev"])
    assert always_execute(["-av", "2"])
    assert always_execute(["--always-execute"])
    assert not always_execute(["-n", "2", "rollout:app:dev", "--allow-dirty"])


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
