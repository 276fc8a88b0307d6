"""A plan's lines, from real Terraform 1.0.3 plans (`tests/fixtures/terraform-plans/`), no I/O."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from atmos_tasks.planview import VALUE_WIDTH, output_line, plan_lines, wanted
from atmos_tasks.secrets import Secrets

PLANS = Path(__file__).parent / "fixtures" / "terraform-plans"
SECRETS = ("p4ssw0rd", "s3cr3t-token-value")


@cache
def plan(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PLANS / f"{name}.json").read_text())
    return loaded


def test_a_first_plan_creates_every_resource_and_output() -> None:
    assert plan_lines(plan("create")) == [
        "<= data.null_data_source.later",
        "+ module.child.null_resource.x",
        "+ null_resource.cbd",
        "+ null_resource.change",
        '+ null_resource.each["a"]',
        "+ null_resource.gone[0]",
        "+ null_resource.keep",
        "+ null_resource.secret",
        '+ output.changed = "value-1"',
        "+ output.later_id = (known after apply)",
        '+ output.listy = [1, "x"]',
        "+ output.password = (sensitive)",
        '+ output.removed_or_added = "only in v1"',
        '+ output.same = "unchanged"',
    ]


def test_replacements_updates_creations_deletions_and_output_changes() -> None:
    assert plan_lines(plan("change")) == [
        "<= data.null_data_source.later",
        "-/+ module.child.null_resource.x (1 attribute)",
        "+/- null_resource.cbd (1 attribute)",
        "-/+ null_resource.change (1 attribute)",
        '+ null_resource.each["b c"]',
        "- null_resource.gone[0]",
        "~ null_resource.secret (sensitivity only)",
        '~ output.changed = "value-1" → "value-2"',
        '~ output.later_id = "900516858360451551" → (known after apply)',
        '~ output.listy = [1, "x"] → [2, "x"]',
        "~ output.password = (sensitive)",
        "- output.removed_or_added",
    ]


def test_an_outputs_only_plan_and_a_plan_without_changes() -> None:
    assert plan_lines(plan("outputs")) == ["- output.listy", '~ output.same = "unchanged" → "changed now"']
    assert plan_lines(plan("none")) == []


def test_a_replacement_says_why_when_no_attribute_forces_it() -> None:
    assert plan_lines(plan("taint")) == [
        '-/+ null_resource.each["a"] (replaced on request)',
        "-/+ null_resource.keep (tainted)",
    ]


@pytest.mark.parametrize("name", ["create", "change", "outputs", "none", "taint"])
def test_no_line_holds_a_sensitive_value_that_the_plan_holds(name: str) -> None:
    shown = "\n".join(plan_lines(plan(name)))
    assert not [secret for secret in SECRETS if secret in shown]


def test_values_are_masked_before_they_are_shortened() -> None:
    secret = "a-marked-value-" + "x" * 120  # longer than a shown value: cut, it would escape the mask
    secrets = Secrets()
    secrets.add(secret)
    change = {"actions": ["create"], "before": None, "after": {"token": secret}, "after_unknown": False}
    line = output_line("config", change, secrets.mask)
    assert line == '+ output.config = {"token": "***"}'
    unmasked = output_line("config", change)
    assert unmasked is not None and unmasked.endswith("…")
    assert len(unmasked.split(" = ", 1)[1]) == VALUE_WIDTH


def test_an_output_sensitive_in_part_is_sensitive_whole() -> None:
    change = {
        "actions": ["update"],
        "before": {"user": "admin", "password": "old-secret"},
        "after": {"user": "admin", "password": "new-secret"},
        "after_unknown": False,
        "before_sensitive": {"password": True},
        "after_sensitive": {"password": True},
    }
    assert output_line("login", change) == "~ output.login = (sensitive)"
    assert output_line("same", {"actions": ["no-op"], "before": 1, "after": 1}) is None


def test_lines_are_computed_when_asked_or_for_a_job_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert not wanted(False) and wanted(True)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", "/tmp/summary.md")
    assert wanted(False)
