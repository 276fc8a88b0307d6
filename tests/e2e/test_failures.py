"""A failing component, parallel execution and the per-target lock, with real Terraform."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from tests.conftest import Repo

CONTEXT_TF = """
variable "namespace" { type = string }
variable "tenant" { type = string }
variable "environment" { type = string }
variable "stage" { type = string }
variable "region" { type = string }
variable "tags" {
  type    = map(string)
  default = {}
}
"""

FLAKY_TF = """
variable "fail" {
  type    = bool
  default = false
}

resource "null_resource" "this" {
  triggers = { fail = tostring(var.fail) }
  provisioner "local-exec" {
    command = var.fail ? "echo 'simulated provisioning failure' >&2; exit 1" : "true"
  }
}

output "ok" { value = !var.fail }
"""

SLOW_TF = """
variable "marker" { type = string }

resource "null_resource" "this" {
  triggers = { marker = var.marker }
  provisioner "local-exec" {
    command = "date +%s.%N > ${var.marker}.start; sleep 1.5; date +%s.%N > ${var.marker}.end"
  }
}
"""


def add_components(repo: Repo, components: dict[str, dict], replace: bool = False) -> None:
    yaml = YAML(typ="rt")
    path = repo.path / "deployments/api.yaml"
    data = yaml.load(path.read_text())
    if replace:
        data["deployment"]["components"] = {"terraform": {}}
    for name, spec in components.items():
        data["deployment"]["components"]["terraform"][name] = spec
    with path.open("w") as handle:
        yaml.dump(data, handle)


def add_module(repo: Repo, folder: str, main_tf: str) -> None:
    repo.write(f"components/terraform/{folder}/context.tf", CONTEXT_TF)
    repo.write(f"components/terraform/{folder}/main.tf", main_tf)


def test_failed_apply_exits_1_keeps_ref_records_failure_and_lets_others_finish(repo: Repo) -> None:
    add_module(repo, "flaky", FLAKY_TF)
    add_components(
        repo,
        {
            "jobs/migrate": {"component": "flaky", "vars": {"fail": False}},
            "jobs/after-migrate": {
                "component": "flaky",
                "metadata": {"depends_on": ["terraform/jobs/migrate"]},
                "vars": {"fail": False},
            },
            "jobs/report": {"component": "flaky", "vars": {"fail": False}},
        },
    )
    good = repo.commit("Add migration jobs")
    first = repo.doit("-n", "2", "rollout:api:dev")
    assert first.returncode == 0, first.stdout + first.stderr
    ref = "refs/atmos/deployments/api/dev/jobs%2Fmigrate"
    assert repo.refs()[ref] == good

    repo.replace("deployments/api.yaml", "fail: false", "fail: true")
    bad = repo.commit("Break the migration")
    proc = repo.doit("-n", "2", "rollout:api:dev")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out
    assert re.search(r"✗ terraform/jobs/migrate: apply failed", out)
    assert "simulated provisioning failure" in out
    workdir = repo.path / ".atmos/workdir/api/dev/jobs%2Fmigrate"
    assert f"workdir kept: {workdir}" in out
    assert (workdir / "main.tf").is_file() and (workdir / "atmos-apply.log").is_file()
    assert "jobs/after-migrate: skipped, dependency jobs/migrate did not complete" in out

    refs = repo.refs()
    assert refs[ref] == good  # the failed component's ref stays where it was
    assert refs["refs/atmos/deployments/api/dev/jobs%2Freport"] == bad  # independent ones complete
    assert refs["refs/atmos/deployments/api/dev/ecr%2Fapi"] == bad
    assert refs["refs/atmos/deployments/api/dev/jobs%2Fafter-migrate"] == good  # skipped: not deployed
    failed = [t for t in repo.tags("atmos/deployments/api/dev/jobs%2Fmigrate/")]
    assert len(failed) == 2
    message = repo.tag_message(failed[-1])
    assert "status: failed" in message and f"git_sha: {bad}" in message

    history = repo.cli("history", "api", "--target", "dev", "--format", "json")
    latest = __import__("json").loads(history.stdout)["rollouts"][0]
    assert latest["status"] == "failed" and latest["components"]["jobs/migrate"]["status"] == "failed"


def test_independent_components_run_in_parallel_with_n2(repo: Repo) -> None:
    add_module(repo, "slow", SLOW_TF)
    markers = repo.path / ".atmos" / "markers"
    add_components(
        repo,
        {
            "jobs/left": {"component": "slow", "vars": {"marker": str(markers / "left")}},
            "jobs/right": {"component": "slow", "vars": {"marker": str(markers / "right")}},
        },
        replace=True,  # only these two: nothing else competes for the two workers
    )
    repo.commit("Two slow independent jobs")
    markers.mkdir(parents=True)
    proc = repo.doit("-n", "2", "rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    def span(name: str) -> tuple[float, float]:
        return (float((markers / f"{name}.start").read_text()), float((markers / f"{name}.end").read_text()))

    (left_start, left_end), (right_start, right_end) = span("left"), span("right")
    # Both applies were running at the same moment.
    assert left_start < right_end and right_start < left_end


def test_two_runs_on_one_target_are_serialized_and_the_second_finds_work_done(repo: Repo) -> None:
    command = [sys.executable, "-m", "doit", "rollout:api:dev"]
    first = subprocess.Popen(
        command, cwd=repo.path, env=repo.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    second = subprocess.Popen(
        command, cwd=repo.path, env=repo.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    outs = [p.communicate(timeout=300) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    applied = [len(re.findall(r": applied \(", out)) for out, _ in outs]
    assert sorted(applied) == [0, 4]  # one run did the work, the other found it up to date
    assert len(repo.tags()) == 5


def test_a_held_lock_on_staging_does_not_block_dev(repo: Repo) -> None:
    from filelock import FileLock

    lock_dir: Path = repo.path / ".atmos" / "locks"
    lock_dir.mkdir(parents=True)
    with FileLock(str(lock_dir / "api--staging.lock")):
        proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "waiting" not in proc.stderr
    assert len(repo.refs("refs/atmos/deployments/api/dev/")) == 5
