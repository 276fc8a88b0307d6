"""Up-to-date rules of the task graph that read doit's saved values."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from atmos_tasks.graph import PlanApplied

PLAN = "plan:api:dev:ecr/api"
APPLY = "apply:api:dev:ecr/api"


def check(rows: dict[tuple[str, str], Any]) -> bool:
    calculator = PlanApplied(APPLY)
    calculator.get_val = lambda task_id, key: rows.get((task_id, key))
    return calculator(SimpleNamespace(name=PLAN), {})


def test_a_preview_leaves_a_plan_alone_only_when_its_apply_applied_it() -> None:
    planned = {"status": "planned", "plan_id": "p1"}
    applied = {"status": "applied", f"_result:{PLAN}": planned}
    assert check({(PLAN, "result:"): planned, (APPLY, "_values_:"): applied})
    # A newer plan (a previous preview's) that no apply has applied yet.
    newer = {**planned, "plan_id": "p2"}
    assert not check({(PLAN, "result:"): newer, (APPLY, "_values_:"): applied})
    # The apply failed, or never ran.
    assert not check({(PLAN, "result:"): planned, (APPLY, "_values_:"): {**applied, "status": "failed"}})
    assert not check({(PLAN, "result:"): planned})
    assert not check({})
