"""Component kinds: one plugin object per kind, found by name; the core never names one.

A kind is a module that defines `KIND`, an instance of a `Kind` subclass. The kinds this package
ships are its modules (`terraform`, `nixpack`, `container`); third-party kinds register through the
`atmos_tasks.kinds` entry point group:

    [project.entry-points."atmos_tasks.kinds"]
    helmfile = "my_package.helmfile:KIND"

Kinds play one of two roles in the task graph:

- `deploy` (plan → apply, then `record`): Terraform modules, running containers. The kind plans a
  `Job` into values, applies that plan, and reads what is deployed (outputs, health).
- `image` (build → test): an artifact built once per source and bound into deploying components;
  promotion and rollback reuse the recorded digest. Templates read it as `<template_root>.<name>`.

Importing this module, or asking for the names of the kinds, imports no kind: a kind's module
is imported the first time the kind is used, and a kind's module imports its heavy tools (Docker,
Terraform helpers) in the functions that use them.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from atmos_tasks.manifest import ComponentRef, Manifest
    from atmos_tasks.resolve import ResolveContext, ResolvedComponent

ENTRY_POINT_GROUP = "atmos_tasks.kinds"


@dataclass(frozen=True)
class Job:
    """What a deploying kind needs for one component on one target; picklable, decided at compile
    time. Kinds subclass it with their own fields (a Terraform module's backend, a container's ports)."""

    kind: str
    deployment: str
    target: str
    component: str
    root: str
    # The component's own folder under `.atmos/workdir/`: logs, plan files, kept on failure.
    workdir: str
    vars: dict[str, Any]
    env: dict[str, str]
    # The inputs known before anything runs: the plan task is up to date while they hold.
    static_key: str
    # The digest of the code the component runs (a module folder, a vendored object): "" for none.
    module_digest: str = ""
    vars_template: dict[str, Any] = field(default_factory=dict)
    output_refs: tuple[str, ...] = ()
    image_refs: tuple[str, ...] = ()
    bindings: dict[str, str] = field(default_factory=dict)
    template_context: dict[str, Any] = field(default_factory=dict)
    # Variables (and `env.NAME` entries) the user marked sensitive: `settings.sensitive`.
    sensitive: tuple[str, ...] = ()
    # With a remote: the target already runs this commit of the component, as another run recorded
    # ({"by", "at", "inputs_hash"}); the run plans and applies nothing for it, only reads its outputs.
    current: dict[str, str] | None = None
    # With a remote: the inputs hash of what the target runs now, as recorded; a plan whose saved
    # inputs differ is not up to date (another runner deployed something else since).
    deployed_inputs: str | None = None
    # `metadata.timeout` in seconds: each run of the component's tool is stopped past it.
    timeout: float | None = None
    # The remote cache (`remotecache.CacheSpec`): a current component's recorded outputs come from it.
    cache: Any = None


@dataclass(frozen=True)
class Health:
    """What a kind's probe sees of a deployed component, read live (not from Git)."""

    state: Literal["healthy", "unhealthy", "unknown"]
    healthy: int = 0
    total: int = 0
    detail: str = ""
    # Where each running instance answers, for instance {"web-1": "127.0.0.1:49153"}.
    endpoints: dict[str, str] = field(default_factory=dict)

    def shown(self) -> str:
        mark = {"healthy": "✓", "unhealthy": "✗", "unknown": "?"}[self.state]
        counts = f" ({self.healthy}/{self.total})" if self.total or self.state != "unknown" else ""
        return f"{mark} {self.state}{counts}"

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"state": self.state, "healthy": self.healthy, "total": self.total}
        if self.detail:
            found["detail"] = self.detail
        if self.endpoints:
            found["endpoints"] = dict(self.endpoints)
        return found


class Kind:
    """A component kind. Subclasses set `name` and `role` and implement the methods of their role;
    what a kind does not support raises `NotImplementedError` (the core asks only its role's)."""

    name: ClassVar[str]
    role: ClassVar[Literal["deploy", "image"]] = "deploy"
    # Image kinds: the root templates read an image from (`{{ nixpack.api.image }}`).
    template_root: ClassVar[str | None] = None
    # Shown by `atmos-tasks kinds` and in the unknown-kind error.
    summary: ClassVar[str] = ""
    # Whether `resolve` reads only what compilation observes (`inputs`), so that its result may be
    # reused while none of that changed (`resolvememo`). Off unless a kind says so.
    memoizable: ClassVar[bool] = False

    # --- compile time: plain data, no side effects ----------------------------------------------
    def resolve(self, rc: ResolveContext, ref: ComponentRef) -> ResolvedComponent | None:
        """The component merged and rendered for `rc.target`; None when the target disables it."""
        raise NotImplementedError

    def job(self, cc: CompileContext, component: ResolvedComponent) -> Any:
        """The picklable job the kind's tasks run: a `Job` for deploying kinds."""
        raise NotImplementedError

    # --- deploy role: run in tasks, failures are values ------------------------------------------
    def plan(
        self, job: Job, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """Plan against what is deployed; values `{status: planned, has_changes, inputs_hash, …}`."""
        raise NotImplementedError

    def apply(self, job: Job, plan: dict[str, Any]) -> dict[str, Any]:
        """Apply exactly that plan; values `{status: applied, outputs, inputs_hash, …}`."""
        raise NotImplementedError

    def deployed_outputs(self, job: Job) -> dict[str, Any] | None:
        """What the deployed component outputs now; None when it was never applied."""
        raise NotImplementedError

    def destroy(
        self, job: Job, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """Remove what the kind deployed for the job's component; `{status: destroyed}` or failed.
        `outputs` and `images`: what its dependencies run now (for templates that read them)."""
        raise NotImplementedError

    def plan_files(self, job: Job) -> list[str]:
        """Files a plan task produces (doit re-runs the task when one is missing)."""
        return []

    def drift(
        self, job: Job, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]], workdir: str
    ) -> dict[str, Any]:
        """`atmos-tasks drift`: plan the job against what is deployed, applying and keeping nothing,
        in `workdir` (the check's own, never the job's). Values `{status: in-sync | drifted | failed,
        changes: [{address, action, symbol, attributes?}], error?}`, and `outputs` when the check read
        them. A kind without a check raises NotImplementedError: its components are not checked."""
        raise NotImplementedError

    # --- image role ------------------------------------------------------------------------------
    def build(self, job: Any, outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        raise NotImplementedError

    def reuse(self, record: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def test(self, job: Any, command: list[str], build: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def test_command(self, job: Any) -> list[str] | None:
        return None

    # --- queries ---------------------------------------------------------------------------------
    def health(self, deployment: str, target: str, component: str) -> Health | None:
        """Read live; None for a kind with no health probe (nothing is shown)."""
        return None

    def describe(self, config: Any, resolved: Any, component: ResolvedComponent) -> dict[str, Any]:
        """`atmos-tasks describe`: the resolved component as the user should see it."""
        from atmos_tasks.discovery import shown_vars

        out: dict[str, Any] = {
            "type": component.ref.type,
            "vars": shown_vars(component),
            "settings": component.settings,
            "env": component.env,
            "metadata": component.metadata,
            "depends_on": [str(d) for d in component.depends_on],
        }
        if component.bindings:
            out["bindings"] = {var: bound_ref(component, image) for var, image in component.bindings.items()}
        return out

    def warnings(self, component: ResolvedComponent) -> list[str]:
        """What `validate` says of the component without failing: what its rollout will refuse on
        this runner though the configuration is valid (an Atmos hook it would have to run…)."""
        return []

    def sensitive_names(self, workspace: Any, component: ResolvedComponent) -> tuple[str, ...]:
        """Variables (and `env.NAME`) whose values are masked: `settings.sensitive`, and what the
        kind knows is sensitive (a Terraform module's `sensitive = true` variables)."""
        from atmos_tasks.secrets import marked

        return marked(component.settings)

    # --- records ---------------------------------------------------------------------------------
    def sbom_part(self, job: Any) -> dict[str, Any]:
        """What the SBOM of the component is made from, as plain data (kept in the record task)."""
        return {}

    def sbom_components(self, part: dict[str, Any]) -> list[Any]:
        """The CycloneDX components of a part (`sbom_part`), read when the rollout is recorded."""
        return []

    def recorded_image(self, plan: dict[str, Any], applied: dict[str, Any]) -> str | None:
        """The image a record of the component names."""
        return (applied if self.role == "image" else plan).get("image")


@dataclass
class CompileContext:
    """What job construction may read: the workspace's caches, the target, the options."""

    workspace: Any  # engine.Workspace
    manifest: Manifest
    resolved: Any  # resolve.ResolvedTarget
    git: Any  # resolve.GitInfo
    dirty: list[str]
    options: Any  # invocation.RolloutOptions
    # A vendored module's identity, until its vendor task says which object it is.
    vendor_key: str | None = None


class UnknownKind(LookupError):
    pass


def _builtin_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


@cache
def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


@cache
def names() -> tuple[str, ...]:
    """Every kind this installation provides: its own modules, then registered plugins."""
    builtin = _builtin_names()
    return (*builtin, *sorted(n for n in _entry_points() if n not in builtin))


@cache
def get(name: str) -> Kind:
    if name in _builtin_names():
        module = importlib.import_module(f"{__name__}.{name}")
        found = module.KIND
    elif name in _entry_points():
        found = _entry_points()[name].load()
    else:
        raise UnknownKind(f"no component kind {name!r}; known kinds: {', '.join(names())}")
    if isinstance(found, type):
        found = found()
    if not isinstance(found, Kind) or getattr(found, "name", None) != name:
        raise UnknownKind(
            f"the plugin registered as component kind {name!r} does not provide a Kind of that name"
        )
    return found


@cache
def ordered() -> tuple[str, ...]:
    """The kinds in the order components are listed: deploying kinds, then image kinds."""
    return tuple(sorted(names(), key=lambda name: (get(name).role != "deploy", name)))


def of(ref: ComponentRef) -> Kind:
    return get(ref.type)


def template_roots() -> dict[str, str]:
    """`{root: kind}` for image kinds: what templates read images from."""
    return {k.template_root: k.name for k in map(get, names()) if k.template_root}


def workdir_of(config: Any, deployment: str, target: str, name: str) -> str:
    """Where a kind runs a component: `.atmos/workdir/<dep>/<target>/<leaf>`. (Joined as text: as
    four `Path` joins per component, a tenth of a 300-component compilation.)"""
    import os

    from atmos_tasks.tracking import leaf

    return os.path.join(config.work_dir_text, "workdir", deployment, target, leaf(name))


def bound_ref(component: ResolvedComponent, image: str) -> str:
    """The image component bound into `component` under the name `image` (`nixpack/api`)."""
    return next((str(r) for r in component.image_refs if r.name == image), image)


def image_context(build: dict[str, Any]) -> dict[str, Any]:
    """What templates see of a built image (`nixpack.<name>`)."""
    return {key: build.get(key, "") for key in ("image", "digest", "registry", "repository")}


def deferred_vars(
    job: Job, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The job's vars, rendered again now that its dependencies' outputs and images are known.

    Raises `templates.TemplateError` (its `keypath` is below `vars`)."""
    if not (job.output_refs or job.image_refs):
        return dict(job.vars)
    from atmos_tasks.templates import render_tree

    built = {name: image_context(images.get(name, {})) for name in job.image_refs}
    context = {
        **job.template_context,
        "component": {name: {"outputs": outputs.get(name, {})} for name in job.output_refs},
        **{root: built for root in template_roots()},
    }
    return dict(render_tree(job.vars_template, context))
