"""`atmos-tasks prune`: retention of deployment records, and of the notes only they needed.

A record (a per-component tag, or one component's entry in a target rollout's tag) is kept when
any rule keeps it: it is the latest record of its component on its target, one of its last N, the
record that put in place what the component's ref points at, or younger than D. A tag goes only
when none of the records it holds is kept. The notes of a commit (every namespace of
`notes.NAMESPACES`) go only when a record that goes names it and no kept record of the
deployment, on any target, names it, nor any ref points at it; so whatever a rollback or a
promotion to a commit still recorded reads (its records, its `builds` note, its approvals and
rejections, its SBOM) stays. The refs under `refs/atmos/` are never touched.

`decide_prune` is pure. `prune` reads the records with `read_records` (two `git for-each-ref`s),
writes the pruned notes commits (unreachable until a ref moves), then deletes the tags and moves
the notes refs in one `update-ref` transaction, compare-and-swap on every one of them and on every
record ref the decision read: a process killed at any point leaves the old state or the new one.
With a remote, the same updates are pushed first, atomically and with leases, as
`record.write_records` does.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from atmos_tasks.errors import AtmosError, refused
from atmos_tasks.gitrepo import ZERO_SHA, GitRepo, RefRaceError, RefUpdate
from atmos_tasks.tracking import ComponentState, DeploymentRecord, ref_name, tag_order

States = Mapping[tuple[str, str, str], ComponentState]
_WEEKS = re.compile(r"^(?:(\d+)w)?(.*)$")


def retention_seconds(text: str) -> int:
    """`30d`, `12h`, `2w`, `1w3d`: the manifest's durations (`manifest.duration_seconds`) and weeks."""
    from atmos_tasks.manifest import duration_seconds

    match = _WEEKS.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"not a duration: {text!r}")
    weeks, rest = match.groups()
    return int(weeks or 0) * 7 * 86400 + (duration_seconds(rest) if rest else 0)


@dataclass(frozen=True)
class TargetPrune:
    """What goes on one target: its tags (name → tag object id) and how many records go and stay."""

    deployment: str
    target: str
    tags: dict[str, str | None] = field(default_factory=dict)
    removed: int = 0
    kept: int = 0


@dataclass(frozen=True)
class PruneDecision:
    targets: dict[tuple[str, str], TargetPrune]
    # deployment → the commits whose notes go (named by a removed record, by no kept one, by no ref)
    commits: dict[str, frozenset[str]]
    # deployment → the commits a kept record or a ref names: their notes stay
    kept_commits: dict[str, frozenset[str]]

    @property
    def tags(self) -> dict[str, str | None]:
        return {name: sha for t in self.targets.values() for name, sha in t.tags.items()}


def _when(text: str) -> datetime | None:
    try:
        found = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def decide_prune(
    records: States,
    now: datetime,
    keep_last: int,
    older_than: int | float | timedelta,
    *,
    deployment: str | None = None,
    target: str | None = None,
) -> PruneDecision:
    """Pure: the tags and the commits' notes that go, given every record of the deployments concerned.

    `records` is what `tracking.read_records` returns, for the whole deployment even when only one
    target is pruned: the notes of a commit are the deployment's, and a record of another target
    keeps them. Only records of `deployment`/`target` (None: every one) may go. `older_than`: seconds.
    """
    age = older_than if isinstance(older_than, timedelta) else timedelta(seconds=older_than)
    cutoff = now - age
    by_tag: dict[str, list[DeploymentRecord]] = {}
    kept_tags: set[str] = set()
    kept_records: list[DeploymentRecord] = []
    in_scope: set[tuple[str, str]] = set()
    referenced: dict[str, set[str]] = {}
    for (dep, tgt, component), state in records.items():
        if state.git_sha:
            referenced.setdefault(dep, set()).add(state.git_sha)
        history = sorted(state.history, key=tag_order, reverse=True)
        current = ComponentState(dep, tgt, component, state.git_sha, history).current
        scoped = (deployment is None or dep == deployment) and (target is None or tgt == target)
        if scoped:
            in_scope.add((dep, tgt))
        for index, record in enumerate(history):
            if record.tag is None:
                kept_records.append(record)  # not a tag this command can name
                continue
            by_tag.setdefault(record.tag, []).append(record)
            when = _when(record.timestamp)
            if (
                not scoped
                or index == 0  # the latest, whatever its age
                or index < keep_last
                or record is current  # what the ref points at, as status and soak read it
                or when is None  # an age it cannot tell is never old enough
                or when > cutoff
            ):
                kept_tags.add(record.tag)
    targets: dict[tuple[str, str], dict[str, Any]] = {
        key: {"tags": {}, "removed": 0, "kept": 0} for key in sorted(in_scope)
    }
    removed_commits: dict[str, set[str]] = {}
    for tag, members in sorted(by_tag.items()):
        kept = tag in kept_tags
        for record in members:
            entry = targets.get((record.deployment, record.target))
            if kept:
                kept_records.append(record)
                if entry is not None:
                    entry["kept"] += 1
                continue
            removed_commits.setdefault(record.deployment, set()).add(record.git_sha)
            if entry is not None:
                entry["removed"] += 1
                entry["tags"][tag] = record.tag_object
    for record in kept_records:
        named = referenced.setdefault(record.deployment, set())
        named.add(record.git_sha)
        if record.rollback_of:
            named.add(record.rollback_of)
    return PruneDecision(
        {key: TargetPrune(key[0], key[1], **values) for key, values in targets.items()},
        {
            dep: frozenset(gone - referenced.get(dep, set()))
            for dep, gone in sorted(removed_commits.items())
            if gone - referenced.get(dep, set())
        },
        {dep: frozenset(named) for dep, named in sorted(referenced.items())},
    )


@dataclass(frozen=True)
class NotesPrune:
    """One notes ref of a deployment: its commit now, and the annotated commits whose notes go."""

    deployment: str
    namespace: str
    ref: str
    tip: str
    notes: dict[str, str]  # annotated commit → blob, as the tip holds them
    commits: tuple[str, ...]


def notes_to_prune(repo: GitRepo, commits: Mapping[str, frozenset[str]]) -> list[NotesPrune]:
    """The notes refs of `commits`' deployments that hold a note of one of them."""
    from atmos_tasks.notes import NAMESPACES, notes_ref

    refs = {notes_ref(dep, ns): (dep, ns) for dep in sorted(commits) for ns in NAMESPACES}
    if not refs:
        return []
    found = []
    for name, tip in repo.for_each_ref(list(refs), ["refname", "objectname"]):
        if name not in refs:
            continue
        dep, namespace = refs[name]
        notes = repo.notes_in(tip)
        gone = tuple(sorted(c for c in commits[dep] if c in notes))
        if gone:
            found.append(NotesPrune(dep, namespace, name, tip, notes, gone))
    return found


def prune(
    repo: GitRepo,
    deployment: str | None,
    target: str | None,
    keep_last: int,
    older_than: str,
    *,
    apply: bool = False,
    remote: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """`atmos-tasks prune`: what goes (a dry run), or (`apply`) remove it; the report either way."""
    from atmos_tasks.queries import check_scope
    from atmos_tasks.tracking import read_records

    try:
        seconds = retention_seconds(older_than)
    except ValueError:
        raise AtmosError.single(
            f"--older-than {older_than!r} is not a duration", None, "write e.g. 12h, 30d or 2w"
        ) from None
    if keep_last < 0:
        raise AtmosError.single(f"--keep-last {keep_last} is negative", None, "keep 0 or more records")
    now = now or datetime.now(UTC).replace(microsecond=0)
    if remote:
        sync(repo, remote)
    states = read_records(repo, deployment)
    check_scope(repo, {k: s for k, s in states.items() if target in (None, k[1])}, deployment, target)
    decision = decide_prune(states, now, keep_last, seconds, deployment=deployment, target=target)
    notes = notes_to_prune(repo, decision.commits)
    report = _report(decision, notes, keep_last, older_than, remote, dry_run=not apply)
    _in_promotion_order(repo, report["deployments"])
    if not apply or not (decision.tags or notes):
        return report
    local, pushed = _updates(repo, decision, notes, states, remote)
    if remote:
        try:
            repo.push_atomic(remote, pushed)
        except RefRaceError as err:
            raise refused(
                f"{remote} moved since prune read it (a rollout or another prune recorded meanwhile); "
                f"nothing was removed, here or on {remote}\n  git: {err}",
                "run the same prune again: it reads the remote afresh",
            ) from None
    try:
        repo.update_refs(local)
    except RefRaceError as err:
        done = f"{remote} is pruned, but " if remote else ""
        raise refused(
            f"{done}the records of this repository moved while prune ran (a rollout recorded meanwhile); "
            f"nothing was removed here\n  git: {err}",
            "run the same prune again",
        ) from None
    if remote:
        _tracked(repo, remote, [u for u in pushed if u.ref.startswith("refs/notes/")])
    return report


def sync(repo: GitRepo, remote: str) -> None:
    """The remote's refs, tags and notes, as a rollout with `--remote` starts from them."""
    from atmos_tasks.engine import fetch_records

    fetch_records(repo, remote)


def _updates(
    repo: GitRepo, decision: PruneDecision, notes: list[NotesPrune], states: States, remote: str | None
) -> tuple[list[RefUpdate], list[RefUpdate]]:
    """The local transaction and the remote push: tags deleted, notes refs moved to pruned notes
    commits, and every record ref read left where it was (compare-and-swap, a lease on the remote).

    With a remote, each pruned notes commit is a child of the one it prunes, so every clone
    fast-forwards to it; without one it has no parent, so nothing keeps the removed notes
    reachable, and a clone that shares a remote gets them back, with the tags, at its next sync
    instead of publishing their removal alone (see docs/decisions.md)."""
    from atmos_tasks.notes import tracking_ref

    tags = [
        RefUpdate(f"refs/tags/{name}", ZERO_SHA, sha) for name, sha in sorted(decision.tags.items()) if sha
    ]
    moves = []
    published = []
    for entry in notes:
        kept = {obj: blob for obj, blob in entry.notes.items() if obj not in entry.commits}
        new = repo.notes_commit(kept, [entry.tip] if remote else [], "Notes pruned by atmos-tasks")
        moves.append(RefUpdate(entry.ref, new, entry.tip))
        if remote:
            published.append(RefUpdate(entry.ref, new, repo.ref(tracking_ref(remote, entry.ref))))
    guards = [
        RefUpdate(ref_name(*key), state.git_sha, state.git_sha)
        for key, state in sorted(states.items())
        if state.git_sha
    ]
    return [*tags, *moves, *guards], [*tags, *published, *guards]


def _tracked(repo: GitRepo, remote: str, pushed: list[RefUpdate]) -> None:
    """The notes tracking refs follow a successful push, as a fetch would have moved them."""
    from atmos_tasks.notes import tracking_ref

    with contextlib.suppress(RefRaceError):  # the next fetch corrects them either way
        repo.update_refs([RefUpdate(tracking_ref(remote, u.ref), u.new, u.old) for u in pushed])


def _in_promotion_order(repo: GitRepo, deployments: dict[str, Any]) -> None:
    """Each deployment's targets as its manifest chains them (dev → staging → prod)."""
    from atmos_tasks.targetorder import manifest_orders, ordered

    several = [dep for dep, entry in deployments.items() if len(entry["targets"]) > 1]
    for dep, order in manifest_orders(repo.root, several).items():
        targets = deployments[dep]["targets"]
        deployments[dep]["targets"] = {tgt: targets[tgt] for tgt in ordered(targets, order)}


def _report(
    decision: PruneDecision,
    notes: list[NotesPrune],
    keep_last: int,
    older_than: str,
    remote: str | None,
    dry_run: bool,
) -> dict[str, Any]:
    deployments: dict[str, Any] = {}
    for (dep, tgt), found in decision.targets.items():
        entry = deployments.setdefault(dep, {"targets": {}, "notes": {}})
        entry["targets"][tgt] = {"tags": sorted(found.tags), "removed": found.removed, "kept": found.kept}
    for item in notes:
        entry = deployments.setdefault(item.deployment, {"targets": {}, "notes": {}})
        entry["notes"][item.namespace] = list(item.commits)
    return {
        "dry_run": dry_run,
        "keep_last": keep_last,
        "older_than": older_than,
        "remote": remote,
        "deployments": deployments,
        "removed": {
            "tags": len(decision.tags),
            "records": sum(t.removed for t in decision.targets.values()),
            "notes": sum(len(item.commits) for item in notes),
            "commits": len({c for item in notes for c in item.commits}),
        },
    }
