"""`atmos-tasks destroy` on Terraform components: real `terraform destroy`, recorded in Git."""

from __future__ import annotations

import json

from tests.conftest import Repo


def _resources(repo: Repo, component: str) -> list[object]:
    state = json.loads((repo.path / f".atmos/state/api/dev/{component}.tfstate").read_text())
    return list(state.get("resources") or [])


def test_destroy_removes_one_component_records_it_and_a_rollout_brings_it_back(repo: Repo) -> None:
    assert repo.doit("rollout:api:dev").returncode == 0
    assert _resources(repo, "ecs/service-api")
    refused = repo.cli("destroy", "api", "--target", "dev", "--component", "ecs/service-api")
    assert refused.returncode == 3 and "--yes" in refused.stderr  # no terminal, no confirmation
    assert _resources(repo, "ecs/service-api")

    proc = repo.cli(
        "destroy", "api", "--target", "dev", "--component", "ecs/service-api", "--yes", "--format", "json"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = json.loads(proc.stdout)
    assert found["components"]["ecs/service-api"]["status"] == "destroyed"
    assert list(found["components"]) == ["ecs/service-api"]  # its dependencies keep running
    assert _resources(repo, "ecs/service-api") == []
    assert _resources(repo, "ecs/taskdef-api")
    refs = repo.refs("refs/atmos/deployments/api/dev/")
    assert "refs/atmos/deployments/api/dev/ecs%2Fservice-api" not in refs and len(refs) == 4
    tag = found["tags"][0]
    assert tag.startswith("atmos/deployments/api/dev/ecs%2Fservice-api/")
    assert "status: destroyed" in repo.tag_message(tag)
    status = json.loads(repo.cli("status", "api", "--target", "dev", "--format", "json").stdout)
    assert status["api"]["dev"]["ecs/service-api"]["status"] == "destroyed"
    assert status["api"]["dev"]["ecs/service-api"]["git_sha"] is None

    again = repo.doit("rollout:api:dev")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _resources(repo, "ecs/service-api")
    assert "refs/atmos/deployments/api/dev/ecs%2Fservice-api" in repo.refs()


def test_destroying_an_unknown_component_or_target_is_bad_input(repo: Repo) -> None:
    proc = repo.cli("destroy", "api", "--target", "dev", "--component", "nope", "--yes")
    assert proc.returncode == 2 and "no deployed component 'nope'" in proc.stderr
    proc = repo.cli("destroy", "api", "--target", "qa", "--yes")
    assert proc.returncode == 2 and "has no target 'qa'" in proc.stderr
    assert "Traceback" not in proc.stderr and repo.tags() == []
