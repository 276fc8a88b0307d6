"""The Terraform executor's plan lines (`plan_summary`): made from `terraform show -json` only when
asked (`--show-plan`) or for a job summary, never for a plan without changes; a plan that cannot be
shown is a line saying so, not a failed plan."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from atmos_tasks.kinds.terraform import PLAN_FILE, TerraformExecutor, run_dir, terraform_env
from tests.kinds.test_terraform_cached_plan import MODULE, job


@pytest.mark.terraform
def test_plan_lines_are_made_when_asked_or_for_a_job_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    (tmp_path / "module").mkdir()
    (tmp_path / "module/main.tf").write_text(MODULE)
    executor = TerraformExecutor()
    plain = job(tmp_path, "1")
    planned = executor.plan(plain, {}, {})
    assert planned["has_changes"] and "plan_summary" not in planned

    asked = dataclasses.replace(plain, show_plan=True)
    assert executor.plan(asked, {}, {})["plan_summary"] == ["+ null_resource.thing", '+ output.v = "1"']
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    assert executor.plan(plain, {}, {})["plan_summary"][0] == "+ null_resource.thing"

    applied = executor.apply(asked, executor.plan(asked, {}, {}))
    assert applied["status"] == "applied" and "plan_summary" not in applied
    unchanged = executor.plan(asked, {}, {})
    assert not unchanged["has_changes"] and "plan_summary" not in unchanged

    (Path(asked.workdir) / PLAN_FILE).unlink()
    (shown,) = executor._shown_plan(asked, run_dir(asked), terraform_env(asked))
    assert shown.startswith("(the plan could not be shown: ")
