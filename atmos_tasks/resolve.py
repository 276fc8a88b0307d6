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
from atmos_tasks.errors import EXIT_BAD_INPUT, AtmosError, Problem, Where
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
from atmos_tasks.templates import PendingOutputs, TemplateError, is_template, references_in, render_tree
from atmos_tasks.tracking import leaf
from atmos_tasks.vendoring import VendorFor, store_root


@dataclass(frozen=True)
class GitInfo:
    sha: str
    branch: str

    @property
    def short_sha(self) -> str:
        return self.sha[:7]


@dataclass(frozen=True)
class ImageSpec:
    """How to build a nixpack component's image (SPEC §8)."""

    source_dir: Path
    settings: dict[str, Any]
    registry: str | None
    repository: str
    publish: bool

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}" if self.registry else self.repository


@dataclass
class ResolvedComponent:
    """A component with everything merged and rendered for one target (terraform or nixpack)."""

    deployment: str
    target: str
    ref: ComponentRef
    vars: dict[str, Any]
    settings: dict[str, Any]
    env: dict[str, str]
    metadata: dict[str, Any]
    depends_on: list[ComponentRef]
    folder: str = ""
    module_dir: Path | None = None
    backend_type: str = ""
    backend: dict[str, Any] = field(default_factory=dict)
    inheritance: list[str] = field(default_factory=list)
    image: ImageSpec | None = None
    vendor: Any = None  # vendor_cache.VendorEntry of a vendored module
    # A vendored module's files exist only once its vendor task ran: the target context it declares
    # is chosen then (plan time), from these keys.
    deferred_context: dict[str, Any] = field(default_factory=dict)
    # Values known only later are rendered again then: a dependency's outputs, a built image.
    vars_template: dict[str, Any] = field(default_factory=dict)
    output_refs: list[ComponentRef] = field(default_factory=list)
    image_refs: list[ComponentRef] = field(default_factory=list)
    bindings: dict[str, str] = field(default_factory=dict)  # var → nixpack component injected there
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def deferred(self) -> bool:
        return bool(self.output_refs or self.image_refs)


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

    def needed_by(self, names: set[str]) -> set[ComponentRef]:
        """The components named, and everything they depend on here, transitively."""
        keep: set[ComponentRef] = set()
        pending = [ref for ref in self.components if ref.name in names]
        while pending:
            ref = pending.pop()
            if ref not in keep:
                keep.add(ref)
                pending += [d for d in self.components[ref].depends_on if d in self.components]
        return keep

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


def outside_repository(config: RepoConfig, written: str, base: Path) -> str | None:
    """Why a folder the user wrote (relative to `base`) is not one of the repository's: what a
    rollout deploys must come from the commit, so it is refused before anything runs."""
    if Path(written).is_absolute():
        return "is an absolute path"
    found = (base / written).resolve()
    if not found.is_relative_to(config.root) and not found.is_relative_to(base.resolve()):
        return "is outside the repository"
    return None


def resolve_target(
    manifest: Manifest,
    config: RepoConfig,
    target: str,
    git: GitInfo,
    loader: StackLoader,
    declared_variables: DeclaredVariables,
    vendor_for: VendorFor | None = None,
) -> ResolvedTarget:
    """Resolve every enabled component of a deployment for one target; all problems at once."""
    model = manifest.model
    spec = model.targets[target]
    top: list[tuple[str, Where]] = [(s, manifest.locate(["stacks", i])) for i, s in enumerate(model.stacks)]
    top += [(s, manifest.locate(["targets", target, "stacks", i])) for i, s in enumerate(spec.stacks)]
    merged = loader.load_closure(top)
    context = template_context(manifest, target, git)
    components = manifest.enabled_components()
    problems: list[Problem] = []
    resolved: dict[ComponentRef, ResolvedComponent] = {}
    disabled: list[ComponentRef] = []
    images = [ref for ref in components if ref.type == "nixpack"]
    for ref in images:
        try:
            resolved[ref] = _resolve_image(manifest, config, target, ref, context)
        except AtmosError as err:
            problems += err.problems
    for ref in components:
        if ref.type != "terraform":
            continue
        try:
            found = _resolve_terraform(
                manifest, config, target, ref, merged, context, declared_variables, images, vendor_for
            )
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


TEMPLATE_HINT = (
    "available: deployment.*, target.*, context.*, git.{sha,short_sha,branch}, "
    'nixpack.<name>.{image,digest,registry,repository}, component["<name>"].outputs.*'
)


def _referenced(
    manifest: Manifest, ref: ComponentRef, where: Where, sections: list[Sourced]
) -> tuple[list[ComponentRef], list[ComponentRef]]:
    """Components whose outputs, and nixpack components whose images, the templates read."""
    problems: list[Problem] = []
    outputs: list[ComponentRef] = []
    images: list[ComponentRef] = []
    for root, kind, bucket in (("component", "terraform", outputs), ("nixpack", "nixpack", images)):
        names: set[str] = set()
        for sourced in sections:
            names |= references_in(sourced.value, root)
        for name in sorted(names):
            found = manifest.find_component(name if root == "component" else f"nixpack/{name}")
            if found is None or found.type != kind:
                what = (
                    'component["<name>"].outputs.<output>' if root == "component" else "nixpack.<name>.image"
                )
                problems.append(
                    Problem(
                        f"{ref} reads {root} {name!r}, which is not a {kind} component of this deployment",
                        where,
                        f"reference a {kind} component as {what}",
                    )
                )
            else:
                bucket.append(found)
    if problems:
        raise AtmosError(problems)
    return outputs, images


def _render(
    config: RepoConfig,
    ref: ComponentRef,
    where: Where,
    sections: dict[str, Sourced],
    context: dict[str, Any],
    outputs: list[ComponentRef],
    images: list[ComponentRef],
) -> dict[str, Any]:
    render_context = {
        **context,
        "component": {r.name: {"outputs": PendingOutputs(r.name)} for r in outputs},
        "nixpack": {r.name: PendingOutputs(r.name, "image") for r in images},
    }
    rendered = {}
    for section, sourced in sections.items():
        try:
            rendered[section] = render_tree(sourced.value, render_context)
        except TemplateError as err:
            origin = find_origin(sourced.prov, list(err.keypath))
            location = origin_location(config, origin) if isinstance(origin, Origin) else where
            key = ".".join(str(p) for p in (section, *err.keypath))
            raise AtmosError([Problem(f"{ref}: {key}: {err.message}", location, TEMPLATE_HINT)]) from None
    return rendered


def _resolve_image(
    manifest: Manifest, config: RepoConfig, target: str, ref: ComponentRef, context: dict[str, Any]
) -> ResolvedComponent:
    """A nixpack component: the manifest alone configures it (`vars.source`, `vars.image`, settings)."""
    component = manifest.components()[ref]
    base = manifest.component_keypath(ref)
    where = manifest.locate(base, at_key=True)
    sections = {
        "vars": _manifest_layer(manifest, [*base, "vars"], component.vars),
        "settings": _manifest_layer(manifest, [*base, "settings"], component.settings),
        "env": _manifest_layer(manifest, [*base, "env"], dict(component.env)),
    }
    outputs, images = _referenced(manifest, ref, where, list(sections.values()))
    rendered = _render(config, ref, where, sections, context, outputs, images)
    variables = rendered["vars"]
    source = variables.get("source")
    if not isinstance(source, str) or not source:
        raise AtmosError(
            [
                Problem(
                    f"{ref} has no vars.source",
                    manifest.locate([*base, "vars"]),
                    "set vars.source to the folder of its source, e.g. ./services/api",
                )
            ]
        )
    source_dir = (config.root / source).resolve()
    outside = outside_repository(config, source, config.root)
    if outside:
        raise AtmosError(
            [
                Problem(
                    f"{ref}: source folder {source!r} {outside}",
                    manifest.locate([*base, "vars", "source"]),
                    "give a folder inside the repository, relative to its root, e.g. ./services/api: "
                    "what is built must be part of the commit",
                )
            ]
        )
    if not source_dir.is_dir():
        raise AtmosError(
            [
                Problem(
                    f"{ref}: source folder {source!r} does not exist",
                    manifest.locate([*base, "vars", "source"]),
                    "give a folder relative to the repository, e.g. ./services/api",
                )
            ]
        )
    image = _mapping(variables.get("image"))
    nixpack = _mapping(rendered["settings"].get("nixpack"))
    _check_build_plan(manifest, ref, source_dir, nixpack)
    registry = image.get("registry") if isinstance(image.get("registry"), str) else None
    name = image.get("name")
    repository = name if isinstance(name, str) else f"{manifest.name}/{ref.name.replace('/', '-')}"
    return ResolvedComponent(
        deployment=manifest.name,
        target=target,
        ref=ref,
        vars=variables,
        settings=rendered["settings"],
        env={k: str(v) for k, v in rendered["env"].items()},
        metadata=component.metadata.model_dump(),
        depends_on=sorted(set(manifest.dependencies(ref)) | set(outputs) | set(images)),
        image=ImageSpec(
            source_dir=source_dir,
            settings=dict(nixpack),
            registry=registry,
            repository=repository.lower(),
            publish=bool(nixpack.get("publish", True)) and registry is not None,
        ),
        output_refs=outputs,
        image_refs=images,
        provenance={name: sourced.prov for name, sourced in sections.items()},
    )


def _check_build_plan(
    manifest: Manifest, ref: ComponentRef, source_dir: Path, settings: dict[str, Any]
) -> None:
    """The build plan a rollout makes of this source and these settings can be made: a plan that
    cannot is bad input for `validate` as for the rollout (the same message as `engine.build_job`)."""
    from atmos_tasks.images.errors import BuildError
    from atmos_tasks.images.planner import choose_builder, make_plan, parse_settings

    try:
        plan = make_plan(source_dir, settings)
        if parse_settings(settings).builder == "oci":  # whether the OCI writer can build it is known now
            choose_builder(plan, "oci", engine_available=False)
    except BuildError as err:
        if err.exit_code != EXIT_BAD_INPUT:
            return  # not a problem of the input: the build task meets it and fails
        raise AtmosError.single(
            f"{ref}: {err}",
            manifest.locate([*manifest.component_keypath(ref), "settings"]),
            "fix settings.nixpack or the source tree",
            exit_code=err.exit_code,
        ) from None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _binding(
    manifest: Manifest,
    ref: ComponentRef,
    labels: dict[str, str],
    variables: dict[str, Any],
    images: list[ComponentRef],
    where: Where,
) -> ComponentRef | None:
    """The nixpack component bound to a terraform component: by labels, else by container name."""
    components = manifest.components()
    by_labels = [
        image
        for image in images
        if components[image].metadata.labels
        and all(labels.get(k) == v for k, v in components[image].metadata.labels.items())
    ]
    container = _mapping(variables.get("container"))
    by_name = [image for image in images if container.get("name") == image.name]
    found = by_labels or by_name
    if len(found) > 1:
        raise AtmosError(
            [
                Problem(
                    f"{ref} matches several nixpack components ({', '.join(str(f) for f in found)})",
                    where,
                    "make the labels tell them apart, or write the image var explicitly as a template",
                )
            ]
        )
    return found[0] if found else None


def _resolve_terraform(
    manifest: Manifest,
    config: RepoConfig,
    target: str,
    ref: ComponentRef,
    merged: Sourced,
    context: dict[str, Any],
    declared_variables: DeclaredVariables,
    images: list[ComponentRef],
    vendor_for: VendorFor | None = None,
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

    def folder_at() -> Where:
        if component.component is not None:
            return manifest.locate([*manifest.component_keypath(ref), "component"])
        origin = find_origin(merged.prov, ["components", "terraform", ref.name, "metadata", "component"])
        return origin_location(config, origin) if origin else where

    outside = outside_repository(config, folder, config.terraform_base)
    if outside:
        raise AtmosError(
            [
                Problem(
                    f"terraform component {ref.name!r}: folder {folder!r} {outside}",
                    folder_at(),
                    f"name a folder under {config.shown(config.terraform_base)}/ (e.g. component: ecr): "
                    "Terraform runs the module the commit holds",
                )
            ]
        )
    vendored = vendor_for(ref, folder, where) if vendor_for is not None else None
    if vendored is not None:
        module_dir: Path | None = (
            store_root(config, manifest) / "deployments" / model.name / target / "terraform" / ref.name
        )
    else:
        module_dir = module_folder(config, folder)
    if module_dir is None:
        inherited = "".join(
            f"; its base {base!r} sets metadata.component: {name}, which is not inherited"
            for base, name in stack.base_folders.items()
        )
        raise AtmosError(
            [
                Problem(
                    f"terraform component {ref.name!r}: folder {folder!r} is neither under "
                    f"{config.shown(config.terraform_base)}/ nor vendored",
                    folder_at(),
                    f"create {config.shown(config.terraform_base / folder)}/, set 'component:' (or the "
                    f"stack's metadata.component) to an existing folder, or vendor it{inherited}",
                )
            ]
        )
    base = manifest.component_keypath(ref)
    target_context = model.targets[target].context
    deferred_context: dict[str, Any] = {}
    if vendored is not None:
        context_vars: dict[str, Any] = {}
        deferred_context = dict(
            _render(
                config,
                ref,
                where,
                {"context": _manifest_layer(manifest, ["targets", target, "context"], dict(target_context))},
                context,
                [],
                [],
            )["context"]
        )
    else:
        declared = declared_variables(module_dir)
        context_vars = {k: v for k, v in target_context.items() if declared is None or k in declared}
    vars_sourced = merge_all(
        [
            stack.vars,
            _manifest_layer(manifest, [*base, "vars"], component.vars),
            _manifest_layer(manifest, ["targets", target, "context"], context_vars),
        ],
        config.list_merge_strategy,
    )
    settings = merge_all(
        [stack.settings, _manifest_layer(manifest, [*base, "settings"], component.settings)],
        config.list_merge_strategy,
    )
    env = merge_all([stack.env, _manifest_layer(manifest, [*base, "env"], dict(component.env))])
    sections = {"vars": vars_sourced, "settings": settings, "env": env}
    outputs, image_refs = _referenced(manifest, ref, where, list(sections.values()))
    rendered = _render(config, ref, where, sections, context, outputs, image_refs)
    _check_sensitive(ref, rendered["settings"], manifest.locate([*base, "settings"]))
    binding = _mapping(rendered["settings"].get("binding"))
    var = str(binding.get("var", "image"))
    bindings: dict[str, str] = {}
    bound = _binding(manifest, ref, component.metadata.labels, rendered["vars"], images, where)
    explicit = vars_sourced.value.get(var)
    if bound is not None and not (isinstance(explicit, str) and is_template(explicit)):
        bindings[var] = bound.name
        image_refs = sorted(set(image_refs) | {bound})
        rendered["vars"][var] = f"(image of {bound.name})"
    backend_type = component.backend_type or stack.backend_type or "local"
    if component.backend:
        backend = dict(component.backend.get(backend_type, component.backend))
    elif stack.backend_type or stack.backend:
        backend = stack.backend
    else:
        backend = {}
    if backend_type == "local" and "path" not in backend:
        backend = {**backend, **default_backend(config, model.name, target, ref.name)}
    deferred = bool(outputs or image_refs)
    return ResolvedComponent(
        deployment=model.name,
        target=target,
        ref=ref,
        vars=rendered["vars"],
        settings=rendered["settings"],
        env={k: str(v) for k, v in rendered["env"].items()},
        metadata={**stack.metadata, **component.metadata.model_dump()},
        depends_on=sorted(set(manifest.dependencies(ref)) | set(outputs) | set(image_refs)),
        folder=folder,
        module_dir=module_dir,
        backend_type=backend_type,
        backend=backend,
        inheritance=stack.inheritance,
        vars_template=vars_sourced.value if deferred else {},
        output_refs=outputs,
        image_refs=image_refs,
        bindings=bindings,
        vendor=vendored,
        deferred_context=deferred_context,
        provenance={"vars": vars_sourced.prov, "settings": settings.prov, "env": env.prov},
    )


def _check_sensitive(ref: ComponentRef, settings: dict[str, Any], where: Where) -> None:
    """`settings.sensitive` marks variables (and `env.NAME` entries): a list of their names."""
    found = settings.get("sensitive")
    if found is None or (isinstance(found, list) and all(isinstance(n, str) and n for n in found)):
        return
    raise AtmosError(
        [
            Problem(
                f"{ref}: settings.sensitive must be a list of variable names",
                where,
                "write e.g. sensitive: [db_password, env.API_TOKEN]",
            )
        ]
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
            "dependency cycle (depends_on, output references and bindings): "
            + " → ".join(str(r) for r in cycle),
            manifest.locate(manifest.component_keypath(first), at_key=True),
            "a component cannot read the outputs of a component that depends on it",
        )
    ]
