"""A vendored module that is a subdirectory of its repository and calls `../../`, the way
cloudposse/terraform-null-label's `examples/complete` calls the label module at the repository's
root: the store keeps the whole repository, Terraform runs in the subdirectory of a copy of it, and
each target plans and applies with real Terraform the version it is pinned to."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import Repo

VERSIONS = 'terraform {\n  required_providers {\n    null = { source = "hashicorp/null" }\n  }\n}\n'
# The label module at the repository's root. v2 joins with a delimiter and moves its outputs to a
# file of their own, so a workdir that kept v2's outputs.tf after going back to v1 would not plan.
LABEL = {
    1: {
        "versions.tf": VERSIONS,
        "main.tf": (
            'variable "namespace" {\n  type = string\n}\n\n'
            'variable "name" {\n  type = string\n}\n\n'
            'locals {\n  id = "${var.namespace}${var.name}"\n}\n\n'
            'resource "null_resource" "this" {\n  triggers = { id = local.id }\n}\n\n'
            'output "id" {\n  value = local.id\n}\n\n'
            'output "version" {\n  value = "1"\n}\n'
        ),
    },
    2: {
        "versions.tf": VERSIONS,
        "main.tf": (
            'variable "namespace" {\n  type = string\n}\n\n'
            'variable "name" {\n  type = string\n}\n\n'
            'variable "delimiter" {\n  type    = string\n  default = "-"\n}\n\n'
            "locals {\n  id = join(var.delimiter, [var.namespace, var.name])\n}\n\n"
            'resource "null_resource" "this" {\n  triggers = { id = local.id }\n}\n'
        ),
        "outputs.tf": 'output "id" {\n  value = local.id\n}\n\noutput "version" {\n  value = "2"\n}\n',
    },
}
# The example that calls it, as null-label's examples/complete does: the same in both versions.
COMPLETE = {
    "examples/complete/main.tf": (
        'variable "namespace" {\n  type = string\n}\n\n'
        'variable "name" {\n  type = string\n}\n\n'
        'module "this" {\n  source = "../../"\n\n  namespace = var.namespace\n  name      = var.name\n}\n\n'
        'output "id" {\n  value = module.this.id\n}\n\n'
        'output "label_version" {\n  value = module.this.version\n}\n'
    ),
    "README.md": "# label\n",
}

MANIFEST = """\
deployment:
  name: label
  description: A module vendored from a subdirectory of its repository that calls ../../

  vendor:
    components:
      - source: "git::./.sources/label.git//examples/complete?ref=v{{ version }}"
        version: "2"
        targets: [label]
        labels: { tier: [nonprod] }
      - source: "git::./.sources/label.git//examples/complete?ref=v{{ version }}"
        version: "1"
        targets: [label]
        labels: { tier: [prod] }

  components:
    terraform:
      naming/label:
        component: label                # vendored: no components/terraform/label/
        vars:
          namespace: acme
          name: "{{ target.name }}"

  targets:
    dev:
      labels: { tier: nonprod }
    prod:
      labels: { tier: prod }
"""


def label_repository(repo: Repo) -> Path:
    """`.sources/label.git` beside the checkout (git-ignored, like the example's modules.git): tags v1, v2."""
    work = repo.path.parent / "label-work"
    work.mkdir()
    repo.run("git", "init", "-q", "-b", "main", cwd=work)
    for version, files in LABEL.items():
        for path in work.glob("*.tf"):
            path.unlink()
        for rel, text in {**files, **COMPLETE}.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(text)
        repo.run("git", "add", "-A", cwd=work)
        assert repo.run("git", "commit", "-q", "-m", f"label v{version}", cwd=work).returncode == 0
        assert repo.run("git", "tag", f"v{version}", cwd=work).returncode == 0
    bare = repo.path / ".sources/label.git"
    assert repo.run("git", "clone", "-q", "--bare", str(work), str(bare)).returncode == 0
    return bare


def outputs(repo: Repo, target: str) -> dict[str, object]:
    state = json.loads((repo.path / f".atmos/state/label/{target}/naming/label.tfstate").read_text())
    return {name: output["value"] for name, output in state["outputs"].items()}


@pytest.fixture
def label(repo: Repo) -> Repo:
    label_repository(repo)
    repo.write("deployments/label.yaml", MANIFEST)
    repo.commit("The label deployment: dev on label v2, prod on v1")
    return repo


def test_a_subdirectory_calling_its_repository_root_plans_and_applies_per_target_version(label: Repo) -> None:
    repo = label
    for target in ("dev", "prod"):
        proc = repo.doit(f"rollout:label:{target}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "✓ terraform/naming/label: applied" in proc.stdout
    # Each target's state came from its own version of the root module, reached through ../../.
    assert outputs(repo, "dev") == {"id": "acme-dev", "label_version": "2"}
    assert outputs(repo, "prod") == {"id": "acmeprod", "label_version": "1"}

    # The workdir holds the repository's whole tree; Terraform ran in its examples/complete.
    (workdir,) = [p for p in (repo.path / ".atmos/workdir/label/dev").iterdir() if "label" in p.name]
    run = workdir / "tree/examples/complete"
    assert (run / ".terraform").is_dir() and (run / "backend.tf.json").is_file()
    assert (run / "naming-label.auto.tfvars.json").is_file()
    assert (workdir / "tree/outputs.tf").is_file() and (workdir / "tree/README.md").is_file()
    assert (workdir / "atmos-plan.log").is_file() and (workdir / "atmos-apply.log").is_file()
    assert not list(run.glob("*.tfstate")), "state stays outside the workdir"
    workspace = repo.path / ".atmos/vendor-cache/deployments/label/dev/terraform/naming/label"
    assert os.path.samefile(run / "main.tf", workspace / "examples/complete/main.tf")

    # The SBOM reads the providers from the lock file Terraform wrote where it ran.
    sbom = repo.cli("sbom", "label", "--target", "dev")
    assert sbom.returncode == 0, sbom.stderr
    assert "pkg:terraform/hashicorp/null@2.1.2" in sbom.stdout and "label.git" in sbom.stdout

    # The lock and vendor status say which subdirectory each target uses.
    lock = (repo.path / ".atmos/vendor-cache/deployments/label/prod/.vendor-lock.yaml").read_text()
    assert "subdir: examples/complete" in lock and "commit:" in lock
    proc = repo.cli("vendor", "status", "--deployment", "label", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["target"]: row for row in json.loads(proc.stdout)}
    assert {t: r["version"] for t, r in rows.items()} == {"dev": "2", "prod": "1"}
    assert all("//examples/complete?" in r["source"] and r["workspace_intact"] for r in rows.values())
    assert rows["dev"]["locked_digest"] != rows["prod"]["locked_digest"]

    # Nothing changed: nothing is vendored, planned or applied again.
    again = repo.doit("rollout:label:dev")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "vendored" not in again.stdout and "planned" not in again.stdout

    # dev goes back to v1: v2's outputs.tf leaves the workdir, and the state is v1's.
    repo.replace("deployments/label.yaml", 'version: "2"', 'version: "1"')
    repo.commit("dev on label v1 too")
    back = repo.doit("rollout:label:dev")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "✓ terraform/naming/label: applied" in back.stdout
    assert not (workdir / "tree/outputs.tf").exists()
    assert outputs(repo, "dev") == {"id": "acmedev", "label_version": "1"}
    # v2's object is no longer locked by any target: clean removes it and keeps v1's.
    clean = json.loads(repo.cli("vendor", "clean", "--force", "--format", "json").stdout)
    assert clean["objects"] == [rows["dev"]["locked_digest"]]
    assert json.loads(repo.cli("vendor", "stats", "--format", "json").stdout)["objects"] == 1
    assert repo.doit("rollout:label:prod").returncode == 0
