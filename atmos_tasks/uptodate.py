"""doit up-to-date checks of the task graph (`graph.py`). A module of their own, importing only
doit: a graph loaded from the graph cache unpickles them without loading the compiler."""

from __future__ import annotations

from inspect import Parameter, Signature
from typing import Any

from doit.dependency import UptodateCalculator
from doit.task import result_dep

# doit asks each up-to-date callable of each task for its signature on every run, to pass it
# `task` and `values`: given here, inspect answers at once instead of analysing `__call__`
# (0.1 ms a task, 600 tasks in a deployment of 300 components).
CHECK_SIGNATURE = Signature(
    [Parameter("task", Parameter.POSITIONAL_OR_KEYWORD), Parameter("values", Parameter.POSITIONAL_OR_KEYWORD)]
)
# doit's own check behind `getargs` (one per apply task, on its plan) has that very signature
# (`__call__(self, task, values)`): said once here, for the same reason.
result_dep.__signature__ = CHECK_SIGNATURE  # type: ignore[attr-defined]


class PlanApplied(UptodateCalculator):
    """Up to date only if the apply task last applied, successfully, the plan this task last made.

    A preview leaves a component alone when the rollout would: its plan up to date and applied.
    The apply task is not part of a preview; its saved values are read from doit's database.
    """

    __signature__ = CHECK_SIGNATURE

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

    __signature__ = CHECK_SIGNATURE

    def __init__(self, *ok: str) -> None:
        self.ok = ok

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        return values.get("status") in self.ok

    def __repr__(self) -> str:
        return f"LastStatus{self.ok}"


class Settled:
    """Up to date while the task's key is the one it last ran with and its last status is one of
    `ok`; with `inputs_hash`, also while the target still runs those inputs (as recorded).

    doit's `config_changed` and `LastStatus` and a check against the record in one callable (doit
    inspects the signature of each up-to-date callable of each task on every run); the key is saved
    under `config_changed`'s own name, so a database written before stays valid.
    """

    __signature__ = CHECK_SIGNATURE

    def __init__(self, key: str, ok: tuple[str, ...], inputs_hash: str | None = None) -> None:
        self.key = key
        self.ok = ok
        self.inputs_hash = inputs_hash

    def configure_task(self, task: Any) -> None:
        task.value_savers.append(lambda: {"_config_changed": self.key})

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        return (
            values.get("_config_changed") == self.key
            and values.get("status") in self.ok
            and (self.inputs_hash is None or values.get("inputs_hash") == self.inputs_hash)
        )

    def __repr__(self) -> str:
        return f"Settled({self.key!r}, {self.ok!r}, {self.inputs_hash!r})"
