"""The CI matrix from a target's components and tasks: order, waves, task names (pure)."""

from __future__ import annotations

from typing import Any

from atmos_tasks.manifest import ComponentRef
from atmos_tasks.matrix import by_wave, component_tasks, include, matrix_entries, waves_of

ECR = ComponentRef("terraform", "ecr/api")
IMAGE = ComponentRef("nixpack", "api")
TASKDEF = ComponentRef("terraform", "ecs/taskdef-api")
SERVICE = ComponentRef("terraform", "ecs/service-api")
ALARMS = ComponentRef("terraform", "monitoring/alarms-api")

DEPENDS_ON = {
    ECR: [],
    IMAGE: [ECR],
    TASKDEF: [IMAGE, ECR],
    SERVICE: [TASKDEF],
    ALARMS: [],
}
ORDER = [ECR, IMAGE, TASKDEF, SERVICE, ALARMS]


def task(kind: str, ref: ComponentRef | None, name: str) -> dict[str, Any]:
    meta = {"atmos": {"kind": kind, "component": str(ref)}} if ref else {"atmos": {"kind": kind}}
    return {"basename": kind, "name": name, "meta": meta}


def graph_tasks() -> list[dict[str, Any]]:
    return [
        task("plan", ECR, "api:dev:ecr/api"),
        task("apply", ECR, "api:dev:ecr/api"),
        task("build", IMAGE, "api:dev:api"),
        task("test", IMAGE, "api:dev:api"),
        task("plan", TASKDEF, "api:dev:ecs/taskdef-api"),
        task("apply", TASKDEF, "api:dev:ecs/taskdef-api"),
        task("plan", SERVICE, "api:dev:ecs/service-api"),
        task("apply", SERVICE, "api:dev:ecs/service-api"),
        task("vendor", ALARMS, "api:dev:monitoring/alarms-api"),
        task("plan", ALARMS, "api:dev:monitoring/alarms-api"),
        task("apply", ALARMS, "api:dev:monitoring/alarms-api"),
        {"basename": "build", "name": "api:dev", "actions": None},
        task("record", None, "api:dev"),
        task("rollout", None, "api:dev"),
    ]


def test_component_tasks_keeps_each_components_own_tasks_in_graph_order() -> None:
    found = component_tasks(graph_tasks())
    assert list(found) == [str(ref) for ref in ORDER]
    assert found["nixpack/api"] == ["build:api:dev:api", "test:api:dev:api"]
    assert found["terraform/monitoring/alarms-api"] == [
        "vendor:api:dev:monitoring/alarms-api",
        "plan:api:dev:monitoring/alarms-api",
        "apply:api:dev:monitoring/alarms-api",
    ]


def test_waves_are_topological_levels() -> None:
    assert waves_of(DEPENDS_ON) == {ECR: 0, ALARMS: 0, IMAGE: 1, TASKDEF: 2, SERVICE: 3}


def test_waves_ignore_dependencies_outside_the_target() -> None:
    disabled = ComponentRef("terraform", "disabled")
    assert waves_of({ECR: [disabled], SERVICE: [ECR]}) == {ECR: 0, SERVICE: 1}


def test_entries_in_dependency_order_name_the_task_that_deploys_each_component() -> None:
    entries = matrix_entries("api", "dev", ORDER, DEPENDS_ON, component_tasks(graph_tasks()))
    assert [e["component"] for e in entries] == [ref.name for ref in ORDER]
    assert entries[2] == {
        "deployment": "api",
        "target": "dev",
        "component": "ecs/taskdef-api",
        "type": "terraform",
        "task": "apply:api:dev:ecs/taskdef-api",
        "tasks": ["plan:api:dev:ecs/taskdef-api", "apply:api:dev:ecs/taskdef-api"],
        "depends_on": ["nixpack/api", "terraform/ecr/api"],
        "wave": 2,
    }
    image = entries[1]
    assert image["type"] == "nixpack" and image["task"] == "test:api:dev:api"
    assert image["depends_on"] == ["terraform/ecr/api"]


def test_include_and_waves_shapes() -> None:
    entries = matrix_entries("api", "dev", ORDER, DEPENDS_ON, component_tasks(graph_tasks()))
    assert include(entries) == {"include": entries}
    waves = by_wave(entries)["waves"]
    assert [[e["component"] for e in wave] for wave in waves] == [
        ["ecr/api", "monitoring/alarms-api"],
        ["api"],
        ["ecs/taskdef-api"],
        ["ecs/service-api"],
    ]
    assert by_wave([]) == {"waves": []}
