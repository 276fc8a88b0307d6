"""Critical path first: task_dep lists sorted by the longest path through each task (pure)."""

from __future__ import annotations

from typing import Any

from atmos_tasks.durations import critical_first, load, record


def task(basename: str, name: str, deps: list[str] = (), actions: bool = True) -> dict[str, Any]:  # type: ignore[assignment]
    return {"basename": basename, "name": name, "task_dep": list(deps), "actions": ["x"] if actions else None}


def rollout(components: list[str], chains: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """plan → apply per component; `chains`: component → the component whose apply it waits for."""
    chains = chains or {}
    tasks = []
    for c in components:
        deps = [f"apply:d:t:{chains[c]}"] if c in chains else []
        tasks.append(task("plan", f"d:t:{c}", deps))
        tasks.append(task("apply", f"d:t:{c}", [f"plan:d:t:{c}"]))
    tasks.append(task("record", "d:t", [f"apply:d:t:{c}" for c in components]))
    tasks.append(task("rollout", "d:t", ["record:d:t"], actions=False))
    return tasks


def record_deps(tasks: list[dict[str, Any]]) -> list[str]:
    return next(t["task_dep"] for t in tasks if t["basename"] == "record")


def timed(components: dict[str, float]) -> dict[str, float]:
    return {f"{step}:d:t:{c}": seconds / 2 for c, seconds in components.items() for step in ("plan", "apply")}


def test_the_slow_component_named_last_starts_first() -> None:
    names = [f"a{i}" for i in range(1, 9)] + ["zz"]
    tasks = rollout(names)
    critical_first(tasks, timed({**{n: 2.0 for n in names[:-1]}, "zz": 10.0}))
    assert record_deps(tasks)[0] == "apply:d:t:zz"
    # The rest keep their order (a stable sort of equal paths).
    assert record_deps(tasks)[1:] == [f"apply:d:t:a{i}" for i in range(1, 9)]


def test_a_chain_of_short_tasks_outranks_one_longer_task() -> None:
    tasks = rollout(["a", "b", "c", "long"], chains={"b": "a", "c": "b"})
    critical_first(tasks, timed({"a": 2.0, "b": 2.0, "c": 2.0, "long": 5.0}))
    # Every link of the 6 s chain lies on it: they go before the 5 s task, `a` (its start) first.
    assert record_deps(tasks) == ["apply:d:t:a", "apply:d:t:b", "apply:d:t:c", "apply:d:t:long"]


def test_without_any_figure_the_compiled_order_stays() -> None:
    tasks = rollout(["b", "a"])
    critical_first(tasks, {})
    assert record_deps(tasks) == ["apply:d:t:b", "apply:d:t:a"]


def test_a_task_never_timed_counts_as_the_median() -> None:
    tasks = rollout(["new", "fast", "slow"])
    critical_first(tasks, timed({"fast": 1.0, "slow": 9.0, "other": 5.0}))
    assert record_deps(tasks) == ["apply:d:t:slow", "apply:d:t:new", "apply:d:t:fast"]


def test_a_long_chain_needs_no_recursion() -> None:
    names = [f"c{i}" for i in range(3000)]
    tasks = rollout([*names, "alone"], chains={names[i]: names[i - 1] for i in range(1, len(names))})
    critical_first(tasks, timed({**{n: 1.0 for n in names}, "alone": 100.0}))
    assert record_deps(tasks)[0] == "apply:d:t:c0"
    assert record_deps(tasks)[-1] == "apply:d:t:alone"


def test_figures_are_merged_and_a_damaged_file_is_no_figure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    record(tmp_path, {"plan:d:t:a": 1.0})
    record(tmp_path, {"apply:d:t:a": 2.0})
    assert load(tmp_path) == {"plan:d:t:a": 1.0, "apply:d:t:a": 2.0}
    (tmp_path / ".atmos/cache/durations.json").write_text("{not json")
    assert load(tmp_path) == {}


def test_a_started_chain_continues_before_the_next_one_starts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """doit alone plans both components before applying either; with chains first, each
    component's apply starts as soon as its plan is done (the order of the plans stays)."""
    import subprocess
    import sys
    import textwrap

    dodo = tmp_path / "dodo.py"
    dodo.write_text(
        textwrap.dedent(
            """
            import os, sys
            if os.environ.get("CHAINS_FIRST"):
                from atmos_tasks import durations
                durations.continue_chains_first()
            def step(name):
                return lambda: print("ran", name, file=sys.stderr) or True
            def task_plan():
                for c in ("c1", "c2", "c3"):
                    yield {"name": c, "actions": [step("plan:" + c)], "uptodate": [False]}
            def task_apply():
                for c in ("c1", "c2", "c3"):
                    yield {"name": c, "actions": [step("apply:" + c)], "task_dep": ["plan:" + c],
                           "uptodate": [False]}
            def task_rollout():
                return {"actions": None, "task_dep": ["apply:c1", "apply:c2", "apply:c3"]}
            """
        )
    )

    def order(**env: str) -> list[str]:
        import os

        proc = subprocess.run(
            [sys.executable, "-m", "doit", "-f", str(dodo), "--db-file", str(tmp_path / "db"), "rollout"],
            cwd=tmp_path,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        return [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("ran ")]

    assert order() == ["plan:c1", "plan:c2", "plan:c3", "apply:c1", "apply:c2", "apply:c3"]
    assert order(CHAINS_FIRST="1") == ["plan:c1", "apply:c1", "plan:c2", "apply:c2", "plan:c3", "apply:c3"]
