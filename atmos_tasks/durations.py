"""Critical path first: how long each task took in earlier rollouts, and the order that follows.

doit starts ready tasks in the order of the `task_dep` lists it walks; a 10 s component named
last starts last. The reporter keeps each task's duration (`.atmos/cache/durations.json`, per
task name, the latest run's figure); when a graph is loaded, every `task_dep` list is sorted by
the longest path through each task (its longest chain of prerequisites plus its longest chain of
dependants), longest first, as build systems with history do. A task never timed counts as the
median of those that were. Without any figure the order is left as compiled.

A chain, once started, continues first: doit puts a task that a finished one made ready behind
every task already waiting to start, so a runner planned all its components before applying any
(four CI runners on two cores: all planning at once, then all waiting in their applies with the
cores idle). `continue_chains_first` makes doit's dispatcher put such a task at the front: a
component's apply starts as soon as its plan is done.

Only the order changes: the graph (and the graph cache's copy of it) is the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from atmos_tasks.atomic import write_atomic

FILE = Path(".atmos") / "cache" / "durations.json"


def load(root: Path) -> dict[str, float]:
    try:
        found = json.loads((root / FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {k: float(v) for k, v in found.items() if isinstance(v, int | float)}


def record(root: Path, measured: dict[str, float]) -> None:
    """Merge this run's figures in (atomic: a reader sees the old file or the new one)."""
    if not measured:
        return
    path = root / FILE
    merged = {**load(root), **{k: round(v, 3) for k, v in measured.items()}}
    try:
        write_atomic(path, json.dumps(merged, sort_keys=True))
    except OSError:
        return  # timings are a hint: a read-only checkout still rolls out


def _task_name(task: dict[str, Any]) -> str:
    return f"{task['basename']}:{task['name']}" if task.get("name") else str(task["basename"])


def critical_first(tasks: list[dict[str, Any]], durations: dict[str, float]) -> None:
    """Sort every `task_dep` list in place, longest path through each task first."""
    if not durations:
        return
    by_name = {_task_name(t): t for t in tasks}
    known = sorted(durations.values())
    default = known[len(known) // 2]  # the median (the upper one of an even count)

    def cost(name: str) -> float:
        task = by_name.get(name)
        if task is None or not task.get("actions"):
            return 0.0  # a group: no work of its own
        return durations.get(name, default)

    deps_of = {name: [d for d in t.get("task_dep", ()) if d in by_name] for name, t in by_name.items()}
    order = _topological(deps_of)
    head: dict[str, float] = {}  # the longest chain ending with the task, itself included
    for name in order:
        head[name] = cost(name) + max((head[d] for d in deps_of[name]), default=0.0)
    tail: dict[str, float] = {name: cost(name) for name in order}  # ... starting with it
    for name in reversed(order):
        for dep in deps_of[name]:
            tail[dep] = max(tail[dep], cost(dep) + tail[name])

    def through(name: str) -> float:
        if name not in head:
            return 0.0
        return head[name] + tail[name] - cost(name)

    for task in tasks:
        deps = task.get("task_dep")
        if deps and len(deps) > 1:
            task["task_dep"] = sorted(deps, key=lambda d: -through(d))


def continue_chains_first() -> None:
    """Make doit start a task a finished one made ready before the tasks already waiting to start
    (among themselves they keep doit's order). Installed once per process, on doit's dispatcher."""
    from doit.control import TaskDispatcher

    if getattr(TaskDispatcher, "_atmos_chains_first", False):
        return
    original = TaskDispatcher._update_waiting

    def _update_waiting(self: Any, processed: Any) -> None:
        before = len(self.ready)
        original(self, processed)
        made_ready = [self.ready.pop() for _ in range(len(self.ready) - before)]
        self.ready.extendleft(made_ready)  # popped last first: extendleft restores their order

    TaskDispatcher._update_waiting = _update_waiting  # type: ignore[method-assign]
    TaskDispatcher._atmos_chains_first = True  # type: ignore[attr-defined]


def _topological(deps_of: dict[str, list[str]]) -> list[str]:
    """Prerequisites first (a cycle, which doit refuses anyway, is left out of the ordering)."""
    waiting = {name: len(deps) for name, deps in deps_of.items()}
    dependants: dict[str, list[str]] = {}
    for name, deps in deps_of.items():
        for dep in deps:
            dependants.setdefault(dep, []).append(name)
    ready = [name for name, count in waiting.items() if count == 0]
    order: list[str] = []
    while ready:
        name = ready.pop()
        order.append(name)
        for after in dependants.get(name, ()):
            waiting[after] -= 1
            if waiting[after] == 0:
                ready.append(after)
    return order
