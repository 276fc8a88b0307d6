"""Compiling a selection into target plans: manifest → resolved config → jobs.

This is the I/O edge of compilation: it reads the repository (atmos.yaml, manifests, stacks,
module files through the stat cache, `git status`) and hands plain data to `graph`. Which targets
are selected is `selection.py`; the workspace and its caches `workspace.py`; the promotion gates
every route into a target meets, `gates.py`; each component's job, its kind.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmos_tasks import kinds
from atmos_tasks.errors import EXIT_BAD_INPUT, AtmosError, Problem, refused
from atmos_tasks.gates import (
    approval_gate,
    approve_direct,
    check_signing_key,
    decide_approvals,
    gate_build_run,
    implied_source,
    mark_current,
)
from atmos_tasks.gitrepo import GitRepo
from atmos_tasks.invocation import Invocation, RolloutOptions
from atmos_tasks.kinds import CompileContext, Job
from atmos_tasks.manifest import (
    ComponentRef,
    Manifest,
    load_deployment,
)
from atmos_tasks.promotion import Source
from atmos_tasks.resolve import GitInfo, ResolvedTarget
from atmos_tasks.selection import selected_pairs
from atmos_tasks.stacks import StackLoader
from atmos_tasks.tracking import read_records
from atmos_tasks.workspace import Workspace, workspace_at

if TYPE_CHECKING:
    from atmos_tasks.images.stage import BuildJob
    from atmos_tasks.vendoring import VendorSpec


@dataclass
class TargetPlan:
    """One (deployment, target) ready to become tasks."""

    manifest: Manifest
    resolved: ResolvedTarget
    jobs: dict[ComponentRef, Job]
    order: list[ComponentRef]
    options: RolloutOptions
    git: GitInfo
    dirty: list[str]
    root: Path
    source: Source | None = None
    remote: str | None = None
    # Set once the run holds this target's locks on the remote (`locks.RemoteLocks.id`).
    lock_holder: str | None = None
    builds: dict[ComponentRef, BuildJob] = field(default_factory=dict)
    vendors: dict[ComponentRef, VendorSpec] = field(default_factory=dict)
    # Promotions and rollbacks: the images the deployed commit's builds recorded.
    recorded_builds: dict[ComponentRef, dict[str, Any]] = field(default_factory=dict)
    # A build run: only the selected images and what they need; the images are built, not deployed.
    images_only: bool = False
    # A preview (only plan tasks selected): plans against what is deployed, applies nothing.
    preview: bool = False
    # In a preview, the image each image component stands for (`preview.choose_image`).
    preview_images: dict[ComponentRef, dict[str, Any]] = field(default_factory=dict)
    # `record.sign` of the working tree's atmos.yaml: whether the record task signs its tags.
    record_sign: str = "if-available"
    # Approvals given for this rollout (`--approve`, the prompt): the record task records them.
    approvals: list[dict[str, Any]] = field(default_factory=list)
    # `cache.url` of the working tree's atmos.yaml (`remotecache`): the record task stores there
    # what each recorded apply output.
    cache_url: str | None = None

    @property
    def deployment(self) -> str:
        return self.resolved.deployment

    @property
    def target(self) -> str:
        return self.resolved.target


REMOTE_REFSPECS = (
    "+refs/atmos/*:refs/atmos/*",
    "+refs/tags/atmos/*:refs/tags/atmos/*",
)


def fetch_records(repo: GitRepo, remote: str) -> None:
    """The remote's refs, tags and notes in one fetch; notes merged, never overwritten or pruned."""
    from atmos_tasks.notes import merge_fetched_notes, tracking_refspec

    repo.fetch(remote, [*REMOTE_REFSPECS, tracking_refspec(remote)])
    merge_fetched_notes(repo, remote)


def compile_plans(workspace: Workspace, invocation: Invocation) -> list[TargetPlan]:
    pairs, manifests = selected_pairs(workspace, invocation)
    if not pairs:
        return []
    git = workspace.git_info()
    dirty = workspace.working_tree().dirty
    plans: list[TargetPlan] = []
    problems: list[Problem] = []
    loader = StackLoader(workspace.config)
    fetched: set[str] = set()
    for deployment, target in pairs:
        manifest = manifests[deployment]
        options = invocation.options_for(deployment, target)
        remote = options.remote or os.environ.get("ATMOS_TASKS_REMOTE") or None
        executes = invocation.deploys(deployment, target)
        if invocation.mixes_preview(deployment, target):
            problems.append(
                Problem(
                    f"plan tasks of {deployment}/{target} preview a rollout and apply nothing; they cannot "
                    "run together with its other tasks",
                    None,
                    f"run `doit plan:{deployment}:{target}` on its own, then the other tasks",
                )
            )
            continue
        if remote and executes and remote not in fetched:
            # Start from what the remote says is deployed: the record's leases are these values.
            fetch_records(workspace.repo, remote)
            fetched.add(remote)
        try:
            if (
                executes
                and not (options.promote_from or options.git_sha)
                and not invocation.previews(deployment, target)
                and invocation.images(deployment, target) is None
            ):
                # A target's promotion rule holds on every route into it, a plain rollout included.
                implied = implied_source(workspace, manifest, target, git, dirty, options)
                if implied is not None:
                    options = dataclasses.replace(options, promote_from=implied)
            previews = invocation.previews(deployment, target)
            if options.promote_from or options.git_sha:
                plan = compile_source(workspace, manifest, target, options, executes, remote, previews)
            else:
                images = invocation.images(deployment, target)
                # `--component`: a narrowed rollout (a CI matrix job's share): those components and
                # what they depend on are applied and recorded, under their locks only.
                only = (
                    set(options.components)
                    if options.components and images is None and not previews
                    else None
                )
                plan = compile_target(
                    workspace,
                    manifest,
                    target,
                    git,
                    dirty,
                    options,
                    loader,
                    only,
                    images=images,
                    preview=previews,
                )
            if plan.preview:
                plan.preview_images = preview_images(workspace, plan)
            plan.remote = remote if executes else None
            plan.record_sign = workspace.config.record_sign
            plan.cache_url = workspace.config.cache_url
            if executes and plan.record_sign == "always" and not plan.preview:
                check_signing_key(workspace)
            if plan.remote and not plan.dirty and not plan.preview:
                mark_current(workspace, plan)
            if executes and plan.source is None and not plan.preview and not plan.images_only:
                approve_direct(workspace, plan)
            if executes and plan.images_only and plan.jobs:
                gate_build_run(manifest, plan)
            plans.append(plan)
        except AtmosError as err:
            if err.exit_code != EXIT_BAD_INPUT:
                raise
            problems += err.problems
    if problems:
        raise AtmosError(problems)
    for plan in plans:
        if plan.source is not None:
            continue
        if not invocation.deploys(plan.deployment, plan.target) or not plan.dirty or plan.options.allow_dirty:
            continue
        shown = ", ".join(plan.dirty[:8]) + (
            f" and {len(plan.dirty) - 8} more" if len(plan.dirty) > 8 else ""
        )
        if not plan.images_only:
            raise refused(
                f"the working tree has uncommitted changes ({shown}); what is deployed must be a commit",
                "commit or stash them, or pass --allow-dirty (recorded in the deployment tag)",
            )
        if plan.jobs:  # images alone may be built from a dirty tree: they are then not recorded
            needed = ", ".join(str(ref) for ref in plan.order if ref in plan.jobs)
            raise refused(
                f"building the images of {plan.deployment}/{plan.target} applies {needed} first, and the "
                f"working tree has uncommitted changes ({shown}); what is deployed must be a commit",
                "commit or stash them, or pass --allow-dirty (recorded in the deployment tag)",
            )
    workspace.save_caches()
    return plans


def compile_source(
    workspace: Workspace,
    manifest: Manifest,
    target: str,
    options: RolloutOptions,
    executes: bool,
    remote: str | None,
    preview: set[str] | None = None,
) -> TargetPlan:
    """A promotion or rollback: checked against the policy of the working tree's manifest, then
    compiled from the deployed commit's own files, checked out in a worktree. `preview`: what a
    preview of deploying that commit plans (`compile_target`); it checks no gate."""
    from atmos_tasks import promotion
    from atmos_tasks.notes import read_note

    if options.promote_from and options.git_sha:
        raise AtmosError.single(
            "--promote-from and --git-sha cannot be combined",
            None,
            "promote with --promote-from, or roll back with --git-sha",
        )
    repo = workspace.repo
    deployment = manifest.name
    states = read_records(repo, deployment)
    now = datetime.now(UTC).replace(microsecond=0)
    wanted = set(options.components) or None
    if options.promote_from:
        source_target = options.promote_from
        promotion.check_path(manifest, target, source_target)
        on_source = promotion.target_states(states, deployment, source_target, wanted)
        commit = promotion.source_commit(deployment, source_target, on_source, wanted)
        source = promotion.Source(commit, promoted_from=source_target)
        if executes:
            rule = manifest.model.targets[target].promotion
            promotion.check_verified(source_target, commit, on_source)
            promotion.check_soak(source_target, target, commit, on_source, rule, now)
            gate = approval_gate(workspace, deployment, target, commit, rule, now)
            promotion.check_rejections(
                commit, read_note(repo, deployment, promotion.REJECTIONS, commit), gate
            )
            source.approvals, source.approvers = decide_approvals(
                workspace, deployment, target, commit, rule, options, now, gate
            )
    else:
        found = repo.rev_parse(str(options.git_sha))
        if found is None:
            raise AtmosError.single(
                f"--git-sha {options.git_sha!r} is not a commit of this repository",
                None,
                "give a commit id (see atmos-tasks history)",
            )
        commit = found
        source = promotion.Source(commit, rollback=True)
        if executes:
            promotion.check_rollback(
                target, commit, promotion.target_states(states, deployment, target, None)
            )
            # Approvals and rejections hold on every route into the target, a rollback included.
            rule = manifest.model.targets[target].promotion
            gate = approval_gate(workspace, deployment, target, commit, rule, now)
            promotion.check_rejections(
                commit, read_note(repo, deployment, promotion.REJECTIONS, commit), gate
            )
            source.approvals, source.approvers = decide_approvals(
                workspace, deployment, target, commit, rule, options, now, gate
            )
    at_commit = workspace_at(workspace, commit)
    pinned = load_deployment(at_commit.config, deployment)
    if target not in pinned.model.targets:
        raise AtmosError.single(
            f"deployment {deployment!r} at {commit[:7]} has no target {target!r}",
            None,
            "promote a commit whose manifest has this target",
        )
    plan = compile_target(
        at_commit,
        pinned,
        target,
        GitInfo(commit, ""),
        [],
        options,
        StackLoader(at_commit.config),
        wanted,
        preview=preview,
    )
    plan.root = workspace.root
    plan.source = source
    if plan.builds and not plan.preview:  # a preview binds images as `preview_images` chooses them
        from atmos_tasks.images.stage import BUILDS

        recorded = workspace.note(deployment, BUILDS, commit)
        for ref in plan.builds:
            entry = recorded.get(ref.name)
            if not isinstance(entry, dict) or "digest" not in entry:
                raise promotion.refused(
                    f"{commit[:7]} has no recorded build of {ref}; promotion and rollback reuse the image "
                    "a rollout built and never rebuild",
                    f"roll out {commit[:7]} from a checkout first (it builds and records the image)",
                )
            plan.recorded_builds[ref] = entry
    at_commit.save_caches()
    # Recorded by the record task, with the rollout: compiling writes nothing.
    plan.approvals = list(source.approvals)
    return plan


def preview_images(workspace: Workspace, plan: TargetPlan) -> dict[ComponentRef, dict[str, Any]]:
    """For a preview: each image as recorded for the current source, else as the target runs it."""
    if not plan.builds:
        return {}
    from atmos_tasks.images.stage import BUILDS
    from atmos_tasks.notes import read_note
    from atmos_tasks.preview import choose_image

    repo = workspace.repo
    deployment, target = plan.deployment, plan.target
    states = read_records(repo, deployment, target)
    notes = {plan.git.sha: read_note(repo, deployment, BUILDS, plan.git.sha)}
    chosen: dict[ComponentRef, dict[str, Any]] = {}
    for ref, job in plan.builds.items():
        state = states.get((deployment, target, ref.name))
        current = state.current if state else None
        # The commit the target runs may have built this very source: its note says so.
        commits = [plan.git.sha] + ([current.git_sha] if current else [])
        for commit in commits:
            if commit not in notes:
                notes[commit] = read_note(repo, deployment, BUILDS, commit)
        recorded = [notes[commit].get(ref.name) for commit in commits]
        chosen[ref] = choose_image(ref.name, target, job, recorded, current.image if current else None)
    return chosen


def compile_target(
    workspace: Workspace,
    manifest: Manifest,
    target: str,
    git: GitInfo,
    dirty: list[str],
    options: RolloutOptions,
    loader: StackLoader,
    only: set[str] | None = None,
    images: set[str] | None = None,
    preview: set[str] | None = None,
) -> TargetPlan:
    """`only`: these components and what they depend on (a narrowed promotion); `images`: these
    image components (`*`: all) and what they depend on (a build run); `preview`: these deploying
    components (`*`: all) and what they depend on, to be planned against what is deployed."""
    from atmos_tasks.vendoring import vendor_spec

    config = workspace.config
    resolved = workspace.resolve(manifest, target, git, loader)
    if images is not None:
        names = [ref.name for ref in resolved.components if kinds.of(ref).role == "image"]
        unknown = images - {"*", *names}
        if unknown:
            image_kinds = sorted({ref.type for ref in manifest.components() if kinds.of(ref).role == "image"})
            what = " or ".join(image_kinds) or "image"
            raise AtmosError.single(
                f"no {what} component {', '.join(sorted(unknown))} on {target}",
                manifest.locate(["components", *image_kinds[:1]], at_key=True),
                f"images: {', '.join(names) or 'none'}",
            )
        only = {name for name in names if "*" in images or name in images}
    if preview is not None:
        names = [ref.name for ref in resolved.components if kinds.of(ref).role == "deploy"]
        unknown = preview - {"*", *names}
        if unknown:
            raise AtmosError.single(
                f"no component {', '.join(sorted(unknown))} to plan on {target}",
                None,
                f"components with a plan: {', '.join(names) or 'none'}",
            )
        only = None if "*" in preview else set(preview)
    if only is not None:
        unknown = only - {ref.name for ref in resolved.components}
        if unknown:
            raise AtmosError.single(
                f"--component: no component {', '.join(sorted(unknown))} on {target}",
                None,
                f"components: {', '.join(r.name for r in resolved.components)}",
            )
        keep = resolved.needed_by(only)
        resolved.components = {ref: c for ref, c in resolved.components.items() if ref in keep}
    jobs: dict[ComponentRef, Job] = {}
    builds: dict[ComponentRef, BuildJob] = {}
    vendors: dict[ComponentRef, VendorSpec] = {}
    for ref, component in resolved.components.items():
        kind = kinds.of(ref)
        vendor = vendor_spec(config, manifest, target, component.vendor) if component.vendor else None
        if vendor is not None:
            vendors[ref] = vendor
        key = vendor.key if vendor else None
        context = CompileContext(workspace, manifest, resolved, git, dirty, options, key)
        if kind.role == "image":
            builds[ref] = kind.job(context, component)
        else:
            jobs[ref] = kind.job(context, component)
    return TargetPlan(
        manifest=manifest,
        resolved=resolved,
        jobs=jobs,
        builds=builds,
        vendors=vendors,
        order=resolved.order(),
        options=options,
        git=git,
        dirty=list(dirty),
        root=config.root,
        images_only=images is not None,
        preview=preview is not None,
    )
