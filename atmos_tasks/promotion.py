"""Promotion, approval and rollback rules (SPEC §11), checked before any apply.

`--promote-from S` deploys to a target the commit that S runs, along an allowed path, only once
that commit is verified on S (every component's latest record a success, soaked long enough, not
rejected), with the approvals the target requires. `--git-sha` rolls back (or forward) to a commit
this target ran before. The checks are pure functions over what Git says; each refusal says
what to do.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from atmos_tasks.errors import EXIT_REFUSED, AtmosError, Problem
from atmos_tasks.manifest import Manifest, Promotion
from atmos_tasks.tracking import ComponentState

if TYPE_CHECKING:
    from atmos_tasks.signing import Checked


class ApprovalGate(Protocol):
    """Signed approvals of one (deployment, target, commit): `signing.SignedApprovals`."""

    def check(self, entries: list[dict[str, Any]], kind: str = "approval") -> list[Checked]: ...

    def deployer(self) -> frozenset[str]: ...

    def sign(self, method: str) -> dict[str, Any]: ...


APPROVALS = "approvals"
REJECTIONS = "rejections"


@dataclass
class Source:
    """What a rollout deploys instead of the working tree."""

    commit: str
    promoted_from: str | None = None
    rollback: bool = False
    approvals: list[dict[str, Any]] = field(default_factory=list)  # new ones, to record
    approvers: list[str] = field(default_factory=list)  # everyone whose approval counted


def refused(message: str, hint: str) -> AtmosError:
    return AtmosError([Problem(message, None, hint)], EXIT_REFUSED)


def _when(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def target_states(
    states: dict[tuple[str, str, str], ComponentState],
    deployment: str,
    target: str,
    components: set[str] | None,
) -> dict[str, ComponentState]:
    return {
        name: state
        for (dep, tgt, name), state in states.items()
        if dep == deployment and tgt == target and (components is None or name in components)
    }


def check_path(manifest: Manifest, target: str, source: str) -> None:
    model = manifest.model
    if source not in model.targets:
        raise AtmosError.single(
            f"--promote-from {source!r}: deployment {manifest.name!r} has no such target",
            None,
            f"targets: {', '.join(manifest.promotion_order())}",
        )
    if source == target:
        raise AtmosError.single(
            f"--promote-from {source!r} is the target itself",
            None,
            "name the target this one receives promotions from",
        )
    promotion = model.targets[target].promotion
    allowed = promotion.sources if promotion else []
    if promotion is not None and allowed and source not in allowed:
        chain = " → ".join(_path_to(manifest, source, target)) or f"{' or '.join(allowed)} → {target}"
        raise refused(
            f"{target} accepts promotions from {', '.join(allowed)} only, not from {source}",
            f"follow the promotion path ({chain}): promote {source} to {allowed[0]} first",
        )


def _path_to(manifest: Manifest, source: str, target: str) -> list[str]:
    """The promotion path from `source` to `target`, if the manifest defines one."""
    sources = {
        t: (spec.promotion.sources if spec.promotion else []) for t, spec in manifest.model.targets.items()
    }
    queue: list[list[str]] = [[target]]
    while queue:
        path = queue.pop(0)
        for previous in sources.get(path[0], []):
            if previous in path:
                continue
            if previous == source:
                return [source, *path]
            queue.append([previous, *path])
    return []


def source_commit(
    deployment: str, source: str, states: dict[str, ComponentState], components: set[str] | None
) -> str:
    """The one commit every (selected) component of the source target runs."""
    deployed = {name: s.git_sha for name, s in states.items() if s.git_sha}
    if not deployed:
        raise refused(
            f"{source} runs nothing of {deployment} yet",
            f"roll out {deployment} to {source} first (doit rollout:{deployment}:{source})",
        )
    commits = sorted(set(deployed.values()))
    if len(commits) > 1:
        detail = ", ".join(f"{n} at {sha[:7]}" for n, sha in sorted(deployed.items()))
        raise AtmosError.single(
            f"the components of {source} run different commits ({detail})",
            None,
            "roll out the source target again so they agree, or narrow with --component",
        )
    return commits[0]


def check_verified(source: str, commit: str, states: dict[str, ComponentState]) -> None:
    for name, state in sorted(states.items()):
        latest = next((r for r in state.history), None)
        if latest is None or latest.git_sha != commit or latest.status not in ("success", "rollback"):
            what = f"{latest.status} at {latest.git_sha[:7]}" if latest else "no record"
            raise refused(
                f"{commit[:7]} is not verified on {source}: {name}'s latest rollout is {what}",
                f"fix {name} and roll out {source} again; only a commit every component ran successfully "
                "is promoted",
            )


def check_soak(
    source: str,
    target: str,
    commit: str,
    states: dict[str, ComponentState],
    promotion: Promotion | None,
    now: datetime,
) -> None:
    if promotion is None or not promotion.min_soak:
        return
    need = promotion.min_soak_seconds
    arrived = max(
        (_when(s.current.timestamp) for s in states.values() if s.current and s.current.git_sha == commit),
        default=None,
        key=lambda w: w or datetime.min.replace(tzinfo=UTC),
    )
    if arrived is None:
        return
    soaked = (now - arrived).total_seconds()
    if soaked < need:
        ready = arrived.timestamp() + need
        raise refused(
            f"{commit[:7]} has been on {source} for {_duration(soaked)}; {target} requires "
            f"{promotion.min_soak} there first (promotion.min_soak)",
            f"promote again after {datetime.fromtimestamp(ready, UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}",
        )


def check_rejections(commit: str, rejections: dict[str, Any], gate: ApprovalGate | None = None) -> None:
    """Refuses a rejected commit. With a gate (a target with `approvers`), only rejections whose
    signature verifies at the commit count; the others are named on stderr and ignored."""
    entries = [e for e in rejections.get("rejections", []) if isinstance(e, dict)]
    if gate is not None and entries:
        checked = gate.check(entries, "rejection")
        for item in checked:
            if item.reason is not None:
                sys.stderr.write(
                    f"warning: ignoring the rejection of {commit[:7]} by {item.entry.get('by', '?')}: "
                    f"{item.reason}\n"
                )
        entries = [item.entry for item in checked if item.reason is None]
    if entries:
        last = entries[-1]
        raise refused(
            f"{commit[:7]} was rejected by {last.get('by', '?')}: {last.get('reason', '')}",
            "deploy a later commit that fixes it; rejected commits are never promoted",
        )


def approvals_for(note: dict[str, Any], target: str) -> list[dict[str, Any]]:
    return [a for a in note.get("approvals", []) if isinstance(a, dict) and a.get("target") == target]


def unexpired(entries: list[dict[str, Any]], promotion: Promotion, now: datetime) -> list[dict[str, Any]]:
    """Self-asserted approvals younger than `approvals_expire_after` (all of them without it)."""
    ttl = promotion.approvals_expire_seconds
    if ttl is None:
        return entries
    return [a for a in entries if (at := _when(str(a.get("at", "")))) and now <= at + timedelta(seconds=ttl)]


def in_ci() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true" or os.environ.get("CI", "").lower() in ("true", "1")


def ci_approval(target: str, now: datetime) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "target": target,
        "method": "ci",
        "at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "by": os.environ.get("GITHUB_ACTOR") or os.environ.get("GITLAB_USER_LOGIN") or "ci",
    }
    # The platform's identity of the run that passed its gate: enough to find it again there.
    for key, variable in (
        ("run", "GITHUB_RUN_ID"),
        ("run_attempt", "GITHUB_RUN_ATTEMPT"),
        ("workflow", "GITHUB_WORKFLOW"),
        ("workflow_ref", "GITHUB_WORKFLOW_REF"),
        ("job", "GITHUB_JOB"),
        ("repository", "GITHUB_REPOSITORY"),
        ("ref", "GITHUB_REF"),
        ("sha", "GITHUB_SHA"),
        ("triggered_by", "GITHUB_TRIGGERING_ACTOR"),
        ("environment", "ATMOS_TASKS_ENVIRONMENT"),
        ("pipeline", "CI_PIPELINE_ID"),
        ("project", "CI_PROJECT_PATH"),
        ("job_id", "CI_JOB_ID"),
    ):
        if os.environ.get(variable):
            entry[key] = os.environ[variable]
    if os.environ.get("GITHUB_RUN_ID") and os.environ.get("GITHUB_REPOSITORY"):
        server = os.environ.get("GITHUB_SERVER_URL") or "https://github.com"
        entry["run_url"] = (
            f"{server}/{os.environ['GITHUB_REPOSITORY']}/actions/runs/{os.environ['GITHUB_RUN_ID']}"
        )
    elif os.environ.get("CI_JOB_URL"):
        entry["run_url"] = os.environ["CI_JOB_URL"]
    return entry


def decide_approvals(
    deployment: str,
    target: str,
    commit: str,
    promotion: Promotion | None,
    existing: list[dict[str, Any]],
    deployer: str,
    approve_flag: bool,
    now: datetime,
    ask: Any = None,
    gate: ApprovalGate | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The approvals to record for this rollout and who approved; refuses when the rule is not met.

    `ask` is called (with a question) for a manual approval on a terminal; None means no terminal.
    `gate` checks signed approvals: required when the rule names `approvers`.
    """
    if promotion is None or not promotion.approvals_required:
        return [], []
    need = promotion.approvals_required
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if promotion.approval_method == "ci":
        if not in_ci():
            raise refused(
                f"{target} is approved through the CI platform (approval_method: ci); this is not a CI run",
                f"run the promotion in the CI job whose environment gate approves {target}",
            )
        approval = ci_approval(target, now)
        return [approval], [approval["by"]]
    if promotion.approvers is not None:
        if gate is None:
            raise ValueError("a rule with approvers needs a gate that checks signatures")
        return _decide_signed(deployment, target, commit, promotion, existing, approve_flag, ask, gate)
    existing = unexpired(existing, promotion, now)
    self_excluded = promotion.self_approval_prevented

    def counted(entries: list[dict[str, Any]]) -> set[str]:
        return {a["by"] for a in entries if a.get("by") and not (self_excluded and a["by"] == deployer)}

    new: list[dict[str, Any]] = []
    if approve_flag:
        if self_excluded:
            raise refused(
                f"{target} does not accept its deployer's approval (prevent_self_approval), so --approve by "
                f"{deployer} does not count",
                f"ask {need} other approver(s): atmos-tasks approve {deployment} --target {target} "
                f"--git-sha {commit[:7]}",
            )
        new.append({"target": target, "by": deployer, "at": stamp, "method": "rollout"})
    have = counted(existing + new)
    if len(have) < need and not self_excluded and deployer not in have:
        if ask is None:
            raise refused(
                f"{target} requires manual approval of {commit[:7]} and no terminal is attached to ask",
                f"approve ahead of time (atmos-tasks approve {deployment} --target {target} --git-sha "
                f"{commit[:7]}), pass --approve, or run interactively",
            )
        if not ask(f"Approve deploying {commit[:7]} of {deployment} to {target}? [y/N] "):
            raise refused(f"deploying {commit[:7]} to {target} was not approved", "answer y to approve")
        new.append({"target": target, "by": deployer, "at": stamp, "method": "manual"})
        have = counted(existing + new)
    if len(have) < need:
        found = ", ".join(sorted(have)) or "none"
        own = " (your own approval does not count: prevent_self_approval)" if self_excluded else ""
        raise refused(
            f"{target} requires {need} approval(s) of {commit[:7]}, found {len(have)} ({found}){own}",
            f"ask another approver to run: atmos-tasks approve {deployment} --target {target} "
            f"--git-sha {commit[:7]}",
        )
    return new, sorted(have)


def _decide_signed(
    deployment: str,
    target: str,
    commit: str,
    promotion: Promotion,
    existing: list[dict[str, Any]],
    approve_flag: bool,
    ask: Any,
    gate: ApprovalGate,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Count distinct people whose signed approvals verify at the commit; never the deployer's
    with prevent_self_approval."""
    from atmos_tasks.signing import count_people

    need = promotion.approvals_required
    self_excluded = promotion.self_approval_prevented
    checked = gate.check(existing)
    mine: frozenset[str] | None = None

    def deployer() -> frozenset[str]:
        nonlocal mine
        if mine is None:
            mine = gate.deployer()
        return mine

    approvers = ", ".join(promotion.approvers or [])
    again = f"atmos-tasks approve {deployment} --target {target} --git-sha {commit[:7]}"
    new: list[dict[str, Any]] = []

    def add(method: str) -> None:
        entry = gate.sign(method)
        found = gate.check([entry])[0]
        if found.reason is not None:
            raise refused(
                f"your approval of {commit[:7]} for {target} would not count: {found.reason}",
                f"{target} counts approvals signed by {approvers} with a key the allowed signers list at "
                f"{commit[:7]}",
            )
        new.append(entry)
        checked.append(found)

    if approve_flag:
        if self_excluded:
            raise refused(
                f"{target} does not accept its deployer's approval (prevent_self_approval), so --approve "
                "does not count",
                f"ask {need} other approver(s) ({approvers}): {again}",
            )
        add("rollout")
    kept, own = count_people(checked, deployer() if self_excluded else frozenset())

    def may_ask() -> bool:
        """The deployer may add their own approval: it counts, and they have not given it yet."""
        return not self_excluded and not count_people(checked, deployer())[1]

    if len(kept) < need and ask is not None and may_ask():
        if not ask(f"Approve deploying {commit[:7]} of {deployment} to {target}? [y/N] "):
            raise refused(f"deploying {commit[:7]} to {target} was not approved", "answer y to approve")
        add("manual")
        kept, own = count_people(checked, frozenset())
    if len(kept) < need:
        found = ", ".join(group[0].shown for group in kept) or "none"
        notes = [f"{group[0].shown}'s is the deployer's own (prevent_self_approval)" for group in own]
        notes += [f"{item.shown}'s: {item.reason}" for item in checked if item.reason is not None]
        refusals = f"; not counted: {'; '.join(notes)}" if notes else ""
        yourself = "; or approve it yourself with --approve (or on a terminal)" if may_ask() else ""
        raise refused(
            f"{target} requires {need} signed approval(s) of {commit[:7]} from distinct approvers, found "
            f"{len(kept)} ({found}){refusals}",
            f"ask an approver ({approvers}) to run: {again}{yourself}",
        )
    return new, sorted(group[0].shown for group in kept)


def terminal_ask(question: str) -> bool:
    sys.stderr.write(question)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def ask_if_terminal() -> Any:
    return terminal_ask if sys.stdin.isatty() else None


def check_rollback(target: str, commit: str, states: dict[str, ComponentState]) -> None:
    deployed = [r for s in states.values() for r in s.history if r.status in ("success", "rollback")]
    if any(r.git_sha == commit for r in deployed):
        return
    recent = []
    for record in sorted(deployed, key=lambda r: r.timestamp, reverse=True):
        if record.git_sha[:7] not in recent:
            recent.append(record.git_sha[:7])
    raise refused(
        f"{commit[:7]} was never deployed to {target}; --git-sha rolls back to a commit this target ran",
        f"choose one of {', '.join(recent[:5])} (atmos-tasks history … --target {target})"
        if recent
        else f"{target} has no successful rollout to return to",
    )


def promotion_graph(manifest: Manifest) -> dict[str, Any]:
    targets = []
    edges = []
    for name in manifest.promotion_order():
        rule = manifest.model.targets[name].promotion
        entry: dict[str, Any] = {"name": name, "from": rule.sources if rule else []}
        if rule and rule.approvals_required:
            entry["approvals"] = rule.approvals_required
            entry["approval_method"] = rule.approval_method
            if rule.self_approval_prevented:
                entry["prevent_self_approval"] = True
        if rule and rule.min_soak:
            entry["min_soak"] = rule.min_soak
        targets.append(entry)
        edges += [{"from": source, "to": name} for source in entry["from"]]
    return {"deployment": manifest.name, "targets": targets, "edges": edges}


def promotion_status(
    manifest: Manifest,
    states: dict[tuple[str, str, str], ComponentState],
    notes: Any,
    now: datetime,
    gates: Callable[[str, str, Promotion], ApprovalGate] | None = None,
) -> dict[str, Any]:
    """For each target: what it runs, what each of its sources could promote, and what blocks it.

    `notes(namespace, commit)` reads a note document; `gates(target, commit, rule)` the
    `ApprovalGate` of a target whose rule names `approvers` (signed approvals are counted only when
    they verify).
    """
    deployment = manifest.name
    out: dict[str, Any] = {"deployment": deployment, "targets": {}}
    for name in manifest.promotion_order():
        spec = manifest.model.targets[name]
        here = target_states(states, deployment, name, None)
        running = sorted({s.git_sha for s in here.values() if s.git_sha})
        entry: dict[str, Any] = {"runs": running[0] if len(running) == 1 else running or None, "sources": {}}
        rule = spec.promotion
        for source in rule.sources if rule else []:
            on_source = target_states(states, deployment, source, None)
            candidate: dict[str, Any] = {"commit": None, "ready": False, "blocked_by": []}
            try:
                commit = source_commit(deployment, source, on_source, None)
                candidate["commit"] = commit
                if entry["runs"] == commit:
                    candidate["blocked_by"].append(f"{name} already runs {commit[:7]}")
                check_verified(source, commit, on_source)
                check_soak(source, name, commit, on_source, rule, now)
                gate = None
                if rule is not None and rule.approvers is not None and gates is not None:
                    gate = gates(name, commit, rule)
                check_rejections(commit, notes(REJECTIONS, commit), gate)
                if rule and rule.approvals_required and rule.approval_method == "manual":
                    approvals = approvals_for(notes(APPROVALS, commit), name)
                    if gate is not None:
                        from atmos_tasks.signing import count_people

                        have = len(count_people(gate.check(approvals))[0])
                    else:
                        have = len({a.get("by") for a in unexpired(approvals, rule, now)})
                    candidate["approvals"] = {"required": rule.approvals_required, "recorded": have}
                    if have < rule.approvals_required:
                        candidate["blocked_by"].append(
                            f"needs {rule.approvals_required} approval(s), {have} recorded"
                            + ("" if rule.self_approval_prevented else " (the deployer may approve)")
                        )
            except AtmosError as err:
                candidate["blocked_by"].append(err.problems[0].message)
            candidate["ready"] = not candidate["blocked_by"]
            entry["sources"][source] = candidate
        out["targets"][name] = entry
    return out
