"""`atmos-tasks matrix`: one target's components as a CI job matrix (SPEC §12). Pure data.

Each entry names the doit task that deploys its component (`apply:` for Terraform, the last of
`build:`/`test:` for an image). doit runs that task's dependencies first and records nothing:
recording is the target's `record:` finalizer, which a CI run reaches with `rollout:<dep>:<target>`.
Entries come in dependency order; a component's wave is one more than its latest dependency's,
so every wave only needs earlier waves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from atmos_tasks.engine import TargetPlan
from atmos_tasks.graph import target_tasks
from atmos_tasks.manifest import ComponentRef


def component_tasks(tasks: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each component's own doit task names (keyed `type/name`), in the order the graph lists them."""
    found: dict[str, list[str]] = {}
    for task in tasks:
        component = (task.get("meta") or {}).get("atmos", {}).get("component")
        if component is not None:
            found.setdefault(component, []).append(f"{task['basename']}:{task['name']}")
    return found


def waves_of(depends_on: Mapping[ComponentRef, Sequence[ComponentRef]]) -> dict[ComponentRef, int]:
    """Topological level of each component; dependencies outside the mapping (disabled) are ignored."""
    level: dict[ComponentRef, int] = {}

    def visit(ref: ComponentRef) -> int:
        if ref not in level:
            level[ref] = 1 + max((visit(d) for d in depends_on[ref] if d in depends_on), default=-1)
        return level[ref]

    for ref in depends_on:
        visit(ref)
    return level


def matrix_entries(
    deployment: str,
    target: str,
    order: Sequence[ComponentRef],
    depends_on: Mapping[ComponentRef, Sequence[ComponentRef]],
    tasks: Mapping[str, Sequence[str]],
) -> list[dict[str, Any]]:
    """One entry per component of `order` (dependencies first), as documented in docs/json-output.md."""
    wave = waves_of(depends_on)
    entries = []
    for ref in order:
        own = list(tasks[str(ref)])
        entries.append(
            {
                "deployment": deployment,
                "target": target,
                "component": ref.name,
                "type": ref.type,
                "task": own[-1],
                "tasks": own,
                "depends_on": [str(d) for d in depends_on[ref] if d in depends_on],
                "wave": wave[ref],
            }
        )
    return entries


def include(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """GitHub Actions' `strategy.matrix`: nothing beside `include`, or it would become an axis."""
    return {"include": entries}


def by_wave(entries: list[dict[str, Any]]) -> dict[str, Any]:
    waves: list[list[dict[str, Any]]] = [[] for _ in range(1 + max((e["wave"] for e in entries), default=-1))]
    for entry in entries:
        waves[entry["wave"]].append(entry)
    return {"waves": waves}


def target_matrix(plan: TargetPlan, waves: bool = False) -> dict[str, Any]:
    """The matrix of one compiled target: `{"include": [...]}`, or `{"waves": [[...], ...]}`."""
    depends_on = {ref: plan.resolved.components[ref].depends_on for ref in plan.order}
    entries = matrix_entries(
        plan.deployment, plan.target, plan.order, depends_on, component_tasks(target_tasks(plan))
    )
    return by_wave(entries) if waves else include(entries)
