"""Atmos's `providers` and `dependencies.components` in the example's stacks, through real rollouts:
the providers reach real Terraform as providers_override.tf.json (as Atmos writes it), and the
newer dependency form orders the rollout like settings.depends_on."""

from __future__ import annotations

import json
import re

from tests.conftest import Repo
from tests.e2e.test_atmos_stacks import manifest_without_service_dependency

DEFAULTS = "stacks/catalog/ecs/_defaults.yaml"
SERVICE = "stacks/catalog/ecs/service-api.yaml"
TASKDEF = "stacks/catalog/ecs/taskdef-api.yaml"
WORKDIR = ".atmos/workdir/api/dev/{leaf}"
PROVIDERS = "providers_override.tf.json"


def steps(output: str, verb: str) -> list[str]:
    return re.findall(rf"terraform/(\S+): {verb}\b", output)


def test_stack_providers_reach_terraform_and_a_change_replans_only_what_they_reach(repo: Repo) -> None:
    assert repo.doit("rollout:api:dev").returncode == 0
    repo.replace(
        TASKDEF,
        "      vars:\n        family: api\n",
        "      providers:\n        null: {}\n      vars:\n        family: api\n",
    )
    repo.commit("Configure the task definition's null provider")
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert steps(proc.stdout, "planned") == ["ecs/taskdef-api"]
    assert sorted(steps(proc.stdout, "plan up to date")) == [
        "ecr/api",
        "ecs/service-api",
        "monitoring/alarms-api",
    ]
    written = repo.path / WORKDIR.format(leaf="ecs%2Ftaskdef-api") / PROVIDERS
    assert json.loads(written.read_text()) == {"provider": {"null": {}}}
    assert written.stat().st_mode & 0o077 == 0  # a provider's configuration may hold credentials
    assert not (repo.path / WORKDIR.format(leaf="ecr%2Fapi") / PROVIDERS).exists()
    described = json.loads(repo.cli("describe", "api", "--target", "dev", "--format", "json").stdout)
    taskdef = described["targets"]["dev"]["components"]["ecs/taskdef-api"]
    assert taskdef["providers"] == {"null": {}} and taskdef["atmos"]["providers"] == {"null": {}}

    # The stack's `terraform.providers` reaches every component of the deployment's stacks.
    repo.replace(DEFAULTS, "terraform:\n", "terraform:\n  providers:\n    null: {}\n")
    repo.replace(TASKDEF, "      providers:\n        null: {}\n", "")
    repo.commit("The null provider for every component")
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ecr/api" in steps(proc.stdout, "planned")
    assert (repo.path / WORKDIR.format(leaf="ecr%2Fapi") / PROVIDERS).exists()

    # Removed from the stacks: the next plan runs without the file.
    repo.replace(DEFAULTS, "  providers:\n    null: {}\n", "")
    repo.commit("No provider configuration")
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ecr/api" in steps(proc.stdout, "planned")
    assert not (repo.path / WORKDIR.format(leaf="ecr%2Fapi") / PROVIDERS).exists()


def test_terraform_reads_the_providers_file(repo: Repo) -> None:
    # An aliased configuration the module does not define: Terraform refuses the override file,
    # which shows it reads what atmos-tasks wrote, where it runs.
    repo.replace(
        SERVICE,
        "      vars:\n        service_name: api\n",
        "      providers:\n        null: {alias: extra}\n      vars:\n        service_name: api\n",
    )
    repo.commit("An aliased provider configuration")
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode != 0
    assert "Missing base provider configuration for override" in proc.stdout + proc.stderr
    assert PROVIDERS in proc.stdout + proc.stderr
    written = repo.path / WORKDIR.format(leaf="ecs%2Fservice-api") / PROVIDERS
    assert json.loads(written.read_text()) == {"provider": {"null": {"alias": "extra"}}}


def test_dependencies_components_in_the_stacks_order_the_rollout(repo: Repo) -> None:
    # The manifest no longer says it, nor settings.depends_on: Atmos's newer form alone makes the edge.
    manifest_without_service_dependency(repo)
    repo.replace(
        SERVICE,
        "      settings:\n        depends_on:\n          1:\n            component: ecs/taskdef-api\n",
        "      dependencies:\n        components:\n          - name: ecs/taskdef-api\n",
    )
    repo.commit("The stack orders the service with dependencies.components")
    matrix = json.loads(repo.cli("matrix", "api", "--target", "dev", "--format", "json").stdout)
    jobs = {job["component"]: job for job in matrix["include"]}
    assert "terraform/ecs/taskdef-api" in jobs["ecs/service-api"]["depends_on"]
    assert jobs["ecs/taskdef-api"]["wave"] < jobs["ecs/service-api"]["wave"]
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    order = steps(proc.stdout, "applied")
    assert order.index("ecs/taskdef-api") < order.index("ecs/service-api")

    # Another stack's component cannot be ordered by this rollout: refused at the entry's line.
    repo.replace(
        SERVICE,
        "          - name: ecs/taskdef-api\n",
        "          - name: ecs/taskdef-api\n            stack: prod\n",
    )
    repo.commit("A dependency in another stack")
    proc = repo.cli("validate")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "(dependencies.components[0]), which is another stack" in proc.stderr
    assert f"{SERVICE}:14:" in proc.stderr and "Traceback" not in proc.stderr
