"""Resolving a component for a target (SPEC §5).

Precedence, lowest first: stack-derived config → the manifest's component vars/settings/env →
the target's context (only the variables the module declares) → bindings. String values are then
rendered as Jinja2 templates. The result is a `ResolvedComponent`: plain data, no I/O.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atmos_tasks.config import RepoConfig
from atmos_tasks.errors import AtmosError, Location, Problem
from atmos_tasks.manifest import ComponentRef, Manifest, find_cycle
from atmos_tasks.stacks import (
    ComponentConfig,
    Origin,
    Sourced,
    StackLoader,
    _prov_of,
    component_config,
    find_origin,
    merge_all,
    origin_location,
)
from atmos_tasks.templates import PendingOutputs, TemplateError, references_in, render_tree
from atmos_tasks.tracking import leaf


@dataclass(frozen=True)
class GitInfo:
    sha: str
    branch: str

    @property
    def short_sha(self) -> str:
        return self.sha[:7]


@dataclass
class ResolvedComponent:
    """A component with everything merged and rendered for one target."""

    deployment: str
    target: str
    ref: ComponentRef
    folder: str
    module_dir: Path | None
    vars: dict[str, Any]
    settings: dict[str, Any]
    env: dict[str, str]
    backend_type: str
    backend: dict[str, Any]
    metadata: dict[str, Any]
    inheritance: list[str]
    depends_on: list[ComponentRef]
    # Values that read a dependency's outputs: rendered again when those outputs exist.
    vars_template: dict[str, Any] = field(default_factory=dict)
    output_refs: list[ComponentRef] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.ref.name


@dataclass
class ResolvedTarget:
    deployment: str
    target: str
    components: dict[ComponentRef, ResolvedComponent]
    template_context: dict[str, Any]
    stack_files: list[Path]
    disabled: list[ComponentRef] = field(default_factory=list)
    stacks: list[str] = field(default_factory=list)
    top_stack: Path | None = None
    top_stack_data: dict[str, Any] = field(default_factory=dict)

    def order(self) -> list[ComponentRef]:
        """Components in dependency order (dependencies first), ties by name."""
        done: list[ComponentRef] = []
        seen: set[ComponentRef] = set()

        def visit(ref: ComponentRef) -> None:
            if ref in seen:
                return
            seen.add(ref)
            for dep in sorted(self.components[ref].depends_on):
                if dep in self.components:
                    visit(dep)
            done.append(ref)

        for ref in sorted(self.components):
            visit(ref)
        return done


DeclaredVariables = Callable[[Path], "set[str] | None"]


def template_context(manifest: Manifest, target: str, git: GitInfo) -> dict[str, Any]:
    model = manifest.model
    spec = model.targets[target]
    return {
        "deployment": {"name": model.name, "labels": dict(model.labels)},
        "target": {"name": target, "labels": dict(spec.labels)},
        "context": dict(spec.context),
        "git": {"sha": git.sha, "short_sha": git.short_sha, "branch": git.branch},
        "nixpack": {},
    }


def default_backend(config: RepoConfig, deployment: str, target: str, name: str) -> dict[str, Any]:
    """Local state outside the workdir, written relative to it so a clone elsewhere hashes the same."""
    state = config.work_dir / "state" / deployment / target / f"{name}.tfstate"
    workdir = config.work_dir / "workdir" / deployment / target / leaf(name)
    return {"path": os.path.relpath(state, workdir)}


def module_folder(config: RepoConfig, folder: str) -> Path | None:
    path = config.terraform_base / folder
    return path if path.is_dir() else None


def resolve_target(
    manifest: Manifest,
    config: RepoConfig,
    target: str,
    git: GitInfo,
    loader: StackLoader,
    declared_variables: DeclaredVariables,
) -> ResolvedTarget:
    """Resolve every enabled component of a deployment for one target; all problems at once."""
    model = manifest.model
    spec = model.targets[target]
    top = [(s, manifest.locate(["stacks", i])) for i, s in enumerate(model.stacks)]
    top += [(s, manifest.locate(["targets", target, "stacks", i])) for i, s in enumerate(spec.stacks)]
    merged = loader.load_closure(top)
    context = template_context(manifest, target, git)
    components = manifest.enabled_components()
    problems: list[Problem] = []
    resolved: dict[ComponentRef, ResolvedComponent] = {}
    disabled: list[ComponentRef] = []
    for ref in components:
        if ref.type != "terraform":
            continue
        try:
            found = _resolve_one(manifest, config, target, ref, merged, context, declared_variables)
        except AtmosError as err:
            problems += err.problems
            continue
        if found is None:
            disabled.append(ref)
        else:
            resolved[ref] = found
    problems += _check_references(manifest, resolved)
    if problems:
        raise AtmosError(problems)
    top_path = loader.top_level(top[-1][0], top[-1][1]) if top else None
    return ResolvedTarget(
        model.name,
        target,
        resolved,
        context,
        list(loader.opened),
        disabled,
        [name for name, _ in top],
        top_path,
        loader.read(top_path).data if top_path else {},
    )


def _manifest_layer(manifest: Manifest, keypath: list[str | int], value: dict[str, Any]) -> Sourced:
    return Sourced(value, _prov_of(value, manifest.shown, ("deployment", *keypath)))


def _resolve_one(
    manifest: Manifest,
    config: RepoConfig,
    target: str,
    ref: ComponentRef,
    merged: Sourced,
    context: dict[str, Any],
    declared_variables: DeclaredVariables,
) -> ResolvedComponent | None:
    """None when the stacks disable the component (metadata.enabled: false)."""
    model = manifest.model
    component = manifest.components()[ref]
    where = manifest.locate(manifest.component_keypath(ref), at_key=True)
    stack: ComponentConfig = component_config(merged, ref.name, config, where)
    if stack.abstract:
        raise AtmosError(
            [
                Problem(
                    f"{ref} is abstract in the stacks (metadata.type: abstract) and cannot be deployed",
                    where,
                    "deploy a component that inherits from it (metadata.inherits), or remove type: abstract",
                )
            ]
        )
    if not stack.enabled:
        return None
    folder = component.component or stack.component
    module_dir = module_folder(config, folder)
    if module_dir is None:
        if component.component is not None:
            folder_at = manifest.locate([*manifest.component_keypath(ref), "component"])
        else:
            origin = find_origin(merged.prov, ["components", "terraform", ref.name, "metadata", "component"])
            folder_at = origin_location(config, origin) if origin else where
        inherited = "".join(
            f"; its base {base!r} sets metadata.component: {name}, which is not inherited"
            for base, name in stack.base_folders.items()
        )
        raise AtmosError(
            [
                Problem(
                    f"terraform component {ref.name!r}: folder {folder!r} is neither under "
                    f"{config.shown(config.terraform_base)}/ nor vendored",
                    folder_at,
                    f"create {config.shown(config.terraform_base / folder)}/, set 'component:' (or the "
                    f"stack's metadata.component) to an existing folder, or vendor it{inherited}",
                )
            ]
        )
    base = manifest.component_keypath(ref)
    target_context = model.targets[target].context
    declared = declared_variables(module_dir)
    context_vars = {k: v for k, v in target_context.items() if declared is None or k in declared}
    vars_layers = [
        stack.vars,
        _manifest_layer(manifest, [*base, "vars"], component.vars),
        _manifest_layer(manifest, ["targets", target, "context"], context_vars),
    ]
    vars_sourced = merge_all(vars_layers, config.list_merge_strategy)
    settings = merge_all(
        [stack.settings, _manifest_layer(manifest, [*base, "settings"], component.settings)],
        config.list_merge_strategy,
    )
    env = merge_all([stack.env, _manifest_layer(manifest, [*base, "env"], dict(component.env))])
    refs = sorted(
        references_in(vars_sourced.value) | references_in(env.value) | references_in(settings.value)
    )
    output_refs: list[ComponentRef] = []
    problems: list[Problem] = []
    for name in refs:
        found = manifest.find_component(name)
        if found is None:
            problems.append(
                Problem(
                    f"{ref} reads outputs of {name!r}, which is not a component of this deployment",
                    where,
                    'reference a component as component["<name>"].outputs.<output>',
                )
            )
        else:
            output_refs.append(found)
    if problems:
        raise AtmosError(problems)
    render_context = {
        **context,
        "component": {r.name: {"outputs": PendingOutputs(r.name)} for r in output_refs},
    }
    rendered = {}
    for section, sourced in (("vars", vars_sourced), ("settings", settings), ("env", env)):
        try:
            rendered[section] = render_tree(sourced.value, render_context)
        except TemplateError as err:
            origin = find_origin(sourced.prov, list(err.keypath))
            location = origin_location(config, origin) if isinstance(origin, Origin) else where
            key = ".".join(str(p) for p in (section, *err.keypath))
            raise AtmosError(
                [
                    Problem(
                        f"{ref}: {key}: {err.message}",
                        location,
                        "available: deployment.*, target.*, context.*, git.{sha,short_sha,branch}, "
                        'nixpack.<name>.*, component["<name>"].outputs.*',
                    )
                ]
            ) from None
    backend_type = component.backend_type or stack.backend_type or "local"
    if component.backend:
        backend = dict(component.backend.get(backend_type, component.backend))
    elif stack.backend_type or stack.backend:
        backend = stack.backend
    else:
        backend = {}
    if backend_type == "local" and "path" not in backend:
        backend = {**backend, **default_backend(config, model.name, target, ref.name)}
    explicit = manifest.dependencies(ref)
    depends_on = sorted(set(explicit) | set(output_refs))
    return ResolvedComponent(
        deployment=model.name,
        target=target,
        ref=ref,
        folder=folder,
        module_dir=module_dir,
        vars=rendered["vars"],
        settings=rendered["settings"],
        env={k: str(v) for k, v in rendered["env"].items()},
        backend_type=backend_type,
        backend=backend,
        metadata={**stack.metadata, **component.metadata.model_dump()},
        inheritance=stack.inheritance,
        depends_on=depends_on,
        vars_template=vars_sourced.value if output_refs else {},
        output_refs=output_refs,
        provenance={"vars": vars_sourced.prov, "settings": settings.prov, "env": env.prov},
    )


def _check_references(manifest: Manifest, resolved: dict[ComponentRef, ResolvedComponent]) -> list[Problem]:
    """Dependencies through outputs must not form a cycle with depends_on."""
    explicit = {ref: [d for d in manifest.dependencies(ref) if d != ref] for ref in resolved}
    if find_cycle(explicit):
        return []  # a depends_on cycle: the manifest check already reports it
    edges = {ref: list(rc.depends_on) for ref, rc in resolved.items()}
    cycle = find_cycle(edges)
    if not cycle:
        return []
    first = cycle[0]
    return [
        Problem(
            "dependency cycle (depends_on and output references): " + " → ".join(str(r) for r in cycle),
            manifest.locate(manifest.component_keypath(first), at_key=True),
            "a component cannot read the outputs of a component that depends on it",
        )
    ]


def render_with_outputs(
    component: ResolvedComponent, context: dict[str, Any], outputs: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Render the vars again now that dependency outputs exist (plan time)."""
    if not component.output_refs:
        return component.vars
    render_context = {
        **context,
        "component": {r.name: {"outputs": outputs.get(r.name, {})} for r in component.output_refs},
    }
    return dict(render_tree(component.vars_template, render_context))


def location_of(config: RepoConfig, origin: Origin | None) -> Location | None:
    return origin_location(config, origin) if origin else None
