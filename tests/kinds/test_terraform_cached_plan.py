"""A plan taken from the remote cache that Terraform finds stale when applying it (the state moved
after the plan task checked it): planned again from the same workdir, applied, and said so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from atmos_tasks.kinds.terraform import PLAN_FILE, TerraformExecutor, TerraformJob, plan_state, state_version

MODULE = """\
variable "v" {
  type = string
}

resource "null_resource" "thing" {
  triggers = { v = var.v }
}

output "v" {
  value = var.v
}
"""


def job(tmp_path: Path, value: str) -> TerraformJob:
    return TerraformJob(
        kind="terraform",
        deployment="api",
        target="dev",
        component="thing",
        root=str(tmp_path),
        workdir=str(tmp_path / ".atmos/workdir/api/dev/thing"),
        vars={"v": value},
        env={},
        static_key=value,
        module_dir=str(tmp_path / "module"),
        backend={"path": "../../../../state/thing.tfstate"},
    )


@pytest.mark.terraform
def test_a_cached_plan_terraform_finds_stale_is_planned_again_and_applied(tmp_path: Path) -> None:
    (tmp_path / "module").mkdir()
    (tmp_path / "module/main.tf").write_text(MODULE)
    executor = TerraformExecutor()
    first = job(tmp_path, "1")
    assert executor.apply(first, executor.plan(first, {}, {}))["status"] == "applied"

    second = job(tmp_path, "2")
    planned = executor.plan(second, {}, {})
    assert planned["status"] == "planned" and planned["has_changes"]
    plan_file = Path(second.workdir) / PLAN_FILE
    kept = tmp_path / "kept.tfplan"
    shutil.copy(plan_file, kept)
    made_against = plan_state(kept)
    assert executor.apply(second, planned)["status"] == "applied"

    # The kept plan, made against the state before that apply, now stands for one from the cache.
    shutil.copy(kept, plan_file)
    state = tmp_path / ".atmos/state/thing.tfstate"
    assert state_version(json.loads(state.read_text()))[1] > made_against[1]
    plain = executor.apply(second, planned)
    assert plain["status"] == "failed" and "Saved plan is stale" in plain["error"]

    shutil.copy(kept, plan_file)
    taken = executor.apply(second, {**planned, "cache": {"plan": "reused"}})
    assert taken["status"] == "applied", taken
    assert taken["outputs"] == {"v": "2"}
    assert (
        "Terraform found the plan from the remote cache stale: planned again and applied" in taken["repaired"]
    )
