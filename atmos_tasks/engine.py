"""Compiling a selection into target plans: manifest → resolved config → jobs.

This is the I/O edge of compilation: it reads the repository (atmos.yaml, manifests, stacks,
module files through the stat cache, `git status`) and hands plain data to `graph`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmos_tasks import kinds
from atmos_tasks.config import RepoConfig, load_config
from atmos_tasks.errors import EXIT_BAD_INPUT, AtmosError, Location, Problem, refused
from atmos_tasks.gitrepo import GitRepo, WorkingTree
from atmos_tasks.hashing import StatCache
from atmos_tasks.invocation import Invocation, RolloutOptions
from atmos_tasks.kinds import CompileContext, Job
from atmos_tasks.manifest import (
    ComponentRef,
    Manifest,
    Promotion,
    list_manifest_paths,
    load_deployment,
)
from atmos_tasks.promotion import ApprovalGate, Source
from atmos_tasks.resolve import GitInfo, ResolvedTarget, resolve_target
from atmos_tasks.stacks import StackLoader
from atmos_tasks.tracking import read_records

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

    @property
    def deployment(self) -> str:
        return self.resolved.deployment

    @property
    def target(self) -> str:
        return self.resolved.target


class Workspace:
    """Per-run caches over one repository: parsed stacks, module digests, declared variables."""

    def __init__(self, root: Path, config: RepoConfig | None = None) -> None:
        self.config = config or load_config(root)
        self.root = self.config.root
        self.repo = GitRepo(self.root)
        self.stat_cache = StatCache(self.config.work_dir / "cache" / "stat-cache.json")
        self._digests: dict[Path, str] = {}
        self._variables_path = self.config.work_dir / "cache" / "tf-variables.json"
        self._variables: dict[str, Any] | None = None
        self._variables_dirty = False
        self._tree: WorkingTree | None = None
        self._commit_times: dict[str, int] = {}
        self.signing_checked = False

    def working_tree(self) -> WorkingTree:
        if self._tree is None:
            self._tree = self.repo.working_tree()
        return self._tree

    def git_info(self) -> GitInfo:
        tree = self.working_tree()
        if tree.head is None:
            raise AtmosError(
                [
                    Problem(
                        "the repository has no commit yet",
                        Location(str(self.root)),
                        "commit your files first: what is deployed must be a commit",
                    )
                ]
            )
        return GitInfo(tree.head, tree.branch)

    def commit_time(self, sha: str) -> int:
        """SOURCE_DATE_EPOCH for builds of `sha`: its commit time (0 before the first commit)."""
        if sha not in self._commit_times:
            self._commit_times[sha] = self.repo.commit_time(sha) if sha.strip("0") else 0
        return self._commit_times[sha]

    def module_digest(self, module_dir: Path) -> str:
        digest = self._digests.get(module_dir)
        if digest is None:
            digest = self._digests[module_dir] = self.stat_cache.tree(module_dir)
        return digest

    def declared_variables(
        self, module_dir: Path, parse: Callable[[Path], set[str] | None]
    ) -> set[str] | None:
        """The variables a module declares (its kind parses them), cached by module digest so a
        no-op run never parses HCL."""
        if self._variables is None:
            try:
                self._variables = json.loads(self._variables_path.read_text())
            except (OSError, ValueError):
                self._variables = {}
        digest = self.module_digest(module_dir)
        if digest in self._variables:
            cached = self._variables[digest]
            return None if cached is None else set(cached)
        names = parse(module_dir)
        self._variables[digest] = None if names is None else sorted(names)
        self._variables_dirty = True
        return names

    def resolve(self, manifest: Manifest, target: str, git: GitInfo, loader: StackLoader) -> ResolvedTarget:
        """`resolve_target` with this repository's config, declared-variable cache and vendor entries."""
        from atmos_tasks.vendoring import vendor_resolver

        return resolve_target(
            manifest,
            self.config,
            target,
            git,
            loader,
            self.declared_variables,
            vendor_resolver(self.config, manifest, target),
        )

    def save_caches(self) -> None:
        self.stat_cache.save()
        if self._variables_dirty and self._variables is not None:
            self._variables_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._variables_path.with_name(f".{self._variables_path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self._variables, sort_keys=True))
            os.replace(tmp, self._variables_path)
            self._variables_dirty = False

    def deployment_names(self) -> list[str]:
        return [p.stem for p in list_manifest_paths(self.config)]


def _has_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def selected_pairs(
    workspace: Workspace, invocation: Invocation
) -> tuple[list[tuple[str, str]], dict[str, Manifest]]:
    """(deployment, target) pairs the invocation needs compiled, and their manifests."""
    pairs: list[tuple[str, str]] = []
    manifests: dict[str, Manifest] = {}
    problems: list[Problem] = []

    def manifest(name: str) -> Manifest | None:
        if name not in manifests:
            try:
                manifests[name] = load_deployment(workspace.config, name)
            except AtmosError as err:
                problems.extend(err.problems)
                return None
        return manifests[name]

    wanted: list[tuple[str, str, bool]] = []
    if invocation.selects_everything:
        wanted = [(name, "*", False) for name in workspace.deployment_names()]
    for item in invocation.selected:
        if _has_glob(item.deployment):
            names = [n for n in workspace.deployment_names() if item.matches(n, "*")]
        else:
            names = [item.deployment]
        wanted += [(name, item.target, not _has_glob(item.target)) for name in names]
    for name, target_pattern, literal in wanted:
        found = manifest(name)
        if found is None:
            continue
        targets = [t for t in found.target_names() if fnmatch.fnmatchcase(t, target_pattern)]
        if literal and not targets:
            problems.append(
                Problem(
                    f"deployment {name!r} has no target {target_pattern!r}",
                    found.locate(["targets"], at_key=True),
                    f"targets: {', '.join(found.target_names())}",
                )
            )
        pairs += [(name, t) for t in targets if (name, t) not in pairs]
    if problems:
        raise AtmosError(problems)
    return pairs, manifests


# Records mirror the remote (it is the truth about what is deployed). Notes are not in this list:
# they are merged into the local ones (`fetch_records`), since they may hold entries not pushed yet.
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
            if options.promote_from or options.git_sha:
                plan = compile_source(workspace, manifest, target, options, executes, remote)
            else:
                images = invocation.images(deployment, target)
                previews = invocation.previews(deployment, target)
                plan = compile_target(
                    workspace, manifest, target, git, dirty, options, loader, images=images, preview=previews
                )
                if plan.preview:
                    plan.preview_images = preview_images(workspace, plan)
            plan.remote = remote if executes else None
            plan.record_sign = workspace.config.record_sign
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


def check_signing_key(workspace: Workspace) -> None:
    """`record.sign: always`: refused before anything runs when the deployer cannot sign."""
    from atmos_tasks.signing import SETUP_HINT, signing_key

    if workspace.signing_checked:
        return
    problem = signing_key(workspace.repo).problem()
    if problem:
        raise refused(f"atmos.yaml asks for signed records (record.sign: always), and {problem}", SETUP_HINT)
    workspace.signing_checked = True


def implied_source(
    workspace: Workspace,
    manifest: Manifest,
    target: str,
    git: GitInfo,
    dirty: list[str],
    options: RolloutOptions,
) -> str | None:
    """A plain rollout to a target that receives promotions is the promotion of the commit one of
    its sources runs (then checked as one: verified, soaked, not rejected, approved), or refused.

    Returns that source; None for a target without a promotion rule (or with approvals only,
    which `compile_plans` checks on the plan itself).
    """
    from atmos_tasks import promotion

    rule = manifest.model.targets[target].promotion
    if rule is None:
        return None
    deployment = manifest.name
    if not rule.sources:
        if rule.approvals_required and dirty:
            raise promotion.refused(
                f"{target} requires approval of the commit it deploys, and the working tree has "
                "uncommitted changes",
                "commit them first: an approval is given to a commit",
            )
        return None
    wanted = set(options.components) or None
    states = read_records(workspace.repo, deployment)
    running = {}
    for source in rule.sources:
        on_source = promotion.target_states(states, deployment, source, wanted)
        running[source] = sorted({s.git_sha for s in on_source.values() if s.git_sha})
        if running[source] == [git.sha]:
            if dirty:
                raise promotion.refused(
                    f"{target} deploys only the commit {source} runs ({git.sha[:7]}), and the working tree "
                    f"has uncommitted changes ({', '.join(dirty[:5])})",
                    f"commit or stash them, or promote explicitly: doit rollout:{deployment}:{target} "
                    f"--promote-from {source}",
                )
            return source
    runs = "; ".join(
        f"{source} runs {', '.join(sha[:7] for sha in shas) if shas else 'nothing yet'}"
        for source, shas in running.items()
    )
    first = rule.sources[0]
    raise promotion.refused(
        f"{target} receives promotions from {' or '.join(rule.sources)} only: {git.sha[:7]} is not what "
        f"{runs}",
        f"roll out {git.sha[:7]} to {first} first, then `doit rollout:{deployment}:{target} --promote-from "
        f"{first}`; or roll back with --git-sha to a commit {target} ran before",
    )


def gate_build_run(manifest: Manifest, plan: TargetPlan) -> None:
    """A build run applies what its images need (an image repository, say) and records it: on a
    target with a promotion rule that would be a route in around the gate, so it is refused."""
    from atmos_tasks import promotion

    rule = manifest.model.targets[plan.target].promotion
    if rule is None or not (rule.sources or rule.approvals_required):
        return
    applied = ", ".join(str(ref) for ref in plan.order if ref in plan.jobs)
    source = f" --promote-from {rule.sources[0]}" if rule.sources else ""
    raise promotion.refused(
        f"building the images of {plan.deployment}/{plan.target} applies {applied} first, and "
        f"{plan.target} is changed only through its promotion rule",
        f"deploy it with `doit rollout:{plan.deployment}:{plan.target}{source}` (images are then reused, "
        "never rebuilt), or build on a target without a promotion rule",
    )


def mark_current(workspace: Workspace, plan: TargetPlan) -> None:
    """With a remote: the components the target already runs at this commit (another run recorded
    them, for instance while this one waited for its lock) plan and apply nothing."""
    states = read_records(workspace.repo, plan.deployment, plan.target)
    for ref, job in plan.jobs.items():
        state = states.get((plan.deployment, plan.target, ref.name))
        latest = state.latest if state else None
        if (
            state is not None
            and latest is not None
            and state.git_sha == plan.git.sha == latest.git_sha
            and latest.status in ("success", "rollback")
        ):
            current = {"by": latest.deployed_by, "at": latest.timestamp, "inputs_hash": latest.inputs_hash}
            plan.jobs[ref] = dataclasses.replace(job, current=current)
        elif state is not None and state.current is not None:
            # What this clone's doit database calls up to date holds only while the target still
            # runs what this clone last applied: another runner may have deployed since.
            plan.jobs[ref] = dataclasses.replace(job, deployed_inputs=state.current.inputs_hash)


def approval_gate(
    workspace: Workspace, deployment: str, target: str, commit: str, rule: Promotion | None, now: datetime
) -> ApprovalGate | None:
    """The signature checks of a target whose rule names `approvers`; None for any other target, so
    a rollout without signed approvals reads no allowed signers and runs no ssh-keygen."""
    if (
        rule is None
        or rule.approvers is None
        or not rule.approvals_required
        or rule.approval_method != "manual"
    ):
        return None
    from atmos_tasks.record import actor
    from atmos_tasks.signing import SignedApprovals

    repo = workspace.repo
    return SignedApprovals(
        repo, workspace.config.allowed_signers, deployment, target, commit, rule, now, actor(repo.ident())
    )


def decide_approvals(
    workspace: Workspace,
    deployment: str,
    target: str,
    commit: str,
    rule: Promotion | None,
    options: RolloutOptions,
    now: datetime,
    gate: ApprovalGate | None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The approvals a rollout of `commit` to `target` records, and who approved; refused (exit 3)
    when the rule is not met. The same check on every route in: promotion, plain rollout, rollback."""
    from atmos_tasks import promotion
    from atmos_tasks.notes import read_note
    from atmos_tasks.record import actor

    if rule is None or not rule.approvals_required:
        return [], []
    repo = workspace.repo
    existing = promotion.approvals_for(read_note(repo, deployment, promotion.APPROVALS, commit), target)
    return promotion.decide_approvals(
        deployment,
        target,
        commit,
        rule,
        existing,
        actor(repo.ident()),
        options.approve,
        now,
        promotion.ask_if_terminal(),
        gate,
    )


def approve_direct(workspace: Workspace, plan: TargetPlan) -> None:
    """A plain rollout to a target whose rule asks for approvals only: the approvals of its commit."""
    from atmos_tasks import promotion
    from atmos_tasks.notes import read_note, union, update_note

    rule = plan.manifest.model.targets[plan.target].promotion
    if rule is None or rule.sources or not rule.approvals_required:
        return
    repo, deployment, commit = workspace.repo, plan.deployment, plan.git.sha
    now = datetime.now(UTC).replace(microsecond=0)
    gate = approval_gate(workspace, deployment, plan.target, commit, rule, now)
    promotion.check_rejections(commit, read_note(repo, deployment, promotion.REJECTIONS, commit), gate)
    new, _approvers = decide_approvals(
        workspace, deployment, plan.target, commit, rule, plan.options, now, gate
    )
    if new:
        update_note(
            repo, deployment, promotion.APPROVALS, commit, {"approvals": new}, union("approvals"), plan.remote
        )


def workspace_at(workspace: Workspace, commit: str) -> Workspace:
    """The repository as it was at `commit` (a worktree under .atmos/worktrees/), working data here."""
    from filelock import FileLock

    worktree = workspace.config.work_dir / "worktrees" / commit
    worktree.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(worktree.parent / f"{commit}.lock")):
        workspace.repo.worktree(worktree, commit)
    return Workspace(worktree, load_config(worktree, work_root=workspace.root))


def compile_source(
    workspace: Workspace,
    manifest: Manifest,
    target: str,
    options: RolloutOptions,
    executes: bool,
    remote: str | None,
) -> TargetPlan:
    """A promotion or rollback: checked against the policy of the working tree's manifest, then
    compiled from the deployed commit's own files, checked out in a worktree."""
    from atmos_tasks import promotion
    from atmos_tasks.notes import read_note, union, update_note

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
        at_commit, pinned, target, GitInfo(commit, ""), [], options, StackLoader(at_commit.config), wanted
    )
    plan.root = workspace.root
    plan.source = source
    if plan.builds:
        from atmos_tasks.images.stage import BUILDS

        recorded = read_note(repo, deployment, BUILDS, commit)
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
    if source.approvals:
        update_note(
            repo,
            deployment,
            promotion.APPROVALS,
            commit,
            {"approvals": source.approvals},
            union("approvals"),
            remote,
        )
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
            raise AtmosError.single(
                f"no image component {', '.join(sorted(unknown))} on {target}",
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
