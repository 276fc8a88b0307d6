"""Promotion gates on every route into a target, checked while compiling, before anything runs.

The rules themselves are pure functions of records, notes, the rule and the time
(`promotion.decide_approvals`, `promotion.check_rejections`, `promotion.target_states`); this
module reads what they need from the repository and turns a refusal into exit 3.

A manual approval asked on a terminal is asked after the plan of what it approves is shown: a
preview of deploying that commit to the target, a line per change (`show_plan`).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmos_tasks.errors import refused
from atmos_tasks.invocation import RolloutOptions
from atmos_tasks.manifest import Manifest, Promotion
from atmos_tasks.promotion import ApprovalGate
from atmos_tasks.resolve import GitInfo
from atmos_tasks.tracking import read_records
from atmos_tasks.workspace import Workspace

if TYPE_CHECKING:
    from atmos_tasks.engine import TargetPlan


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
    states = read_records(workspace.repo, plan.deployment, plan.target, [ref.name for ref in plan.jobs])
    for ref, job in plan.jobs.items():
        state = states.get((plan.deployment, plan.target, ref.name))
        latest = state.latest if state else None
        if (
            state is not None
            and latest is not None
            and state.git_sha == plan.git.sha == latest.git_sha
            and latest.status in ("success", "rollback")
        ):
            current = {
                "by": latest.deployed_by,
                "at": latest.timestamp,
                "inputs_hash": latest.inputs_hash,
                "git_sha": latest.git_sha,
            }
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
        ask_after_the_plan(workspace.root, deployment, target, commit, options),
        gate,
    )


def ask_after_the_plan(root: Path, deployment: str, target: str, commit: str, options: RolloutOptions) -> Any:
    """The terminal's approval prompt (None without a terminal), asked once the plan of deploying
    `commit` to `target` has been shown."""
    from atmos_tasks import promotion

    ask = promotion.ask_if_terminal()
    if ask is None:
        return None

    def asking(question: str) -> bool:
        # A promotion or rollback deploys another commit than the working tree's: plan that one.
        source = commit if options.promote_from or options.git_sha else None
        show_plan(root, deployment, target, source, options.components)
        return bool(ask(question))

    return asking


def show_plan(
    root: Path, deployment: str, target: str, commit: str | None, components: tuple[str, ...]
) -> None:
    """A preview of deploying `commit` (None: the working tree's) to `target` with its lines
    (`atmos-tasks plan [--git-sha] --show-plan`), on stderr where the question follows. Its own
    process: this one is compiling the rollout, which takes the target's lock only after; the
    preview takes it and lets it go. Its plans of components that read nothing deployed are the
    rollout's own, which it then applies without planning again (`graph.preview_tasks`)."""
    argv = [sys.executable, "-m", "atmos_tasks.cli", "-C", str(root), "plan", deployment]
    argv += ["--target", target, "--show-plan", *(["--git-sha", commit] if commit else [])]
    if components:
        argv += ["--component", ",".join(components)]
    # What the preview writes is for the person asked: not a second section of a CI job summary.
    env = {name: value for name, value in os.environ.items() if name != "GITHUB_STEP_SUMMARY"}
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=sys.stderr, env=env, check=False)
    except OSError as err:
        sys.stderr.write(f"(the plan could not be shown: {err})\n")


def approve_direct(workspace: Workspace, plan: TargetPlan) -> None:
    """A plain rollout to a target whose rule asks for approvals only: the approvals of its commit."""
    from atmos_tasks import promotion
    from atmos_tasks.notes import read_note

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
    plan.approvals = list(new)  # recorded by the record task: compiling writes nothing
