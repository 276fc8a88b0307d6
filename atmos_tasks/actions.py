"""The work behind each doit task: small functions from resolved inputs to saved values.

A component's failure is a value (`status: failed`), not a doit failure: independent components
go on, dependants see it through `getargs` and skip, and the `record` finalizer still runs and
tags the failure. The finalizer then fails the run (exit 1) when any component failed.

`upstream` maps each `getargs` key to what it carries: ("outputs", component) for a dependency's
apply, ("image", component) for an image component's build (or tests), ("vendor", component)
for its module's vendoring, and in a preview ("planned", component) for a dependency's plan.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from atmos_tasks import cancel, kinds, secrets
from atmos_tasks.kinds import Job
from atmos_tasks.preview import never_applied_reason

READY = {"outputs": "applied", "image": "built", "vendor": "vendored"}


def _upstream(
    upstream: dict[str, tuple[str, str]], values: dict[str, Any]
) -> tuple[list[str], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    blocked, outputs, images = [], {}, {}
    for key, (kind, name) in upstream.items():
        result = values.get(key) or {}
        if result.get("status") != READY[kind]:
            blocked.append(f"vendoring of {name}" if kind == "vendor" else name)
        elif kind == "outputs":
            outputs[name] = result.get("outputs", {})
            secrets.add_outputs(outputs[name], result.get("sensitive"))
        elif kind == "image":
            images[name] = result
    return sorted(blocked), outputs, images


def _failure(err: Exception, workdir: str | None = None) -> dict[str, Any]:
    """A bug or an environment problem: still a value, never a traceback."""
    found: dict[str, Any] = {"status": "failed", "error": secrets.mask(f"{type(err).__name__}: {err}")}
    if workdir:
        found["workdir"] = workdir
    return found


def _vendored(
    job: Job, upstream: dict[str, tuple[str, str]], values: dict[str, Any]
) -> tuple[Job, dict[str, Any] | None]:
    """The job with the vendored object as its module identity, or the failure of its vendoring."""
    vendored = next((values[k] for k, (kind, _n) in upstream.items() if kind == "vendor"), None)
    if vendored is None:
        return job, None
    if vendored.get("status") == "failed":
        # The component's own module could not be vendored: that is this component failing.
        return job, {
            "status": "failed",
            "error": f"vendoring failed: {vendored.get('error', '')}",
            "after": "vendor",
        }
    # The object the vendor task materialised is the module's identity from here on.
    return dataclasses.replace(job, module_digest=vendored["digest"]), None


def _recorded(job: Job) -> dict[str, Any]:
    return {"inputs_hash": (job.current or {}).get("inputs_hash", "")}


def plan_component(job: Job, upstream: dict[str, tuple[str, str]], **values: Any) -> dict[str, Any]:
    """Plan one component once its dependencies are applied and its images built."""
    job, failed = _vendored(job, upstream, values)
    if failed is not None:
        return failed
    if cancel.requested():
        return {"status": "skipped", "reason": cancel.reason()}
    if job.current is not None:
        # Another run deployed this very commit (maybe while this one waited for its lock): nothing
        # to plan; what that apply output is taken from the remote cache when it holds it.
        current = {"status": "planned", "has_changes": False, "current": job.current, **_recorded(job)}
        try:
            taken = _recorded_apply(job) or {}
        except Exception as err:  # never a failed component for the cache's sake: the state is read
            taken = {
                "repaired": secrets.mask(f"the remote cache could not be read ({type(err).__name__}: {err})")
            }
        return {**current, **taken}
    blocked, outputs, images = _upstream(upstream, values)
    if blocked:
        return {"status": "skipped", "reason": f"dependency {', '.join(blocked)} did not complete"}
    try:
        planned = kinds.get(job.kind).plan(job, outputs, images)
    except Exception as err:
        return _failure(err, job.workdir)
    if planned.get("status") == "planned":
        # When it was made (to the second, as records are stamped): a plan with changes made after
        # the target's latest record, at the same commit and inputs, is applied and recorded again
        # (`record.decide`: a drifted resource put back). In the plan's values, not the apply's:
        # dependants read the apply's, and a time there would plan them again on every apply.
        from datetime import UTC, datetime

        planned["planned_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return planned


def _recorded_apply(job: Job) -> dict[str, Any] | None:
    current = job.current or {}
    if job.cache is None or not current.get("at") or not current.get("inputs_hash"):
        return None
    from atmos_tasks import remotecache

    key = remotecache.apply_key(
        job.deployment,
        job.target,
        job.component,
        current.get("git_sha", ""),
        current["inputs_hash"],
        current["at"],
    )
    return remotecache.recorded_apply(job.cache, key)


def preview_component(
    job: Job,
    upstream: dict[str, tuple[str, str]],
    dependencies: dict[str, Job],
    images: dict[str, dict[str, Any]],
    **values: Any,
) -> dict[str, Any]:
    """Plan one component against what is deployed now: applies nothing (a preview).

    `upstream` holds ("planned", dependency) for each dependency's preview plan (run first, for
    its workdir), `dependencies` their jobs, `images` the image chosen for each image dependency.
    """
    job, failed = _vendored(job, upstream, values)
    if failed is not None:
        return failed
    unplanned = sorted(
        name
        for key, (kind, name) in upstream.items()
        if kind == "planned" and (values.get(key) or {}).get("status") == "failed"
    )
    if unplanned:
        return {"status": "skipped", "reason": f"dependency {', '.join(unplanned)} could not be planned"}
    outputs: dict[str, dict[str, Any]] = {}
    never_applied: list[str] = []
    for name, dependency in dependencies.items():
        try:
            found = kinds.get(dependency.kind).deployed_outputs(dependency)
        except Exception as err:
            failure = _failure(err, job.workdir)
            failure["error"] = f"reading what {name} has deployed: {failure['error']}"
            return failure
        if found is None:
            never_applied.append(name)
        else:
            outputs[name] = found
    reason = never_applied_reason(
        never_applied, [str(i["reason"]) for i in images.values() if i.get("status") != "built"]
    )
    if reason:
        return {"status": "skipped", "reason": reason}
    try:
        planned = kinds.get(job.kind).plan(job, outputs, images)
    except Exception as err:
        return _failure(err, job.workdir)
    if images and planned.get("status") == "planned":
        planned["image_from"] = {name: str(image["from"]) for name, image in images.items()}
    return planned


def apply_component(job: Job, plan: dict[str, Any], **_params: Any) -> dict[str, Any]:
    status = plan.get("status")
    if status == "planned" and cancel.requested():
        return {"status": "skipped", "reason": cancel.reason()}
    if status == "skipped":
        return {"status": "skipped", "reason": plan.get("reason", "")}
    if status != "planned":
        error = plan.get("error", "plan failed")
        return {"status": "failed", "error": error, "workdir": plan.get("workdir"), "after": "plan"}
    try:
        if plan.get("current"):
            # Nothing to apply: what the component outputs is what its state holds (or what the
            # recorded apply output, as the remote cache kept it).
            if isinstance(plan.get("outputs"), dict):
                outputs, cached = plan["outputs"], {"cache": {"apply": "reused"}}
            else:
                outputs, cached = kinds.get(job.kind).deployed_outputs(job) or {}, {}
            return {
                "status": "applied",
                "outputs": outputs,
                "current": plan["current"],
                **_recorded(job),
                **cached,
            }
        return kinds.get(job.kind).apply(job, plan)
    except Exception as err:
        return _failure(err, job.workdir)


def build_component(
    kind: str, job: Any, upstream: dict[str, tuple[str, str]], **values: Any
) -> dict[str, Any]:
    """Build (or reuse) one image once the components it depends on are applied."""
    if cancel.requested():
        return {"status": "skipped", "reason": cancel.reason()}
    blocked, outputs, _images = _upstream(upstream, values)
    if blocked:
        return {"status": "skipped", "reason": f"dependency {', '.join(blocked)} did not complete"}
    try:
        return kinds.get(kind).build(job, outputs)
    except Exception as err:
        return _failure(err)


def reuse_component(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    return kinds.get(kind).reuse(record)


def test_component(kind: str, job: Any, command: list[str], build: dict[str, Any]) -> dict[str, Any]:
    try:
        return kinds.get(kind).test(job, command, build)
    except Exception as err:
        return {**build, **_failure(err)}
