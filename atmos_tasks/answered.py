"""Components known to be up to date before doit walks them: a rollout that changes one component
of 300 hands doit the tasks of one.

doit loads and checks every task of a rollout, about 0.1 ms each for doit alone: two or three per
component, changed or not. Every up-to-date check of a rollout's plan or apply reads only what
doit saved for it (`uptodate.Settled`, `uptodate.LastStatus`, and doit's own check behind each
`getargs`) and whether its plan file is there; a vendor task's, its saved key (doit's
`config_changed`) and the vendored workspace on disk. So, under the target's lock and before doit
starts, the saved rows of the graph's vendors, plans and applies are read from doit's database in
one query, and each check is answered as doit's `Dependency.get_status` would answer it.

A component whose tasks are up to date this way, whose own inputs come only from tasks answered
too, and which no task left in the graph reads, is *answered*: its tasks leave the graph, the
record task is given their saved values (what its `getargs` would have read), and the reporter
lists it as up to date (one line, and its row of the job summary). Whatever doit would check
otherwise — a check of another kind (a clock, a command, a build), a file dependency, a missing
plan file, another file checker, a task set to be ignored, a task that reads one that runs —
keeps the component in the graph, where doit checks it as before.

Only for whole rollouts run by doit's `run` command on this package's database, codec, reporter
and doit's default file checker, nothing forced, as doit resolved its options
(`settled.whole_rollouts`); never with the graph cache off (`ATMOS_TASKS_GRAPH_CACHE=off`). With
`verify` (the suite) every task stays and the reporter fails the run when doit did not find an
answered component up to date, with the very values answered for it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from atmos_tasks.uptodate import LastStatus, Settled

# doit's file checker, as its rows name it: a row saved under another makes doit run the task.
CHECKER = "MD5Checker"
# Rows asked for per query (SQLite's default limit of host parameters is 999 in old builds).
BATCH = 500


@dataclass
class Step:
    """An answered plan or apply, as the reporter sees a task doit found up to date."""

    name: str
    values: dict[str, Any]
    targets: list[str] = field(default_factory=list)


# (deployment, target) → component → its answered tasks by kind ("vendor", "plan", "apply").
Answers = dict[tuple[str, str], dict[str, dict[str, Step]]]
# The kinds of task a component's answer may cover: a rollout's vendor, plan and apply.
KINDS = ("vendor", "plan", "apply")


def _name(task: dict[str, Any]) -> str:
    return f"{task['basename']}:{task['name']}" if task.get("name") else str(task["basename"])


def _reads(task: dict[str, Any]) -> list[str]:
    """The tasks whose saved values or results this task's run or check reads, or that run first."""
    sources = [source for source, _key in (task.get("getargs") or {}).values()]
    return [*(task.get("task_dep") or []), *(task.get("setup") or []), *sources]


def _component(task: dict[str, Any]) -> tuple[str, str, str] | None:
    """(deployment, target, component) of a rollout's vendor, plan or apply, None for any other task."""
    meta = (task.get("meta") or {}).get("atmos") or {}
    if task.get("basename") not in KINDS or meta.get("kind") != task.get("basename"):
        return None
    if meta.get("preview") or not task.get("actions") or task.get("file_dep"):
        return None
    return meta["deployment"], meta["target"], meta["component"]


def saved_rows(database: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """doit's saved rows of the named tasks (read only; none when the database cannot be read)."""
    if not database.exists():
        return {}
    rows: dict[str, dict[str, Any]] = {}
    try:
        connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return {}
    try:
        connection.execute("begin")  # one snapshot for every batch
        for start in range(0, len(names), BATCH):
            chunk = names[start : start + BATCH]
            marks = ",".join("?" * len(chunk))
            query = f"select task_id, task_data from doit where task_id in ({marks})"
            for task_id, data in connection.execute(query, chunk):
                found = json.loads(data)
                if isinstance(found, dict):
                    rows[task_id] = found
    except (sqlite3.Error, ValueError, TypeError):
        return {}
    finally:
        connection.close()
    return rows


def up_to_date(task: dict[str, Any], rows: dict[str, dict[str, Any]], name: str | None = None) -> bool:
    """doit's answer for a rollout's vendor, plan or apply (named `name`) from its saved row and
    its checks (`Dependency.get_status`), or False whenever doit would look at anything else."""
    row = rows.get(name or _name(task))
    if row is None or row.get("ignore:") or row.get("deps:") or row.get("checker:") not in (None, CHECKER):
        return False
    values = row.get("_values_:") or {}
    checks = task.get("uptodate") or []
    if not checks or not all(_holds(check, values) for check in checks):
        return False
    setup = set(task.get("setup") or [])
    for source, _key in (task.get("getargs") or {}).values():
        if source in setup:
            continue
        # doit's `result_dep`, added for each `getargs` source: the result the source last saved
        # is the one this task saved when it last ran.
        last = values.get(f"_result:{source}")
        if last is None or source not in rows or last != rows[source].get("result:"):
            return False
    return all(os.path.exists(target) for target in task.get("targets") or [])


def _holds(check: Any, values: dict[str, Any]) -> bool:
    """One up-to-date check of a rollout's task, as doit calls it: those that read the task's
    saved values, and the vendored workspace (`WorkspaceIntact` reads the disk, as it would a
    moment later under doit). Any other (a clock, a command, a callable of a plugin) is doit's."""
    if check is True:
        return True
    if isinstance(check, (Settled, LastStatus, *_value_checks())):
        return bool(check(SimpleNamespace(value_savers=[]), values))  # type: ignore[operator]
    return False


def _value_checks() -> tuple[type, ...]:
    """doit's `config_changed` and `vendoring.WorkspaceIntact`, among the modules loaded: a check
    is an instance of a class only once its module is, and importing `vendoring` to ask costs
    50 ms that a graph without vendored modules never pays."""
    found: list[type] = []
    for module, name in (("doit.tools", "config_changed"), ("atmos_tasks.vendoring", "WorkspaceIntact")):
        loaded = sys.modules.get(module)
        if loaded is not None:
            found.append(getattr(loaded, name))
    return tuple(found)


def answer(root: Path, tasks: list[dict[str, Any]]) -> Answers:
    """The components of `tasks` doit would find up to date and that may leave the graph."""
    from atmos_tasks.settled import DB

    pairs: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for task in tasks:
        key = _component(task)
        if key is not None:
            pairs.setdefault(key, {})[task["basename"]] = task
    pairs = {key: both for key, both in pairs.items() if "plan" in both and "apply" in both}
    if not pairs:
        return {}
    owner = {_name(task): key for key, both in pairs.items() for task in both.values()}
    rows = saved_rows(root / DB, list(owner))
    answered = {
        key
        for key, both in pairs.items()
        if all(up_to_date(task, rows, f"{kind}:{task['name']}") for kind, task in both.items())
    }
    _keep_what_the_graph_reads(tasks, owner, answered)
    found: Answers = {}
    for key in sorted(answered):
        found.setdefault(key[:2], {})[key[2]] = {
            kind: Step(_name(task), rows[_name(task)].get("_values_:") or {}, list(task.get("targets") or []))
            for kind, task in pairs[key].items()
        }
    return found


def _keep_what_the_graph_reads(
    tasks: list[dict[str, Any]], owner: dict[str, tuple[str, str, str]], answered: set[tuple[str, str, str]]
) -> None:
    """Take out of `answered` each component that reads a task left in the graph (doit checks it
    after that task, which may run), and each one a task left in the graph reads (doit hands that
    task its values). Each task is looked at once more when its component leaves `answered`."""
    by_name = {_name(task): task for task in tasks}
    readers: dict[str, list[str]] = {}
    for name, task in by_name.items():
        for source in _reads(task):
            readers.setdefault(source, []).append(name)
    # Every task left in the graph, and every name read that is no task (doit refuses those).
    pending = [name for name in {*by_name, *readers} if owner.get(name) not in answered]
    members: dict[tuple[str, str, str], list[str]] = {}
    for name, key in owner.items():
        members.setdefault(key, []).append(name)

    def keep(key: tuple[str, str, str] | None) -> None:
        if key in answered:
            answered.discard(key)
            pending.extend(members[key])

    while pending and answered:
        name = pending.pop()
        found = by_name.get(name)
        # A group (no actions) only orders; `without` leaves out of it what leaves the graph.
        if found is not None and found.get("actions") is not None and not _given_values(found):
            for source in _reads(found):
                keep(owner.get(source))
        for reader in readers.get(name, ()):
            keep(owner.get(reader))


def _given_values(task: dict[str, Any]) -> bool:
    """A record task whose actions are `(callable, args[, kwargs])`: it can be given an answered
    component's values instead of reading them from doit (`without`)."""
    actions = task.get("actions") or []
    return (
        task.get("basename") == "record"
        and bool(actions)
        and all(isinstance(a, tuple) and 2 <= len(a) <= 3 and callable(a[0]) for a in actions)
    )


def without(tasks: list[dict[str, Any]], answers: Answers) -> list[dict[str, Any]]:
    """The graph without the answered components' tasks: a record task is given their saved values
    as `getargs` would have, the plan group lists the plans left."""
    values = {
        step.name: step.values
        for found in answers.values()
        for steps in found.values()
        for step in steps.values()
    }
    if not values:
        return tasks
    kept: list[dict[str, Any]] = []
    for task in tasks:
        name = _name(task)
        if name in values:
            continue
        if any(source in values for source in _reads(task)):
            task = dict(task)
            given = {
                arg: values[source]
                for arg, (source, _key) in (task.get("getargs") or {}).items()
                if source in values
            }
            task["getargs"] = {
                arg: how for arg, how in (task.get("getargs") or {}).items() if arg not in given
            }
            task["task_dep"] = [dep for dep in task.get("task_dep") or [] if dep not in values]
            if "setup" in task:
                task["setup"] = [dep for dep in task["setup"] if dep not in values]
            if given:
                task["actions"] = [_given(action, given) for action in task["actions"]]
        kept.append(task)
    return kept


def _given(action: Any, given: dict[str, Any]) -> Any:
    """A Python action `(callable, args[, kwargs])` with `given` added to its keyword arguments."""
    function, args, *rest = action
    kwargs = dict(rest[0]) if rest else {}
    return (function, args, {**kwargs, **given})


def mismatches(answers: Answers, steps: dict[tuple[str, str, str], dict[str, tuple[Any, str]]]) -> list[str]:
    """`verify`: the answered components doit did not find up to date with the answered values."""
    wrong = []
    for (deployment, target), found in answers.items():
        for component, answered in found.items():
            seen = steps.get((deployment, target, component), {})
            for kind, step in answered.items():
                task, how = seen.get(kind, (None, "absent"))
                if how != "uptodate" or (getattr(task, "values", None) or {}) != step.values:
                    wrong.append(f"{deployment}/{target} {component} {kind}: {how}")
    return wrong
