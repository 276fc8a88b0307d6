"""Sensitive values stay out of everything a rollout prints or writes, with real Terraform and Git.

A component outputs a `sensitive = true` password that comes from the environment (never from the
repository); a dependant reads it through `component['…'].outputs.password` and fails, printing
it. A second component's token is marked secret by the user (`settings.sensitive`). Neither may
appear in the console, the GitHub job summary, tags, notes, `describe` or the logs shown; the files
that must hold them are readable by their owner only.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from tests.conftest import Repo
from tests.e2e.test_failures import add_components, add_module

PASSWORD = "Tr0ub4dor-and-3-horses"
TOKEN = "tok-5f1c9e0a-user-marked"
SIGNING_KEY = "sk-declared-sensitive-77"
ROTATED = "tok-0b3d77aa-rotated"

VAULT_TF = """
variable "password" {
  type      = string
  sensitive = true
}

resource "null_resource" "this" {}

output "password" {
  value     = var.password
  sensitive = true
}

output "user" { value = "app" }
"""

# The dependant does not declare its variable sensitive, and prints it when it fails.
CONNECT_TF = """
variable "password" { type = string }

variable "fail" {
  type    = bool
  default = false
}

resource "null_resource" "this" {
  triggers = { fail = tostring(var.fail) }
  provisioner "local-exec" {
    command = var.fail ? "echo \\"cannot connect with password ${var.password}\\" >&2; exit 1" : "true"
  }
}
"""

NOTIFY_TF = """
variable "api_token" { type = string }

variable "signing_key" {
  type      = string
  sensitive = true
}

resource "null_resource" "this" {
  provisioner "local-exec" {
    command = "echo \\"token ${var.api_token} was refused\\" >&2; exit 1"
  }
}
"""


def add_password_components(repo: Repo, fail: bool = True) -> None:
    add_module(repo, "vault", VAULT_TF)
    add_module(repo, "connect", CONNECT_TF)
    add_components(
        repo,
        {
            "db/credentials": {"component": "vault"},
            "jobs/connect": {
                "component": "connect",
                "vars": {"password": "{{ component['db/credentials'].outputs.password }}", "fail": fail},
            },
        },
        replace=True,
    )
    repo.commit("A database password and a job that uses it")


def github_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    summary = tmp_path / "step_summary.md"
    return {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}, summary


def without_mask_commands(text: str) -> str:
    """The log as GitHub shows it: workflow commands are not displayed."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("::add-mask::"))


def git_everything(repo: Repo) -> bytes:
    """Every object of the repository (commits, trees, blobs, tags, notes), uncompressed."""
    proc = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"],
        cwd=repo.path,
        env=repo.env,
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def records_and_notes(repo: Repo) -> str:
    """Every tag message and every note the tool wrote."""
    texts = []
    for tag in repo.tags():
        texts.append(repo.tag_message(tag))
    for ref in repo.git("for-each-ref", "--format=%(refname)", "refs/notes/").splitlines():
        for line in repo.git("notes", "--ref", ref, "list").splitlines():
            _note, commit = line.split()
            texts.append(repo.git("notes", "--ref", ref, "show", commit))
    texts.append(repo.git("for-each-ref", "--format=%(refname) %(contents)"))
    return "\n".join(texts)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def files_holding(repo: Repo, secret: str) -> list[Path]:
    needle = secret.encode()
    found = []
    for folder, _dirs, files in os.walk(repo.path / ".atmos"):
        for name in files:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            if needle in path.read_bytes():
                found.append(path)
    return found


def assert_private(paths: list[Path]) -> None:
    shared = {str(p): oct(mode(p)) for p in paths if mode(p) & 0o077}
    assert not shared, f"readable by others: {shared}"


def test_a_sensitive_output_read_by_a_failing_dependant_is_masked_everywhere(
    repo: Repo, tmp_path: Path
) -> None:
    add_password_components(repo, fail=False)
    env, summary = github_env(tmp_path)
    env["TF_VAR_password"] = PASSWORD

    deployed = repo.doit("rollout:api:dev", env=env)
    out = deployed.stdout + deployed.stderr
    assert deployed.returncode == 0, out
    assert f"::add-mask::{PASSWORD}" in deployed.stdout.splitlines()
    assert PASSWORD not in without_mask_commands(out)
    assert repo.git("for-each-ref", "refs/notes/")  # the SBOM of what was deployed

    repo.replace("deployments/api.yaml", "fail: false", "fail: true")
    repo.commit("The job cannot connect")
    first = repo.doit("-n", "2", "rollout:api:dev", env=env)
    out = first.stdout + first.stderr
    assert first.returncode == 1, out
    # GitHub is told to hide the value before anything could show it...
    assert f"::add-mask::{PASSWORD}" in first.stdout.splitlines()
    shown = without_mask_commands(out)
    # ...and it is never shown: the failure is, with the value masked.
    assert "✗ terraform/jobs/connect: apply failed" in shown
    assert "cannot connect with password ***" in shown
    assert PASSWORD not in shown

    text = summary.read_text()
    assert "cannot connect with password ***" in text and PASSWORD not in text

    # Once more, the password now read from saved outputs (db/credentials is up to date).
    second = repo.doit("rollout:api:dev", env=env)
    out = second.stdout + second.stderr
    assert second.returncode == 1, out
    assert "db/credentials: apply up to date" in out
    assert f"::add-mask::{PASSWORD}" in second.stdout.splitlines()
    shown = without_mask_commands(out)
    assert "cannot connect with password ***" in shown and PASSWORD not in shown
    assert PASSWORD not in summary.read_text()

    # Without GitHub Actions there are no workflow commands, and still no password.
    third = repo.doit("rollout:api:dev", env={"TF_VAR_password": PASSWORD})
    out = third.stdout + third.stderr
    assert third.returncode == 1 and "::add-mask::" not in out and PASSWORD not in out, out
    assert "cannot connect with password ***" in out

    # Git: no tag, note or other object holds it.
    assert len(repo.tags("atmos/deployments/api/dev/jobs%2Fconnect/")) >= 2
    assert PASSWORD not in records_and_notes(repo)
    assert PASSWORD.encode() not in git_everything(repo)

    for args in (("--target", "dev"), ("--target", "dev", "--format", "json", "--provenance")):
        described = repo.cli("describe", "api", *args)
        assert described.returncode == 0, described.stderr
        assert PASSWORD not in described.stdout + described.stderr

    # The kept workdir: its logs are masked, and the files that must hold the value are private.
    workdir = repo.path / ".atmos/workdir/api/dev/jobs%2Fconnect"
    log = workdir / "atmos-apply.log"
    assert "cannot connect with password ***" in log.read_text() and PASSWORD not in log.read_text()
    assert mode(log) == 0o600 and mode(workdir / "atmos-plan.log") == 0o600
    tfvars = workdir / "jobs-connect.auto.tfvars.json"
    assert json.loads(tfvars.read_text())["password"] == PASSWORD
    assert mode(tfvars) == 0o600
    holding = files_holding(repo, PASSWORD)
    assert tfvars in holding
    assert_private(holding)


def test_a_preview_masks_the_sensitive_outputs_it_reads_from_state(repo: Repo, tmp_path: Path) -> None:
    add_password_components(repo)
    secret = {"TF_VAR_password": PASSWORD}
    assert repo.doit("rollout:api:dev", env=secret).returncode == 1
    env, summary = github_env(tmp_path)
    env.update(secret)
    # The plan itself succeeds; the value reaches the dependant's variables file and plan.
    proc = repo.cli("plan", "api", "--target", "dev", env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"::add-mask::{PASSWORD}" in proc.stdout.splitlines()
    assert PASSWORD not in without_mask_commands(out)
    assert PASSWORD not in summary.read_text()
    holding = files_holding(repo, PASSWORD)
    assert repo.path / ".atmos/workdir/api/dev/jobs%2Fconnect/jobs-connect.auto.tfvars.json" in holding
    assert_private(holding)


def test_a_value_the_user_marks_sensitive_is_masked_like_one_terraform_marks(
    repo: Repo, tmp_path: Path
) -> None:
    add_module(repo, "notify", NOTIFY_TF)
    add_components(
        repo,
        {
            "jobs/notify": {
                "component": "notify",
                "vars": {"api_token": TOKEN, "signing_key": SIGNING_KEY},
                "settings": {"sensitive": ["api_token"]},
            },
        },
        replace=True,
    )
    repo.commit("A notification job with a token")
    env, summary = github_env(tmp_path)

    proc = repo.doit("rollout:api:dev", env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    lines = proc.stdout.splitlines()
    assert f"::add-mask::{TOKEN}" in lines and f"::add-mask::{SIGNING_KEY}" in lines
    shown = without_mask_commands(out)
    assert "token *** was refused" in shown
    assert TOKEN not in shown and SIGNING_KEY not in shown
    text = summary.read_text()
    assert "token *** was refused" in text and TOKEN not in text
    assert TOKEN not in records_and_notes(repo) and SIGNING_KEY not in records_and_notes(repo)

    for fmt in ("yaml", "json"):
        described = repo.cli("describe", "api", "--target", "dev", "--format", fmt)
        assert described.returncode == 0, described.stderr
        assert TOKEN not in described.stdout and SIGNING_KEY not in described.stdout
    data = json.loads(repo.cli("describe", "api", "--target", "dev", "--format", "json").stdout)
    shown_vars = data["targets"]["dev"]["components"]["jobs/notify"]["vars"]
    # The user's mark and the module's `sensitive = true` both hide the value, and only the value.
    assert shown_vars["api_token"] == "***" and shown_vars["signing_key"] == "***"
    assert shown_vars["stage"] == "dev"

    workdir = repo.path / ".atmos/workdir/api/dev/jobs%2Fnotify"
    assert TOKEN not in (workdir / "atmos-apply.log").read_text()
    holding = files_holding(repo, TOKEN)
    assert workdir / "jobs-notify.auto.tfvars.json" in holding
    assert_private(holding + files_holding(repo, SIGNING_KEY))

    # A rotated token: `diff` says that it changed, not what it was or is.
    repo.replace("deployments/api.yaml", TOKEN, ROTATED)
    repo.commit("Rotate the token")
    proc = repo.cli("diff", "api", "--from-sha", "HEAD~1", "--to-sha", "HEAD", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert TOKEN not in proc.stdout and ROTATED not in proc.stdout
    changed = {item["key"]: item for item in json.loads(proc.stdout)["configuration"]}
    token = changed["jobs/notify.vars.api_token"]
    assert (token["from"], token["to"], token["change"]) == ("***", "***", "changed")
    table = repo.cli("diff", "api", "--from-sha", "HEAD~1", "--to-sha", "HEAD")
    assert "api_token" in table.stdout and TOKEN not in table.stdout and ROTATED not in table.stdout
