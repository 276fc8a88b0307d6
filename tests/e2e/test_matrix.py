"""`atmos-tasks matrix`: the example's components as a GitHub Actions matrix, and running one entry."""

from __future__ import annotations

import json

from ruamel.yaml import YAML

from tests.conftest import Repo
from tests.e2e.test_failures import FLAKY_TF, add_components, add_module

ORDER = ["ecr/api", "api", "ecs/taskdef-api", "ecs/service-api", "monitoring/alarms-api"]


def matrix(repo: Repo, *args: str) -> dict:
    proc = repo.cli("matrix", "api", "--target", "dev", *args)
    assert proc.returncode == 0, proc.stderr
    data: dict = json.loads(proc.stdout)
    return data


def test_include_lists_components_in_dependency_order(repo: Repo) -> None:
    data = matrix(repo)
    assert list(data) == ["include"]  # any other key would become a matrix axis in GitHub Actions
    entries = {e["component"]: e for e in data["include"]}
    assert [e["component"] for e in data["include"]] == ORDER
    assert entries["ecs/taskdef-api"] == {
        "deployment": "api",
        "target": "dev",
        "component": "ecs/taskdef-api",
        "type": "terraform",
        "task": "apply:api:dev:ecs/taskdef-api",
        "tasks": ["plan:api:dev:ecs/taskdef-api", "apply:api:dev:ecs/taskdef-api"],
        "depends_on": ["nixpack/api", "terraform/ecr/api"],
        "wave": 2,
    }
    assert entries["api"]["type"] == "nixpack" and entries["api"]["task"] == "build:api:dev:api"
    assert entries["ecs/service-api"]["depends_on"] == ["terraform/ecs/taskdef-api"]
    assert entries["monitoring/alarms-api"]["tasks"][0] == "vendor:api:dev:monitoring/alarms-api"
    assert entries["monitoring/alarms-api"]["depends_on"] == []
    # Every named task is one the graph really has.
    listed = repo.doit("list", "--all", "--quiet").stdout.split()
    assert {t for e in data["include"] for t in e["tasks"]} <= set(listed)


def test_waves_are_dependency_levels(repo: Repo) -> None:
    waves = matrix(repo, "--waves")["waves"]
    assert [[e["component"] for e in wave] for wave in waves] == [
        ["ecr/api", "monitoring/alarms-api"],
        ["api"],
        ["ecs/taskdef-api"],
        ["ecs/service-api"],
    ]
    assert all(e["wave"] == n for n, wave in enumerate(waves) for e in wave)


def test_yaml_format(repo: Repo) -> None:
    proc = repo.cli("matrix", "api", "--target", "dev", "--format", "yaml")
    assert proc.returncode == 0, proc.stderr
    data = YAML(typ="safe").load(proc.stdout)
    assert [e["component"] for e in data["include"]] == ORDER


def test_unknown_deployment_or_target_exits_2_without_traceback(repo: Repo) -> None:
    for args, message in (
        (("nope", "--target", "dev"), "no deployment named 'nope'"),
        (("api", "--target", "nope"), "deployment 'api' has no target 'nope'"),
        (("api", "--target", "d*"), "deployment 'api' has no target 'd*'"),
    ):
        proc = repo.cli("matrix", *args)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert proc.stdout == ""
    proc = repo.cli("matrix", "api")
    assert proc.returncode == 2 and "--target" in proc.stderr


def test_an_entrys_task_deploys_its_component_after_its_dependencies_and_records_nothing(
    repo: Repo,
) -> None:
    entry = next(e for e in matrix(repo)["include"] if e["component"] == "ecs/taskdef-api")
    proc = repo.doit(entry["task"])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for line in ("terraform/ecr/api: applied", "nixpack/api: built", "terraform/ecs/taskdef-api: applied"):
        assert line in out
    assert "ecs/service-api" not in out and "alarms-api" not in out
    assert repo.refs() == {}  # recording is the target's record task
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "terraform/ecs/taskdef-api: apply up to date" in proc.stdout
    assert len(repo.refs()) == 5


def test_a_failing_entry_task_exits_1_even_though_nothing_is_recorded(repo: Repo) -> None:
    add_module(repo, "flaky", FLAKY_TF)
    add_components(repo, {"jobs/migrate": {"component": "flaky", "vars": {"fail": True}}})
    repo.commit("A failing job")
    entry = next(e for e in matrix(repo)["include"] if e["component"] == "jobs/migrate")
    proc = repo.doit(entry["task"])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "simulated provisioning failure" in out and "Traceback" not in out


def test_the_gitlab_child_pipeline_has_a_stage_per_wave_and_a_job_per_component(repo: Repo) -> None:
    """The bundled `scripts/gitlab-child-pipeline.py` (docs/ci.md) turns the waves into a GitLab
    child pipeline: one stage per wave then `record`, one job per component running its task with
    `needs:` its dependencies, and a last job that records the target's rollout."""
    import subprocess
    import sys

    waves = repo.cli("matrix", "api", "--target", "dev", "--waves", "--format", "json").stdout
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/gitlab-child-pipeline.py",
            "--include",
            ".gitlab/atmos.yml",
            "--extends",
            ".atmos",
        ],
        cwd=repo.path,
        input=waves,
        capture_output=True,
        text=True,
        env=repo.env,
    )
    assert proc.returncode == 0, proc.stderr
    child = YAML(typ="safe").load(proc.stdout)
    assert child["include"] == [{"local": ".gitlab/atmos.yml"}]
    assert child["stages"] == ["wave-0", "wave-1", "wave-2", "wave-3", "record"]
    entries = {f"{e['type']}/{e['component']}": e for e in matrix(repo)["include"]}
    for name, entry in entries.items():
        job = child[name]
        assert job["stage"] == f"wave-{entry['wave']}" and job["extends"] == ".atmos"
        assert job["needs"] == sorted(entry["depends_on"])
        assert job["script"] == [f"doit {entry['task']} --remote origin"]
        assert all(child[need]["stage"] < job["stage"] for need in job["needs"])
    assert child["record"]["needs"] == sorted(entries)
    assert child["record"]["script"] == ["doit rollout:api:dev --remote origin"]
    bad = subprocess.run(
        [sys.executable, "scripts/gitlab-child-pipeline.py"],
        cwd=repo.path,
        input="[]",
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "--waves --format json" in bad.stderr
