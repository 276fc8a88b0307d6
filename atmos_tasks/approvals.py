"""Approvals and rejections as Git holds them (SPEC §11): `approve` and `reject` write them,
`promotion-status` counts them.

`promotion.py` keeps the rules, pure functions of records, notes, the rule and the time; this
module is their I/O half for the commands: it chooses the commit, signs the entry (`signing.py`),
checks it as the rollout will, writes the note (`notes.update_note`, compare-and-swap, pushed to
the remote when one is given) and returns plain data for `render.py` to show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from atmos_tasks import promotion
from atmos_tasks.config import load_config
from atmos_tasks.errors import AtmosError, refused
from atmos_tasks.gitrepo import GitRepo
from atmos_tasks.manifest import Promotion, load_deployment
from atmos_tasks.notes import read_note, union, update_note
from atmos_tasks.signing import SignedApprovals, count_people, signed_entry, signing_key, stamp
from atmos_tasks.tracking import read_records


@dataclass(frozen=True)
class Approved:
    deployment: str
    target: str
    commit: str
    by: str
    signed: bool
    count: int  # the approvals of the commit for the target that count now
    verified: bool  # counted by signature (the target names approvers), not as recorded


@dataclass(frozen=True)
class Rejected:
    deployment: str
    commit: str
    reason: str
    signed: bool


@dataclass(frozen=True)
class UnsignedRejection:
    """A rejection written without a signature, which these targets (they name approvers) ignore."""

    problem: str
    targets: list[str]


def invoker(repo: GitRepo) -> str:
    """Who approves, rejects or breaks a lock: the CI actor in CI, else Git's user.email."""
    from atmos_tasks.record import actor  # the record module loads doit; only now is it needed

    return actor(repo.ident())


def approve(root: Path, deployment: str, target: str, git_sha: str | None, remote: str | None) -> Approved:
    """Record the invoker's approval, signed with their Git signing key (required when the target
    names `approvers`: then it is checked now, as the rollout will check it, before it is written).

    The commit is `git_sha`, else the one the target's single promotion source runs."""
    config = load_config(root)
    manifest = load_deployment(config, deployment)
    if target not in manifest.model.targets:
        raise AtmosError.single(
            f"deployment {manifest.name!r} has no target {target!r}",
            None,
            f"targets: {', '.join(manifest.promotion_order())}",
        )
    repo = GitRepo(root)
    if remote:
        from atmos_tasks.engine import fetch_records  # the engine is heavy: only with a remote

        fetch_records(repo, remote)
    rule = manifest.model.targets[target].promotion
    commit = repo.commit(git_sha) if git_sha else None
    if commit is None:
        sources = rule.sources if rule else []
        if len(sources) != 1:
            raise AtmosError.single(
                f"which commit? {target} has {len(sources) or 'no'} promotion source(s)",
                None,
                "pass --git-sha",
            )
        states = read_records(repo, manifest.name)
        commit = promotion.source_commit(
            manifest.name, sources[0], promotion.target_states(states, manifest.name, sources[0], None), None
        )
    who = invoker(repo)
    now = datetime.now(UTC).replace(microsecond=0)
    gate = None
    if rule is not None and rule.approvers is not None and rule.approval_method == "manual":
        gate = SignedApprovals(repo, config.allowed_signers, manifest.name, target, commit, rule, now, who)
        entry = gate.sign("cli")
        checked = gate.check([entry])[0]
        if checked.reason is not None:
            raise refused(
                f"your approval of {commit[:7]} for {target} would not count: {checked.reason}",
                f"{target} counts approvals signed by {', '.join(rule.approvers)} with a key listed in "
                f"{gate.signers_path} at {commit[:7]} (see 'Who can approve' in docs/promotion.md)",
            )
        who = entry["by"]
    else:
        # Self-asserted approvals (no approvers named): signed all the same when a key is configured.
        key = signing_key(repo)
        fields = {"target": target, "by": who, "at": stamp(now), "method": "cli"}
        entry = signed_entry(key if key.can_sign else None, "approval", manifest.name, commit, fields)
    note = update_note(
        repo, manifest.name, promotion.APPROVALS, commit, {"approvals": [entry]}, union("approvals"), remote
    )
    entries = promotion.approvals_for(note, target)
    if gate is not None:
        count = len(count_people(gate.check(entries))[0])
    else:
        count = len({a.get("by") for a in (promotion.unexpired(entries, rule, now) if rule else entries)})
    return Approved(manifest.name, target, commit, who, "signature" in entry, count, gate is not None)


def reject(
    root: Path,
    deployment: str,
    git_sha: str,
    reason: str,
    remote: str | None,
    unsigned: Callable[[UnsignedRejection], None],
) -> Rejected:
    """Record a rejection, signed when the invoker has a signing key. Targets that name `approvers`
    honour only rejections that verify against the allowed signers at the commit: `unsigned` hears
    of an unsigned one before it is written."""
    manifest = load_deployment(load_config(root), deployment)
    repo = GitRepo(root)
    commit = repo.commit(git_sha)
    who = invoker(repo)
    key = signing_key(repo)
    fields = {"by": who, "at": stamp(datetime.now(UTC)), "reason": reason}
    entry = signed_entry(key if key.can_sign else None, "rejection", manifest.name, commit, fields)
    signed_targets = [
        name
        for name in manifest.promotion_order()
        if (rule := manifest.model.targets[name].promotion) is not None and rule.approvers is not None
    ]
    if "signature" not in entry and signed_targets:
        unsigned(UnsignedRejection(str(key.problem()), signed_targets))
    update_note(
        repo,
        manifest.name,
        promotion.REJECTIONS,
        commit,
        {"rejections": [entry]},
        union("rejections"),
        remote,
    )
    return Rejected(manifest.name, commit, reason, "signature" in entry)


def promotion_status(root: Path, deployment: str) -> dict[str, Any]:
    """For each target: what it runs, what each of its sources could promote, and what blocks it
    (`promotion.promotion_status` over the records and notes; signed approvals counted only when
    they verify against the allowed signers at the commit)."""
    config = load_config(root)
    manifest = load_deployment(config, deployment)
    repo = GitRepo(root)
    now = datetime.now(UTC)

    def gates(target: str, commit: str, rule: Promotion) -> SignedApprovals:
        return SignedApprovals(
            repo, config.allowed_signers, manifest.name, target, commit, rule, now, invoker(repo)
        )

    return promotion.promotion_status(
        manifest,
        read_records(repo, manifest.name),
        lambda namespace, commit: read_note(repo, manifest.name, namespace, commit),
        now,
        gates,
    )
