"""Answers to "what is deployed where?" from Git records: status, history and the SBOM of what a
target runs (SPEC §12).

Each answer is plain data (the documented JSON shapes) computed from one `read_records` call,
that is, two `git for-each-ref` processes (refs, then tags) whatever the number of refs and tags.

A name the records know is always answered, also once its manifest is deleted. A name they do not
know is looked up in the manifests: a target that exists but never ran is an empty answer, a name
no manifest has either is bad input (exit 2), never an empty answer that looks like a true one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmos_tasks.atomic import write_atomic
from atmos_tasks.errors import AtmosError, Location
from atmos_tasks.gitrepo import GitRepo
from atmos_tasks.notes import read_note
from atmos_tasks.process import collector_paused
from atmos_tasks.tracking import ComponentState, DeploymentRecord, read_records

if TYPE_CHECKING:
    from atmos_tasks.config import RepoConfig
    from atmos_tasks.manifest import Manifest

States = dict[tuple[str, str, str], ComponentState]


def _suggest(word: str, choices: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def unknown_target(manifest: Manifest, target: str, recorded: Iterable[str] = ()) -> AtmosError:
    """`deployment 'api' has no target 'qa'`, at the manifest's `targets`, with the ones it has."""
    targets = manifest.promotion_order()
    targets += sorted(set(recorded) - set(targets))
    return AtmosError.single(
        f"deployment {manifest.name!r} has no target {target!r}",
        manifest.locate(["targets"], at_key=True),
        _suggest(target, targets) + f"targets: {', '.join(targets)}",
    )


def check_scope(
    repo: GitRepo,
    states: States,
    deployment: str | None,
    target: str | None,
    component: str | None = None,
) -> None:
    """Bad input when a deployment, target or component named is known to no record and no manifest.

    The records read for the answer decide first: manifests are read only when they hold nothing
    of the scope, so a query of what is deployed still costs only `read_records`'s Git reads.
    """
    if deployment is None and target is None:
        return
    if states and (component is None or any(name == component for *_, name in states)):
        return
    from atmos_tasks.config import load_config
    from atmos_tasks.manifest import load_deployment, manifest_path

    config = load_config(repo.root)
    if deployment is None:
        assert target is not None
        _check_target_anywhere(repo, config, target)
        return
    path = manifest_path(config, deployment)
    if not path.is_file():
        _check_records_only(repo, config, states, deployment, target, component, path)
        return
    if target is None and component is None:
        return  # a deployment with nothing deployed yet
    manifest = load_deployment(config, deployment)
    if target is not None and not states and target not in manifest.model.targets:
        raise unknown_target(manifest, target)
    if component is not None and manifest.find_component(component) is None:
        names = [ref.name for ref in manifest.components()]
        raise AtmosError.single(
            f"deployment {deployment!r} has no component {component!r}",
            manifest.locate(["components"], at_key=True),
            _suggest(component, names) + f"components: {', '.join(names)}",
        )


def _check_records_only(
    repo: GitRepo,
    config: RepoConfig,
    states: States,
    deployment: str,
    target: str | None,
    component: str | None,
    path: Path,
) -> None:
    """A deployment without a manifest: only its records can make the names known."""
    shown = Location(config.shown(path))
    recorded = states if target is None else read_records(repo, deployment)
    if not recorded:
        from atmos_tasks.manifest import list_manifest_paths

        known = sorted({p.stem for p in list_manifest_paths(config)} | {d for d, _, _ in read_records(repo)})
        raise AtmosError.single(
            f"no deployment named {deployment!r}",
            shown,
            _suggest(deployment, known) + f"deployments: {', '.join(known) or '(none)'}",
        )
    targets = sorted({t for _, t, _ in recorded})
    if target is not None and target not in targets:
        raise AtmosError.single(
            f"deployment {deployment!r} has no target {target!r}",
            shown,
            _suggest(target, targets) + f"its manifest is gone; targets recorded: {', '.join(targets)}",
        )
    if component is None:
        return
    names = sorted({n for _, _, n in states})
    raise AtmosError.single(
        f"{deployment}/{target} has no component {component!r}",
        shown,
        _suggest(component, names) + f"its manifest is gone; components recorded: {', '.join(names)}",
    )


def _check_target_anywhere(repo: GitRepo, config: RepoConfig, target: str) -> None:
    """`--target` without a deployment: some manifest (or record) must have that target."""
    from atmos_tasks.manifest import list_manifest_paths, load_deployment

    targets: list[str] = []
    problems = []
    for path in list_manifest_paths(config):
        try:
            manifest = load_deployment(config, path.stem)
        except AtmosError as err:
            problems += err.problems  # it might be the one with that target: say why it cannot tell
            continue
        if target in manifest.model.targets:
            return
        targets += [t for t in manifest.promotion_order() if t not in targets]
    if problems:
        raise AtmosError(problems)
    targets += sorted({t for _, t, _ in read_records(repo)} - set(targets))
    raise AtmosError.single(
        f"no deployment has a target {target!r}",
        None,
        _suggest(target, targets) + f"targets: {', '.join(targets) or '(none)'}",
    )


NOT_SIGNED = {"status": "unverified", "reason": "not signed"}


def signatures(repo: GitRepo, records: Iterable[DeploymentRecord]) -> dict[str, dict[str, Any]]:
    """Tag object → its signature's state (`signing.tag_signature`), checked against the allowed
    signers at the commit each record deployed. Unsigned records cost nothing; signed ones one
    `git cat-file --batch` for all, and ssh-keygen only for results not cached in .atmos/cache."""
    signed = {r.tag_object: r for r in records if r.signed and r.tag_object}
    if not signed:
        return {}
    import contextlib
    import hashlib
    import json

    from atmos_tasks.config import load_config
    from atmos_tasks.signing import AllowedSigners, tag_signature

    path = load_config(repo.root).allowed_signers
    specs = {obj: f"{record.git_sha}:./{path}" for obj, record in signed.items()}
    objects = repo.read_objects([*signed, *specs.values()])
    cache_path = repo.root / ".atmos" / "cache" / "signatures.json"
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    cache = cache if isinstance(cache, dict) else {}
    found: dict[str, dict[str, Any]] = {}
    changed = False
    for obj in signed:
        tag = objects.get(obj)
        signers_object = objects.get(specs[obj])
        text = signers_object[1].decode("utf-8", "replace") if signers_object else None
        key = f"{obj}:{hashlib.sha256((text or '').encode()).hexdigest()[:16] if text is not None else '-'}"
        if isinstance(cache.get(key), dict):
            found[obj] = cache[key]
            continue
        if tag is None:
            found[obj] = {"status": "unverified", "reason": "the tag object is missing"}
            continue
        found[obj] = cache[key] = tag_signature(
            tag[1], AllowedSigners.parse(text) if text is not None else None
        )
        changed = True
    if changed:
        with contextlib.suppress(OSError):  # a cache only
            write_atomic(cache_path, json.dumps(cache, sort_keys=True))
    return found


def _signature(record: DeploymentRecord | None, checked: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if record is None or not record.tag_object:
        return dict(NOT_SIGNED)
    return dict(checked.get(record.tag_object, NOT_SIGNED))


def _entry(
    state: ComponentState,
    checked: dict[str, dict[str, Any]],
    current: DeploymentRecord | None,
    latest: DeploymentRecord | None,
) -> dict[str, Any]:
    shown = current or latest
    if shown is None:
        entry: dict[str, Any] = {
            "git_sha": state.git_sha,
            "deployed_at": None,
            "deployed_by": None,
            "status": "unknown",
            "type": None,
            "kind": None,
            "tag": None,
            "inputs_hash": None,
            "signature": dict(NOT_SIGNED),
        }
        return entry
    entry = {
        "git_sha": state.git_sha,
        "deployed_at": shown.timestamp,
        "deployed_by": shown.deployed_by,
        "status": latest.status if latest else "unknown",
        "type": shown.type,
        "kind": shown.type,
        "tag": shown.tag,
        "inputs_hash": shown.inputs_hash,
        "signature": _signature(shown, checked),
    }
    if shown.image:
        entry["image"] = shown.image
    if shown.promoted_from:
        entry["promoted_from"] = shown.promoted_from
    if latest is not None and current is not None and latest is not current:
        entry["last_attempt"] = {
            "status": latest.status,
            "git_sha": latest.git_sha,
            "timestamp": latest.timestamp,
            "tag": latest.tag,
        }
    return entry


def status(
    repo: GitRepo,
    deployment: str | None = None,
    target: str | None = None,
    *,
    health: bool = True,
    drift: bool = False,
) -> dict[str, Any]:
    """deployment → target → component → {git_sha, deployed_at, deployed_by, status, …}.

    With `health`, components of kinds that have a probe also get `health`, read live (the
    engine that runs them, not Git); kinds without one are not asked. With `drift`, each component
    that runs something gets `drift`: the last drift check of that deployment, from the deployed
    commit's `drift` note (null when none checked it)."""
    if deployment is None and target is not None:
        # Records are filed deployment first: a target alone is a filter over all of them.
        states = {key: state for key, state in read_records(repo).items() if key[1] == target}
    else:
        states = read_records(repo, deployment, target)
    check_scope(repo, states, deployment, target)
    with collector_paused():
        shown = [
            (key, state, state.current, state.latest)
            for key, state in sorted(states.items())
            if state.git_sha is not None or state.history
        ]
        checked = signatures(repo, [r for *_, current, latest in shown if (r := current or latest)])
        drift_notes = _drift_notes(repo, shown) if drift else {}
        out: dict[str, Any] = {}
        for (dep, tgt, component), state, current, latest in shown:
            entry = _entry(state, checked, current, latest)
            if health and state.git_sha is not None:
                found = _health(entry.get("type"), dep, tgt, component)
                if found is not None:
                    entry["health"] = found
            if drift and state.git_sha is not None:
                from atmos_tasks.drift import current as current_check

                recorded = drift_notes.get((dep, state.git_sha), {}).get(tgt)
                found = recorded.get(component) if isinstance(recorded, dict) else None
                entry["drift"] = current_check(found, entry["deployed_at"] if current else None)
            out.setdefault(dep, {}).setdefault(tgt, {})[component] = entry
    # Targets as the manifest chains them (dev → staging → prod), not alphabetically.
    from atmos_tasks.targetorder import manifest_orders, ordered

    for dep, order in manifest_orders(repo.root, [d for d, found in out.items() if len(found) > 1]).items():
        out[dep] = {tgt: out[dep][tgt] for tgt in ordered(out[dep], order)}
    return out


def _drift_notes(repo: GitRepo, shown: list[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    from atmos_tasks.drift import recorded

    return recorded(repo, {(key[0], state.git_sha) for key, state, *_ in shown if state.git_sha})


def _health(kind_name: str | None, deployment: str, target: str, component: str) -> dict[str, Any] | None:
    from atmos_tasks import kinds

    if not kind_name or kind_name not in kinds.names():
        return None  # recorded by a kind this installation does not have
    found = kinds.get(kind_name).health(deployment, target, component)
    return None if found is None else {**found.to_json(), "shown": found.shown()}


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
    check_scope(repo, states, deployment, target, component)
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
    ordered = sorted(groups.items(), key=lambda kv: kv[0][0], reverse=True)
    if limit is not None:
        ordered = ordered[:limit]
    checked = signatures(repo, [r for _key, members in ordered for r in members])
    subjects = repo.subjects(sorted({git_sha for (_when, git_sha, _by), _members in ordered}))
    rollouts = []
    for (timestamp, git_sha, deployed_by), members in ordered:
        members.sort(key=lambda r: r.component)
        statuses = {r.status for r in members}
        overall = "failed" if "failed" in statuses else "rollback" if "rollback" in statuses else "success"
        first = members[0]
        rollout: dict[str, Any] = {
            "timestamp": timestamp,
            "git_sha": git_sha,
            "subject": subjects.get(git_sha),
            "deployed_by": deployed_by,
            "status": overall,
            "components": {
                r.component: {
                    key: value
                    for key, value in {
                        "type": r.type,
                        "kind": r.type,
                        "status": r.status,
                        "changes": r.changes,
                        "tag": r.tag,
                        "inputs_hash": r.inputs_hash,
                        "image": r.image,
                        "signature": _signature(r, checked),
                    }.items()
                    if value is not None
                }
                for r in members
            },
        }
        states_seen = {c["signature"]["status"] for c in rollout["components"].values()}
        rollout["signature"] = (
            "bad" if "bad" in states_seen else "verified" if states_seen == {"verified"} else "unverified"
        )
        signers = sorted(
            {c["signature"]["by"] for c in rollout["components"].values() if "by" in c["signature"]}
        )
        if signers:
            rollout["signed_by"] = ", ".join(signers)
        for key in ("promoted_from", "rollback_of"):
            value = getattr(first, key)
            if value:
                rollout[key] = value
        if first.metadata:
            rollout["metadata"] = first.metadata
        rollouts.append(rollout)
    return {"deployment": deployment, "target": target, "rollouts": rollouts}


@dataclass(frozen=True)
class SeveralCommits:
    """A target whose components run different commits: the SBOM shown is the one deployed last."""

    deployment: str
    target: str
    chosen: str
    commits: dict[str, list[str]]  # each commit (sorted) → the components that run it
    kinds: dict[str, str]  # each component's kind, for its display name


def deployed_sbom(
    repo: GitRepo,
    deployment: str,
    target: str,
    component: str | None,
    git_sha: str | None,
    several: Callable[[SeveralCommits], None],
) -> dict[str, Any]:
    """The CycloneDX SBOM recorded for what `target` runs: of `git_sha`, else of the commit
    `component` runs, else of the commit deployed last (`several` hears of it when components
    disagree); narrowed to `component` when one is named."""
    from atmos_tasks.record import SBOM  # the record module loads doit: not on `status`'s path

    deployed = status(repo, deployment, target, health=False).get(deployment, {}).get(target, {})
    running = {name: entry for name, entry in deployed.items() if entry.get("git_sha")}
    if not running:
        raise AtmosError.single(
            f"{target} runs nothing of {deployment}",
            None,
            f"roll it out first: doit rollout:{deployment}:{target}",
        )
    commit = (git_sha and repo.commit(git_sha)) or _sbom_commit(
        deployment, target, component, running, several
    )
    bom = read_note(repo, deployment, SBOM, commit).get("targets", {}).get(target)
    if bom is None:
        raise AtmosError.single(
            f"no SBOM recorded for {deployment}/{target} at {commit[:7]}",
            None,
            "SBOMs are recorded by rollouts; roll the target out again to record one",
        )
    return _sbom_component(bom, component) if component else bom


def _sbom_commit(
    deployment: str,
    target: str,
    component: str | None,
    running: dict[str, dict[str, Any]],
    several: Callable[[SeveralCommits], None],
) -> str:
    """The commit `component` runs, else the one deployed last (components may disagree)."""
    if component in running:
        return str(running[component]["git_sha"])
    latest = max(running.values(), key=lambda e: (e.get("deployed_at") or "", e["git_sha"]))
    commits = {e["git_sha"] for e in running.values()}
    if len(commits) > 1:
        by_commit = {sha: [n for n, e in running.items() if e["git_sha"] == sha] for sha in sorted(commits)}
        kinds = {n: str(e["kind"]) for n, e in running.items() if e.get("kind")}
        several(SeveralCommits(deployment, target, str(latest["git_sha"]), by_commit, kinds))
    return str(latest["git_sha"])


def _sbom_component(bom: dict[str, Any], name: str) -> dict[str, Any]:
    """The part of an aggregated SBOM that describes one component."""
    for component in bom.get("components", []):
        if component.get("name") == name:
            # Nested bom-refs are `<component>:<ref>`: `api` must not take `api-admin:…` along.
            ref = str(component.get("bom-ref", ""))
            return {
                **bom,
                "components": [component],
                "dependencies": [
                    d
                    for d in bom.get("dependencies", [])
                    if d.get("ref") == ref or str(d.get("ref", "")).startswith(f"{ref}:")
                ],
            }
    raise AtmosError.single(
        f"the SBOM has no component {name!r}",
        None,
        "components: " + ", ".join(c.get("name", "?") for c in bom.get("components", [])),
    )
