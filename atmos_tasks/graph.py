"""The task graph (SPEC §6): target plans in, doit task dictionaries out. Pure data.

plan:<dep>:<target>:<c>   up to date while module, vars, backend and dependency outputs hold
apply:<dep>:<target>:<c>  up to date while its plan is the one last applied successfully
record:<dep>:<target>     always runs: moves refs and writes tags
rollout:<dep>:<target>    the group a user asks for
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doit.tools import config_changed

from atmos_tasks.actions import apply_component, plan_component
from atmos_tasks.engine import TargetPlan
from atmos_tasks.executors.terraform import PLAN_FILE
from atmos_tasks.invocation import ROLLOUT_PARAMS
from atmos_tasks.manifest import ComponentRef
from atmos_tasks.record import RecordSpec, record_rollout

TaskDict = dict[str, Any]


class LastStatus:
    """Up to date only if the task's last saved status is one of `ok` (a failure always re-runs)."""

    def __init__(self, *ok: str) -> None:
        self.ok = ok

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        return values.get("status") in self.ok

    def __repr__(self) -> str:
        return f"LastStatus{self.ok}"


def task_id(kind: str, deployment: str, target: str, component: str | None = None) -> str:
    base = f"{kind}:{deployment}:{target}"
    return f"{base}:{component}" if component is not None else base


def _sub(kind: str, deployment: str, target: str, component: str | None = None) -> str:
    """The subtask name: what follows `<kind>:` in the task id."""
    return task_id(kind, deployment, target, component).split(":", 1)[1]


def target_tasks(plan: TargetPlan) -> Iterator[TaskDict]:
    dep, target = plan.deployment, plan.target
    applies: list[str] = []
    record_args: dict[str, tuple[str, None]] = {}
    for index, ref in enumerate(plan.order):
        job = plan.jobs[ref]
        deps: list[ComponentRef] = [d for d in plan.resolved.components[ref].depends_on if d in plan.jobs]
        upstream = {f"up_{i}": d.name for i, d in enumerate(deps)}
        plan_id = task_id("plan", dep, target, ref.name)
        apply_id = task_id("apply", dep, target, ref.name)
        yield {
            "basename": "plan",
            "name": _sub("plan", dep, target, ref.name),
            "doc": f"terraform plan of {ref} for {dep}/{target}",
            "actions": [(plan_component, [job, upstream])],
            "getargs": {
                key: (task_id("apply", dep, target, d.name), None)
                for key, d in zip(upstream, deps, strict=True)
            },
            "task_dep": [task_id("apply", dep, target, d.name) for d in deps],
            "uptodate": [config_changed(job.static_key), LastStatus("planned")],
            "targets": [str(Path(job.workdir) / PLAN_FILE)],
            "verbosity": 0,
            "meta": {"atmos": {"kind": "plan", "deployment": dep, "target": target, "component": str(ref)}},
        }
        yield {
            "basename": "apply",
            "name": _sub("apply", dep, target, ref.name),
            "doc": f"terraform apply of {ref} for {dep}/{target}",
            "actions": [(apply_component, [job])],
            "getargs": {"plan": (plan_id, None)},
            "task_dep": [plan_id],
            "uptodate": [LastStatus("applied")],
            "params": ROLLOUT_PARAMS,
            "verbosity": 0,
            "meta": {"atmos": {"kind": "apply", "deployment": dep, "target": target, "component": str(ref)}},
        }
        applies.append(apply_id)
        record_args[f"plan_{index}"] = (plan_id, None)
        record_args[f"apply_{index}"] = (apply_id, None)
    source = plan.source
    approvers = source.approvers if source else []
    spec = RecordSpec(
        root=str(plan.root),
        deployment=dep,
        target=target,
        git_sha=plan.git.sha,
        components=tuple((ref.type, ref.name) for ref in plan.order),
        allow_dirty=plan.options.allow_dirty,
        dirty=bool(plan.dirty),
        promoted_from=source.promoted_from if source else None,
        rollback=bool(source and source.rollback),
        metadata={"approver": ", ".join(approvers)} if approvers else {},
        remote=plan.remote,
    )
    yield {
        "basename": "record",
        "name": _sub("record", dep, target),
        "doc": f"record the rollout of {dep} to {target} in Git",
        "actions": [(record_rollout, [spec])],
        "getargs": record_args,
        "task_dep": applies,
        "uptodate": [False],
        "verbosity": 0,
        "meta": {"atmos": {"kind": "record", "deployment": dep, "target": target}},
    }
    yield {
        "basename": "rollout",
        "name": _sub("rollout", dep, target),
        "doc": f"roll out {dep} to {target}: plan and apply every component, then record",
        "actions": None,
        "task_dep": [task_id("record", dep, target)],
        "params": ROLLOUT_PARAMS,
        "meta": {
            "atmos": {
                "kind": "rollout",
                "deployment": dep,
                "target": target,
                "git_sha": plan.git.sha,
                "branch": plan.git.branch,
                "components": [str(ref) for ref in plan.order],
                "dirty": bool(plan.dirty),
                "promoted_from": source.promoted_from if source else None,
                "rollback": bool(source and source.rollback),
            }
        },
    }


def build_tasks(plans: list[TargetPlan]) -> Iterator[TaskDict]:
    for plan in plans:
        yield from target_tasks(plan)
