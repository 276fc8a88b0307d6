"""The entry points: `from atmos_tasks.dodo import *`, the doit loader plugin, `atmos-tasks`."""

from __future__ import annotations

from tests.conftest import Repo


def test_doit_list_shows_every_target_of_every_deployment(repo: Repo) -> None:
    proc = repo.doit("list", "--all")
    assert proc.returncode == 0, proc.stderr
    for target in ("dev", "staging", "prod"):
        assert f"rollout:api:{target}" in proc.stdout
        assert f"plan:api:{target}:ecs/service-api" in proc.stdout
        assert f"record:api:{target}" in proc.stdout


def test_doit_alone_runs_nothing_but_a_hint(repo: Repo) -> None:
    proc = repo.doit()
    assert proc.returncode == 0
    assert "nothing selected" in proc.stdout
    assert repo.refs() == {} and not (repo.path / ".atmos/workdir").exists()


def test_loader_plugin_needs_no_dodo_file(repo: Repo) -> None:
    repo.git("rm", "-q", "dodo.py")
    repo.write("doit.cfg", "[GLOBAL]\nloader = atmos\n")
    repo.commit("Use the loader plugin")
    listed = repo.doit("list", "--all")
    assert "rollout:api:prod" in listed.stdout
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(repo.refs("refs/atmos/deployments/api/dev/")) == 5


def test_unknown_deployment_is_bad_input(repo: Repo) -> None:
    proc = repo.doit("rollout:web:dev")
    assert proc.returncode == 2
    assert "no deployment named 'web'" in proc.stderr and "deployments: api" in proc.stderr
    cli = repo.cli("rollout", "web")
    assert cli.returncode == 2 and "no deployment named 'web'" in cli.stderr
    assert "Traceback" not in proc.stderr + cli.stderr
