"""Plans you can read, with real Terraform: `--show-plan` on rollouts and previews, the job
summary's `<details>`, the plan an approval prompt shows before it asks, a preview that says which
images a rollout would build again, and sensitive values that never show."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from tests.conftest import Repo
from tests.e2e.test_failures import add_components, add_module
from tests.e2e.test_plan import saved_values, states
from tests.e2e.test_rollout import steps

IMAGE = r'"acme/api@sha256:[0-9a-f]{64}"'

SECRETS_TF = """
variable "password" {
  type      = string
  sensitive = true
}

variable "api_token" { type = string }

resource "null_resource" "this" {
  triggers = { token = var.api_token }
}

output "password" {
  value     = var.password
  sensitive = true
}

output "token_hint" { value = "the token is ${var.api_token}" }
"""
PASSWORD = "Tr0ub4dor-and-3-horses"
TOKEN = "tok-5f1c9e0a-user-marked"


def shown_under(out: str, component: str) -> list[str]:
    """The plan lines printed under a component's last `planned` or `applied` line that has some."""
    blocks: list[list[str]] = []
    taking = False
    for line in out.splitlines():
        if re.match(rf"  \S terraform/{re.escape(component)}: (planned|applied)", line):
            blocks.append([])
            taking = True
        elif taking and line.startswith("      "):
            blocks[-1].append(line.strip())
        else:
            taking = False
    return next((block for block in reversed(blocks) if block), [])


def test_show_plan_lists_each_change_the_summary_folds_it_and_a_preview_counts_rebuilt_images(
    repo: Repo, tmp_path: Path
) -> None:
    summary = tmp_path / "step_summary.md"
    first = repo.doit("rollout:api:dev", "--show-plan", env={"GITHUB_STEP_SUMMARY": str(summary)})
    out = first.stdout
    assert first.returncode == 0, out + first.stderr
    assert shown_under(out, "ecr/api") == [
        "+ null_resource.repository",
        '+ output.repository_arn = "arn:aws:ecr:us-east-2:123456789012:repository/acme-dev-api"',
        '+ output.repository_name = "acme-dev-api"',
        '+ output.repository_url = "123456789012.dkr.ecr.us-east-2.amazonaws.com/acme-dev-api"',
    ]
    assert shown_under(out, "monitoring/alarms-api")[:3] == [
        f'+ module.alarm["{name}"].null_resource.alarm' for name in ("cpu", "memory", "running")
    ]
    text = summary.read_text()
    assert text.count("<details>") == 4  # one per Terraform component: each applied a plan
    applied = r"<summary>ecr/api: applied \(1 to add, 0 to change, 0 to destroy\)</summary>"
    folded = re.search(applied + r"\n\n```text\n(.*?)\n```", text, re.S)
    assert folded and folded[1].splitlines()[0] == "+ null_resource.repository"

    # A new page: the image's source changed. The preview says the rollout would build it again,
    # and counts the task definition bound to it as changing, the service after it as maybe.
    repo.replace("services/api/index.html", "<h1>api</h1>", "<h1>api, v2</h1>")
    repo.commit("A new page")
    preview = repo.cli("plan", "api", "--target", "dev", "--show-plan")
    out = preview.stdout
    assert preview.returncode == 0, out + preview.stderr
    assert "Image nixpack/api: would be rebuilt (its source changed)" in out
    assert (
        "terraform/ecs/taskdef-api: planned, changes: the api image would be rebuilt (its source changed)"
        in out
    )
    assert (
        "terraform/ecs/service-api: planned, no changes against the current outputs of ecs/taskdef-api, "
        "which would change first"
    ) in out
    assert (
        out.rstrip()
        .splitlines()[-1]
        .startswith(
            "Plan complete: 1 component(s) would change, 1 may change after their dependencies; "
            "image(s) nixpack/api would be rebuilt ("
        )
    )

    # The rollout does what the preview said: the image built again, the task definition and
    # then the service replaced, nothing else.
    rollout = repo.doit("rollout:api:dev", "--show-plan")
    out = rollout.stdout
    assert rollout.returncode == 0, out + rollout.stderr
    assert re.findall(r"… nixpack/(\S+): building", out) == ["api"]
    assert steps(out, "applied") == ["ecs/taskdef-api", "ecs/service-api"]
    taskdef = shown_under(out, "ecs/taskdef-api")
    assert taskdef[0] == "-/+ null_resource.task_definition (1 attribute)"
    assert re.fullmatch(rf"~ output.image = {IMAGE} → {IMAGE}", taskdef[1])
    assert shown_under(out, "ecs/service-api")[0] == "-/+ null_resource.service (1 attribute)"

    # Without --show-plan nor a job summary, no `terraform show` runs: the plan keeps no lines.
    repo.replace("stacks/catalog/ecs/taskdef-api.yaml", "log_retention_days: 14", "log_retention_days: 30")
    repo.commit("Keep api logs for 30 days")
    plain = repo.doit("rollout:api:dev")
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert steps(plain.stdout, "applied") == ["ecs/taskdef-api", "ecs/service-api"]
    assert "      -/+" not in plain.stdout
    assert "plan_summary" not in saved_values(repo, "plan:api:dev:ecs/taskdef-api")


def add_approval_target(repo: Repo) -> None:
    """A target `qa` (dev's stacks) whose rollouts need a manual approval, and no promotion path."""
    yaml = YAML(typ="rt")
    path = repo.path / "deployments/api.yaml"
    data = yaml.load(path.read_text())
    data["deployment"]["targets"]["qa"] = {
        "labels": {"tier": "nonprod"},
        "stacks": ["deploy/dev"],
        "context": {"cpu": 256, "memory": 512, "replicas": 1},
        "promotion": {"requires_approval": True},
    }
    with path.open("w") as handle:
        yaml.dump(data, handle)


def answered(repo: Repo, answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`doit <args>` on a terminal (a pseudo-terminal as its stdin) where `answer` is typed."""
    leader, follower = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "doit", *args],
            cwd=repo.path,
            env=repo.env,
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(follower)
        os.write(leader, f"{answer}\n".encode())
        out, err = proc.communicate(timeout=300)
    finally:
        os.close(leader)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_an_approval_prompt_shows_the_plan_before_it_asks(repo: Repo) -> None:
    add_approval_target(repo)
    head = repo.commit("A target that needs an approval")
    question = f"Approve deploying {head[:7]} of api to qa? [y/N]"

    refused = answered(repo, "n", "rollout:api:qa")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    err = refused.stderr
    assert f"Planning api for qa at {head[:7]}" in err and question in err
    assert err.index("      + null_resource.repository") < err.index(question)
    assert err.index('      + module.alarm["cpu"].null_resource.alarm') < err.index(question)
    assert "Plan complete: 2 component(s) would change, 2 skipped" in err
    assert "was not approved" in err
    assert not [name for name in states(repo) if "/qa/" in name]  # nothing applied

    approved = answered(repo, "y", "rollout:api:qa")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert approved.stderr.index("      + null_resource.repository") < approved.stderr.index(question)
    assert sorted(steps(approved.stdout, "applied")) == [
        "ecr/api",
        "ecs/service-api",
        "ecs/taskdef-api",
        "monitoring/alarms-api",
    ]
    note = repo.git("notes", "--ref=refs/notes/atmos/api/approvals", "show", head)
    assert '"target": "qa"' in note and '"method": "manual"' in note


def test_sensitive_values_never_show_in_plan_lines(repo: Repo, tmp_path: Path) -> None:
    add_module(repo, "secrets", SECRETS_TF)
    add_components(
        repo,
        {
            "jobs/secrets": {
                "component": "secrets",
                "vars": {"api_token": TOKEN},
                "settings": {"sensitive": ["api_token"]},
            }
        },
        replace=True,
    )
    repo.commit("Only a component with secrets")
    summary = tmp_path / "step_summary.md"
    proc = repo.doit(
        "rollout:api:dev",
        "--show-plan",
        env={"TF_VAR_password": PASSWORD, "GITHUB_STEP_SUMMARY": str(summary)},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert shown_under(proc.stdout, "jobs/secrets") == [
        "+ null_resource.this",
        "+ output.password = (sensitive)",
        '+ output.token_hint = "the token is ***"',
    ]
    text = summary.read_text()
    assert '+ output.token_hint = "the token is ***"' in text
    assert not [secret for secret in (PASSWORD, TOKEN) if secret in out or secret in text]
