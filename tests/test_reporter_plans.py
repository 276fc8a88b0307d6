"""Plans in the reporter: `--show-plan` lines under each component, a preview's images that would
be rebuilt and dependants that may change, and the job summary's `<details>` — with fake tasks."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import pytest

from atmos_tasks.preview import BUILT_FOR_SOURCE, rebuilds, rebuilt_images, running_phrase
from atmos_tasks.reporter import (
    SHOWN_LINES,
    RolloutReporter,
    job_summary,
    preview_phrase,
    preview_summary,
    shown_lines,
)

LINES = ["-/+ null_resource.task_definition (1 attribute)", '~ output.image = "a" → "b"']
RUNNING = running_phrase("dev")


@dataclass
class FakeTask:
    name: str
    meta: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    getargs: dict[str, tuple[str, None]] = field(default_factory=dict)
    task_dep: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    actions: list[Any] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)

    def title(self) -> str:
        return self.name


def step(kind: str, component: str, preview: bool = False, **getargs: str) -> FakeTask:
    atmos = {"kind": kind, "deployment": "api", "target": "dev", "component": f"terraform/{component}"}
    if preview:
        atmos["preview"] = True
    return FakeTask(
        f"{kind}:api:dev:{component}",
        meta={"atmos": atmos},
        getargs={key: (task, None) for key, task in getargs.items()},
    )


def reporter(tasks: list[FakeTask], selected: str, **options: Any) -> tuple[RolloutReporter, io.StringIO]:
    out = io.StringIO()
    found = RolloutReporter(out, {})
    by_name = {task.name: task for task in tasks}
    by_name[selected].options = options
    found.initialize(by_name, [selected])
    return found, out


def preview_group(images: dict[str, Any] | None = None) -> FakeTask:
    meta = {
        "kind": "preview",
        "deployment": "api",
        "target": "dev",
        "git_sha": "a" * 40,
        "components": ["terraform/ecs/taskdef-api", "terraform/ecs/service-api"],
        "images": images or {},
    }
    return FakeTask("plan:api:dev", meta={"atmos": meta})


def rollout_group() -> FakeTask:
    meta = {"kind": "rollout", "deployment": "api", "target": "dev", "git_sha": "a" * 40, "components": []}
    return FakeTask("rollout:api:dev", meta={"atmos": meta})


def test_an_image_from_another_source_is_rebuilt() -> None:
    assert rebuilt_images({"api": RUNNING, "web": BUILT_FOR_SOURCE}) == ["api"]
    assert rebuilds({"status": "built", "from": RUNNING})
    assert not rebuilds({"status": "built", "from": BUILT_FOR_SOURCE})
    assert not rebuilds({"status": "skipped", "reason": "no image"})


def test_what_a_plan_says_a_rollout_would_do() -> None:
    assert preview_phrase({"has_changes": False, "rebuilt": ["api"]}) == (
        "changes: the api image would be rebuilt (its source changed)"
    )
    counts = {"add": 1, "change": 0, "destroy": 1}
    assert preview_phrase({"has_changes": True, "changes": counts, "rebuilt": ["api"]}) == (
        "changes (1 to add, 0 to change, 1 to destroy) and the api image would be rebuilt "
        "(its source changed)"
    )
    assert preview_phrase({"has_changes": False, "follows": ["ecs/taskdef-api"]}) == (
        "no changes against the current outputs of ecs/taskdef-api, which would change first"
    )
    assert preview_phrase({"has_changes": False}) == "no changes"


def test_long_plans_are_cut_and_say_where_the_rest_is() -> None:
    many = [f"+ null_resource.r[{i}]" for i in range(SHOWN_LINES + 5)]
    shown = shown_lines(many, "/w")
    assert shown[:-1] == many[:SHOWN_LINES] and shown[-1] == "… and 5 more: /w/atmos-plan.log"
    assert shown_lines(LINES) == LINES


@pytest.mark.parametrize("asked", [True, False])
def test_plan_lines_are_printed_under_the_component_only_with_show_plan(asked: bool) -> None:
    plan, apply = step("plan", "ecs/taskdef-api"), step("apply", "ecs/taskdef-api")
    rollout = rollout_group()
    found, out = reporter([plan, apply, rollout], "rollout:api:dev", show_plan=asked)
    plan.values = {"status": "planned", "has_changes": True, "changes": {"add": 1}, "plan_summary": LINES}
    found.add_success(plan)
    text = out.getvalue()
    assert "ecs/taskdef-api: planned, changes (1 to add)" in text
    assert all((f"      {line}\n" in text) is asked for line in LINES)


def test_an_applied_plan_made_before_this_run_is_shown_as_it_is_applied() -> None:
    plan, apply = step("plan", "ecr/api"), step("apply", "ecr/api")
    rollout = rollout_group()
    found, out = reporter([plan, apply, rollout], "rollout:api:dev", show_plan=True)
    found.skip_uptodate(plan)
    plan.values = {"status": "planned", "has_changes": True, "plan_summary": ["+ null_resource.repository"]}
    apply.values = {"status": "applied", "outputs": {}}
    found.add_success(apply)
    assert out.getvalue().endswith("✓ terraform/ecr/api: applied\n      + null_resource.repository\n")

    # Planned by a preview that kept no lines: where the plan is, instead.
    plan.values = {"status": "planned", "has_changes": True, "workdir": "/w"}
    found.add_success(apply)
    assert "(planned before this run, without its lines: the plan is in /w/atmos-plan.log)" in out.getvalue()


def test_a_preview_counts_components_bound_to_a_rebuilt_image_and_dependants_that_follow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    group = preview_group({"nixpack/api": {"status": "built", "image": "acme/api@sha256:1", "from": RUNNING}})
    taskdef = step("plan", "ecs/taskdef-api", preview=True)
    service = step("plan", "ecs/service-api", preview=True, up_0="plan:api:dev:ecs/taskdef-api")
    found, out = reporter([group, taskdef, service], "plan:api:dev", show_plan=True)
    taskdef.values = {"status": "planned", "has_changes": False, "image_from": {"api": RUNNING}}
    service.values = {"status": "planned", "has_changes": False}
    found.add_success(taskdef)
    found.add_success(service)
    found.complete_run()
    text = out.getvalue()
    assert "Image nixpack/api: would be rebuilt (its source changed)" in text
    assert "terraform/ecs/taskdef-api: planned, changes: the api image would be rebuilt" in text
    assert "with the api image" not in text
    assert (
        "terraform/ecs/service-api: planned, no changes against the current outputs of ecs/taskdef-api"
        in text
    )
    assert (
        text.rstrip()
        .splitlines()[-1]
        .startswith(
            "Plan complete: 1 component(s) would change, 1 may change after their dependencies; "
            "image(s) nixpack/api would be rebuilt ("
        )
    )


def test_the_job_summary_folds_each_components_plan() -> None:
    meta = {"deployment": "api", "target": "dev", "git_sha": "a" * 40}
    rows = [
        {"component": "ecr/api", "outcome": "up to date", "image": "", "error": "", "plan": ""},
        {
            "component": "ecs/taskdef-api",
            "outcome": "applied (1 to add, 0 to change, 1 to destroy)",
            "image": "",
            "error": "",
            "plan": "\n".join(LINES),
        },
    ]
    summary = {"deployment": "api", "target": "dev", "recorded": []}
    text = job_summary(meta, rows, summary, [])
    assert text.count("<details>") == 1
    assert "<summary>ecs/taskdef-api: applied (1 to add, 0 to change, 1 to destroy)</summary>" in text
    assert "\n".join(LINES) in text


def test_the_preview_summary_folds_plans_and_names_rebuilt_images() -> None:
    meta = preview_group(
        {"nixpack/api": {"status": "built", "image": "acme/api@sha256:1", "from": RUNNING}}
    ).meta["atmos"]
    planned = {
        "terraform/ecs/taskdef-api": {
            "status": "planned",
            "has_changes": True,
            "changes": {"add": 1, "change": 0, "destroy": 1},
            "rebuilt": ["api"],
            "plan_summary": LINES,
        },
        "terraform/ecs/service-api": {
            "status": "planned",
            "has_changes": False,
            "follows": ["ecs/taskdef-api"],
        },
    }
    text = preview_summary(meta, planned, [])
    assert "📋 1 of 2 component(s) would change, 1 may change after their dependencies." in text
    assert "Image(s) `nixpack/api` would be rebuilt." in text
    assert text.count("<details>") == 1 and "\n".join(LINES) in text
    assert "| `ecs/service-api` | no changes against the current outputs of ecs/taskdef-api" in text
