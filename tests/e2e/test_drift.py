"""`atmos-tasks drift` on the example with real Terraform: what a rollout put in place, changed
outside a rollout, found, recorded in the deployed commit's `drift` note, shown by `status
--drift`, repaired by a rollout that plans the component again; a check leaves the rollout's work
alone."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from atmos_tasks.kinds.terraform import terraform_binary
from tests.conftest import Repo
from tests.e2e.test_pg_backend import Shared, shared  # noqa: F401 - the fixture, for the pg test

pytestmark = pytest.mark.terraform

TERRAFORM = ["ecr/api", "ecs/taskdef-api", "ecs/service-api", "monitoring/alarms-api"]


def said(output: str, word: str) -> list[str]:
    """Components a check printed `word` for (`✓ terraform/ecr/api: in sync (…)`)."""
    return sorted(re.findall(rf"terraform/(\S+): {word}\b", output))


def steps(output: str, verb: str) -> list[str]:
    return sorted(re.findall(rf"terraform/(\S+): {verb}\b", output))


def rollout_work(repo: Repo) -> dict[str, str]:
    """What a rollout keeps for the next one: its saved plans, doit's database."""
    atmos = repo.path / ".atmos"
    paths = [*sorted((atmos / "workdir" / "api" / "dev").glob("*/atmos.tfplan")), atmos / "doit.sqlite"]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def change_outside(repo: Repo, leaf: str, variable: str, deployment: str = "api") -> None:
    """`terraform apply` with another value, by hand in the rollout's workdir: the state moves."""
    workdir = repo.path / ".atmos" / "workdir" / deployment / "dev" / leaf
    proc = repo.run(
        terraform_binary("terraform"),
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        f"-var={variable}",
        cwd=workdir,
        env={
            "TF_CLI_CONFIG_FILE": str(repo.path / ".atmos" / "terraform" / "terraformrc"),
            "TF_PLUGIN_CACHE_DIR": str(repo.path / ".atmos" / "terraform" / "plugin-cache"),
        },
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def note(repo: Repo, commit: str) -> dict:
    return json.loads(repo.git("notes", "--ref=atmos/api/drift", "show", commit))


def drift_status(repo: Repo) -> dict:
    proc = repo.cli("status", "api", "--target", "dev", "--drift", "--no-health", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return {name: entry.get("drift") for name, entry in json.loads(proc.stdout)["api"]["dev"].items()}


def test_drift_is_found_recorded_and_gone_after_a_rollout_that_plans_again(repo: Repo) -> None:
    assert repo.doit("rollout:api:dev").returncode == 0
    head = repo.head()
    before = rollout_work(repo)

    clean = repo.cli("drift", "api", "--target", "dev", "-n", "2")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert said(clean.stdout, "in sync") == sorted(TERRAFORM)
    assert "nixpack/api: not checked" in clean.stdout and "No drift on api → dev" in clean.stdout
    assert {name: entry["state"] for name, entry in note(repo, head)["dev"].items()} == dict.fromkeys(
        TERRAFORM, "in-sync"
    )
    # Nothing of the rollout's was touched: the next one has nothing to do.
    assert rollout_work(repo) == before
    again = repo.doit("rollout:api:dev")
    assert again.returncode == 0, again.stdout + again.stderr
    assert steps(again.stdout, "plan up to date") == sorted(TERRAFORM)
    assert steps(again.stdout, "planned") == [] and steps(again.stdout, "applied") == []
    assert "Nothing to record" in again.stdout
    assert repo.git("status", "--porcelain") == ""

    change_outside(repo, "ecr%2Fapi", "image_tag_mutability=MUTABLE")
    found = repo.cli("drift", "api", "--target", "dev", "-n", "2", "--format", "json")
    assert found.returncode == 4, found.stdout + found.stderr
    report = json.loads(found.stdout)
    assert report["drifted"] == ["ecr/api"] and report["failed"] == []
    ecr = report["components"]["ecr/api"]
    assert ecr["state"] == "drifted" and ecr["git_sha"] == head
    assert ecr["changes"] == [
        {"address": "null_resource.repository", "action": "replace", "symbol": "-/+", "attributes": 1}
    ]
    assert ecr["counts"] == {"add": 1, "change": 0, "destroy": 1}
    assert {n: c["state"] for n, c in report["components"].items() if n != "ecr/api"} == {
        "api": "not-checked",
        "ecs/taskdef-api": "in-sync",
        "ecs/service-api": "in-sync",
        "monitoring/alarms-api": "in-sync",
    }
    recorded = note(repo, head)["dev"]["ecr/api"]
    assert recorded["state"] == "drifted" and recorded["changes"] == ecr["changes"]
    assert recorded["checked_by"] == "ada@example.com"
    assert drift_status(repo)["ecr/api"]["state"] == "drifted"
    table = repo.cli("status", "api", "--drift", "--no-health")
    assert re.search(r"terraform/ecr/api .*✗ drifted \d+s ago", table.stdout), table.stdout
    # The report's page shows the same, in its Drift column.
    site = repo.path.parent / "site"
    page = repo.cli("report", "--html", str(site), "--no-health")
    assert page.returncode == 0, page.stderr
    html = (site / "index.html").read_text()
    assert re.search(r'<span class="bad">drifted \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)</span>', html)
    assert html.count(">in-sync (") == 3

    # A rollout that plans it again (doit forgets its plan) puts the configuration back.
    assert repo.doit("forget", "plan:api:dev:ecr/api").returncode == 0
    repaired = repo.doit("rollout:api:dev")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert steps(repaired.stdout, "applied") == ["ecr/api"]
    after = repo.cli("drift", "api", "--target", "dev", "-n", "2")
    assert after.returncode == 0, after.stdout + after.stderr
    assert said(after.stdout, "in sync") == sorted(TERRAFORM)
    assert note(repo, head)["dev"]["ecr/api"]["state"] == "in-sync"
    assert drift_status(repo)["ecr/api"]["state"] == "in-sync"


def test_nothing_deployed_is_nothing_to_check_and_an_unknown_target_is_bad_input(repo: Repo) -> None:
    proc = repo.cli("drift", "api", "--target", "staging")
    assert proc.returncode == 0, proc.stderr
    assert "Nothing deployed on api → staging: nothing to check." in proc.stdout
    proc = repo.cli("drift", "api", "--target", "qa")
    assert proc.returncode == 2 and "has no target 'qa'" in proc.stderr and "Traceback" not in proc.stderr
    assert not Path(repo.path / ".atmos" / "drift").exists()


def test_drift_of_state_shared_in_postgresql_is_checked_from_a_fresh_clone(shared: Shared) -> None:  # noqa: F811
    """The `pg` backend, as the rollout configured it: a clone that never rolled out (no workdir,
    records and state only on the remote and in PostgreSQL) checks what another runner deployed,
    and pushes the note. The connection string's password is never shown."""
    password = shared.db.server.password
    runner = shared.clone("runner", run="r1", names=("a", "b"))
    deployed = runner.doit("rollout:app:dev", "--remote", "origin")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    checker = shared.clone("checker")
    clean = checker.cli("drift", "app", "--target", "dev", "--remote", "origin", "-n", "2")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert said(clean.stdout, "in sync") == ["a", "b"]

    change_outside(runner, "a", "run=outside", deployment="app")
    assert shared.deployed("a")[1] == "outside"
    found = checker.cli("drift", "app", "--target", "dev", "--remote", "origin", "--format", "json")
    assert found.returncode == 4, found.stdout + found.stderr
    report = json.loads(found.stdout)
    assert report["drifted"] == ["a"] and report["components"]["b"]["state"] == "in-sync"
    assert report["components"]["a"]["changes"] == [
        {"address": "null_resource.probe", "action": "replace", "symbol": "-/+", "attributes": 1},
        {"address": "output.run", "action": "update", "symbol": "~"},
    ]
    assert shared.deployed("a")[1] == "outside"  # checked, not applied
    # The note is on the remote: the runner sees it after a fetch.
    runner.git("fetch", "-q", "origin", "+refs/notes/atmos/*:refs/notes/atmos/*")
    head = runner.git("rev-parse", "refs/atmos/deployments/app/dev/a")
    assert (
        json.loads(runner.git("notes", "--ref=atmos/app/drift", "show", head))["dev"]["a"]["state"]
        == "drifted"
    )
    for proc in (clean, found):
        assert password not in proc.stdout + proc.stderr
    for log in (checker.path / ".atmos" / "drift").rglob("atmos-*.log"):
        assert password not in log.read_text(), log
