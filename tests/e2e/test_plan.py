"""Previews (`atmos-tasks plan`, `doit plan:…`): what a rollout would change, with real Terraform.

A preview applies nothing, pushes nothing and records nothing; it shares its task names (and so
doit's saved values) with the rollout, which must stay correct after it.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from filelock import FileLock

from tests.conftest import Repo
from tests.e2e.test_failures import add_components, add_module
from tests.e2e.test_rollout import COMPONENTS, steps

STRICT_TF = """
variable "workers" { type = number }

output "workers" { value = var.workers }
"""


def states(repo: Repo) -> dict[str, bytes]:
    """Every Terraform state file of the repository, byte for byte."""
    return {
        str(path.relative_to(repo.path)): path.read_bytes()
        for path in sorted((repo.path / ".atmos").rglob("*.tfstate*"))
        if ".terraform" not in path.parts
    }


def git_records(repo: Repo) -> dict[str, str]:
    """Refs, tags and notes the tool writes."""
    out = repo.git(
        "for-each-ref", "--format=%(refname) %(objectname)", "refs/atmos/", "refs/tags/", "refs/notes/"
    )
    return dict(line.split(" ", 1) for line in out.splitlines() if line)


def saved_values(repo: Repo, task: str) -> dict[str, object]:
    with sqlite3.connect(repo.path / ".atmos/doit.sqlite") as db:
        (data,) = db.execute("select task_data from doit where task_id = ?", (task,)).fetchone()
    values: dict[str, object] = json.loads(data)["_values_:"]
    return values


def change_taskdef(repo: Repo) -> str:
    repo.replace("stacks/catalog/ecs/taskdef-api.yaml", "log_retention_days: 14", "log_retention_days: 30")
    return repo.commit("Keep api logs for 30 days")


def test_a_fresh_repository_plans_what_it_can_and_writes_nothing(repo: Repo) -> None:
    repo.write("scratch.txt", "a preview records nothing: uncommitted changes are fine\n")
    proc = repo.cli("plan", "api", "--target", "dev")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Planning api for dev" in out and "nothing is applied or recorded" in out
    assert sorted(steps(out, "planned, changes")) == ["ecr/api", "monitoring/alarms-api"]
    assert "terraform/ecs/taskdef-api: skipped, ecr/api has never been applied" in out
    assert "terraform/ecs/service-api: skipped, ecs/taskdef-api has never been applied: roll out first" in out
    assert "Image nixpack/api: no image of api is recorded for this source and dev runs none" in out
    assert out.rstrip().splitlines()[-1].startswith("Plan complete: 2 component(s) would change, 2 skipped")
    assert "applying" not in out and "building" not in out and "Recorded" not in out
    assert git_records(repo) == {}
    assert states(repo) == {}
    assert (repo.path / ".atmos/workdir/api/dev/ecr%2Fapi/atmos.tfplan").is_file()


def test_after_a_change_the_preview_shows_it_and_the_rollout_applies_only_that(repo: Repo) -> None:
    assert repo.doit("rollout:api:dev").returncode == 0
    head = change_taskdef(repo)
    deployed, records = states(repo), git_records(repo)

    proc = repo.doit("-n", "2", "plan:api:dev")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out  # changes are not a failure
    assert steps(out, "planned, changes") == ["ecs/taskdef-api"]
    assert (
        "terraform/ecs/taskdef-api: planned, changes (1 to add, 0 to change, 1 to destroy), "
        "with the api image built for this source"
    ) in out
    # Planned against what the task definition outputs now: it may change once that one has.
    assert steps(out, "planned, no changes") == ["ecs/service-api"]
    assert "against the current outputs of ecs/taskdef-api, which would change first" in out
    # Left alone: a rollout would find their plans up to date and applied.
    assert sorted(steps(out, "no changes")) == ["ecr/api", "monitoring/alarms-api"]
    assert (
        out.rstrip()
        .splitlines()[-1]
        .startswith("Plan complete: 1 component(s) would change, 1 may change after their dependencies (")
    )
    assert "applying" not in out and "Recorded" not in out
    assert states(repo) == deployed and git_records(repo) == records

    rollout = repo.doit("rollout:api:dev")
    out = rollout.stdout + rollout.stderr
    assert rollout.returncode == 0, out
    assert steps(out, "applied") == ["ecs/taskdef-api", "ecs/service-api"]
    assert sorted(steps(out, "plan up to date")) == ["ecr/api", "monitoring/alarms-api"]
    changed = states(repo)
    assert {k for k in deployed if changed[k] != deployed[k]} == {
        ".atmos/state/api/dev/ecs/taskdef-api.tfstate",
        ".atmos/state/api/dev/ecs/service-api.tfstate",
    }
    taskdef = json.loads(changed[".atmos/state/api/dev/ecs/taskdef-api.tfstate"])["outputs"]
    service = json.loads(changed[".atmos/state/api/dev/ecs/service-api.tfstate"])["outputs"]
    assert service["task_definition_arn"]["value"] == taskdef["task_definition_arn"]["value"]
    assert set(repo.refs("refs/atmos/deployments/api/dev/").values()) == {head}
    # The unchanged components are listed in the target rollout's one record.
    newest = json.loads(repo.cli("history", "api", "--target", "dev", "--format", "json").stdout)["rollouts"][
        0
    ]
    assert newest["git_sha"] == head
    changes = {component: entry["changes"] for component, entry in newest["components"].items()}
    assert changes == {
        "ecr/api": "none",
        "api": "none",
        "ecs/taskdef-api": "applied",
        "ecs/service-api": "applied",
        "monitoring/alarms-api": "none",
    }


def test_a_preview_leaves_the_next_rollout_to_plan_again_what_it_planned_from_deployed_values(
    repo: Repo,
) -> None:
    assert repo.doit("rollout:api:dev").returncode == 0
    deployed = states(repo)
    assert "_result:apply:api:dev:ecr/api" in saved_values(repo, "plan:api:dev:ecs/taskdef-api")

    preview = repo.doit("plan:api:dev")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    assert steps(preview.stdout, "planned, no changes") == ["ecs/taskdef-api", "ecs/service-api"]
    # Planned from what is deployed: its saved values name no apply or build result…
    values = saved_values(repo, "plan:api:dev:ecs/taskdef-api")
    assert not [key for key in values if key.startswith(("_result:apply:", "_result:build:"))]

    # …so the rollout's version of the task is not up to date: it plans again and applies that
    # fresh plan, never the preview's. Nothing changed, so nothing is recorded.
    rollout = repo.doit("rollout:api:dev")
    out = rollout.stdout + rollout.stderr
    assert rollout.returncode == 0, out
    assert steps(out, "planned, no changes") == ["ecs/taskdef-api", "ecs/service-api"]
    assert steps(out, "applied") == ["ecs/taskdef-api", "ecs/service-api"]
    assert sorted(steps(out, "plan up to date")) == ["ecr/api", "monitoring/alarms-api"]
    assert sorted(steps(out, "apply up to date")) == ["ecr/api", "monitoring/alarms-api"]
    assert "Nothing to record" in out
    assert "_result:apply:api:dev:ecr/api" in saved_values(repo, "plan:api:dev:ecs/taskdef-api")
    assert saved_values(repo, "apply:api:dev:ecs/taskdef-api")["status"] == "applied"
    after = states(repo)
    for name in ("ecr/api", "monitoring/alarms-api"):
        assert (
            after[f".atmos/state/api/dev/{name}.tfstate"] == deployed[f".atmos/state/api/dev/{name}.tfstate"]
        )

    again = repo.doit("rollout:api:dev")
    assert sorted(steps(again.stdout, "plan up to date")) == sorted(COMPONENTS)


def test_one_components_plan_task_applies_nothing(repo: Repo) -> None:
    assert repo.doit("rollout:api:dev").returncode == 0
    change_taskdef(repo)
    deployed, records = states(repo), git_records(repo)

    proc = repo.doit("plan:api:dev:ecs/service-api")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    # Its dependencies are planned too (never applied), the rest of the target is not.
    assert steps(out, "planned, changes") == ["ecs/taskdef-api"]
    assert steps(out, "planned, no changes") == ["ecs/service-api"]
    assert "monitoring/alarms-api" not in out and "nixpack/api" not in out
    assert "applying" not in out and "building" not in out
    assert states(repo) == deployed and git_records(repo) == records

    narrowed = repo.cli("plan", "api", "--component", "ecs/taskdef-api")
    assert narrowed.returncode == 0, narrowed.stdout + narrowed.stderr
    assert "Components (2): terraform/ecr/api, terraform/ecs/taskdef-api" in narrowed.stdout
    assert steps(narrowed.stdout, "planned, changes") == ["ecs/taskdef-api"]
    assert states(repo) == deployed and git_records(repo) == records


def test_a_failed_plan_exits_1_and_bad_input_exits_2(repo: Repo) -> None:
    add_module(repo, "strict", STRICT_TF)
    add_components(repo, {"jobs/strict": {"component": "strict", "vars": {"workers": "many"}}})
    repo.commit("A component whose plan fails")
    proc = repo.cli("plan", "api", "--target", "dev")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "✗ terraform/jobs/strict: plan failed" in out and "Traceback" not in out
    assert sorted(steps(out, "planned, changes")) == ["ecr/api", "monitoring/alarms-api"]
    assert "Plan failed: 1 component(s) could not be planned; 2 component(s) would change" in out
    assert git_records(repo) == {} and states(repo) == {}

    unknown = repo.cli("plan", "api", "--component", "ecs/nope")
    assert unknown.returncode == 2 and "no component ecs/nope to plan on dev" in unknown.stderr
    mixed = repo.doit("plan:api:dev", "rollout:api:dev")
    assert mixed.returncode == 2 and "cannot run together" in mixed.stderr
    assert git_records(repo) == {}


def test_a_preview_waits_for_the_targets_lock(repo: Repo) -> None:
    lock_dir: Path = repo.path / ".atmos" / "locks"
    lock_dir.mkdir(parents=True)
    with FileLock(str(lock_dir / "api--dev.lock")):
        waiting = subprocess.Popen(
            [sys.executable, "-m", "doit", "plan:api:dev:ecr/api"],
            cwd=repo.path,
            env=repo.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert waiting.stderr is not None
        assert "waiting for another rollout of api to dev" in waiting.stderr.readline()
        time.sleep(0.5)
        assert waiting.poll() is None
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, out + err
    assert steps(out, "planned, changes") == ["ecr/api"]
