"""The GitHub Actions job summary: appended to `$GITHUB_STEP_SUMMARY` at the end of a rollout."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import Repo
from tests.e2e.test_failures import FLAKY_TF, add_components, add_module
from tests.e2e.test_plan import STRICT_TF

EARLIER_STEP = "## Tests\n\nAll green.\n"
ADDED = "applied (1 to add, 0 to change, 0 to destroy)"  # a first apply of one null_resource


def rollout(repo: Repo, summary: Path) -> tuple[int, str]:
    proc = repo.doit("rollout:api:dev", env={"GITHUB_STEP_SUMMARY": str(summary)})
    return proc.returncode, proc.stdout + proc.stderr


def row(text: str, component: str) -> list[str]:
    found = re.search(rf"^\| `{re.escape(component)}` \|(.*)\|$", text, re.M)
    assert found, f"no row for {component} in:\n{text}"
    return [cell.strip() for cell in found[1].split("|")]


def test_a_rollout_appends_a_table_of_components_and_keeps_what_was_there(repo: Repo, tmp_path: Path) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text(EARLIER_STEP)
    code, out = rollout(repo, summary)
    assert code == 0, out
    text = summary.read_text()
    assert text.startswith(EARLIER_STEP)
    first = text[len(EARLIER_STEP) :]
    sha = repo.head()[:7]
    assert f"### api → dev at `{sha}`" in first
    assert "✅ Rollout complete: 5 component(s), 5 recorded." in first
    assert "| Component | Outcome | Image | Tag |" in first
    tags = {t.split("/")[4]: t for t in repo.tags()}
    outcome, image, tag = row(first, "api")
    assert outcome == "built" and re.fullmatch(r"`acme/api@sha256:[0-9a-f]{64}`", image)
    assert tag == f"`{tags['api']}`"
    assert row(first, "ecs/taskdef-api") == [ADDED, image, f"`{tags['ecs%2Ftaskdef-api']}`"]
    alarms = ["applied (3 to add, 0 to change, 0 to destroy)", "—", f"`{tags['monitoring%2Falarms-api']}`"]
    assert row(first, "monitoring/alarms-api") == alarms
    # Each component's plan, folded: a job summary asks for its lines (`terraform show -json`).
    assert first.count("<details>") == 4
    assert f"<details><summary>ecs/taskdef-api: {ADDED}</summary>" in first

    code, out = rollout(repo, summary)
    assert code == 0, out
    text = summary.read_text()
    assert text.startswith(EARLIER_STEP + first)  # appended, never truncated
    second = text[len(EARLIER_STEP + first) :]
    assert "nothing new to record" in second
    assert row(second, "ecr/api") == ["up to date", "—", "—"]
    assert row(second, "api")[:2] == ["up to date", image]


def test_a_failed_component_is_marked_and_its_error_shown(repo: Repo, tmp_path: Path) -> None:
    add_module(repo, "flaky", FLAKY_TF)
    add_components(
        repo,
        {
            "jobs/migrate": {"component": "flaky", "vars": {"fail": True}},
            "jobs/after-migrate": {
                "component": "flaky",
                "metadata": {"depends_on": ["terraform/jobs/migrate"]},
            },
        },
    )
    repo.commit("A failing migration")
    summary = tmp_path / "step_summary.md"
    summary.write_text(EARLIER_STEP)
    code, out = rollout(repo, summary)
    assert code == 1, out
    text = summary.read_text()
    assert text.startswith(EARLIER_STEP)
    assert "❌ Rollout failed: 1 of 7 component(s) failed." in text
    outcome, image, tag = row(text, "jobs/migrate")
    assert outcome == "**failed**" and image == "—"
    assert re.fullmatch(r"`atmos/deployments/api/dev/jobs%2Fmigrate/[0-9TZ-]+`", tag)  # the failure is tagged
    assert row(text, "jobs/after-migrate") == [
        "skipped (dependency jobs/migrate did not complete)",
        "—",
        "—",
    ]
    assert row(text, "ecr/api")[0] == ADDED
    details = re.search(
        r"<details><summary>jobs/migrate failed</summary>\n\n```text\n(.*?)\n```\n</details>", text, re.S
    )
    assert details, text
    assert "simulated provisioning failure" in details[1] and "workdir kept:" in details[1]


def test_an_unwritable_summary_warns_and_the_rollout_still_succeeds(repo: Repo, tmp_path: Path) -> None:
    summary = tmp_path / "no-such-dir" / "step_summary.md"
    code, out = rollout(repo, summary)
    assert code == 0, out
    assert f"warning: job summary not written to {summary}" in out
    assert len(repo.refs()) == 5


def test_a_preview_appends_what_a_rollout_would_change(repo: Repo, tmp_path: Path) -> None:
    assert repo.doit("rollout:api:dev").returncode == 0
    repo.replace("stacks/catalog/ecs/taskdef-api.yaml", "log_retention_days: 14", "log_retention_days: 30")
    sha = repo.commit("Keep api logs for 30 days")[:7]
    add_module(repo, "strict", STRICT_TF)
    add_components(repo, {"jobs/strict": {"component": "strict", "vars": {"workers": "many"}}})
    repo.write("scratch.txt", "a preview may run on uncommitted changes\n")
    summary = tmp_path / "step_summary.md"
    summary.write_text(EARLIER_STEP)

    proc = repo.doit("plan:api:dev", env={"GITHUB_STEP_SUMMARY": str(summary)})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # jobs/strict cannot be planned
    assert "terraform/ecs/taskdef-api: planned, changes (1 to add, 0 to change, 1 to destroy)" in out
    text = summary.read_text()
    assert text.startswith(EARLIER_STEP)
    assert f"### Plan: api → dev at `{sha}` (with uncommitted changes)" in text
    assert "❌ Plan failed: 1 component(s) could not be planned. Nothing was applied or recorded." in text
    outcome, image = row(text, "ecs/taskdef-api")
    assert outcome == "**changes (1 to add, 0 to change, 1 to destroy)**"
    assert re.fullmatch(r"`acme/api@sha256:[0-9a-f]{64}`", image)
    # Planned against the task definition deployed now: its own inputs did not change, but that
    # task definition's would.
    assert row(text, "ecs/service-api") == [
        "no changes against the current outputs of ecs/taskdef-api, which would change first",
        "—",
    ]
    plan = re.search(
        r"<summary>ecs/taskdef-api: changes \(1 to add, 0 to change, 1 to destroy\)</summary>"
        r"\n\n```text\n(.*?)\n```",
        text,
        re.S,
    )
    assert plan and plan[1].startswith("-/+ null_resource.task_definition (1 attribute)\n"), text
    assert row(text, "ecr/api") == ["no changes", "—"]  # up to date: a rollout would leave it alone
    assert row(text, "jobs/strict") == ["**failed**", "—"]
    details = re.search(r"<details><summary>jobs/strict failed</summary>\n\n```text\n(.*?)\n```", text, re.S)
    assert details and "terraform plan failed" in details[1], text
