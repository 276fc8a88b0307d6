"""Terraform's plan summary line, as the rollout and preview lines and the job summary show it."""

from __future__ import annotations

from atmos_tasks.kinds.terraform import plan_counts
from atmos_tasks.reporter import change_phrase


def test_the_summary_line_gives_the_counts() -> None:
    log = "  # null_resource.x will be created\n\nPlan: 1 to add, 2 to change, 3 to destroy.\n"
    assert plan_counts(log) == {"add": 1, "change": 2, "destroy": 3}


def test_imports_are_counted_when_terraform_reports_them() -> None:
    log = "Plan: 1 to import, 0 to add, 1 to change, 0 to destroy.\n"
    assert plan_counts(log) == {"add": 0, "change": 1, "destroy": 0, "import": 1}


def test_an_outputs_only_plan_counts_nothing_and_an_unknown_log_is_none() -> None:
    outputs_only = 'Changes to Outputs:\n  ~ arn = "a" -> "b"\n'
    assert plan_counts(outputs_only) == {"add": 0, "change": 0, "destroy": 0}
    assert plan_counts("something else entirely\n") is None


def test_the_phrase_shown_for_a_plan() -> None:
    assert change_phrase({"has_changes": False}) == "no changes"
    assert change_phrase({"has_changes": True}) == "changes"
    counts = {"add": 1, "change": 0, "destroy": 2}
    assert change_phrase({"has_changes": True, "changes": counts}) == (
        "changes (1 to add, 0 to change, 2 to destroy)"
    )
    zero = {"add": 0, "change": 0, "destroy": 0}
    assert change_phrase({"has_changes": True, "changes": zero}) == "changes (outputs only)"
