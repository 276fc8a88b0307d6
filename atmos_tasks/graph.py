"""The task graph (SPEC §6): target plans in, doit task dictionaries out. Pure data.

plan:<dep>:<target>:<c>   up to date while module, vars, backend and dependency outputs hold
plan:<dep>:<target>       a preview: plans against what is deployed, applies nothing
apply:<dep>:<target>:<c>  up to date while its plan is the one last applied successfully
record:<dep>:<target>     always runs: moves refs and writes tags
rollout:<dep>:<target>    the group a user asks for
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from doit.tools import config_changed, timeout

from atmos_tasks import kinds, remotecache
from atmos_tasks.actions import (
    apply_component,
    build_component,
    plan_component,
    preview_component,
    reuse_component,
    test_component,
)
from atmos_tasks.hashing import hash_json
from atmos_tasks.invocation import BUILD_GROUP_PARAMS, BUILD_PARAMS, PLAN_GROUP_PARAMS, ROLLOUT_PARAMS
from atmos_tasks.kinds import Job
from atmos_tasks.manifest import ComponentRef
from atmos_tasks.record import RecordSpec, record_rollout
from atmos_tasks.secrets import marked
from atmos_tasks.uptodate import LastStatus, PlanApplied, Settled
from atmos_tasks.vendoring import WorkspaceIntact, vendor_component, verify_requested

if TYPE_CHECKING:
    from atmos_tasks.engine import TargetPlan

TaskDict = dict[str, Any]


def task_id(kind: str, deployment: str, target: str, component: str | None = None) -> str:
    base = f"{kind}:{deployment}:{target}"
    return f"{base}:{component}" if component is not None else base


def _sub(kind: str, deployment: str, target: str, component: str | None = None) -> str:
    """The subtask name: what follows `<kind>:` in the task id."""
    return task_id(kind, deployment, target, component).split(":", 1)[1]


def _meta(kind: str, dep: str, target: str, ref: ComponentRef) -> dict[str, Any]:
    return {"atmos": {"kind": kind, "deployment": dep, "target": target, "component": str(ref)}}


def _upstream(
    plan: TargetPlan, ref: ComponentRef, produces: dict[ComponentRef, str]
) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, None]], list[str]]:
    """getargs keys for a component's dependencies: applies (outputs) and builds (images)."""
    upstream: dict[str, tuple[str, str]] = {}
    getargs: dict[str, tuple[str, None]] = {}
    for index, dep in enumerate(d for d in plan.resolved.components[ref].depends_on if d in produces):
        image = kinds.of(dep).role == "image"
        key = f"{'img' if image else 'up'}_{index}"
        upstream[key] = ("image" if image else "outputs", dep.name)
        getargs[key] = (produces[dep], None)
    return upstream, getargs, [task for task, _ in getargs.values()]


def _job(plan: TargetPlan, ref: ComponentRef) -> Job:
    """A deploying component's job, with the variables its `settings.sensitive` marks."""
    job = plan.jobs[ref]
    names = marked(plan.resolved.components[ref].settings)
    return dataclasses.replace(job, sensitive=names) if names else job


def build_tasks_of(
    plan: TargetPlan, ref: ComponentRef, produces: dict[ComponentRef, str]
) -> Iterator[TaskDict]:
    """build: (or, for a promotion, the recorded image) and the optional test: of one image."""
    dep, target = plan.deployment, plan.target
    build_id = task_id("build", dep, target, ref.name)
    recorded = plan.recorded_builds.get(ref)
    job = plan.builds[ref]
    if recorded is not None:
        yield {
            "basename": "build",
            "name": _sub("build", dep, target, ref.name),
            "doc": f"reuse the recorded image of {ref}",
            "actions": [(reuse_component, [ref.type, recorded])],
            "uptodate": [Settled(str(recorded.get("digest")), ("built",))],
            "verbosity": 0,
            "meta": _meta("reuse", dep, target, ref),
        }
    else:
        upstream, getargs, after = _upstream(plan, ref, produces)
        yield {
            "basename": "build",
            "name": _sub("build", dep, target, ref.name),
            "doc": f"build the {ref} image for {dep}/{target}",
            "actions": [(build_component, [ref.type, job, upstream])],
            "getargs": getargs,
            "task_dep": after,
            "uptodate": [Settled(job.key, ("built",))],
            "params": BUILD_PARAMS,
            "verbosity": 0,
            "meta": _meta("build", dep, target, ref),
        }
    argv = kinds.of(ref).test_command(job)
    if argv and recorded is None:
        yield {
            "basename": "test",
            "name": _sub("test", dep, target, ref.name),
            "doc": f"run the tests of {ref} inside its image",
            "actions": [(test_component, [ref.type, job, argv])],
            "getargs": {"build": (build_id, None)},
            "task_dep": [build_id],
            "uptodate": [Settled(hash_json([job.key, argv]), ("built",))],
            "params": BUILD_PARAMS,
            "verbosity": 0,
            "meta": _meta("test", dep, target, ref),
        }


def vendor_task(plan: TargetPlan, ref: ComponentRef) -> TaskDict:
    dep, target = plan.deployment, plan.target
    vendor = plan.vendors[ref]
    # Checking the object before use is what --verify asks for: the task runs even when up to date.
    verify = verify_requested(plan.options.verify)
    cache = remotecache.spec_for(vendor.cache_url, plan.options, plan.root, vendor.protected, plan.git)
    return {
        "basename": "vendor",
        "name": _sub("vendor", dep, target, ref.name),
        "doc": f"vendor the module of {ref} for {dep}/{target}",
        "actions": [(vendor_component, [vendor], {"verify": verify, "cache": cache})],
        "uptodate": [not verify, config_changed(vendor.key), WorkspaceIntact(str(plan.root))]
        + ([timeout(timedelta(seconds=vendor.max_age))] if vendor.max_age is not None else []),
        "verbosity": 0,
        "meta": _meta("vendor", dep, target, ref),
    }


def preview_tasks(plan: TargetPlan) -> Iterator[TaskDict]:
    """A preview: vendor and plan each deploying component against what is deployed; no apply,
    build, test or record. Same task names as the rollout's, so the rows in doit's database are
    shared: what a preview leaves there must keep the next rollout correct.

    - A component with no dependency and no image is planned exactly as the rollout plans it, with
      the rollout's up-to-date rule plus "its apply applied that plan": left alone when a rollout
      would leave it alone; otherwise its plan is the rollout's plan, which the rollout may apply.
    - A component that reads dependencies or images is planned from what is deployed, always. Its
      saved values then hold no result of the dependencies' applies or builds (`getargs` here
      names the dependencies' plans), so the rollout's version of the task is not up to date and
      plans again: a preview's plan of it is never applied.
    """
    dep, target = plan.deployment, plan.target
    planned: list[str] = []
    for ref in plan.order:
        if ref not in plan.jobs:
            continue
        job = _job(plan, ref)
        upstream: dict[str, tuple[str, str]] = {}
        getargs: dict[str, tuple[str, None]] = {}
        dependencies: dict[str, Job] = {}
        images: dict[str, dict[str, Any]] = {}
        for index, found in enumerate(plan.resolved.components[ref].depends_on):
            if found in plan.jobs:
                upstream[f"up_{index}"] = ("planned", found.name)
                getargs[f"up_{index}"] = (task_id("plan", dep, target, found.name), None)
                dependencies[found.name] = plan.jobs[found]
            elif found in plan.preview_images:
                images[found.name] = plan.preview_images[found]
        after = [name for name, _ in getargs.values()]
        if ref in plan.vendors:
            yield vendor_task(plan, ref)
            vendor_id = task_id("vendor", dep, target, ref.name)
            upstream["vnd"] = ("vendor", ref.name)
            getargs["vnd"] = (vendor_id, None)
            after.append(vendor_id)
        plan_id = task_id("plan", dep, target, ref.name)
        settled = [
            Settled(job.static_key, ("planned",)),
            PlanApplied(task_id("apply", dep, target, ref.name)),
        ]
        yield {
            "basename": "plan",
            "name": _sub("plan", dep, target, ref.name),
            "doc": f"plan {ref} for {dep}/{target} against what is deployed (applies nothing)",
            "actions": [(preview_component, [job, upstream, dependencies, images])],
            "getargs": getargs,
            "task_dep": after,
            # What is deployed changes outside doit's view: a plan that reads it always runs.
            "uptodate": [False] if dependencies or images else settled,
            "targets": kinds.of(ref).plan_files(job),
            "verbosity": 0,
            "meta": {"atmos": {**_meta("plan", dep, target, ref)["atmos"], "preview": True}},
        }
        planned.append(plan_id)
    yield {
        "basename": "plan",
        "name": _sub("plan", dep, target),
        "doc": f"what a rollout of {dep} to {target} would change: plan every component, apply nothing",
        "actions": None,
        "task_dep": planned,
        "params": PLAN_GROUP_PARAMS,
        "meta": {
            "atmos": {
                "kind": "preview",
                "deployment": dep,
                "target": target,
                "git_sha": plan.git.sha,
                "branch": plan.git.branch,
                "components": [str(ref) for ref in plan.order if ref in plan.jobs],
                "dirty": bool(plan.dirty),
                "images": {
                    str(ref): {k: v for k, v in found.items() if k in ("status", "image", "from", "reason")}
                    for ref, found in plan.preview_images.items()
                },
            }
        },
    }


def target_tasks(plan: TargetPlan) -> Iterator[TaskDict]:
    dep, target = plan.deployment, plan.target
    if plan.preview:
        yield from preview_tasks(plan)
        return
    finals: list[str] = []
    record_args: dict[str, tuple[str, None]] = {}
    produces: dict[ComponentRef, str] = {}
    for index, ref in enumerate(plan.order):
        if ref in plan.builds:
            tasks = list(build_tasks_of(plan, ref, produces))
            # doit consumes the dictionaries it is given (it pops `basename`): name the last one first.
            last = f"{tasks[-1]['basename']}:{tasks[-1]['name']}"
            yield from tasks
            produces[ref] = last
            # A build run records its images' builds, not their tests: `build:` groups run no tests.
            done = task_id("build", dep, target, ref.name) if plan.images_only else last
            finals.append(done)
            record_args[f"apply_{index}"] = (done, None)
            continue
        job = _job(plan, ref)
        upstream, getargs, after = _upstream(plan, ref, produces)
        if ref in plan.vendors:
            yield vendor_task(plan, ref)
            vendor_id = task_id("vendor", dep, target, ref.name)
            upstream["vnd"] = ("vendor", ref.name)
            getargs["vnd"] = (vendor_id, None)
            after = [*after, vendor_id]
        plan_id = task_id("plan", dep, target, ref.name)
        apply_id = task_id("apply", dep, target, ref.name)
        yield {
            "basename": "plan",
            "name": _sub("plan", dep, target, ref.name),
            "doc": f"plan {ref} for {dep}/{target}",
            "actions": [(plan_component, [job, upstream])],
            "getargs": getargs,
            "task_dep": after,
            "uptodate": [Settled(job.static_key, ("planned",), job.deployed_inputs)],
            "targets": kinds.of(ref).plan_files(job),
            "verbosity": 0,
            "meta": _meta("plan", dep, target, ref),
        }
        yield {
            "basename": "apply",
            "name": _sub("apply", dep, target, ref.name),
            "doc": f"apply {ref} to {dep}/{target}",
            "actions": [(apply_component, [job])],
            "getargs": {"plan": (plan_id, None)},
            "task_dep": [plan_id],
            "uptodate": [LastStatus("applied")],
            "params": ROLLOUT_PARAMS,
            "verbosity": 0,
            "meta": _meta("apply", dep, target, ref),
        }
        produces[ref] = apply_id
        finals.append(apply_id)
        record_args[f"plan_{index}"] = (plan_id, None)
        record_args[f"apply_{index}"] = (apply_id, None)
    if plan.jobs:
        # Listed (`doit list --all`) but never run from here: selecting it compiles a preview.
        yield {
            "basename": "plan",
            "name": _sub("plan", dep, target),
            "doc": f"what a rollout of {dep} to {target} would change: plan every component, apply nothing",
            "actions": None,
            "task_dep": [task_id("plan", dep, target, ref.name) for ref in plan.order if ref in plan.jobs],
            "params": PLAN_GROUP_PARAMS,
        }
    if plan.builds:
        builds = [task_id("build", dep, target, ref.name) for ref in plan.order if ref in plan.builds]
        yield {
            "basename": "build",
            "name": _sub("build", dep, target),
            "doc": f"build every image of {dep} for {target}",
            "actions": None,
            # A build run ends with the record of the deploying components it applied on the way.
            "task_dep": [task_id("record", dep, target)] if plan.images_only else builds,
            "params": BUILD_GROUP_PARAMS,
        }
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
        lock_holder=plan.lock_holder,
        # A build run's SBOM, or a narrowed rollout's (`--component`), would describe a part of the
        # target only: whole rollouts record it (the last one of a CI matrix, say).
        parts={}
        if plan.images_only or plan.options.components
        else {
            ref.name: {"kind": ref.type, **kinds.of(ref).sbom_part(job)}
            for ref, job in [*plan.builds.items(), *plan.jobs.items()]
        },
        images_deployed=not plan.images_only,
        sign=plan.record_sign,
        approvals=tuple(plan.approvals),
        cache=remotecache.spec_for(
            plan.cache_url, plan.options, plan.root, remotecache.is_protected(plan.manifest, target), plan.git
        ),
    )
    yield {
        "basename": "record",
        "name": _sub("record", dep, target),
        "doc": f"record the rollout of {dep} to {target} in Git",
        "actions": [(record_rollout, [spec])],
        "getargs": record_args,
        "task_dep": finals,
        # It always runs: its producers are setup tasks too, which spares doit a `result_dep` on
        # each of them (two per component, each hashing a task's values on every rollout).
        "setup": sorted({task for task, _ in record_args.values()}),
        "uptodate": [False],
        "verbosity": 0,
        "meta": {"atmos": {"kind": "record", "deployment": dep, "target": target}},
    }
    if plan.images_only:
        return
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
