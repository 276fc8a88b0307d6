"""`atmos-tasks diff`: how two targets (or two commits) differ (SPEC §12, the brief's §6).

Commits of each side and how many apart, components whose commit or image differs, resolved
configuration differences per key (with increased/decreased markers), and with `--show-code` the
files and line counts changed between the two commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atmos_tasks.errors import AtmosError
from atmos_tasks.manifest import load_deployment
from atmos_tasks.queries import unknown_target
from atmos_tasks.secrets import Secrets, sensitive_values
from atmos_tasks.tracking import ComponentState, read_records


@dataclass
class Side:
    label: str
    target: str | None
    commit: str
    components: dict[str, dict[str, Any]]
    deployed_at: str | None = None
    as_target: str | None = None  # the target whose context resolves a commit-only side


def _side(
    repo: Any,
    states: dict[tuple[str, str, str], ComponentState],
    deployment: str,
    target: str | None,
    sha: str | None,
    component: str | None,
) -> Side:
    components: dict[str, dict[str, Any]] = {}
    deployed_at = None
    if target is not None:
        for (dep, tgt, name), state in sorted(states.items()):
            if dep != deployment or tgt != target or state.git_sha is None:
                continue
            if component is not None and name != component:
                continue
            current = state.current
            shown = current or state.latest
            components[name] = {
                "kind": shown.type if shown else None,
                "git_sha": state.git_sha,
                "image": current.image if current else None,
            }
            if current and (deployed_at is None or current.timestamp > deployed_at):
                deployed_at = current.timestamp
    if sha is not None:
        commit = repo.rev_parse(sha)
        if commit is None:
            raise AtmosError.single(
                f"{sha!r} is not a commit of this repository",
                None,
                "give a commit id (see atmos-tasks history)",
            )
    else:
        if not components:
            raise AtmosError.single(
                f"{target} runs nothing of {deployment}{' for ' + component if component else ''}",
                None,
                "roll it out first, or compare commits with --from-sha/--to-sha",
            )
        counts: dict[str, int] = {}
        for entry in components.values():
            counts[entry["git_sha"]] = counts.get(entry["git_sha"], 0) + 1
        commit = max(counts, key=lambda c: counts[c])
    label = target or commit[:7]
    return Side(label, target, commit, components, deployed_at)


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}"))
        return out
    return {prefix: value}


def _change(old: Any, new: Any) -> str:
    if old is None:
        return "added"
    if new is None:
        return "removed"
    numbers = (int, float)
    if (
        isinstance(old, numbers)
        and isinstance(new, numbers)
        and not isinstance(old, bool)
        and not isinstance(new, bool)
    ):
        return "increased" if new > old else "decreased"
    return "changed"


@dataclass
class Configuration:
    """A side as resolved from its commit: its values by key, and the repository paths that
    configure or build it (None when the side could not be resolved)."""

    values: dict[str, Any]
    paths: set[str] | None = None
    owners: dict[str, tuple[str, str]] = field(default_factory=dict)  # key → (component, kind)


def _configuration(
    workspace: Any, deployment: str, side: Side, component: str | None, hidden: Secrets
) -> Configuration:
    """The side's resolved values by key; the values of sensitive variables go into `hidden`."""
    from atmos_tasks.discovery import module_view, resolve_all, sensitive_names
    from atmos_tasks.workspace import workspace_at

    target = side.target or side.as_target
    if target is None:
        return Configuration({})
    at = workspace_at(workspace, side.commit)
    manifest = load_deployment(at.config, deployment)
    if target not in manifest.model.targets:
        return Configuration({})
    resolved = resolve_all(at, manifest, [target])[target]
    flat = _flatten(dict(manifest.model.targets[target].context), "context")
    context = set(flat)
    used = [manifest.path, at.config.root / "atmos.yaml", *resolved.stack_files]
    owners: dict[str, tuple[str, str]] = {}
    for ref, resolved_component in resolved.components.items():
        if component is None or ref.name == component:
            flat.update(_flatten(resolved_component.vars, f"{ref.name}.vars"))
            names = sensitive_names(at, resolved_component)
            hidden.add(sensitive_values(names, resolved_component.vars, resolved_component.env))
            if resolved_component.vendor is not None:
                # Which version of a vendored module the side runs (dev and prod may pin different ones).
                module = module_view(at.config, resolved_component)
                flat.update({f"{ref.name}.module.{k}": module[k] for k in ("source", "version")})
            if resolved_component.module_dir is not None:
                used.append(resolved_component.module_dir)
            if resolved_component.image is not None:
                used.append(resolved_component.image.source_dir)
            owners.update(
                {key: (ref.name, ref.type) for key in flat if key not in context and key not in owners}
            )
    values = {k: v for k, v in flat.items() if v != {}}
    return Configuration(values, _repository_paths(at.config.root, used), owners)


def _repository_paths(root: Path, paths: list[Path]) -> set[str]:
    """The paths inside the checkout at `root`, relative to it (a vendored module's workspace or a
    folder outside the repository is no file of its commits)."""
    root = root.resolve()
    found = set()
    for path in paths:
        try:
            relative = path.resolve().relative_to(root)
        except ValueError:
            continue
        if relative.parts and relative.parts[0] != ".atmos":
            found.add(relative.as_posix())
    return found


def diff(
    workspace: Any,
    deployment: str,
    from_target: str | None,
    to_target: str | None,
    from_sha: str | None,
    to_sha: str | None,
    component: str | None,
    show_code: bool,
) -> dict[str, Any]:
    if (from_target is None and from_sha is None) or (to_target is None and to_sha is None):
        raise AtmosError.single(
            "diff needs two sides", None, "give --from-target or --from-sha, and --to-target or --to-sha"
        )
    manifest = load_deployment(workspace.config, deployment)
    repo = workspace.repo
    states = read_records(repo, deployment)
    recorded = {target for _, target, _ in states}
    for target in (from_target, to_target):
        if target is not None and target not in manifest.model.targets and target not in recorded:
            raise unknown_target(manifest, target)
    old = _side(repo, states, deployment, from_target, from_sha, component)
    new = _side(repo, states, deployment, to_target, to_sha, component)
    # A commit on its own is read as the other side's target would run it (or the default target):
    # "what would change if dev ran this commit".
    default = manifest.model.context.default_target
    for side, other in ((old, new), (new, old)):
        if side.target is None:
            side.as_target = other.target or default
            if other.target is not None:
                side.components = {
                    name: {"kind": entry["kind"], "git_sha": side.commit, "image": None}
                    for name, entry in other.components.items()
                }
    components = {}
    for name in sorted(set(old.components) | set(new.components)):
        a, b = old.components.get(name), new.components.get(name)
        changed = (
            a is None
            or b is None
            or a["git_sha"] != b["git_sha"]
            or (a.get("image") is not None and b.get("image") is not None and a["image"] != b["image"])
        )
        kind = (b or a or {}).get("kind")
        components[name] = {
            "kind": kind,
            "from": _without_kind(a),
            "to": _without_kind(b),
            "changed": changed,
        }
    hidden = Secrets()
    resolved_before = _configuration(workspace, deployment, old, component, hidden)
    resolved_after = _configuration(workspace, deployment, new, component, hidden)
    before, after = resolved_before.values, resolved_after.values
    owners = {**resolved_before.owners, **resolved_after.owners}
    configuration = [
        {
            "key": key,
            "component": owners.get(key, (None, None))[0],
            "kind": owners.get(key, (None, None))[1],
            "from": before.get(key),
            "to": after.get(key),
            "change": _change(before.get(key), after.get(key)),
        }
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]
    subjects = repo.subjects([old.commit, new.commit])
    out: dict[str, Any] = {
        "deployment": deployment,
        "from": {
            "label": old.label,
            "target": old.target,
            "as_target": old.as_target,
            "git_sha": old.commit,
            "subject": subjects.get(old.commit),
            "deployed_at": old.deployed_at,
        },
        "to": {
            "label": new.label,
            "target": new.target,
            "as_target": new.as_target,
            "git_sha": new.commit,
            "subject": subjects.get(new.commit),
            "deployed_at": new.deployed_at,
        },
        "commits": {
            "behind": repo.count_between(old.commit, new.commit),
            "ahead": repo.count_between(new.commit, old.commit),
        },
        "components": components,
        "configuration": configuration,
    }
    if show_code:
        out["code"] = _code(repo, old.commit, new.commit, resolved_before.paths, resolved_after.paths)
    # Compared as they are, shown masked: a changed secret is listed, its values are not.
    return hidden.mask_tree(out)  # type: ignore[no-any-return]


def _without_kind(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if entry is None else {k: v for k, v in entry.items() if k != "kind"}


def _code(repo: Any, old: str, new: str, before: set[str] | None, after: set[str] | None) -> dict[str, Any]:
    """What changed in the code between the two commits: the commits between them and the files
    changed, limited to the paths either side's components are configured or built from when
    those are known."""
    paths = None if before is None and after is None else sorted((before or set()) | (after or set()))
    if paths == []:
        paths = None
    files = [{"path": p, "added": a, "deleted": d} for a, d, p in repo.numstat(old, new, paths)]
    log = [
        {"git_sha": sha, "subject": subject, "side": "to" if newer else "from"}
        for sha, subject, newer in repo.commits_between(old, new, paths)
    ]
    return {
        "commits": len(log),
        "files_changed": len(files),
        "added": sum(f["added"] or 0 for f in files),
        "deleted": sum(f["deleted"] or 0 for f in files),
        "files": files,
        "log": log,
        "paths": paths,
    }
