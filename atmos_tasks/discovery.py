"""What the user's repository declares and resolves to: list, describe, validate, graph, matrix,
build plans (SPEC §12).

Each function returns plain data (the documented JSON shapes); `render.py` shows it. The ones that
compile a target (graph, matrix, build plans) import the engine when they run: `describe` and
`validate` never load it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmos_tasks import kinds
from atmos_tasks.errors import AtmosError, Location, Problem, unique
from atmos_tasks.manifest import (
    ComponentRef,
    Manifest,
    inspect_manifest,
    list_manifest_paths,
    load_deployment,
    manifest_path,
)
from atmos_tasks.resolve import GitInfo, ResolvedComponent, ResolvedTarget
from atmos_tasks.secrets import Secrets, hide, sensitive_values
from atmos_tasks.stacks import Origin, StackLoader
from atmos_tasks.templates import is_template, output_references, references
from atmos_tasks.vendoring import module_origin
from atmos_tasks.yamlio import load_positioned, locate

if TYPE_CHECKING:
    from atmos_tasks.config import RepoConfig

NO_COMMIT = GitInfo("0" * 40, "")


def parse_labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise AtmosError.single(f"--label {pair!r} is not k=v", None, "write --label team=platform")
        labels[key] = value
    return labels


def list_deployments(workspace: Any, labels: dict[str, str]) -> list[dict[str, Any]]:
    """Every deployment whose labels include all of `labels`."""
    found = []
    problems: list[Problem] = []
    for path in list_manifest_paths(workspace.config):
        manifest, issues = inspect_manifest(path, workspace.config)
        if manifest is None:
            problems += issues
            continue
        model = manifest.model
        if any(model.labels.get(k) != v for k, v in labels.items()):
            continue
        found.append(
            {
                "name": model.name,
                "description": model.description or "",
                "labels": dict(model.labels),
                "targets": manifest.promotion_order(),
                "components": [str(ref) for ref in manifest.enabled_components()],
                "file": manifest.shown,
            }
        )
    if problems and not found:
        raise AtmosError(problems)
    return found


def _git(workspace: Any) -> GitInfo:
    try:
        return workspace.git_info()  # type: ignore[no-any-return]
    except AtmosError:
        return NO_COMMIT


def load_for(workspace: Any, deployment: str) -> Manifest:
    """One manifest, validated; a missing one names the deployments that exist."""
    return load_deployment(workspace.config, deployment)


def resolve_all(
    workspace: Any, manifest: Manifest, targets: list[str], describing: bool = False
) -> dict[str, ResolvedTarget]:
    loader = StackLoader(workspace.config)
    git = _git(workspace)
    out: dict[str, ResolvedTarget] = {}
    problems: list[Problem] = []
    for target in targets:
        try:
            out[target] = workspace.resolve(manifest, target, git, loader, describing)
        except AtmosError as err:
            problems = unique([*problems, *err.problems])
    if problems:
        raise AtmosError(problems)
    workspace.save_caches()
    return out


def _targets(manifest: Manifest, target: str | None) -> list[str]:
    if target is None:
        return manifest.promotion_order()
    if target not in manifest.model.targets:
        raise AtmosError.single(
            f"deployment {manifest.name!r} has no target {target!r}",
            manifest.locate(["targets"], at_key=True),
            f"targets: {', '.join(manifest.promotion_order())}",
        )
    return [target]


class _Positions:
    """Line and column of provenance origins, each file read once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: dict[str, Any] = {}

    def __call__(self, origin: Origin) -> str:
        if origin.file not in self._files:
            try:
                self._files[origin.file] = load_positioned(self.root / origin.file, origin.file)
            except (AtmosError, OSError):
                self._files[origin.file] = None
        root = self._files[origin.file]
        found = locate(root, list(origin.keypath)) if root is not None else None
        return str(Location(origin.file, *found)) if found else origin.file


def _flatten(prov: Any, positions: _Positions, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(prov, Origin):
        out[prefix] = positions(prov)
    elif isinstance(prov, dict):
        for key, sub in prov.items():
            out.update(_flatten(sub, positions, f"{prefix}.{key}" if prefix else str(key)))
    return out


def shown_vars(component: ResolvedComponent) -> dict[str, Any]:
    """Rendered vars, except values that read a dependency's outputs: those stay as written."""
    if not component.deferred:
        return component.vars

    def merge(template: Any, rendered: Any) -> Any:
        if isinstance(template, dict) and isinstance(rendered, dict):
            return {k: merge(template.get(k), v) for k, v in rendered.items()}
        if isinstance(template, list) and isinstance(rendered, list) and len(template) == len(rendered):
            return [merge(t, r) for t, r in zip(template, rendered, strict=True)]
        if (
            isinstance(template, str)
            and is_template(template)
            and (
                output_references(template)
                or any(references(template, root) for root in kinds.template_roots())
            )
        ):
            return template
        return rendered

    return dict(merge(component.vars_template, component.vars))


def sensitive_names(workspace: Any, component: ResolvedComponent) -> tuple[str, ...]:
    """What the user marks sensitive (`settings.sensitive`) and the component's kind knows is."""
    return kinds.of(component.ref).sensitive_names(workspace, component)


def describe_component(
    workspace: Any,
    resolved: ResolvedTarget,
    component: ResolvedComponent,
    positions: _Positions | None,
    hidden: Secrets | None = None,
) -> dict[str, Any]:
    """`hidden` collects the values of sensitive variables; their values are shown as `***`."""
    out = kinds.of(component.ref).describe(workspace.config, resolved, component)
    names = sensitive_names(workspace, component)
    if names:
        if hidden is not None:
            hidden.add(sensitive_values(names, component.vars, component.env))
        out["vars"] = hide(names, out["vars"])
        out["env"] = hide([n[4:] for n in names if n.startswith("env.")], out["env"])
    if positions is not None:
        out["provenance"] = {
            section: _flatten(component.provenance.get(section, {}), positions)
            for section in ("vars", "settings", "env")
        }
    return out


def module_view(config: Any, component: ResolvedComponent) -> dict[str, Any]:
    """Where a Terraform component's code comes from on this target: its folder in the repository,
    or the vendor entry chosen for the target's labels (source with the version filled in)."""
    entry = component.vendor
    if entry is None:
        folder = component.module_dir
        return {"vendored": False, "path": config.shown(folder) if folder is not None else None}
    origin = module_origin(component.folder, entry)
    view: dict[str, Any] = {"vendored": True, "source": origin["source"], "version": origin["version"]}
    if entry.origin is not None:
        view["entry"] = str(entry.origin)
    return view


def describe(
    workspace: Any, deployment: str, target: str | None, component: str | None, provenance: bool
) -> dict[str, Any]:
    """deployment → targets → components → the resolved config (see docs/json-output.md)."""
    manifest = load_for(workspace, deployment)
    targets = _targets(manifest, target)
    wanted: ComponentRef | None = None
    if component is not None:
        wanted = manifest.find_component(component)
        if wanted is None:
            names = ", ".join(str(r) for r in manifest.components())
            raise AtmosError.single(
                f"deployment {deployment!r} has no component {component!r}", None, f"components: {names}"
            )
    resolved = resolve_all(workspace, manifest, targets, describing=True)
    positions = _Positions(workspace.config.root) if provenance else None
    out: dict[str, Any] = {"deployment": manifest.name, "targets": {}}
    hidden = Secrets()
    for name, target_resolved in resolved.items():
        components = {
            ref.name: describe_component(workspace, target_resolved, rc, positions, hidden)
            for ref, rc in ((r, target_resolved.components[r]) for r in target_resolved.order())
            if wanted is None or ref == wanted
        }
        out["targets"][name] = {
            "stacks": target_resolved.stacks,
            "context": dict(manifest.model.targets[name].context),
            "labels": dict(manifest.model.targets[name].labels),
            "components": components,
            "disabled": [str(r) for r in target_resolved.disabled],
        }
    # A sensitive value may also be written elsewhere (another variable, a setting).
    return hidden.mask_tree(out)  # type: ignore[no-any-return]


def validate(workspace: Any, deployment: str | None) -> dict[str, Any]:
    """Every problem of every manifest (or one), including what resolving each target finds."""
    config = workspace.config
    paths = [manifest_path(config, deployment)] if deployment else list_manifest_paths(config)
    if deployment and not paths[0].is_file():
        load_for(workspace, deployment)
    report: dict[str, Any] = {"valid": True, "deployments": {}}
    loader = StackLoader(config)
    git = _git(workspace)
    for path in paths:
        manifest, problems = inspect_manifest(path, config)
        refused: list[str] = []
        if manifest is not None:
            missing = {p.location for p in problems if p.message.startswith("stack ")}
            for target in manifest.target_names():
                spec = manifest.model.targets[target]
                keys: list[list[str | int]] = [["stacks", i] for i in range(len(manifest.model.stacks))]
                keys += [["targets", target, "stacks", i] for i in range(len(spec.stacks))]
                if any(manifest.locate(k) in missing for k in keys):
                    continue
                try:
                    resolved = workspace.resolve(manifest, target, git, loader)
                except AtmosError as err:
                    problems = unique([*problems, *err.problems])
                    continue
                # Not bad input (Atmos accepts them): what the rollout of a component will refuse.
                refused += [
                    f"{target}: {warning}"
                    for component in resolved.components.values()
                    for warning in kinds.of(component.ref).warnings(component)
                ]
        report["deployments"][path.stem] = {
            "file": config.shown(path),
            "valid": not problems,
            "problems": [_problem_json(p) for p in problems],
            "warnings": [*(approval_warnings(manifest, config) if manifest is not None else []), *refused],
        }
        report["valid"] = report["valid"] and not problems
    return report


def approval_warnings(manifest: Manifest, config: Any) -> list[str]:
    """What `validate` says, without failing, about who can approve: self-asserted approvals, and
    approvers the working tree's allowed-signers file does not list (it is read at the deployed
    commit when a rollout checks them)."""
    from atmos_tasks.signing import AllowedSigners, principal_matches

    warnings = []
    signers: AllowedSigners | None = None
    for name, target in manifest.model.targets.items():
        rule = target.promotion
        if rule is None or not rule.approvals_required or rule.approval_method != "manual":
            continue
        if rule.approvers is None:
            warnings.append(
                f"{name}: approvals are self-asserted (no promotion.approvers): whoever sets user.email "
                "approves under that name; name approvers and commit an allowed-signers file"
            )
            continue
        if signers is None:
            path = config.root / config.allowed_signers
            try:
                signers = AllowedSigners.parse(path.read_text(encoding="utf-8"))
            except OSError:
                warnings.append(
                    f"{name}: promotion.approvers is set and {config.allowed_signers} does not exist: no "
                    "approval can count until it is committed"
                )
                signers = AllowedSigners("", ())
                continue
        for approver in rule.approvers:
            if not any(principal_matches(line.principals, approver) for line in signers.lines):
                warnings.append(f"{name}: approver {approver} has no key in {config.allowed_signers}")
    return warnings


def _problem_json(problem: Problem) -> dict[str, Any]:
    where = problem.location
    return {
        "file": where.file if where else None,
        "line": where.line if where else None,
        "column": where.column if where else None,
        "message": problem.message,
        "hint": problem.hint,
    }


def default_target(config: RepoConfig, deployment: str) -> str:
    """The manifest's `context.default_target`, for commands whose --target is optional."""
    manifest = load_deployment(config, deployment)
    default = manifest.model.context.default_target
    if default is None:
        raise AtmosError.single(
            f"deployment {deployment!r} has no default target",
            None,
            f"pass --target (one of {', '.join(manifest.promotion_order())}) or set context.default_target",
        )
    return default


def build_plans(
    workspace: Any, deployment: str, target: str | None, components: str | None
) -> dict[str, dict[str, Any]]:
    """Each nixpack image's build plan on `target` (default: the manifest's default target), or
    only the comma-separated `components`: source, hashes, image name, plan. Builds nothing."""
    from atmos_tasks.engine import compile_plans
    from atmos_tasks.invocation import Invocation, RolloutOptions, Selected

    target = target or default_target(workspace.config, deployment)
    invocation = Invocation("list", [Selected("build", deployment, target, "*", RolloutOptions())])
    (plan,) = compile_plans(workspace, invocation)
    return {
        ref.name: {
            "source": str(job.source_dir),
            "source_hash": job.source_hash,
            "plan_hash": job.plan_hash,
            "image": f"{job.name(job.registry)}:{job.tag}",
            "plan": json.loads(job.plan_json),
        }
        for ref, job in plan.builds.items()
        if components is None or ref.name in components.split(",")
    }


def matrix(workspace: Any, deployment: str, target: str, waves: bool) -> dict[str, Any]:
    """One target's components as a CI job matrix (`matrix.target_matrix` of the compiled target)."""
    from atmos_tasks.engine import compile_plans
    from atmos_tasks.invocation import Invocation, RolloutOptions, Selected
    from atmos_tasks.matrix import target_matrix

    manifest = load_for(workspace, deployment)
    _targets(manifest, target)  # also keeps glob characters out of the selection
    selected = Selected("rollout", manifest.name, target, "*", RolloutOptions())
    (plan,) = compile_plans(workspace, Invocation("list", [selected]))
    return target_matrix(plan, waves)


def task_graph(workspace: Any, deployment: str, target: str) -> dict[str, Any]:
    """The doit tasks of one rollout and their dependencies (nodes in execution order)."""
    from atmos_tasks.engine import compile_plans
    from atmos_tasks.graph import build_tasks
    from atmos_tasks.invocation import Invocation, RolloutOptions, Selected

    manifest = load_for(workspace, deployment)
    _targets(manifest, target)
    invocation = Invocation("list", [Selected("rollout", deployment, target, "*", RolloutOptions())])
    plans = compile_plans(workspace, invocation)
    tasks = {}
    for task in build_tasks(plans):
        name = f"{task['basename']}:{task['name']}"
        tasks[name] = sorted(set(task.get("task_dep", [])))
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in tasks.get(name, []):
            visit(dep)
        order.append(name)

    visit(f"rollout:{deployment}:{target}")
    return {
        "deployment": deployment,
        "target": target,
        "tasks": [{"name": n, "after": tasks[n]} for n in order],
    }
