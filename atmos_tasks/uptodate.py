"""doit up-to-date checks of the task graph (`graph.py`). A module of their own, importing only
doit: a graph loaded from the graph cache unpickles them without loading the compiler."""

from __future__ import annotations

from typing import Any

from doit.dependency import UptodateCalculator


class PlanApplied(UptodateCalculator):
    """Up to date only if the apply task last applied, successfully, the plan this task last made.

    A preview leaves a component alone when the rollout would: its plan up to date and applied.
    The apply task is not part of a preview; its saved values are read from doit's database.
    """

    def __init__(self, apply_id: str) -> None:
        super().__init__()
        self.apply_id = apply_id

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        assert self.get_val is not None
        applied = self.get_val(self.apply_id, "_values_:") or {}
        planned = self.get_val(task.name, "result:")
        return (
            applied.get("status") == "applied"
            and planned is not None
            and applied.get(f"_result:{task.name}") == planned
        )

    def __repr__(self) -> str:
        return f"PlanApplied({self.apply_id!r})"


class LastStatus:
    """Up to date only if the task's last saved status is one of `ok` (a failure always re-runs)."""

    def __init__(self, *ok: str) -> None:
        self.ok = ok

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        return values.get("status") in self.ok

    def __repr__(self) -> str:
        return f"LastStatus{self.ok}"


class MatchesRecord:
    """Up to date only if the target still runs the inputs this task last planned (as recorded)."""

    def __init__(self, inputs_hash: str) -> None:
        self.inputs_hash = inputs_hash

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        return values.get("inputs_hash") == self.inputs_hash

    def __repr__(self) -> str:
        return f"MatchesRecord({self.inputs_hash!r})"
