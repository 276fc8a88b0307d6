"""Answers to "what is deployed where?" from Git records: status and history (SPEC §12).

Each answer is plain data (the documented JSON shapes) computed from one `read_records` call,
that is, one `git for-each-ref` process whatever the number of refs and tags.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from atmos_tasks.gitrepo import GitRepo
from atmos_tasks.tracking import ComponentState, DeploymentRecord, read_records


def _entry(state: ComponentState) -> dict[str, Any]:
    current = state.current
    latest = state.latest
    shown = current or latest
    entry: dict[str, Any] = {
        "git_sha": state.git_sha,
        "deployed_at": shown.timestamp if shown else None,
        "deployed_by": shown.deployed_by if shown else None,
        "status": latest.status if latest else "unknown",
        "type": shown.type if shown else None,
        "tag": shown.tag if shown else None,
        "inputs_hash": shown.inputs_hash if shown else None,
    }
    if shown and shown.image:
        entry["image"] = shown.image
    if shown and shown.promoted_from:
        entry["promoted_from"] = shown.promoted_from
    if latest is not None and current is not None and latest is not current:
        entry["last_attempt"] = {
            "status": latest.status,
            "git_sha": latest.git_sha,
            "timestamp": latest.timestamp,
            "tag": latest.tag,
        }
    return entry


def status(repo: GitRepo, deployment: str | None = None, target: str | None = None) -> dict[str, Any]:
    """deployment → target → component → {git_sha, deployed_at, deployed_by, status, …}."""
    states = read_records(repo, deployment, target)
    out: dict[str, Any] = {}
    for (dep, tgt, component), state in sorted(states.items()):
        if state.git_sha is None and not state.history:
            continue
        out.setdefault(dep, {}).setdefault(tgt, {})[component] = _entry(state)
    return out


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def history(
    repo: GitRepo,
    deployment: str,
    target: str,
    component: str | None = None,
    limit: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """The rollouts of one target, newest first; each groups the component records it wrote."""
    states = read_records(repo, deployment, target)
    records: list[DeploymentRecord] = []
    for (_dep, _tgt, name), state in states.items():
        if component is None or name == component:
            records.extend(state.history)
    groups: dict[tuple[str, str, str], list[DeploymentRecord]] = {}
    for record in records:
        when = _parse_time(record.timestamp)
        if since is not None and (when is None or when < since):
            continue
        if until is not None and (when is None or when > until):
            continue
        groups.setdefault((record.timestamp, record.git_sha, record.deployed_by), []).append(record)
    rollouts = []
    for (timestamp, git_sha, deployed_by), members in sorted(
        groups.items(), key=lambda kv: kv[0][0], reverse=True
    ):
        members.sort(key=lambda r: r.component)
        statuses = {r.status for r in members}
        overall = "failed" if "failed" in statuses else "rollback" if "rollback" in statuses else "success"
        first = members[0]
        rollout: dict[str, Any] = {
            "timestamp": timestamp,
            "git_sha": git_sha,
            "deployed_by": deployed_by,
            "status": overall,
            "components": {
                r.component: {
                    key: value
                    for key, value in {
                        "type": r.type,
                        "status": r.status,
                        "changes": r.changes,
                        "tag": r.tag,
                        "inputs_hash": r.inputs_hash,
                        "image": r.image,
                    }.items()
                    if value is not None
                }
                for r in members
            },
        }
        for key in ("promoted_from", "rollback_of"):
            value = getattr(first, key)
            if value:
                rollout[key] = value
        if first.metadata:
            rollout["metadata"] = first.metadata
        rollouts.append(rollout)
    if limit is not None:
        rollouts = rollouts[:limit]
    return {"deployment": deployment, "target": target, "rollouts": rollouts}
