"""`atmos-tasks destroy`: remove what each component's kind deployed on a target, then record it.

Components are destroyed dependants first (the reverse of the rollout order), each by its kind
(`terraform destroy`, removing containers); image components have nothing running and are left
alone. What a destroy did is recorded like a rollout: a tag per component with `status:
destroyed` (or `failed`), and the refs of what was removed are deleted, on the remote first when
there is one, under the same per-component locks rollouts take.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from atmos_tasks import cancel, kinds, secrets
from atmos_tasks.engine import TargetPlan, compile_target, fetch_records
from atmos_tasks.errors import AtmosError, refused
from atmos_tasks.invocation import RolloutOptions
from atmos_tasks.kinds import Job
from atmos_tasks.manifest import ComponentRef, load_deployment
from atmos_tasks.queries import unknown_target
from atmos_tasks.stacks import StackLoader
from atmos_tasks.tracking import ComponentState, read_records
from atmos_tasks.workspace import Workspace


@dataclass
class DestroyResult:
    deployment: str
    target: str
    # component → (kind, values of its destroy): {status: destroyed | failed | skipped, …}
    results: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)

    @property
    def failed(self) -> dict[str, str]:
        return {
            n: str(v.get("error", "")) for n, (_k, v) in self.results.items() if v.get("status") == "failed"
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "target": self.target,
            "components": {n: {"kind": k, **v} for n, (k, v) in self.results.items()},
            "tags": self.tags,
        }


def chosen(plan: TargetPlan, component: str | None) -> list[ComponentRef]:
    """The deploying components to destroy, dependants first."""
    refs = [ref for ref in reversed(plan.order) if ref in plan.jobs]
    if component is None:
        return refs
    found = [ref for ref in refs if ref.name == component or str(ref) == component]
    if not found:
        raise AtmosError.single(
            f"no deployed component {component!r} on {plan.target}",
            plan.manifest.locate(["components"], at_key=True),
            f"components that deploy: {', '.join(r.name for r in refs) or 'none'}",
        )
    return found


def _dependencies(
    plan: TargetPlan, ref: ComponentRef, states: dict[tuple[str, str, str], ComponentState]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """What a component's templates read, as deployed now: dependencies' outputs, recorded images."""
    outputs: dict[str, dict[str, Any]] = {}
    images: dict[str, dict[str, Any]] = {}
    for dep in plan.resolved.components[ref].depends_on:
        if dep in plan.jobs:
            outputs[dep.name] = kinds.of(dep).deployed_outputs(plan.jobs[dep]) or {}
        else:
            state = states.get((plan.deployment, plan.target, dep.name))
            current = state.current if state else None
            if current is not None and current.image:
                images[dep.name] = {"image": current.image}
    return outputs, images


def destroy_one(
    plan: TargetPlan, ref: ComponentRef, states: dict[tuple[str, str, str], ComponentState]
) -> dict[str, Any]:
    if cancel.requested():
        return {"status": "skipped", "reason": cancel.reason()}
    job: Job = plan.jobs[ref]
    try:
        outputs, images = _dependencies(plan, ref, states)
        return kinds.of(ref).destroy(job, outputs, images)
    except Exception as err:  # a failure is a value: the others still run and all is recorded
        return {"status": "failed", "error": secrets.mask(f"{type(err).__name__}: {err}")}


def destroy(
    workspace: Workspace, deployment: str, target: str, component: str | None, remote: str | None
) -> DestroyResult:
    manifest = load_deployment(workspace.config, deployment)
    if target not in manifest.model.targets:
        raise unknown_target(manifest, target)
    remote = remote or os.environ.get("ATMOS_TASKS_REMOTE") or None
    repo = workspace.repo
    if remote:
        fetch_records(repo, remote)
    git = workspace.git_info()
    plan = compile_target(
        workspace, manifest, target, git, [], RolloutOptions(), StackLoader(workspace.config)
    )
    refs = chosen(plan, component)
    if not refs:
        raise refused(f"{deployment}/{target} has no component that deploys anything", "nothing to destroy")
    result = DestroyResult(deployment, target)
    locks = None
    if remote:
        from atmos_tasks.locks import RemoteLocks
        from atmos_tasks.record import actor

        locks = RemoteLocks(
            repo, remote, deployment, target, [r.name for r in refs], git.sha, actor(repo.ident())
        )
        locks.take()
    cancel.install()
    try:
        states = read_records(repo, deployment, target)
        for ref in refs:
            result.results[ref.name] = (ref.type, destroy_one(plan, ref, states))
        result.tags = _record(workspace, plan, result, remote, locks)
    finally:
        if locks is not None:
            locks.release()
        workspace.save_caches()
    return result


def _record(
    workspace: Workspace, plan: TargetPlan, result: DestroyResult, remote: str | None, locks: Any
) -> list[str]:
    from atmos_tasks.record import record_destroy

    leased = []
    if locks is not None and remote is not None:
        from atmos_tasks.locks import record_lease

        done = [n for n, (_k, v) in result.results.items() if v.get("status") in ("destroyed", "failed")]
        leased = (
            record_lease(workspace.repo, remote, plan.deployment, plan.target, locks.id, done) if done else []
        )
    return record_destroy(
        workspace.repo,
        plan.deployment,
        plan.target,
        plan.git.sha,
        result.results,
        remote,
        leased,
        workspace.config.record_sign,
    )
