"""Resolving a component for a target (SPEC §5).

Precedence, lowest first: stack-derived config → the manifest's component vars/settings/env →
the target's context (only the variables the module declares) → bindings. String values are then
rendered as Jinja2 templates. The result is a `ResolvedComponent`: plain data, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from atmos_tasks import inputs, kinds
from atmos_tasks.config import RepoConfig
from atmos_tasks.errors import AtmosError, Problem, Where
from atmos_tasks.manifest import ComponentRef, Manifest, find_cycle
from atmos_tasks.stacks import (
    Origin,
    Sourced,
    StackLoader,
    _prov_of,
    find_origin,
    origin_location,
)
from atmos_tasks.templates import PendingOutputs, TemplateError, generated, references_in, render_tree
from atmos_tasks.vendoring import VendorFor


@dataclass(frozen=True)
class GitInfo:
    sha: str
    branch: str

    @property
    def short_sha(self) -> str:
        return self.sha[:7]


@dataclass(frozen=True)
class ImageSpec:
    """How to build an image component's image (SPEC §8)."""

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
    """A component with everything merged and rendered for one target (of any kind)."""

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
    # Atmos's `providers` of a Terraform component (its providers_override.tf.json).
    providers: dict[str, Any] = field(default_factory=dict)
    image: ImageSpec | None = None
    vendor: Any = None  # vendor_cache.VendorEntry of a vendored module
    # A vendored module's files exist only once its vendor task ran: the target context it declares
    # is chosen then (plan time), from these keys.
    deferred_context: dict[str, Any] = field(default_factory=dict)
    # Values known only later are rendered again then: a dependency's outputs, a built image.
    vars_template: dict[str, Any] = field(default_factory=dict)
    output_refs: list[ComponentRef] = field(default_factory=list)
    image_refs: list[ComponentRef] = field(default_factory=list)
    bindings: dict[str, str] = field(default_factory=dict)  # var → image component injected there
    provenance: dict[str, Any] = field(default_factory=dict)
    # For a component configured by Atmos stacks: what `atmos describe component` shows of it.
    atmos: dict[str, Any] = field(default_factory=dict)
    # Atmos's `dependencies.tools` (`tools.py`): tool → version constraint, checked on the runner
    # before the component plans; where they were written, for its message.
    tools: dict[str, str] = field(default_factory=dict)
    tools_where: str = ""
    # What Atmos would do around Terraform and atmos-tasks does not (a hook that fires, a backend to
    # provision): "rollout"/"destroy" → why, with where it is written; refused before the plan.
    refused: dict[str, str] = field(default_factory=dict)
    # The Atmos identity whose credentials Atmos would run Terraform with (and where it is written):
    # refused before the plan unless the runner's own credentials are chosen (ATMOS_TASKS_AUTH).
    auth_identity: str = ""
    # Atmos's `generate`: file name → text, written into the module's folder where Terraform runs.
    generated: dict[str, str] = field(default_factory=dict)

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


# A target's resolve memo (`resolvememo.ResolveMemo`), given the manifest, target, template context
# and vendor resolver.
MemoFactory = Callable[[Manifest, str, dict[str, Any], Any], Any]
# The variables a module declares, parsed by `parse` and cached by the module's digest.
DeclaredVariables = Callable[[Path, Callable[[Path], "set[str] | None"]], "set[str] | None"]


class GitContext(dict[str, Any]):
    """The templates' `git.*`: reading it is noted (`inputs.git`), so what was resolved from it is
    known to depend on the commit (`resolvememo`)."""

    def __getitem__(self, key: str) -> Any:
        inputs.git()
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        inputs.git()
        return super().get(key, default)

    def __iter__(self) -> Iterator[str]:
        inputs.git()
        return super().__iter__()

    def items(self) -> Any:
        inputs.git()
        return super().items()

    def values(self) -> Any:
        inputs.git()
        return super().values()

    def __repr__(self) -> str:
        inputs.git()
        return super().__repr__()

    __str__ = __repr__


def template_context(manifest: Manifest, target: str, git: GitInfo) -> dict[str, Any]:
    model = manifest.model
    spec = model.targets[target]
    return {
        "deployment": {"name": model.name, "labels": dict(model.labels)},
        "target": {"name": target, "labels": dict(spec.labels)},
        "context": dict(spec.context),
        "git": GitContext(sha=git.sha, short_sha=git.short_sha, branch=git.branch),
        **{root: {} for root in kinds.template_roots()},
    }


def outside_repository(config: RepoConfig, written: str, base: Path) -> str | None:
    """Why a folder the user wrote (relative to `base`) is not one of the repository's: what a
    rollout deploys must come from the commit, so it is refused before anything runs."""
    if Path(written).is_absolute():
        return "is an absolute path"
    found = (base / written).resolve()
    if not found.is_relative_to(config.root) and not found.is_relative_to(base.resolve()):
        return "is outside the repository"
    return None


@dataclass
class ResolveContext:
    """What a kind's `resolve` reads for one target: plain data and the workspace's caches."""

    manifest: Manifest
    config: RepoConfig
    target: str
    # The target's stacks, imported and merged (Atmos semantics): read by kinds that use stacks.
    stacks: Sourced
    # deployment.*, target.*, context.*, git.*: what every template sees.
    context: dict[str, Any]
    declared_variables: DeclaredVariables
    vendor_for: VendorFor | None
    # The deployment's components of image kinds, which deploying components may bind.
    images: list[ComponentRef]
    # The target's last top-level stack (its name names the stack) and what it holds.
    top_stack: Path | None = None
    top_stack_data: dict[str, Any] = field(default_factory=dict)
    # For `describe` only: what a rollout could not run (a module folder that does not exist) is
    # shown and said, as `atmos describe component` shows it, not refused.
    describing: bool = False
    _names: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def names_of(self, kind: str) -> frozenset[str]:
        """The deployment's component names of one kind (asked once per component: kept)."""
        found = self._names.get(kind)
        if found is None:
            found = frozenset(r.name for r in self.manifest.components() if r.type == kind)
            self._names[kind] = found
        return found


def resolve_target(
    manifest: Manifest,
    config: RepoConfig,
    target: str,
    git: GitInfo,
    loader: StackLoader,
    declared_variables: DeclaredVariables,
    vendor_for: VendorFor | None = None,
    memo: MemoFactory | None = None,
    describing: bool = False,
) -> ResolvedTarget:
    """Resolve every enabled component of a deployment for one target; all problems at once.

    Each component is resolved by its kind; image kinds first, since deploying components bind them."""
    model = manifest.model
    spec = model.targets[target]
    top: list[tuple[str, Where]] = [(s, manifest.locate(["stacks", i])) for i, s in enumerate(model.stacks)]
    top += [(s, manifest.locate(["targets", target, "stacks", i])) for i, s in enumerate(spec.stacks)]
    merged = loader.load_closure(top)
    top_path = loader.top_level(top[-1][0], top[-1][1]) if top else None
    components = manifest.enabled_components()
    images = [ref for ref in components if kinds.of(ref).role == "image"]
    rc = ResolveContext(
        manifest,
        config,
        target,
        merged,
        template_context(manifest, target, git),
        declared_variables,
        vendor_for,
        images,
        top_path,
        loader.read(top_path).data if top_path else {},
        describing,
    )
    problems: list[Problem] = []
    resolved: dict[ComponentRef, ResolvedComponent] = {}
    disabled: list[ComponentRef] = []
    kept = memo(manifest, target, rc.context, vendor_for) if memo is not None else None
    # Stable: the manifest's order within each group (messages list components as written).
    for ref in sorted(components, key=lambda r: kinds.of(r).role != "image"):
        try:
            found = _resolve_one(rc, ref, kept)
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
    if kept is not None:
        kept.save()
    return ResolvedTarget(
        model.name,
        target,
        resolved,
        rc.context,
        list(loader.opened),
        disabled,
        [name for name, _ in top],
        top_path,
        loader.read(top_path).data if top_path else {},
    )


def _resolve_one(rc: ResolveContext, ref: ComponentRef, memo: Any) -> ResolvedComponent | None:
    """A component resolved by its kind, or as it resolved last time when nothing it read changed
    (`resolvememo`): components of kinds that allow it, not disabled, not vendored, not waiting on
    another's outputs or image."""
    kind = kinds.of(ref)
    if memo is None or not kind.memoizable:
        return kind.resolve(rc, ref)
    key = str(ref)
    found = memo.get(key)
    if found is not None and not memo.verifying:
        return cast("ResolvedComponent", found)
    with inputs.scoped() as observed:
        component = kind.resolve(rc, ref)
    if found is not None:
        memo.verify(key, found, component)
    elif component is not None and component.vendor is None and not component.deferred:
        memo.put(key, component, observed)
    return component


def manifest_layer(manifest: Manifest, keypath: list[str | int], value: dict[str, Any]) -> Sourced:
    return Sourced(value, _prov_of(value, manifest.shown, ("deployment", *keypath)))


def template_hint() -> str:
    fields = "{image,digest,registry,repository}"
    roots = "".join(f"{root}.<name>.{fields}, " for root in kinds.template_roots())
    return (
        "available: deployment.*, target.*, context.*, git.{sha,short_sha,branch}, "
        f'{roots}component["<name>"].outputs.*'
    )


def referenced(
    manifest: Manifest, ref: ComponentRef, where: Where, sections: list[Sourced]
) -> tuple[list[ComponentRef], list[ComponentRef]]:
    """Components whose outputs, and image components whose images, the templates read."""
    problems: list[Problem] = []
    outputs: list[ComponentRef] = []
    images: list[ComponentRef] = []
    roots = [("component", None, outputs)] + [(r, k, images) for r, k in kinds.template_roots().items()]
    for root, kind, bucket in roots:
        names: set[str] = set()
        for sourced in sections:
            names |= references_in(sourced.value, root)
        for name in sorted(names):
            found = manifest.find_component(name if kind is None else f"{kind}/{name}")
            if kind is None:
                ok = found is not None and kinds.of(found).role == "deploy"
                what, wanted = 'component["<name>"].outputs.<output>', "deployed"
            else:
                ok = found is not None and found.type == kind
                what, wanted = f"{root}.<name>.image", f"{kind}"
            if not ok:
                problems.append(
                    Problem(
                        f"{ref} reads {root} {name!r}, which is not a {wanted} component of this deployment",
                        where,
                        f"reference a {wanted} component as {what}",
                    )
                )
            elif found is not None:
                bucket.append(found)
    if problems:
        raise AtmosError(problems)
    return outputs, images


def render_sections(
    config: RepoConfig,
    ref: ComponentRef,
    where: Where,
    sections: dict[str, Sourced],
    context: dict[str, Any],
    outputs: list[ComponentRef],
    images: list[ComponentRef],
) -> dict[str, Any]:
    """Render each section's templates; what is known only later (outputs, images) stays pending."""
    pending = {r.name: PendingOutputs(r.name, "image") for r in images}
    render_context = {
        **context,
        "component": {r.name: {"outputs": PendingOutputs(r.name)} for r in outputs},
        **{root: pending for root in kinds.template_roots()},
    }
    rendered = {}
    for section, sourced in sections.items():
        try:
            rendered[section] = render_tree(sourced.value, render_context, keep=from_stacks(sourced, config))
        except TemplateError as err:
            origin = find_origin(sourced.prov, list(err.keypath))
            location = origin_location(config, origin) if isinstance(origin, Origin) else where
            key = ".".join(str(p) for p in (section, *err.keypath))
            raise AtmosError([Problem(f"{ref}: {key}: {err.message}", location, template_hint())]) from None
    return rendered


def from_stacks(sourced: Sourced, config: RepoConfig) -> Callable[[tuple[str | int, ...]], bool]:
    """Whether the value at a key path came from an Atmos stack file (a Go template there, rendered
    by the stacks' own rules, never as Jinja) rather than from a manifest (Jinja)."""
    stacks = config.stacks_base

    def keep(keypath: tuple[str | int, ...]) -> bool:
        origin = find_origin(sourced.prov, list(keypath))
        return origin is not None and (config.root / origin.file).resolve().is_relative_to(stacks)

    return keep


def jinja_literal(sourced: Sourced, config: RepoConfig) -> dict[str, Any]:
    """The section with its stack values escaped for Jinja: a section rendered again later (once a
    dependency's outputs are known) leaves what a stack wrote as written."""
    keep = from_stacks(sourced, config)

    def walk(value: Any, path: tuple[str | int, ...]) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(value)]
        if (
            isinstance(value, str)
            and ("{{" in value or "{%" in value)
            and keep(path)
            and not generated(value)
        ):
            return "{% raw %}" + value + "{% endraw %}"
        return value

    return dict(walk(sourced.value, ()))


def manifest_sections(manifest: Manifest, ref: ComponentRef) -> dict[str, Sourced]:
    """The vars, settings and env the manifest writes for a component, with where each was written."""
    component = manifest.components()[ref]
    base = manifest.component_keypath(ref)
    return {
        "vars": manifest_layer(manifest, [*base, "vars"], component.vars),
        "settings": manifest_layer(manifest, [*base, "settings"], component.settings),
        "env": manifest_layer(manifest, [*base, "env"], dict(component.env)),
    }


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def binding(
    manifest: Manifest,
    ref: ComponentRef,
    labels: dict[str, str],
    variables: dict[str, Any],
    images: list[ComponentRef],
    where: Where,
) -> ComponentRef | None:
    """The image component bound to a deploying component: by labels, else by container name."""
    components = manifest.components()
    by_labels = [
        image
        for image in images
        if components[image].metadata.labels
        and all(labels.get(k) == v for k, v in components[image].metadata.labels.items())
    ]
    container = mapping(variables.get("container"))
    by_name = [image for image in images if container.get("name") == image.name]
    found = by_labels or by_name
    if len(found) > 1:
        raise AtmosError(
            [
                Problem(
                    f"{ref} matches several image components ({', '.join(str(f) for f in found)})",
                    where,
                    "make the labels tell them apart, or write the image var explicitly as a template",
                )
            ]
        )
    return found[0] if found else None


def check_sensitive(ref: ComponentRef, settings: dict[str, Any], where: Where) -> None:
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
