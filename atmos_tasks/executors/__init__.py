"""Rollout executors (SPEC §9): a small protocol, registered by component type.

The graph only asks "plan this job", "apply that plan" and, for a preview, "what does this
component output now"; adding helmfile or lambda means adding
an executor here, not touching the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Job:
    """Everything an executor needs for one component on one target; picklable, no I/O."""

    kind: str
    deployment: str
    target: str
    component: str
    root: str
    workdir: str
    module_dir: str
    vars: dict[str, Any]
    env: dict[str, str]
    backend_type: str
    backend: dict[str, Any]
    command: str
    static_key: str
    module_digest: str
    vars_template: dict[str, Any] = field(default_factory=dict)
    output_refs: tuple[str, ...] = ()
    image_refs: tuple[str, ...] = ()
    bindings: dict[str, str] = field(default_factory=dict)
    template_context: dict[str, Any] = field(default_factory=dict)
    # The target context of a vendored module: kept to the variables it declares at plan time.
    context_vars: dict[str, Any] = field(default_factory=dict)
    # A vendored module's origin, for the SBOM: {"folder", "source" (version filled in), "version"}.
    vendored: dict[str, Any] | None = None
    # Variables (and `env.NAME` entries) the user marked sensitive: `settings.sensitive`.
    sensitive: tuple[str, ...] = ()
    # With a remote: the target already runs this commit of the component, as another run recorded
    # ({"by", "at", "inputs_hash"}); the run plans and applies nothing for it, only reads its outputs.
    current: dict[str, str] | None = None
    # With a remote: the inputs hash of what the target runs now, as recorded; a plan whose saved
    # inputs differ is not up to date (another runner deployed something else since).
    deployed_inputs: str | None = None
    # `metadata.timeout` in seconds: each Terraform run of the component is stopped past it.
    timeout: float | None = None


class Executor(Protocol):
    def plan(
        self, job: Job, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """Prepare and plan; returns the task's values (status, inputs_hash, plan_id, …)."""

    def apply(self, job: Job, plan: dict[str, Any]) -> dict[str, Any]:
        """Apply the saved plan; returns status and outputs."""

    def deployed_outputs(self, job: Job) -> dict[str, Any] | None:
        """The outputs the component's current state holds; None when it was never applied."""


def _terraform() -> Executor:
    from atmos_tasks.executors.terraform import TerraformExecutor

    return TerraformExecutor()


EXECUTORS: dict[str, Callable[[], Executor]] = {"terraform": _terraform}


def executor_for(kind: str) -> Executor:
    try:
        return EXECUTORS[kind]()
    except KeyError:
        raise ValueError(f"no executor for component type {kind!r}") from None
