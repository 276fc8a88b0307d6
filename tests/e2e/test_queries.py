"""`atmos-tasks status` and `history`: documented JSON shapes, read with one git process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from atmos_tasks.gitrepo import GitRepo, RefUpdate
from atmos_tasks.record import tag_object
from atmos_tasks.tracking import DeploymentRecord, ref_name, tag_name
from tests.conftest import Repo


def git_processes(trace: Path) -> list[str]:
    """Git commands started, from GIT_TRACE2's event stream (one `start` event per process)."""
    commands = []
    for line in trace.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "start":
            commands.append(event["argv"][1])
    return commands


def seed_records(repo: Repo, deployments: int, targets: int, components: int) -> str:
    """Refs and tags as rollouts would leave them, written in bulk with Git plumbing."""
    git = GitRepo(repo.path)
    head = repo.head()
    records = []
    for d in range(deployments):
        for t in range(targets):
            for c in range(components):
                records.append(
                    DeploymentRecord(
                        deployment=f"app{d}",
                        target=f"env{t}",
                        component=f"group/comp{c}",
                        type="terraform",
                        git_sha=head,
                        deployed_by="ci@example.com",
                        timestamp="2025-01-23T15:30:00Z",
                        status="success",
                        inputs_hash="ab" * 32,
                        changes="applied",
                    )
                )
    from datetime import UTC, datetime

    from atmos_tasks.gitrepo import Ident

    when = datetime(2025, 1, 23, 15, 30, tzinfo=UTC)
    names = [tag_name(r.deployment, r.target, r.component, "2025-01-23T15-30-00Z") for r in records]
    bodies = [
        tag_object(head, n, Ident("CI", "ci@example.com"), when, r.to_message())
        for r, n in zip(records, names, strict=True)
    ]
    shas = git.write_objects("tag", bodies)
    updates = [RefUpdate(f"refs/tags/{n}", s, None) for n, s in zip(names, shas, strict=True)]
    updates += [RefUpdate(ref_name(r.deployment, r.target, r.component), head, None) for r in records]
    git.update_refs(updates)
    return head


def test_status_json_shape_after_a_rollout(repo: Repo) -> None:
    assert repo.doit("rollout:api:dev").returncode == 0
    head = repo.head()
    proc = repo.cli("status", "api", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert list(data) == ["api"] and list(data["api"]) == ["dev"]
    assert sorted(data["api"]["dev"]) == [
        "api",
        "ecr/api",
        "ecs/service-api",
        "ecs/taskdef-api",
        "monitoring/alarms-api",
    ]
    assert data["api"]["dev"]["api"]["type"] == "nixpack" and data["api"]["dev"]["api"]["image"].startswith(
        "acme/api@sha256:"
    )
    assert data["api"]["dev"]["ecs/taskdef-api"]["image"] == data["api"]["dev"]["api"]["image"]
    for entry in data["api"]["dev"].values():
        assert entry["git_sha"] == head
        assert entry["deployed_by"] == "ada@example.com"
        assert entry["status"] == "success"
        assert entry["deployed_at"].endswith("Z")
        assert entry["type"] in ("terraform", "nixpack")
        assert entry["tag"].startswith("atmos/deployments/api/dev/")
    assert {name: entry["kind"] for name, entry in data["api"]["dev"].items()} == {
        name: entry["type"] for name, entry in data["api"]["dev"].items()
    }
    table = repo.cli("status", "api").stdout
    assert re.search(r"^  TARGET +COMPONENT +COMMIT +IMAGE +DEPLOYED +STATUS +BY +SIGNATURE$", table, re.M), (
        table
    )
    assert re.search(rf"^  dev +nixpack/api +{head[:7]}  sha256:[0-9a-f]{{12}}  .* ✓ success  ", table, re.M)
    assert re.search(rf"^ +terraform/ecs/service-api +{head[:7]}  +\S+ ago +✓ success  ", table, re.M), table
    yaml_out = repo.cli("status", "api", "--format", "yaml")
    assert f"git_sha: {head}" in yaml_out.stdout


def test_history_json_shape(repo: Repo) -> None:
    assert repo.doit("rollout:api:dev").returncode == 0
    first = repo.head()
    repo.replace("stacks/catalog/ecs/taskdef-api.yaml", "container_port: 8080", "container_port: 9090")
    second = repo.commit("Serve on 9090")
    assert repo.doit("rollout:api:dev").returncode == 0
    proc = repo.cli("history", "api", "--target", "dev", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["deployment"] == "api" and data["target"] == "dev"
    assert [r["git_sha"] for r in data["rollouts"]] == [second, first]
    newest = data["rollouts"][0]
    assert newest["status"] == "success" and newest["deployed_by"] == "ada@example.com"
    assert [r["subject"] for r in data["rollouts"]] == [
        "Serve on 9090",
        repo.git("log", "-1", "--format=%s", first),
    ]
    assert newest["components"]["api"]["kind"] == "nixpack"
    assert newest["components"]["ecr/api"]["changes"] == "none"
    assert newest["components"]["ecs/taskdef-api"]["changes"] == "applied"
    limited = json.loads(
        repo.cli("history", "api", "--target", "dev", "--limit", "1", "--format", "json").stdout
    )
    assert [r["git_sha"] for r in limited["rollouts"]] == [second]
    one = json.loads(
        repo.cli("history", "api", "--target", "dev", "--component", "ecr/api", "--format", "json").stdout
    )
    assert all(list(r["components"]) == ["ecr/api"] for r in one["rollouts"])
    # The table: the commit's subject on the rollout's line, then one line per component.
    table = repo.cli("history", "api", "--target", "dev").stdout
    assert re.search(
        rf"^  \S+ \S+  {second[:7]}  Serve on 9090  +ada@example\.com  ✓ success", table, re.M
    ), table
    assert re.findall(r"^    (\S+) +✓ success +(\S+)$", table, re.M)[:5] == [
        ("nixpack/api", "none"),
        ("terraform/ecr/api", "none"),
        ("terraform/ecs/service-api", "applied"),
        ("terraform/ecs/taskdef-api", "applied"),
        ("terraform/monitoring/alarms-api", "none"),
    ], table


def test_status_and_history_read_a_fixed_number_of_git_processes_whatever_the_number_of_refs(
    repo: Repo, tmp_path: Path
) -> None:
    """status: two `for-each-ref`s (the refs, then the tags with their messages); history of a
    target: the same (once its records are kept, the tags' names and no message), and one
    `cat-file` for the subjects of the commits its rollouts deployed. (The records kept are used,
    not checked, as users run it.)"""
    head = seed_records(repo, deployments=6, targets=3, components=25)  # 450 refs, 450 tags
    (repo.path / ".atmos").mkdir(exist_ok=True)
    trace = tmp_path / "trace.json"
    used = {"ATMOS_TASKS_GRAPH_CACHE": "on", "GIT_TRACE2_EVENT": str(trace)}
    for _ in range(2):  # nothing kept, then the records kept by the first
        trace.unlink(missing_ok=True)
        proc = repo.cli("status", "--format", "json", env=used)
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        assert len(data) == 6 and all(len(targets) == 3 for targets in data.values())
        assert data["app5"]["env2"]["group/comp24"]["git_sha"] == head
        assert data["app5"]["env2"]["group/comp24"]["deployed_by"] == "ci@example.com"
        assert git_processes(trace) == ["for-each-ref", "for-each-ref"]

    for _ in range(2):
        trace.unlink()
        proc = repo.cli("history", "app3", "--target", "env1", "--format", "json", env=used)
        assert proc.returncode == 0, proc.stderr
        rollouts = json.loads(proc.stdout)["rollouts"]
        assert len(rollouts) == 1 and len(rollouts[0]["components"]) == 25
        assert rollouts[0]["subject"] == repo.git("log", "-1", "--format=%s", head)
        assert git_processes(trace) == ["for-each-ref", "for-each-ref", "cat-file"]


def test_status_of_an_empty_repository_is_empty(repo: Repo) -> None:
    proc = repo.cli("status", "--format", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout) == {}
    table = repo.cli("status", "api")
    assert "No deployments recorded for api" in table.stdout


def test_rows_read_while_git_writes_are_the_rows_git_wrote(repo: Repo, tmp_path: Path) -> None:
    """`for_each_ref_rows` hands rows over in batches as the pipe fills (450 tags: several 64 KiB
    reads); joined, they are `for_each_ref`'s rows. A caller that stops early leaves no Git behind,
    and a folder that is no repository is bad input, as for every other Git read."""
    from atmos_tasks.errors import AtmosError
    from atmos_tasks.tracking import RECORD_FIELDS, read_records, record_patterns

    head = seed_records(repo, deployments=6, targets=3, components=25)
    git = GitRepo(repo.path)
    batches = list(git.for_each_ref_rows(record_patterns(), RECORD_FIELDS))
    assert len(batches) > 1
    rows = [row.split("\x00") for batch in batches for row in batch if row]
    assert rows == git.for_each_ref(record_patterns(), RECORD_FIELDS)
    assert len(rows) == 900

    states = read_records(git)
    assert len(states) == 450
    assert all(s.git_sha == head and [r.git_sha for r in s.history] == [head] for s in states.values())
    state = states[("app5", "env2", "group/comp24")]
    assert state.history[0].tag == "atmos/deployments/app5/env2/group%2Fcomp24/2025-01-23T15-30-00Z"

    stopped = git.for_each_ref_rows(record_patterns(), RECORD_FIELDS)
    next(stopped)
    stopped.close()  # kills and reaps Git: nothing left writing into a pipe no one reads

    with pytest.raises(AtmosError, match="not a Git repository"):
        list(GitRepo(tmp_path).for_each_ref_rows(record_patterns(), RECORD_FIELDS))


def on_a_terminal(repo: Repo, *args: str) -> str:
    """What the CLI writes when its stdout is a terminal (a pseudo-terminal: `\\r\\n` line ends)."""
    import os
    import subprocess
    import sys

    leader, follower = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "atmos_tasks.cli", *args], cwd=repo.path, env=repo.env, stdout=follower
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the CLI exited and closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=120) == 0
    os.close(leader)
    return b"".join(chunks).decode()


def test_json_is_indented_on_a_terminal_and_compact_when_piped(repo: Repo) -> None:
    assert repo.doit("rollout:api:dev").returncode == 0
    for args in (("status", "api", "--no-health"), ("history", "api", "--target", "dev")):
        piped = repo.cli(*args, "--format", "json").stdout
        assert piped.count("\n") == 1 and piped.endswith("}\n"), piped[:200]
        shown = on_a_terminal(repo, *args, "--format", "json")
        assert shown.startswith('{\r\n  "') and shown.count("\n") > 20, shown[:200]
        assert json.loads(shown) == json.loads(piped)
