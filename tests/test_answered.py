"""Components answered as up to date before doit runs (`answered.py`): doit's own answer is the
reference. Rows are written by doit's `Dependency` into a real SQLite database and the same
tasks are checked by doit's `get_status`; an answer doit would not give is a failure."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import pytest
from doit.dependency import Dependency, SqliteDB
from doit.loader import generate_tasks
from hypothesis import event, given, settings
from hypothesis import strategies as st

from atmos_tasks import answered
from atmos_tasks.answered import Step
from atmos_tasks.uptodate import LastStatus, Settled

KEY, INPUTS = "static-key", "inputs-hash"
UP_RESULT = {"status": "applied", "outputs": {"label": "u"}}
PLAN_RESULT = {"status": "planned", "inputs_hash": INPUTS}


def meta(kind: str, component: str) -> dict[str, Any]:
    return {
        "atmos": {"kind": kind, "deployment": "app", "target": "dev", "component": f"terraform/{component}"}
    }


def noop(**_values: Any) -> None:
    return None


def pair(component: str, plan_file: str, upstream: list[str]) -> list[dict[str, Any]]:
    """A component's plan and apply, as `graph.target_tasks` makes them."""
    plan_id = f"plan:app:dev:{component}"
    getargs = {f"up_{i}": (f"apply:app:dev:{name}", None) for i, name in enumerate(upstream)}
    return [
        {
            "basename": "plan",
            "name": f"app:dev:{component}",
            "actions": [(noop, [])],
            "getargs": getargs,
            "task_dep": [source for source, _ in getargs.values()],
            "uptodate": [Settled(KEY, ("planned",), INPUTS)],
            "targets": [plan_file],
            "meta": meta("plan", component),
        },
        {
            "basename": "apply",
            "name": f"app:dev:{component}",
            "actions": [(noop, [])],
            "getargs": {"plan": (plan_id, None)},
            "task_dep": [plan_id],
            "uptodate": [LastStatus("applied")],
            "meta": meta("apply", component),
        },
    ]


def record(components: list[str]) -> dict[str, Any]:
    getargs = {}
    for i, name in enumerate(components):
        getargs[f"plan_{i}"] = (f"plan:app:dev:{name}", None)
        getargs[f"apply_{i}"] = (f"apply:app:dev:{name}", None)
    sources = sorted({source for source, _ in getargs.values()})
    return {
        "basename": "record",
        "name": "app:dev",
        "actions": [(noop, [])],
        "getargs": getargs,
        "task_dep": [s for s in sources if s.startswith("apply:")],
        "setup": sources,
        "uptodate": [False],
        "meta": {"atmos": {"kind": "record", "deployment": "app", "target": "dev"}},
    }


def doit_tasks(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """doit's Task objects of these dictionaries (doit consumes what it is given: copies)."""
    return {task.name: task for task in generate_tasks("atmos", (dict(d) for d in dicts))}


def save(database: Path, rows: dict[str, dict[str, Any]]) -> None:
    dep = Dependency(SqliteDB, str(database))
    for task_id, row in rows.items():
        for name, value in row.items():
            dep._set(task_id, name, value)
    dep.close()


def plan_row(
    key: str = KEY, status: str = "planned", inputs: str = INPUTS, up: Any = UP_RESULT
) -> dict[str, Any]:
    values = {"_config_changed": key, "status": status, "inputs_hash": inputs, "_result:apply:app:dev:u": up}
    return {"_values_:": values, "result:": PLAN_RESULT, "checker:": "MD5Checker", "deps:": []}


def apply_row(status: str = "applied", plan: Any = PLAN_RESULT, component: str = "c") -> dict[str, Any]:
    values = {"status": status, "outputs": {}, f"_result:plan:app:dev:{component}": plan}
    return {"_values_:": values, "result:": {"status": status}, "checker:": "MD5Checker", "deps:": []}


def up_rows() -> dict[str, dict[str, Any]]:
    """Component `u`, up to date: `c` reads its outputs."""
    plan = plan_row()
    del plan["_values_:"]["_result:apply:app:dev:u"]
    return {
        "plan:app:dev:u": plan,
        "apply:app:dev:u": {**apply_row(component="u"), "result:": UP_RESULT},
    }


MISSING = object()


def mostly(good: Any, *bad: Any) -> st.SearchStrategy[Any]:
    """The value a rollout leaves, most of the time: so that both answers are drawn often."""
    return st.sampled_from([good] * (2 * len(bad)) + list(bad))


@settings(deadline=None)
@given(
    key=mostly(KEY, "another-key", MISSING),
    plan_status=mostly("planned", "failed", MISSING),
    inputs=mostly(INPUTS, "other-inputs", MISSING),
    up=mostly(UP_RESULT, {"status": "applied", "outputs": {"label": "v"}}, MISSING),
    apply_status=mostly("applied", "failed", MISSING),
    planned=mostly(PLAN_RESULT, {"status": "planned", "inputs_hash": "older"}, MISSING),
    plan_file=mostly(True, False),
    oddity=mostly("", "ignore", "checker", "deps", "no row"),
    odd_task=st.sampled_from(["plan", "apply"]),
)
def test_an_answer_is_the_one_doit_gives(
    key: Any,
    plan_status: Any,
    inputs: Any,
    up: Any,
    apply_status: Any,
    planned: Any,
    plan_file: bool,
    oddity: str,
    odd_task: str,
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        target = root / "c.tfplan"
        if plan_file:
            target.write_text("plan")
        dicts = [*pair("u", str(root / "u.tfplan"), []), *pair("c", str(target), ["u"]), record(["u", "c"])]
        (root / "u.tfplan").write_text("plan")
        rows = up_rows()
        plan = plan_row(key, plan_status, inputs, up)
        for name, value in (("_config_changed", key), ("status", plan_status), ("inputs_hash", inputs)):
            if value is MISSING:
                del plan["_values_:"][name]
        if up is MISSING:
            del plan["_values_:"]["_result:apply:app:dev:u"]
        apply = apply_row(apply_status, planned)
        if apply_status is MISSING:
            del apply["_values_:"]["status"]
            apply["result:"] = {}
        if planned is MISSING:
            del apply["_values_:"]["_result:plan:app:dev:c"]
        rows["plan:app:dev:c"], rows["apply:app:dev:c"] = plan, apply
        odd = f"{odd_task}:app:dev:c"
        if oddity == "ignore":
            rows[odd]["ignore:"] = "1"
        elif oddity == "checker":
            rows[odd]["checker:"] = "TimestampChecker"
        elif oddity == "deps":
            rows[odd]["deps:"] = [str(root / "c.tf")]
        elif oddity == "no row":
            del rows[odd]
        database = root / "doit.sqlite"
        save(database, rows)

        saved = answered.saved_rows(database, [f"{k}:app:dev:{c}" for c in "uc" for k in ("plan", "apply")])
        ours = {d["basename"]: answered.up_to_date(d, saved) for d in dicts[2:4]}

        tasks = doit_tasks(dicts)
        dep = Dependency(SqliteDB, str(database))
        theirs = {}
        for kind in ("plan", "apply"):
            task = tasks[f"{kind}:app:dev:c"]
            status = dep.get_status(task, tasks).status
            theirs[kind] = status == "up-to-date" and not dep.status_is_ignore(task)
        dep.close()

        event(f"component answered {ours['plan'] and ours['apply']}")
        if ours["plan"] and ours["apply"]:
            assert theirs == ours, rows  # never answered when doit would run either task
        if not oddity:
            # For the rows rollouts leave, task by task as doit answers. (A row of another
            # checker makes doit drop it, which changes its answer for the apply after.)
            assert theirs == ours, rows


SMALL: list[tuple[str, list[str]]] = [("a", []), ("b", ["a"]), ("c", [])]


def graph(root: Path, components: list[tuple[str, list[str]]] = SMALL) -> list[dict[str, Any]]:
    """Each component (name, what it reads the outputs of) with its plan file, and the record:
    by default a ← b (b reads a's outputs) and c alone."""
    dicts: list[dict[str, Any]] = []
    for name, upstream in components:
        (root / f"{name}.tfplan").write_text("plan")
        dicts += pair(name, str(root / f"{name}.tfplan"), upstream)
    return [*dicts, record([name for name, _ in components])]


def rows_for(changed: set[str], components: list[tuple[str, list[str]]] = SMALL) -> dict[str, dict[str, Any]]:
    """The rows a rollout leaves; the components in `changed` have a new static key since."""
    rows: dict[str, dict[str, Any]] = {}
    for name, upstream in components:
        plan = plan_row(key="old-key" if name in changed else KEY)
        del plan["_values_:"]["_result:apply:app:dev:u"]
        for source in upstream:
            plan["_values_:"][f"_result:apply:app:dev:{source}"] = {"status": "applied", "outputs": {}}
        rows[f"plan:app:dev:{name}"] = plan
        rows[f"apply:app:dev:{name}"] = {
            **apply_row(component=name),
            "result:": {"status": "applied", "outputs": {}},
        }
    return rows


def answered_for(tmp_path: Path, changed: set[str]) -> set[str]:
    tasks = graph(tmp_path)
    save(tmp_path / ".atmos" / "doit.sqlite", rows_for(changed))
    return {c.split("/")[1] for c in answered.answer(tmp_path, tasks).get(("app", "dev"), {})}


def test_a_component_whose_dependency_runs_is_left_to_doit(tmp_path: Path) -> None:
    (tmp_path / ".atmos").mkdir()
    assert answered_for(tmp_path, {"a"}) == {"c"}


def test_a_dependency_of_a_component_that_runs_stays_in_the_graph(tmp_path: Path) -> None:
    (tmp_path / ".atmos").mkdir()
    assert answered_for(tmp_path, {"b"}) == {"c"}


def test_nothing_changed_answers_every_component(tmp_path: Path) -> None:
    (tmp_path / ".atmos").mkdir()
    assert answered_for(tmp_path, set()) == {"a", "b", "c"}


def test_no_database_answers_nothing(tmp_path: Path) -> None:
    assert answered.answer(tmp_path, graph(tmp_path)) == {}


def test_the_record_is_given_the_saved_values_of_answered_components(tmp_path: Path) -> None:
    (tmp_path / ".atmos").mkdir()
    tasks = graph(tmp_path)
    save(tmp_path / ".atmos" / "doit.sqlite", rows_for({"c"}))
    answers = answered.answer(tmp_path, tasks)
    kept = answered.without(tasks, answers)
    names = {f"{t['basename']}:{t['name']}" for t in kept}
    assert names == {"plan:app:dev:c", "apply:app:dev:c", "record:app:dev"}
    (rec,) = [t for t in kept if t["basename"] == "record"]
    assert set(rec["getargs"]) == {"plan_2", "apply_2"}
    assert rec["task_dep"] == ["apply:app:dev:c"] and rec["setup"] == ["apply:app:dev:c", "plan:app:dev:c"]
    _function, _args, given_values = rec["actions"][0]
    assert given_values["apply_0"]["status"] == "applied"
    assert given_values["plan_1"]["_result:apply:app:dev:a"] == {"status": "applied", "outputs": {}}
    # doit accepts the graph: every task it names is there.
    doit_tasks(kept)
    # The graph given was not changed.
    assert len(tasks[-1]["getargs"]) == 6


def test_verify_names_what_doit_did_not_find_up_to_date() -> None:

    plan, apply = (
        Step("plan:app:dev:c", {"status": "planned"}),
        Step("apply:app:dev:c", {"status": "applied"}),
    )
    answers = {("app", "dev"): {"terraform/c": {"plan": plan, "apply": apply}}}
    agreeing = {
        ("app", "dev", "terraform/c"): {
            "plan": (Step("p", {"status": "planned"}), "uptodate"),
            "apply": (Step("a", {"status": "applied"}), "uptodate"),
        }
    }
    assert answered.mismatches(answers, agreeing) == []
    ran = {
        ("app", "dev", "terraform/c"): {
            "plan": (Step("p", {"status": "planned"}), "uptodate"),
            "apply": (Step("a", {"status": "applied"}), "ran"),
        }
    }
    assert answered.mismatches(answers, ran) == ["app/dev terraform/c apply: ran"]
    assert answered.mismatches(answers, {}) == [
        "app/dev terraform/c plan: absent",
        "app/dev terraform/c apply: absent",
    ]


def test_the_reporter_shows_answered_components_and_masks_what_they_carry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atmos_tasks import doit_loader, secrets
    from atmos_tasks.graphcache import Outcome
    from atmos_tasks.reporter import RolloutReporter
    from tests.test_reporter_plans import FakeTask

    monkeypatch.setattr(secrets, "RUN", secrets.Secrets())
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    plan = Step("plan:app:dev:terraform/a", {"status": "planned", "image": "registry/a@sha256:1"})
    apply = Step("apply:app:dev:terraform/a", {"status": "applied", "secrets": ["hunter2-token"]})
    answers = {("app", "dev"): {"terraform/a": {"plan": plan, "apply": apply}}}
    monkeypatch.setattr(doit_loader, "GRAPH", Outcome(answers=answers))
    components = ["terraform/a", "terraform/b"]
    meta = {
        "kind": "rollout",
        "deployment": "app",
        "target": "dev",
        "git_sha": "a" * 40,
        "components": components,
    }
    out = io.StringIO()
    found = RolloutReporter(out, {})
    found.initialize(
        {"rollout:app:dev": FakeTask("rollout:app:dev", meta={"atmos": meta})}, ["rollout:app:dev"]
    )
    assert "– 1 component up to date: a (modules, plans and applies as they last ran" in out.getvalue()
    found.complete_run()
    assert secrets.mask("the token is hunter2-token") == f"the token is {secrets.MASK}"
    rows = summary.read_text()
    assert "| `a` | up to date | `registry/a@sha256:1` |" in rows
    assert "| `b` | not run |" in rows


def verifying_reporter(monkeypatch: pytest.MonkeyPatch, target: str) -> tuple[Any, io.StringIO]:
    """A reporter of a `verify` run in which component `a` of `app/<target>` was answered."""
    from atmos_tasks import doit_loader
    from atmos_tasks.graphcache import Outcome
    from atmos_tasks.reporter import RolloutReporter

    plan = Step(f"plan:app:{target}:terraform/a", {"status": "planned"})
    apply = Step(f"apply:app:{target}:terraform/a", {"status": "applied"})
    answers = {("app", target): {"terraform/a": {"plan": plan, "apply": apply}}}
    monkeypatch.setattr(doit_loader, "GRAPH", Outcome(answers=answers, verify_answers=True))
    out = io.StringIO()
    found = RolloutReporter(out, {})
    found.initialize({}, [])
    return found, out


def test_in_verify_mode_the_reporter_fails_a_run_doit_did_not_confirm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found, out = verifying_reporter(monkeypatch, "dev")
    with pytest.raises(SystemExit) as exited:
        found.complete_run()
    assert exited.value.code == 1
    assert "were not found so by doit (answered.py): app/dev terraform/a plan: absent" in out.getvalue()


@pytest.mark.parametrize("changed", [0, 20, 39])
def test_a_chain_with_a_changed_link_is_left_to_doit_whole(tmp_path: Path, changed: int) -> None:
    """Forty components in a chain and one on its own: whichever link changed, doit checks the
    whole chain (the links after it read what it applies, those before it are read by it)."""
    (tmp_path / ".atmos").mkdir()
    names = [f"k{i:02d}" for i in range(40)]
    components = [(name, names[i - 1 : i] if i else []) for i, name in enumerate(names)] + [("alone", [])]
    tasks = graph(tmp_path, components)
    save(tmp_path / ".atmos" / "doit.sqlite", rows_for({names[changed]}, components))
    assert set(answered.answer(tmp_path, tasks)[("app", "dev")]) == {"terraform/alone"}


def test_verify_leaves_out_what_doit_never_reached_after_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed record stops doit (no `--continue`): another target's answered components are
    never reached, which is no disagreement."""
    from types import SimpleNamespace

    from tests.test_reporter_plans import FakeTask

    found, out = verifying_reporter(monkeypatch, "prod")
    summary = {"deployment": "app", "target": "dev", "git_sha": "a" * 40, "failed": {"b": "boom"}}
    found.add_failure(FakeTask("record:app:dev"), SimpleNamespace(summary=summary, message="failed"))
    found.complete_run()
    assert "not found so by doit" not in out.getvalue()


def test_a_vendor_tasks_checks_are_answered_as_doit_calls_them(tmp_path: Path) -> None:
    """A vendor task's checks: doit's `config_changed` on the saved key, the workspace intact on
    disk; a clock (`timeout`) or anything else is left to doit."""
    from datetime import timedelta

    from doit.tools import config_changed, timeout

    from atmos_tasks.vendoring import WorkspaceIntact

    key = config_changed("vendor-key")
    assert answered._holds(key, {"_config_changed": "vendor-key"})
    assert not answered._holds(key, {"_config_changed": "other-key"})
    assert not answered._holds(key, {})
    assert answered._holds(True, {}) and not answered._holds(False, {})
    assert not answered._holds(timeout(timedelta(days=1)), {"success-time": 4102444800.0})
    # Not vendored as saved: doit would vendor again.
    assert not answered._holds(WorkspaceIntact(str(tmp_path)), {"status": "failed"})
    assert not answered._holds(lambda task, values: True, {})


def test_workspace_checks_share_one_stat_cache_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 vendored components are 300 workspace checks: the stat cache is loaded once."""
    from atmos_tasks import hashing, vendoring
    from vendor_cache.digest import tree_digest

    made: list[Path] = []

    class Counted(hashing.StatCache):
        def __init__(self, path: Path) -> None:
            made.append(path)
            super().__init__(path)

    monkeypatch.setattr(hashing, "StatCache", Counted)
    monkeypatch.setattr(vendoring, "_STAT_CACHES", {})
    workspaces = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "main.tf").write_text(f"# {name}\n")
        workspaces.append(
            {"status": "vendored", "path": str(tmp_path / name), "digest": tree_digest(tmp_path / name)}
        )
    check = vendoring.WorkspaceIntact(str(tmp_path))
    assert all(check(None, values) for values in workspaces)
    assert not check(None, {**workspaces[0], "digest": workspaces[1]["digest"]})
    assert len(made) == 1


def test_what_workspace_checks_hashed_is_kept_when_the_process_ends(tmp_path: Path) -> None:
    """A workspace is vendored moments before its first check, too new for the stat cache then:
    the digests a later check takes are kept when that process ends, so the runs after it stat
    the workspace's files instead of reading them again."""
    import json
    import os
    import subprocess
    import sys
    import time

    from vendor_cache.digest import tree_digest

    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "main.tf").write_text("# vendored\n")
    an_hour_ago = time.time() - 3600
    os.utime(workspace / "main.tf", (an_hour_ago, an_hour_ago))
    values = {"status": "vendored", "path": str(workspace), "digest": tree_digest(workspace)}
    code = (
        "import sys, json\n"
        "from atmos_tasks.vendoring import WorkspaceIntact\n"
        "assert WorkspaceIntact(sys.argv[1])(None, json.loads(sys.argv[2]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), json.dumps(values)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    kept = json.loads((tmp_path / ".atmos" / "cache" / "stat-cache.json").read_text())
    assert str(workspace / "main.tf") in kept


def test_answering_loads_no_vendoring_code_for_a_graph_without_it() -> None:
    """`vendoring` costs 50 ms to import: a cached graph without vendored modules never loads it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from atmos_tasks import answered\n"
        "from atmos_tasks.uptodate import Settled\n"
        "assert answered._holds(Settled('k', ('planned',)), {'_config_changed': 'k', 'status': 'planned'})\n"
        "assert not answered._holds(object(), {})\n"
        "print('atmos_tasks.vendoring' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
