"""A rollout that changes one component hands doit that component's tasks only (`answered.py`).

Real repositories, real Terraform, the graph cache on (the rest of the suite runs `verify`, where
every answer is left in the graph and checked against what doit finds). Three components: `a`,
`b` reading `a`'s outputs, and `c` on its own.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import Repo

MODULE = 'variable "label" {\n  type = string\n}\noutput "label" {\n  value = "${var.label}-%s"\n}\n'


@pytest.fixture
def three(tmp_path: Path, env: dict[str, str]) -> Repo:
    repo = Repo(tmp_path / "three", {**env, "ATMOS_TASKS_GRAPH_CACHE": "on"})
    repo.write(
        "atmos.yaml",
        "components:\n  terraform:\n    base_path: components/terraform\n"
        'stacks:\n  base_path: stacks\n  included_paths: ["deploy/*"]\n  name_pattern: "{stage}"\n',
    )
    repo.write("dodo.py", "from atmos_tasks.dodo import *  # noqa: F403\n")
    repo.write(".gitignore", ".atmos/\n__pycache__/\n")
    repo.write("stacks/deploy/dev.yaml", "vars:\n  stage: dev\n")
    for name in "abc":
        repo.write(f"components/terraform/{name}/main.tf", MODULE % "v1")
    repo.write(
        "deployments/app.yaml",
        "deployment:\n  name: app\n  components:\n    terraform:\n"
        "      a:\n        vars: {label: a}\n"
        '      b:\n        metadata:\n          depends_on: ["terraform/a"]\n        vars: {label: b}\n'
        "      c:\n        vars: {label: c}\n"
        "  targets:\n    dev:\n      stacks: [deploy/dev]\n",
    )
    repo.git("init", "-q", "-b", "main")
    repo.commit("three")
    rollout(repo)
    return repo


def rollout(repo: Repo, *args: str, env: dict[str, str] | None = None) -> str:
    proc = repo.doit(*args, "rollout:app:dev", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def change(repo: Repo, name: str, version: str) -> None:
    repo.write(f"components/terraform/{name}/main.tf", MODULE % version)
    repo.commit(f"{name} changes")


def answered(output: str) -> list[str]:
    found = re.search(r"– \d+ components? up to date: (.+?) \(modules, plans and applies as", output)
    return found.group(1).split(", ") if found else []


def walked(output: str) -> set[str]:
    """Components doit checked or ran (a line of their own)."""
    return set(re.findall(r"terraform/(\w+): (?:plan up to date|apply up to date|planned|applied)", output))


def test_one_changed_component_is_all_doit_walks(three: Repo) -> None:
    before = set(three.git("tag", "--list").split())
    change(three, "c", "v2")
    out = rollout(three)
    assert answered(out) == ["a", "b"]
    assert walked(out) == {"c"}
    assert "terraform/c: applied" in out
    head = three.head()
    # The record is the one a full walk writes: every ref follows the commit, two tags are new
    # (c's record and the rollout's, listing a and b as unchanged).
    for name in "abc":
        assert three.git("rev-parse", f"refs/atmos/deployments/app/dev/{name}") == head
    new = set(three.git("tag", "--list").split()) - before
    assert len(new) == 2
    (rollout_tag,) = [tag for tag in new if tag.startswith("atmos/rollouts/")]
    message = three.git("tag", "-l", "--format=%(contents)", rollout_tag)
    assert '"a": {"inputs_hash"' in message and '"b": {"inputs_hash"' in message
    assert '"c": {' not in message
    # Nothing changed since: the next rollout records nothing, and doit walks nothing.
    again = rollout(three)
    assert "Nothing to record" in again
    assert walked(again) == set()


def test_a_component_reading_one_that_changed_is_checked_by_doit(three: Repo) -> None:
    change(three, "a", "v2")
    out = rollout(three)
    assert answered(out) == ["c"]
    assert walked(out) == {"a", "b"}
    assert "terraform/a: applied" in out


def test_the_component_a_changed_one_reads_stays_in_the_graph(three: Repo) -> None:
    change(three, "b", "v2")
    out = rollout(three)
    assert answered(out) == ["c"]
    assert "terraform/a: plan up to date" in out and "terraform/b: applied" in out


def test_answered_components_in_parallel_runs_and_job_summaries(three: Repo, tmp_path: Path) -> None:
    change(three, "c", "v2")
    summary = tmp_path / "summary.md"
    out = rollout(three, "-n", "2", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert answered(out) == ["a", "b"]
    assert "terraform/c: applied" in out
    rows = summary.read_text()
    assert "| `a` | up to date |" in rows and "| `b` | up to date |" in rows
    assert re.search(r"\| `c` \| applied", rows)


def test_verify_leaves_every_task_to_doit_and_agrees(three: Repo) -> None:
    change(three, "c", "v2")
    proc = three.doit("rollout:app:dev", env={"ATMOS_TASKS_GRAPH_CACHE": "verify"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert answered(proc.stdout) == []
    assert walked(proc.stdout) == {"a", "b", "c"}


def test_a_forced_run_walks_every_component_however_doit_was_told(three: Repo) -> None:
    """doit's own options decide: `--alw` is `--always-execute` to doit's parser."""
    change(three, "c", "v2")
    out = rollout(three, "--alw")
    assert answered(out) == []
    assert {"a", "b", "c"} <= set(re.findall(r"terraform/(\w+): applied", out))


def test_a_run_on_another_database_is_left_to_doit(three: Repo, tmp_path: Path) -> None:
    """`--db=` (doit's `--db-file`, abbreviated) names a database nothing was saved in: every
    component plans, although the workspace's own database has them up to date."""
    change(three, "c", "v2")
    proc = three.doit("run", f"--db={tmp_path / 'other.sqlite'}", "rollout:app:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert answered(proc.stdout) == []
    assert {"a", "b", "c"} <= set(re.findall(r"terraform/(\w+): planned", proc.stdout))


def test_a_vendored_component_is_answered_with_its_module(repo: Repo) -> None:
    """The bundled example: `monitoring/alarms-api` is vendored; a change to `ecr/api` leaves its
    vendor, plan and apply to the answer, while the components bound to the image stay with
    doit (the build task reads the disk)."""
    on = {"ATMOS_TASKS_GRAPH_CACHE": "on"}

    def rollout_api() -> str:
        proc = repo.doit("rollout:api:dev", env=on)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    rollout_api()
    repo.replace("components/terraform/ecr/main.tf", "\n", "\n# a comment\n")
    repo.commit("ecr: a comment")
    out = rollout_api()
    assert answered(out) == ["monitoring/alarms-api"]
    assert "terraform/monitoring/alarms-api: module up to date" not in out
    assert "terraform/ecr/api: applied" in out
    assert "terraform/ecs/service-api: plan up to date" in out
    head = repo.head()
    assert repo.git("rev-parse", "refs/atmos/deployments/api/dev/monitoring%2Falarms-api") == head
