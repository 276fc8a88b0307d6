"""The work behind each doit task: small functions from resolved inputs to saved values.

A component's failure is a value (`status: failed`), not a doit failure: independent components
go on, dependants see it through `getargs` and skip, and the `record` finalizer still runs and
tags the failure. The finalizer then fails the run (exit 1) when any component failed.
"""

from __future__ import annotations

from typing import Any

from atmos_tasks.executors import Job, executor_for


def plan_component(job: Job, upstream: dict[str, str], **values: Any) -> dict[str, Any]:
    """Plan one component; `values` holds each dependency's apply result, keyed as in `upstream`."""
    blocked = sorted(
        upstream[key]
        for key, result in values.items()
        if key in upstream and (result or {}).get("status") != "applied"
    )
    if blocked:
        return {"status": "skipped", "reason": f"dependency {', '.join(blocked)} did not apply"}
    outputs = {
        upstream[key]: (result or {}).get("outputs", {}) for key, result in values.items() if key in upstream
    }
    try:
        return executor_for(job.kind).plan(job, outputs)
    except Exception as err:  # a bug or an environment problem: still a value, never a traceback
        return {"status": "failed", "error": f"{type(err).__name__}: {err}", "workdir": job.workdir}


def apply_component(job: Job, plan: dict[str, Any], **_params: Any) -> dict[str, Any]:
    status = plan.get("status")
    if status == "skipped":
        return {"status": "skipped", "reason": plan.get("reason", "")}
    if status != "planned":
        return {"status": "failed", "error": plan.get("error", "plan failed"), "workdir": plan.get("workdir")}
    try:
        return executor_for(job.kind).apply(job, plan)
    except Exception as err:
        return {"status": "failed", "error": f"{type(err).__name__}: {err}", "workdir": job.workdir}
