"""`atmos-tasks diff`: how two targets (or two commits) differ (SPEC §12, the brief's §6).

Commits of each side and how many apart, components whose commit or image differs, resolved
configuration differences per key (with increased/decreased markers), and with `--show-code` the
files and line counts changed between the two commits.
"""

from __future__ import annotations

from dataclasses import dataclass
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
            components[name] = {"git_sha": state.git_sha, "image": current.image if current else None}
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


def _configuration(
    workspace: Any, deployment: str, side: Side, component: str | None, hidden: Secrets
) -> dict[str, Any]:
    """The side's resolved values by key; the values of sensitive variables go into `hidden`."""
    from atmos_tasks.discovery import module_view, resolve_all, sensitive_names
    from atmos_tasks.workspace import workspace_at

    target = side.target or side.as_target
    if target is None:
        return {}
    at = workspace_at(workspace, side.commit)
    manifest = load_deployment(at.config, deployment)
    if target not in manifest.model.targets:
        return {}
    resolved = resolve_all(at, manifest, [target])[target]
    flat = _flatten(dict(manifest.model.targets[target].context), "context")
    for ref, resolved_component in resolved.components.items():
        if component is None or ref.name == component:
            flat.update(_flatten(resolved_component.vars, f"{ref.name}.vars"))
            names = sensitive_names(at, resolved_component)
            hidden.add(sensitive_values(names, resolved_component.vars, resolved_component.env))
            if resolved_component.vendor is not None:
                # Which version of a vendored module the side runs (dev and prod may pin different ones).
                module = module_view(at.config, resolved_component)
                flat.update({f"{ref.name}.module.{k}": module[k] for k in ("source", "version")})
    return {k: v for k, v in flat.items() if v != {}}


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
                side.components = {name: {"git_sha": side.commit, "image": None} for name in other.components}
    components = {}
    for name in sorted(set(old.components) | set(new.components)):
        a, b = old.components.get(name), new.components.get(name)
        changed = (
            a is None
            or b is None
            or a["git_sha"] != b["git_sha"]
            or (a.get("image") is not None and b.get("image") is not None and a["image"] != b["image"])
        )
        components[name] = {"from": a, "to": b, "changed": changed}
    hidden = Secrets()
    before = _configuration(workspace, deployment, old, component, hidden)
    after = _configuration(workspace, deployment, new, component, hidden)
    configuration = [
        {
            "key": key,
            "from": before.get(key),
            "to": after.get(key),
            "change": _change(before.get(key), after.get(key)),
        }
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]
    out: dict[str, Any] = {
        "deployment": deployment,
        "from": {
            "label": old.label,
            "target": old.target,
            "as_target": old.as_target,
            "git_sha": old.commit,
            "deployed_at": old.deployed_at,
        },
        "to": {
            "label": new.label,
            "target": new.target,
            "as_target": new.as_target,
            "git_sha": new.commit,
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
        files = [{"path": p, "added": a, "deleted": d} for a, d, p in repo.numstat(old.commit, new.commit)]
        out["code"] = {
            "commits": out["commits"]["behind"] + out["commits"]["ahead"],
            "files_changed": len(files),
            "added": sum(f["added"] or 0 for f in files),
            "deleted": sum(f["deleted"] or 0 for f in files),
            "files": files,
        }
    # Compared as they are, shown masked: a changed secret is listed, its values are not.
    return hidden.mask_tree(out)  # type: ignore[no-any-return]
