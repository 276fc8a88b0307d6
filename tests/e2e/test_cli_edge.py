"""The command line's edge: names that do not exist, impossible flags, the wrong directory.

Each is bad input (exit 2) with a message naming the flag or the manifest file and a hint, never a
traceback, a raw Git command line or an empty answer that looks like a true one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Repo

TARGETS_HINT = "targets: dev, staging, prod"


def assert_bad_input(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    shown = proc.stdout + proc.stderr
    assert proc.returncode == 2, shown
    assert "Traceback" not in shown
    assert "for-each-ref" not in shown and "%(refname)" not in shown, shown
    assert "CmdOption" not in shown, shown
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def assert_unknown_deployment(proc: subprocess.CompletedProcess[str]) -> None:
    assert_bad_input(proc, "deployments/web.yaml", "no deployment named 'web'", "hint: deployments: api")


def assert_unknown_target(proc: subprocess.CompletedProcess[str]) -> None:
    assert_bad_input(proc, "deployments/api.yaml", "deployment 'api' has no target 'qa'", TARGETS_HINT)


# Names that do not exist.


def test_history_of_an_unknown_target_deployment_or_component_is_bad_input(repo: Repo) -> None:
    assert_unknown_target(repo.cli("history", "api", "--target", "qa"))
    assert_unknown_deployment(repo.cli("history", "web", "--target", "dev"))
    proc = repo.cli("history", "api", "--target", "dev", "--component", "ecr/apix")
    assert_bad_input(proc, "deployments/api.yaml", "no component 'ecr/apix'", "did you mean 'ecr/api'?")


def test_status_of_an_unknown_deployment_or_target_is_bad_input(repo: Repo) -> None:
    assert_unknown_deployment(repo.cli("status", "web"))
    assert_unknown_target(repo.cli("status", "api", "--target", "qa"))
    assert_bad_input(repo.cli("status", "--target", "qa"), "no deployment has a target 'qa'", TARGETS_HINT)


def test_names_that_exist_with_nothing_deployed_are_an_empty_answer(repo: Repo) -> None:
    for args in (
        ("status",),
        ("status", "api"),
        ("status", "api", "--target", "prod"),
        ("status", "--target", "dev"),
    ):
        proc = repo.cli(*args, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == {}
    proc = repo.cli("history", "api", "--target", "prod", "--component", "ecr/api", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rollouts"] == []


@pytest.mark.parametrize("limit", ["-5", "0", "five"])
def test_history_limit_must_be_a_positive_number(repo: Repo, limit: str) -> None:
    assert_bad_input(repo.cli("history", "api", "--target", "dev", "--limit", limit), "--limit")


@pytest.mark.parametrize(
    "args",
    [
        ("diff", "web", "--from-target", "dev", "--to-target", "staging"),
        ("sbom", "web", "--target", "dev"),
        ("describe", "web"),
        ("promotion-status", "web"),
        ("graph", "web", "--target", "dev"),
        ("matrix", "web", "--target", "dev"),
    ],
    ids=lambda args: args[0],
)
def test_every_query_command_names_an_unknown_deployment(repo: Repo, args: tuple[str, ...]) -> None:
    assert_unknown_deployment(repo.cli(*args))


@pytest.mark.parametrize(
    "args",
    [
        ("diff", "api", "--from-target", "qa", "--to-target", "dev"),
        ("diff", "api", "--from-target", "dev", "--to-target", "qa"),
        ("sbom", "api", "--target", "qa"),
        ("describe", "api", "--target", "qa"),
        ("graph", "api", "--target", "qa"),
        ("matrix", "api", "--target", "qa"),
    ],
    ids=lambda args: "-".join(args[:1] + args[2:3]),
)
def test_every_query_command_names_an_unknown_target(repo: Repo, args: tuple[str, ...]) -> None:
    assert_unknown_target(repo.cli(*args))


def test_records_still_answer_for_a_deployment_whose_manifest_was_deleted(repo: Repo) -> None:
    assert repo.doit("rollout:api:dev").returncode == 0
    by_target = json.loads(repo.cli("status", "--target", "dev", "--format", "json").stdout)
    assert list(by_target) == ["api"] and list(by_target["api"]) == ["dev"]

    repo.git("rm", "-q", "deployments/api.yaml")
    repo.commit("Retire the api deployment")
    status = repo.cli("status", "api", "--format", "json")
    assert status.returncode == 0, status.stderr
    assert list(json.loads(status.stdout)["api"]) == ["dev"]
    history = repo.cli("history", "api", "--target", "dev", "--format", "json")
    assert history.returncode == 0, history.stderr
    assert len(json.loads(history.stdout)["rollouts"]) == 1
    sbom = repo.cli("sbom", "api", "--target", "dev")
    assert sbom.returncode == 0, sbom.stderr

    # Neither the (deleted) manifest nor the records know these.
    assert_bad_input(
        repo.cli("history", "api", "--target", "qa"), "deployments/api.yaml", "no target 'qa'", "dev"
    )
    assert_bad_input(repo.cli("status", "web"), "no deployment named 'web'", "deployments: api")


# The wrong directory, no repository, no Git.


def test_a_directory_that_does_not_exist_is_bad_input_not_a_missing_git(repo: Repo, tmp_path: Path) -> None:
    proc = repo.cli("-C", str(tmp_path / "nonexistent"), "status")
    assert_bad_input(proc, "-C", str(tmp_path / "nonexistent"), "no such directory")
    assert "git is not installed" not in proc.stderr
    afile = repo.write("notes.txt", "not a folder\n")
    assert_bad_input(repo.cli("-C", str(afile), "history", "api", "--target", "dev"), "-C", "not a directory")


def test_git_is_said_to_be_missing_only_when_it_is(repo: Repo, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = repo.cli("status", env={"PATH": str(empty)})
    assert_bad_input(proc, "git is not installed", "hint: install Git")


def test_outside_a_git_repository_queries_say_so_without_a_git_command_line(
    repo: Repo, tmp_path: Path, env: dict[str, str]
) -> None:
    # A copy of the example without its .git, and an empty folder: neither is inside a repository.
    outside = tmp_path / "outside"
    plain = outside / "example"
    shutil.copytree(repo.path, plain, ignore=shutil.ignore_patterns(".git"))
    empty = outside / "empty"
    empty.mkdir()
    ceiling = {"GIT_CEILING_DIRECTORIES": str(outside)}
    commands = [
        ("status",),
        ("status", "api"),
        ("history", "api", "--target", "dev"),
        ("sbom", "api", "--target", "dev"),
        ("diff", "api", "--from-target", "dev", "--to-target", "staging"),
        ("promotion-status", "api"),
    ]
    for where in (plain, empty):
        for args in commands if where == plain else commands[:3]:
            proc = repo.run(sys.executable, "-m", "atmos_tasks.cli", *args, cwd=where, env=ceiling)
            assert_bad_input(proc, "not a Git repository", str(where), "hint: ")
    proc = repo.run(sys.executable, "-m", "doit", "rollout:api:dev", cwd=plain, env=ceiling)
    assert_bad_input(proc, "not a Git repository", "hint: ")


# Options doit's tasks do not take.


@pytest.mark.parametrize("task", ["rollout:api:dev", "plan:api:dev", "build:api:dev"])
def test_an_unknown_option_of_a_doit_task_is_bad_input(repo: Repo, task: str) -> None:
    proc = repo.doit(task, "--frobnicate")
    assert_bad_input(proc, "--frobnicate", task, "--component")
    assert repo.refs() == {} and not (repo.path / ".atmos/workdir").exists()


def test_doit_task_options_missing_a_value_or_not_taken_are_bad_input(repo: Repo) -> None:
    assert_bad_input(repo.doit("rollout:api:dev", "--component"), "--component", "requires an argument")
    assert_bad_input(repo.doit("record:api:dev", "--allow-dirty"), "--allow-dirty", "takes no options")
    assert_bad_input(
        repo.doit("rollout:api:dev", "--allow-dirty", "rollout:api:prod", "--frobnicate"),
        "rollout:api:prod",
        "--frobnicate",
    )
    assert repo.refs() == {}


def test_an_unknown_task_option_through_the_loader_plugin_is_bad_input(repo: Repo) -> None:
    repo.git("rm", "-q", "dodo.py")
    repo.write("doit.cfg", "[GLOBAL]\nloader = atmos\n")
    repo.commit("Use the loader plugin")
    assert_bad_input(repo.doit("rollout:api:dev", "--frobnicate"), "--frobnicate", "rollout:api:dev")
    assert repo.refs() == {}
