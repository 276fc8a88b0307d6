"""The deployment manifest (SPEC §3): what the user wrote, validated, with source positions."""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    create_model,
    field_validator,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

from atmos_tasks import inputs, kinds
from atmos_tasks.config import RepoConfig
from atmos_tasks.errors import AtmosError, LazyLocation, Location, Problem
from atmos_tasks.refnames import segment_problem
from atmos_tasks.tracking import leaf
from atmos_tasks.yamlio import KeyPath, load_data, load_positioned, locate

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"  # pydantic's regex engine: `$` is the end of the text
TARGET_PATTERN = r"^[a-z0-9][a-z0-9_-]*\Z"
COMPONENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")
DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def _scalar_to_str(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


Label = Annotated[str, BeforeValidator(_scalar_to_str)]
Labels = dict[str, Label]

# A Kubernetes-style quantity: a plain or decimal number, an exponent or a suffix (500m, 0.5, 2Gi).
QUANTITY = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?")


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", bool: "a boolean", type(None): "null"}.get(
        type(value), repr(value)
    )


def _quantity(key: str) -> typing.Callable[[Any], Any]:
    def check(value: Any) -> Any:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if (number and math.isfinite(value) and value >= 0) or (
            isinstance(value, str) and QUANTITY.fullmatch(value)
        ):
            return value
        raise ValueError(f"{key} must be a number or a quantity such as 0.5, 500m or 2Gi, not {_kind(value)}")

    return check


def _whole_number(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(f"replicas must be a whole number (0 or more), not {_kind(value)}")


@with_config(ConfigDict(extra="allow"))
class TargetContext(TypedDict, total=False):
    """A target's context: any keys; the ones every deployment shares have a type."""

    cpu: Annotated[Any, AfterValidator(_quantity("cpu"))]
    memory: Annotated[Any, AfterValidator(_quantity("memory"))]
    replicas: Annotated[Any, AfterValidator(_whole_number)]


def _in_written_order(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    checked = handler(value)
    return {key: checked[key] for key in value if key in checked} if isinstance(value, dict) else checked


if TYPE_CHECKING:
    ContextValues = dict[str, Any]
else:
    ContextValues = Annotated[TargetContext, WrapValidator(_in_written_order)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


# A component's fields default through factories: pydantic deep-copies a plain mutable default for
# each instance, which a deployment of hundreds of components pays on every compilation.
class ComponentMetadata(_Model):
    labels: Labels = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    enabled: bool = True
    # Each Terraform run of the component (init, plan, apply) is stopped, gracefully, past this.
    timeout: str | None = Field(default=None, pattern=DURATION.pattern)


class Component(_Model):
    component: str | None = None
    metadata: ComponentMetadata = Field(default_factory=ComponentMetadata)
    vars: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, Label] = Field(default_factory=dict)
    backend_type: str | None = None
    backend: dict[str, Any] = Field(default_factory=dict)


def _components_model() -> type[_Model]:
    """One key per component kind installed (`kinds.names()`): an unknown kind is refused, never dropped."""
    fields: dict[str, Any] = {name: (dict[str, Component], {}) for name in kinds.names()}
    return create_model("Components", __base__=_Model, **fields)


if TYPE_CHECKING:

    class Components(_Model):
        def __getattr__(self, kind: str) -> dict[str, Component]: ...

else:
    Components = _components_model()


class ApprovalCount(_Model):
    count: PositiveInt = 1
    prevent_self_approval: bool = False


class Promotion(_Model):
    from_: str | None = Field(default=None, alias="from")
    allowed_from: list[str] | None = None
    requires_approval: bool | ApprovalCount = False
    approval_method: Literal["manual", "ci"] = "manual"
    prevent_self_approval: bool = False
    min_soak: str | None = Field(default=None, pattern=DURATION.pattern)
    # Who may approve: principals of the allowed-signers file at the deployed commit. With it, only
    # signed approvals that verify there count; without it, approvals are self-asserted.
    approvers: list[str] | None = None
    # An approval older than this (from the time it was signed) no longer counts.
    approvals_expire_after: str | None = Field(default=None, pattern=DURATION.pattern)

    @field_validator("approvers")
    @classmethod
    def _principals(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("approvers is empty: name at least one principal of the allowed-signers file")
        for name in value:
            if not name or any(ch.isspace() or ch in ',"' for ch in name):
                raise ValueError(f"approver {name!r} is not a principal (one name, no spaces or commas)")
        return value

    @model_validator(mode="after")
    def _signed_rules(self) -> Promotion:
        if self.approvers is not None and not self.approvals_required:
            raise ValueError("approvers is set but the target requires no approval: add requires_approval")
        if self.approvers is not None and self.approval_method == "ci":
            raise ValueError(
                "approvers apply to signed approvals (approval_method: manual); with approval_method: ci "
                "the CI platform's gate decides who approves"
            )
        return self

    @property
    def approvals_expire_seconds(self) -> int | None:
        return duration_seconds(self.approvals_expire_after) if self.approvals_expire_after else None

    @property
    def sources(self) -> list[str]:
        if self.from_ is not None:
            return [self.from_]
        return list(self.allowed_from or [])

    @property
    def approvals_required(self) -> int:
        if isinstance(self.requires_approval, ApprovalCount):
            return self.requires_approval.count
        return 1 if self.requires_approval else 0

    @property
    def self_approval_prevented(self) -> bool:
        if isinstance(self.requires_approval, ApprovalCount):
            return self.requires_approval.prevent_self_approval or self.prevent_self_approval
        return self.prevent_self_approval

    @property
    def min_soak_seconds(self) -> int:
        return duration_seconds(self.min_soak) if self.min_soak else 0


class Target(_Model):
    labels: Labels = {}
    context: ContextValues = {}
    stacks: list[str] = []
    promotion: Promotion | None = None


class DeploymentContext(_Model):
    default_target: str | None = None
    promote_by: Literal["digest", "tag"] = "digest"


class VendorCache(_Model):
    dir: str | None = None
    ttl: str | None = Field(default=None, pattern=DURATION.pattern)


class VendorEntry(_Model):
    source: str
    version: str | None = None
    targets: list[str] = []
    labels: dict[str, list[Label]] = {}
    included_paths: list[str] = []
    excluded_paths: list[str] = []


class VendorConfig(_Model):
    manifest: str | None = None
    components: list[VendorEntry] = []
    auto_discover: bool = True
    cache: VendorCache | None = None


class Deployment(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = None
    labels: Labels = {}
    stacks: list[str] = []
    context: DeploymentContext = DeploymentContext()
    vendor: VendorConfig = VendorConfig()
    components: Components = Components()
    targets: dict[str, Target]


class ManifestFile(_Model):
    deployment: Deployment


def duration_seconds(text: str) -> int:
    match = DURATION.match(text)
    if not match or not text:
        raise ValueError(f"not a duration: {text!r}")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


@dataclass(frozen=True, order=True)
class ComponentRef:
    """A component of a deployment, by type and name (`terraform/ecs/service-api`)."""

    type: str
    name: str

    def __str__(self) -> str:
        return f"{self.type}/{self.name}"


@dataclass
class Manifest:
    """A validated manifest together with where each of its values was written."""

    model: Deployment
    path: Path
    shown: str

    @cached_property
    def positions(self) -> Any:
        """Line and column of every key: the round-trip parse is slow, so only when asked."""
        return load_positioned(self.path, self.shown)

    @property
    def name(self) -> str:
        return self.model.name

    def locate(self, keypath: KeyPath, *, at_key: bool = False) -> LazyLocation:
        def find() -> Location:
            found = locate(self.positions, ["deployment", *keypath], at_key=at_key)
            return Location(self.shown, *found) if found else Location(self.shown)

        return LazyLocation(find)

    def components(self) -> dict[ComponentRef, Component]:
        """Every component, deploying kinds first (read-only: shared by every caller)."""
        return self._components

    @cached_property
    def _components(self) -> dict[ComponentRef, Component]:
        found: dict[ComponentRef, Component] = {}
        for kind in kinds.ordered():
            for name, component in getattr(self.model.components, kind).items():
                found[ComponentRef(kind, name)] = component
        return found

    @cached_property
    def _by_name(self) -> dict[str, list[ComponentRef]]:
        found: dict[str, list[ComponentRef]] = {}
        for ref in self._components:
            found.setdefault(ref.name, []).append(ref)
        return found

    def enabled_components(self) -> dict[ComponentRef, Component]:
        return {ref: c for ref, c in self.components().items() if c.metadata.enabled}

    def component_keypath(self, ref: ComponentRef) -> list[str]:
        return ["components", ref.type, ref.name]

    def find_component(self, text: str) -> ComponentRef | None:
        """`terraform/ecr/api`, or a bare name (`ecr/api`) when only one type has it."""
        head, _, rest = text.partition("/")
        if head in kinds.names() and rest:
            ref = ComponentRef(head, rest)
            return ref if ref in self._components else None
        matches = self._by_name.get(text, [])
        return matches[0] if len(matches) == 1 else None

    def dependencies(self, ref: ComponentRef) -> list[ComponentRef]:
        deps = []
        for entry in self.components()[ref].metadata.depends_on:
            found = self.find_component(entry)
            if found is not None:
                deps.append(found)
        return deps

    def target_names(self) -> list[str]:
        return list(self.model.targets)

    def promotion_order(self) -> list[str]:
        """The targets as people read them: each after the targets it is promoted from (dev →
        staging → prod), otherwise in the order the manifest lists them."""
        from atmos_tasks.targetorder import promotion_order

        targets = self.model.targets.items()
        return promotion_order(
            {name: spec.promotion.sources if spec.promotion else [] for name, spec in targets}
        )


def _suggest(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping found at `loc`."""
    annotation: Any = ManifestFile
    for part in loc:
        annotation = _unwrap(annotation, part)
        if annotation is None:
            return None
    model = _unwrap(annotation, None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any, part: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0], part)
    if origin in (typing.Union, types.UnionType):
        for member in typing.get_args(annotation):
            found = _unwrap(member, part)
            if found is not None:
                return found
        return None
    if part is None:
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    if origin is dict:
        return typing.get_args(annotation)[1]
    if origin is list:
        return typing.get_args(annotation)[0]
    return None


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[list[Any], list[Any]]:
    """Split a pydantic `loc` into the part present in the data and the rest.

    Union members add their own names to `loc` (`requires_approval.ApprovalCount.count`); they are
    not keys of the data and are dropped.
    """
    present: list[Any] = []
    node = data
    rest: list[Any] = []
    for part in loc:
        in_map = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_map or in_list:
            present.append(part)
            node = node[part]
        else:
            rest.append(part)
    return present, rest


def _dotted(path: typing.Sequence[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


REF_HINT = (
    "a name is part of the Git refs and tags that record rollouts "
    "(refs/atmos/deployments/<deployment>/<target>/<component, '/' written %2F>): use letters, digits, "
    "'.', '_', '-' and '/' between parts, and end no part with '.' or '.lock'"
)

_FIELD_HINTS = {
    "name": "use lower-case letters, digits and '-', starting with a letter or digit (e.g. 'api')",
    "requires_approval": "write true, false, or {count: N, prevent_self_approval: true}",
    "min_soak": "write a duration such as 30m, 2h or 1d12h",
    "approvals_expire_after": "write a duration such as 12h or 7d",
    "promotion": "see the promotion keys in docs/promotion.md",
    "approvers": "list principals of the allowed-signers file, e.g. approvers: [alice@example.com]",
    "ttl": "write a duration such as 30m, 2h or 1d12h",
    "approval_method": "use manual (prompt on a terminal) or ci (the CI platform's approval gate)",
    "promote_by": "use digest or tag",
    "cpu": "write a number (256, 0.5) or a Kubernetes-style quantity (500m)",
    "memory": "write a number (512) or a Kubernetes-style quantity (512Mi, 2Gi)",
    "replicas": "write a whole number, e.g. replicas: 2",
}


def _pydantic_problems(err: ValidationError, data: Any, path: Path, shown: str) -> list[Problem]:
    positions = load_positioned(path, shown)
    problems: list[Problem] = []
    seen: set[tuple[Any, ...]] = set()
    for error in err.errors():
        loc = tuple(error["loc"])
        present, rest = _data_path(data, loc)
        kind = error["type"]
        key = (*present, kind if kind in ("missing", "extra_forbidden") else "value")
        if key in seen:
            continue
        seen.add(key)
        at_key = kind == "extra_forbidden"
        found = locate(positions, present, at_key=at_key)
        location = Location(shown, *found) if found else Location(shown)
        field_name = str(present[-1]) if present else ""
        if kind == "extra_forbidden":
            unknown = str(present[-1])
            model = _model_at(tuple(present[:-1]))
            allowed = sorted((f.alias or n) for n, f in (model.model_fields.items() if model else []))
            hint = _suggest(unknown, allowed) + (
                f"allowed keys here: {', '.join(allowed)}" if allowed else "remove it"
            )
            if list(present[:-1]) == ["deployment", "components"]:
                # A kind no plugin provides is refused, never dropped: its components would get no task.
                problems.append(
                    Problem(
                        f"unknown component kind {unknown!r}",
                        location,
                        _suggest(unknown, kinds.names()) + f"known kinds: {', '.join(kinds.names())}",
                    )
                )
                continue
            problems.append(Problem(f"unknown key {unknown!r} in {_dotted(present[:-1])}", location, hint))
        elif kind == "missing":
            missing = rest[-1] if rest else field_name
            hint = {
                "deployment": "a manifest starts with a top-level 'deployment:' mapping",
                "name": "add 'name: <file name without .yaml>' under deployment",
                "targets": "add a 'targets:' mapping with at least one target (for example dev)",
                "source": "add 'source:' with a path, Git URL or archive URL",
            }.get(str(missing), f"add '{missing}:'")
            problems.append(
                Problem(f"missing required key {missing!r} in {_dotted(present)}", location, hint)
            )
        else:
            name = field_name if not rest else str(rest[0])
            hint = _FIELD_HINTS.get(field_name) or _FIELD_HINTS.get(name) or "fix the value's type"
            message = error["msg"].removeprefix("Value error, ")
            if kind == "string_pattern_mismatch" and field_name == "name":
                message = f"deployment name {error['input']!r} is not valid"
            problems.append(Problem(f"{_dotted(present)}: {message}", location, hint))
    return problems


def load_manifest(path: Path, config: RepoConfig) -> Manifest:
    """Parse and validate one manifest file; every problem found is reported at once."""
    inputs.file(path)
    manifest, problems = inspect_manifest(path, config)
    if problems or manifest is None:
        raise AtmosError(problems)
    return manifest


def inspect_manifest(path: Path, config: RepoConfig) -> tuple[Manifest | None, list[Problem]]:
    """The manifest (when it can be built) and every problem in it.

    Schema problems do not hide the others: the offending keys are set aside and the rest is
    validated again, so cross-field rules still run (up to a handful of rounds).
    """
    shown = config.shown(path)
    if not path.is_file():
        return None, [Problem("manifest not found", Location(shown), "create the file or fix the name")]
    try:
        data = load_data(path, shown, config.parse_cache())
    except AtmosError as err:
        return None, err.problems
    if not isinstance(data, dict):
        return None, [
            Problem(
                "a manifest must be a mapping with a 'deployment:' key",
                Location(shown, 1, 1),
                "start the file with 'deployment:'",
            )
        ]
    problems: list[Problem] = []
    pruned: list[list[Any]] = []
    for _round in range(5):
        try:
            parsed = ManifestFile.model_validate(data)
        except ValidationError as err:
            found = _pydantic_problems(err, data, path, shown)
            problems += [p for p in found if p not in problems and not _caused_by(p, pruned)]
            if not _prune(data, err, pruned):
                return None, problems
            continue
        manifest = Manifest(parsed.deployment, path, shown)
        return manifest, problems + check_manifest(manifest, config)
    return None, problems


def _caused_by(problem: Problem, pruned: list[list[Any]]) -> bool:
    """After a first round, a 'missing' key can only come from setting a bad value aside."""
    return bool(pruned) and problem.message.startswith("missing required key")


def _prune(data: Any, err: ValidationError, pruned: list[list[Any]]) -> bool:
    """Remove the values pydantic rejected; False when a required key is missing (no progress)."""
    doomed: list[tuple[Any, Any, list[Any]]] = []
    for error in err.errors():
        if error["type"] == "missing":
            return False
        present, _rest = _data_path(data, tuple(error["loc"]))
        if not present:
            return False
        parent: Any = data
        for part in present[:-1]:
            parent = parent[part]
        doomed.append((parent, present[-1], present))
    # List items go last to first, so earlier indices stay valid.
    for parent, key, present in sorted(
        doomed, key=lambda d: d[1] if isinstance(d[1], int) else -1, reverse=True
    ):
        if (isinstance(parent, dict) and key in parent) or (isinstance(parent, list) and key < len(parent)):
            del parent[key]
            pruned.append(present)
    return bool(doomed)


def stack_file(config: RepoConfig, name: str) -> Path | None:
    """The file a stack path names, trying `.yaml` then `.yml` when it has no extension."""
    base = config.stacks_base / name
    if name.endswith((".yaml", ".yml")):
        return base if base.is_file() else None
    for ext in (".yaml", ".yml"):
        candidate = base.with_name(base.name + ext)
        if candidate.is_file():
            return candidate
    return None


def _yaml_functions(manifest: Manifest) -> list[Problem]:
    """Atmos's YAML functions belong in stack files; a manifest's values are plain or Jinja."""
    from atmos_tasks.yamlfunctions import YamlFunction

    found: list[YamlFunction] = []

    def walk(value: Any) -> None:
        if isinstance(value, YamlFunction):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    for component in manifest.components().values():
        walk([component.vars, component.settings, component.backend])
    for target in manifest.model.targets.values():
        walk(dict(target.context))
    return [
        Problem(
            f"YAML function {function} in a manifest",
            function.location,
            "YAML functions run in Atmos stack files; in a manifest write the value, or a template such as "
            "{{ component['vpc'].outputs.vpc_id }}",
        )
        for function in found
    ]


def check_manifest(manifest: Manifest, config: RepoConfig) -> list[Problem]:
    """The cross-field rules of SPEC §3 that a schema cannot express."""
    model = manifest.model
    problems: list[Problem] = _yaml_functions(manifest)
    if model.name != manifest.path.stem:
        problems.append(
            Problem(
                f"deployment name {model.name!r} does not match the file name {manifest.path.name!r}",
                manifest.locate(["name"]),
                f"rename the file to {model.name}.yaml or set name: {manifest.path.stem}",
            )
        )
    unrecordable = segment_problem(model.name)
    if unrecordable:
        problems.append(
            Problem(
                f"deployment name {model.name!r} cannot be recorded in Git: it {unrecordable}",
                manifest.locate(["name"]),
                _FIELD_HINTS["name"],
            )
        )
    problems += _check_component_names(manifest)
    problems += _check_depends_on(manifest)
    problems += _check_targets(manifest)
    problems += _check_stacks(manifest, config)
    return problems


def _check_component_names(manifest: Manifest) -> list[Problem]:
    problems = []
    owners: dict[str, str] = {}
    for ref in manifest.components():
        where = manifest.locate(manifest.component_keypath(ref), at_key=True)
        unrecordable = segment_problem(leaf(ref.name))
        if not COMPONENT_NAME.fullmatch(ref.name) or ".." in ref.name:
            problems.append(
                Problem(
                    f"component name {ref.name!r} is not valid",
                    where,
                    "use letters, digits, '.', '_', '-' and '/' between parts (e.g. ecs/service-api)",
                )
            )
        elif unrecordable:
            problems.append(
                Problem(
                    f"component name {ref.name!r} cannot be recorded in Git: its ref part "
                    f"{leaf(ref.name)!r} {unrecordable}",
                    where,
                    REF_HINT,
                )
            )
        if ref.name in owners:
            problems.append(
                Problem(
                    f"component {ref.name!r} is defined under both {owners[ref.name]} and {ref.type}",
                    manifest.locate(manifest.component_keypath(ref), at_key=True),
                    "give one of them another name; names must be unique across types",
                )
            )
        owners.setdefault(ref.name, ref.type)
    return problems


def _check_depends_on(manifest: Manifest) -> list[Problem]:
    problems = []
    components = manifest.components()
    names = [str(ref) for ref in components]
    for ref, component in components.items():
        for index, entry in enumerate(component.metadata.depends_on):
            if manifest.find_component(entry) is None:
                problems.append(
                    Problem(
                        f"{ref} depends on {entry!r}, which is not a component of this deployment",
                        manifest.locate([*manifest.component_keypath(ref), "metadata", "depends_on", index]),
                        _suggest(entry, names) + f"components: {', '.join(names) or '(none)'}",
                    )
                )
            elif manifest.find_component(entry) == ref:
                problems.append(
                    Problem(
                        f"{ref} depends on itself",
                        manifest.locate([*manifest.component_keypath(ref), "metadata", "depends_on", index]),
                        "remove the entry",
                    )
                )
    cycle = find_cycle({ref: [d for d in manifest.dependencies(ref) if d != ref] for ref in components})
    if cycle:
        first = cycle[0]
        problems.append(
            Problem(
                "dependency cycle: " + " → ".join(str(r) for r in cycle),
                manifest.locate([*manifest.component_keypath(first), "metadata", "depends_on"]),
                "remove one of these depends_on entries so the components can be ordered",
            )
        )
    return problems


def find_cycle(edges: dict[Any, list[Any]]) -> list[Any] | None:
    """A cycle in a directed graph, as a closed path [a, b, …, a]; None when acyclic."""
    state: dict[Any, int] = {}
    stack: list[Any] = []

    def visit(node: Any) -> list[Any] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges, key=str):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _check_targets(manifest: Manifest) -> list[Problem]:
    model = manifest.model
    problems = []
    targets = list(model.targets)
    for name, target in model.targets.items():
        if not re.match(TARGET_PATTERN, name) or segment_problem(name):
            problems.append(
                Problem(
                    f"target name {name!r} is not valid",
                    manifest.locate(["targets", name], at_key=True),
                    "use lower-case letters, digits, '-' and '_' (e.g. dev, prod-eu): the name is part "
                    "of the Git refs and tags that record the target's rollouts",
                )
            )
        promotion = target.promotion
        if promotion is None:
            continue
        where = ["targets", name, "promotion"]
        if promotion.from_ is not None and promotion.allowed_from is not None:
            problems.append(
                Problem(
                    f"target {name!r} sets both 'from' and 'allowed_from'",
                    manifest.locate([*where, "allowed_from"], at_key=True),
                    "use 'from: <target>' for one source or 'allowed_from: [a, b]' for several, not both",
                )
            )
        sources: list[tuple[str, list[Any]]] = []
        if promotion.from_ is not None:
            sources.append((promotion.from_, [*where, "from"]))
        sources += [(s, [*where, "allowed_from", i]) for i, s in enumerate(promotion.allowed_from or [])]
        for source, keypath in sources:
            if source not in model.targets:
                problems.append(
                    Problem(
                        f"target {name!r} promotes from {source!r}, which is not a target",
                        manifest.locate(keypath),
                        _suggest(source, targets) + f"targets: {', '.join(targets)}",
                    )
                )
            elif source == name:
                problems.append(
                    Problem(
                        f"target {name!r} promotes from itself",
                        manifest.locate(keypath),
                        "name the target it receives promotions from",
                    )
                )
    edges = {
        name: [s for s in (t.promotion.sources if t.promotion else []) if s in model.targets and s != name]
        for name, t in model.targets.items()
    }
    cycle = find_cycle(edges)
    if cycle:
        problems.append(
            Problem(
                "promotion cycle: " + " ← ".join(cycle),
                manifest.locate(["targets", cycle[0], "promotion"]),
                "promotions must flow one way (dev → staging → prod); remove one of these sources",
            )
        )
    default = model.context.default_target
    if default is not None and default not in model.targets:
        problems.append(
            Problem(
                f"default_target {default!r} is not a target",
                manifest.locate(["context", "default_target"]),
                _suggest(default, targets) + f"targets: {', '.join(targets)}",
            )
        )
    return problems


def _check_stacks(manifest: Manifest, config: RepoConfig) -> list[Problem]:
    entries: list[tuple[str, list[Any]]] = [(s, ["stacks", i]) for i, s in enumerate(manifest.model.stacks)]
    for name, target in manifest.model.targets.items():
        entries += [(s, ["targets", name, "stacks", i]) for i, s in enumerate(target.stacks)]
    problems = []
    for stack, keypath in entries:
        if stack_file(config, stack) is None:
            problems.append(
                Problem(
                    f"stack {stack!r} not found under {config.shown(config.stacks_base)}/",
                    manifest.locate(keypath),
                    _stack_hint(config, stack),
                )
            )
    return problems


def _stack_hint(config: RepoConfig, stack: str) -> str:
    folder = (config.stacks_base / stack).parent
    if folder.is_dir():
        names = sorted(
            config.shown(p.with_suffix(""))[len(config.shown(config.stacks_base)) + 1 :]
            for p in folder.iterdir()
            if p.suffix in (".yaml", ".yml")
        )
        if names:
            return _suggest(stack, names) + f"stacks there: {', '.join(names)}"
    return "write the path relative to the stacks folder, without extension (e.g. platform/vpc)"


def manifest_path(config: RepoConfig, name: str) -> Path:
    for ext in (".yaml", ".yml"):
        path = config.deployments_base / f"{name}{ext}"
        if path.is_file():
            return path
    return config.deployments_base / f"{name}.yaml"


def list_manifest_paths(config: RepoConfig) -> list[Path]:
    if not config.deployments_base.is_dir():
        return []
    return sorted(
        p for p in config.deployments_base.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
    )


def load_deployment(config: RepoConfig, name: str) -> Manifest:
    path = manifest_path(config, name)
    if not path.is_file():
        known = [p.stem for p in list_manifest_paths(config)]
        raise AtmosError(
            [
                Problem(
                    f"no deployment named {name!r}",
                    Location(config.shown(path)),
                    _suggest(name, known) + f"deployments: {', '.join(known) or '(none)'}",
                )
            ]
        )
    return load_manifest(path, config)
