"""The pure parts of `atmos-tasks drift` (atmos_tasks/drift.py, atmos_tasks/tfplan.py): summarising a
plan's JSON, the exit code, what the note keeps and when a recorded check still speaks for what
runs, the order checks run in, reading the notes back, and how the results are shown."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from atmos_tasks import render, secrets
from atmos_tasks.drift import (
    DRIFTED,
    FAILED,
    IN_SYNC,
    NOT_CHECKED,
    Checked,
    DriftReport,
    _run_checks,
    check_order,
    current,
    exit_code,
    note_changes,
    note_entry,
    recorded,
)
from atmos_tasks.gitrepo import GitRepo
from atmos_tasks.notes import merge_nested, update_note
from atmos_tasks.tfplan import anchored_backend, attributes_changed, shown_change, summarise_plan

SHA = "85ef432fa31da8760a3aca5616a817468cf83284"


def change(actions: list[str], before: Any, after: Any, unknown: Any = None) -> dict[str, Any]:
    return {"actions": actions, "before": before, "after": after, "after_unknown": unknown or {}}


def resource(address: str, found: dict[str, Any]) -> dict[str, Any]:
    return {"address": address, "mode": "managed", "change": found}


# As Terraform 1.0.3 shows a plan of the example's ecr component after `-var image_tag_mutability=MUTABLE`
# was applied outside a rollout: the null_resource is replaced, its id known only after apply.
REPLACED = resource(
    "null_resource.repository",
    {
        **change(
            ["delete", "create"],
            {
                "id": "3067219197125734682",
                "triggers": {"image_tag_mutability": "MUTABLE", "name": "acme-dev-api"},
            },
            {"triggers": {"image_tag_mutability": "IMMUTABLE", "name": "acme-dev-api"}},
            {"id": True, "triggers": {}},
        ),
        "replace_paths": [["triggers"]],
    },
)


def test_a_replacement_counts_the_attributes_whose_new_value_is_known() -> None:
    assert summarise_plan({"resource_changes": [REPLACED]}) == [
        {"address": "null_resource.repository", "action": "replace", "symbol": "-/+", "attributes": 1}
    ]
    assert shown_change(summarise_plan({"resource_changes": [REPLACED]})[0]) == (
        "-/+ null_resource.repository (1 attribute)"
    )


def test_every_kind_of_change_is_summarised_without_a_value() -> None:
    plan = {
        "resource_changes": [
            resource("null_resource.same", change(["no-op"], {"id": "1"}, {"id": "1"})),
            resource("aws_s3_bucket.new", change(["create"], None, {"bucket": "secret-name"}, {"arn": True})),
            resource(
                "aws_s3_bucket.tags",
                change(
                    ["update"],
                    {"tags": {"a": "1", "b": "2"}, "acl": "private", "arn": "x"},
                    {"tags": {"a": "1", "b": "3", "c": "4"}, "acl": "public", "arn": None},
                    {"arn": True, "tags": {}},
                ),
            ),
            resource('aws_iam_user.gone["bob"]', change(["delete"], {"name": "bob"}, None)),
            resource("null_resource.first", change(["create", "delete"], {"id": "1"}, {}, {"id": True})),
            resource("data.aws_ami.latest", change(["read"], None, {}, {"id": True})),
        ],
        "output_changes": {
            "same": {"actions": ["no-op"], "before": "a", "after": "a"},
            "arn": {"actions": ["update"], "before": "arn:1", "after": "arn:2"},
        },
    }
    found = summarise_plan(plan)
    assert [shown_change(c) for c in found] == [
        "+ aws_s3_bucket.new",
        # tags.b and tags.c change, acl changes, arn is known only after apply: 4.
        "~ aws_s3_bucket.tags (4 attributes)",
        '- aws_iam_user.gone["bob"]',
        # Nothing known changes: what is unknown is all that can be said.
        "+/- null_resource.first (1 attribute)",
        "<= data.aws_ami.latest",
        "~ output.arn",
    ]
    assert "secret-name" not in json.dumps(found) and "arn:2" not in json.dumps(found)


def test_attributes_are_counted_only_for_updates_and_replacements() -> None:
    assert attributes_changed(change(["create"], None, {"a": 1}), "create") is None
    assert (
        attributes_changed(change(["update"], {"a": [1, 2]}, {"a": [1, 3]}), "update") == 1
    )  # a list is one value
    assert attributes_changed(change(["update"], {"a": 1}, {"a": 1, "b": None}, {"b": True}), "update") == 1
    assert summarise_plan({}) == [] and summarise_plan({"resource_changes": None}) == []


@pytest.mark.parametrize(
    ("states", "code"),
    [
        ([], 0),
        ([IN_SYNC, NOT_CHECKED], 0),
        ([IN_SYNC, DRIFTED, NOT_CHECKED], 4),
        ([DRIFTED, FAILED], 1),  # a check that failed leaves the answer incomplete: it wins
        ([FAILED, IN_SYNC], 1),
    ],
)
def test_exit_code(states: list[str], code: int) -> None:
    assert exit_code(states) == code


def checked(name: str, state: str, **more: Any) -> Checked:
    return Checked(name, "terraform", SHA, state, "2026-12-03T17:11:15Z", **more)


def test_the_note_keeps_states_and_changes_never_errors_and_not_what_was_not_checked() -> None:
    report = DriftReport("api", "dev", "2026-12-03T17:20:00Z", "ada@example.com")
    summary = [{"address": "null_resource.repository", "action": "replace", "symbol": "-/+", "attributes": 1}]
    report.components = [
        checked("ecr/api", DRIFTED, changes=summary, counts={"add": 1, "change": 0, "destroy": 1}),
        checked("ecs/service-api", FAILED, error="terraform plan failed: password=hunter22", workdir="/w"),
        Checked("api", "nixpack", SHA, NOT_CHECKED, reason="an image"),
        Checked("ecs/taskdef-api", "terraform", "b" * 40, IN_SYNC, "2026-12-01T00:00:00Z"),
    ]
    assert report.exit_code == 1
    changes = note_changes(report)
    stamp = {"checked_at": "2026-12-03T17:20:00Z", "checked_by": "ada@example.com"}
    assert changes == {
        SHA: {
            "dev": {
                "ecr/api": {
                    "state": "drifted",
                    **stamp,
                    "deployed_at": "2026-12-03T17:11:15Z",
                    "changes": summary,
                    "counts": {"add": 1, "change": 0, "destroy": 1},
                },
                "ecs/service-api": {"state": "failed", **stamp, "deployed_at": "2026-12-03T17:11:15Z"},
            }
        },
        "b" * 40: {
            "dev": {"ecs/taskdef-api": {"state": "in-sync", **stamp, "deployed_at": "2026-12-01T00:00:00Z"}}
        },
    }
    assert note_entry(report.components[2], "t", "x") is None
    shown = report.to_json()
    assert shown["drifted"] == ["ecr/api"] and shown["failed"] == ["ecs/service-api"]
    assert shown["components"]["api"] == {
        "kind": "nixpack",
        "git_sha": SHA,
        "state": "not-checked",
        "reason": "an image",
    }
    assert shown["components"]["ecs/service-api"]["workdir"] == "/w"


def test_what_is_shown_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    run = secrets.Secrets()
    run.add("hunter22")
    monkeypatch.setattr(secrets, "RUN", run)
    found = checked(
        "db", DRIFTED, changes=[{"address": 'aws_x.y["hunter22"]', "action": "update", "symbol": "~"}]
    ).to_json()
    assert "hunter22" not in json.dumps(found) and '"aws_x.y[\\"***\\"]"' in json.dumps(found)


def test_a_recorded_check_speaks_only_for_the_deployment_it_checked() -> None:
    entry = {"state": "drifted", "checked_at": "2026-12-03T17:20:00Z", "deployed_at": "2026-12-03T17:11:15Z"}
    assert current(entry, "2026-12-03T17:11:15Z") == entry
    # Rolled out again since (the same commit too: the rollout may have repaired it).
    assert current(entry, "2026-12-03T18:00:00Z") is None
    assert current(None, "x") is None and current("drifted", "x") is None and current({}, None) is None


def test_checks_run_dependencies_first_else_in_the_order_given() -> None:
    order = check_order(
        {
            "ecs/service-api": ["ecs/taskdef-api"],
            "ecr/api": [],
            "ecs/taskdef-api": ["ecr/api", "api"],
            "api": ["ecr/api"],
            "monitoring/alarms-api": ["not-deployed"],
        }
    )
    assert order == ["ecr/api", "api", "ecs/taskdef-api", "ecs/service-api", "monitoring/alarms-api"]
    # Two commits of one target that order two components each way: both are still checked.
    assert check_order({"a": ["b"], "b": ["a"], "c": []}) == ["c", "a", "b"]


def test_parallel_checks_wait_for_their_dependencies_and_keep_the_order() -> None:
    finished: dict[str, float] = {}
    started: dict[str, float] = {}
    heard: list[str] = []
    lock = threading.Lock()

    def check(name: str) -> Checked:
        with lock:
            started[name] = time.monotonic()
        time.sleep({"slow": 0.2}.get(name, 0.05))
        with lock:
            finished[name] = time.monotonic()
        return checked(name, IN_SYNC)

    depends_on = {
        "slow": [],
        "quick": [],
        "after-slow": ["slow"],
        "cycle-a": ["cycle-b"],
        "cycle-b": ["cycle-a"],
    }
    found = _run_checks(list(depends_on), depends_on, check, 2, lambda c: heard.append(c.name))
    assert [c.name for c in found] == list(depends_on)
    assert started["after-slow"] >= finished["slow"]
    assert started["quick"] < finished["slow"]  # two at once
    assert sorted(heard) == sorted(depends_on)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_recorded_notes_are_read_back_per_deployment_and_commit(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    git(tmp_path, "init", "-q", "-b", "main")
    commits = []
    for n in range(2):
        (tmp_path / "file").write_text(f"{n}\n")
        git(tmp_path, "add", "-A")
        git(tmp_path, "commit", "-q", "-m", f"commit {n}")
        commits.append(git(tmp_path, "rev-parse", "HEAD"))
    repo = GitRepo(tmp_path)
    assert recorded(repo, [("api", commits[0])]) == {}  # no note yet
    update_note(repo, "api", "drift", commits[0], {"dev": {"ecr/api": {"state": "in-sync"}}}, merge_nested)
    update_note(repo, "api", "drift", commits[0], {"dev": {"ecs/x": {"state": "drifted"}}}, merge_nested)
    update_note(repo, "api", "drift", commits[0], {"prod": {"ecr/api": {"state": "failed"}}}, merge_nested)
    assert recorded(repo, [("api", commits[0]), ("api", commits[1]), ("web", commits[0])]) == {
        ("api", commits[0]): {
            "dev": {"ecr/api": {"state": "in-sync"}, "ecs/x": {"state": "drifted"}},
            "prod": {"ecr/api": {"state": "failed"}},
        }
    }
    # What plain Git shows.
    assert json.loads(git(tmp_path, "notes", "--ref=atmos/api/drift", "show", commits[0]))["dev"][
        "ecs/x"
    ] == {"state": "drifted"}


def test_each_check_is_a_line_and_the_run_ends_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    drifted = checked(
        "ecr/api",
        DRIFTED,
        changes=[
            {"address": "null_resource.repository", "action": "replace", "symbol": "-/+", "attributes": 1}
        ],
        counts={"add": 1, "change": 0, "destroy": 1},
        seconds=1.44,
    )
    render.drift_line(drifted.name, {**drifted.to_json(), "seconds": drifted.seconds})
    skipped = Checked(
        "api", "nixpack", SHA, NOT_CHECKED, reason="an image: nothing of it runs that could drift"
    )
    render.drift_line(skipped.name, skipped.to_json())
    report = DriftReport("api", "dev", "2026-12-03T17:20:00Z", "ada@example.com", [drifted, skipped])
    render.drift(report.to_json(), "table")
    assert capsys.readouterr().out.splitlines() == [
        "  ✗ terraform/ecr/api: drifted (85ef432, 1.4s): 1 to add, 0 to change, 1 to destroy",
        "      -/+ null_resource.repository (1 attribute)",
        "  - nixpack/api: not checked (85ef432): an image: nothing of it runs that could drift",
        "Drift found on api → dev: terraform/ecr/api (1 of 1 checked component(s), 1 not checked)",
        "Recorded in the drift note of the deployed commit (git notes --ref=atmos/api/drift show <commit>)",
    ]
    render.drift(DriftReport("api", "qa", "t", "x").to_json(), "table")
    assert capsys.readouterr().out == "Nothing deployed on api → qa: nothing to check.\n"


def test_status_shows_a_drift_column_when_drift_is_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    base = {
        "git_sha": SHA,
        "deployed_at": "2026-12-03T17:11:15Z",
        "deployed_by": "ada@example.com",
        "status": "success",
        "type": "terraform",
        "kind": "terraform",
        "signature": {"status": "unverified"},
    }
    data = {
        "api": {
            "dev": {
                "ecr/api": {**base, "drift": {"state": "drifted", "checked_at": "2026-12-03T17:20:00Z"}},
                "ecs/x": {**base, "drift": {"state": "in-sync", "checked_at": "2026-12-03T17:20:00Z"}},
                "api": {**base, "kind": "nixpack", "type": "nixpack", "drift": None},
            }
        }
    }
    render.status(data, "table", "api", None)
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[-1] == "DRIFT"
    rows = {
        line.split()[1] if line.split()[0] == "dev" else line.split()[0]: line for line in lines[3:] if line
    }
    assert rows["nixpack/api"].endswith("not checked")
    assert "✗ drifted" in rows["terraform/ecr/api"] and "✓ in sync" in rows["terraform/ecs/x"]
    del (
        data["api"]["dev"]["api"]["drift"],
        data["api"]["dev"]["ecr/api"]["drift"],
        data["api"]["dev"]["ecs/x"]["drift"],
    )
    render.status(data, "table", "api", None)
    assert "DRIFT" not in capsys.readouterr().out  # not asked for: no column


def test_a_local_state_is_named_from_the_rollouts_workdir_wherever_the_check_runs() -> None:
    job = SimpleNamespace(
        workdir="/repo/.atmos/workdir/api/dev/ecr%2Fapi",
        backend_type="local",
        backend={"path": "../../../../state/api/dev/ecr/api.tfstate"},
    )
    assert anchored_backend(job) == {"path": "/repo/.atmos/state/api/dev/ecr/api.tfstate"}
    job.backend_type, job.backend = "pg", {"conn_str": "postgres://x"}
    assert anchored_backend(job) == {"conn_str": "postgres://x"}
