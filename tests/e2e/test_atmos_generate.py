"""Atmos's `generate:` in the stacks: a component whose files the stack writes (here all of them:
its folder does not exist), rendered per target, planned and applied with real Terraform; a file
the configuration stops generating leaves the workdir."""

from __future__ import annotations

import json

from tests.conftest import Repo

CATALOG = """\
components:
  terraform:
    greeter:
      vars:
        app_name: myapp
        token: s3cr3t-generated
      generate:
        versions.tf:
          terraform:
            required_version: ">= 1.0.0"
        locals.tf:
          locals:
            environment: "{{ .vars.stage }}"
        main.tf: |
          variable "app_name" {
            type = string
          }
          variable "token" {
            type      = string
            sensitive = true
          }
          output "greeting" {
            value = "hello ${var.app_name} in ${local.environment}"
          }
        config.json:
          app: "{{ .vars.app_name }}"
"""
MANIFEST = """\
deployment:
  name: greeter
  stacks: [catalog/greeter]
  components:
    terraform:
      greeter: {}
  targets:
    dev:
      stacks: [deploy/dev]
"""


def state_outputs(repo: Repo) -> dict[str, object]:
    state = json.loads((repo.path / ".atmos/state/greeter/dev/greeter.tfstate").read_text())
    return {name: output["value"] for name, output in state["outputs"].items()}


def test_a_component_generated_by_its_stack_plans_and_applies(repo: Repo) -> None:
    repo.write("stacks/catalog/greeter.yaml", CATALOG)
    repo.write("deployments/greeter.yaml", MANIFEST)
    repo.commit("A component written whole by its stack's generate:")
    assert not (repo.path / "components/terraform/greeter").exists()
    described = repo.cli("describe", "greeter", "--target", "dev", "--format", "json")
    assert described.returncode == 0, described.stdout + described.stderr
    shown = json.loads(described.stdout)["targets"]["dev"]["components"]["greeter"]["atmos"]["generate"]
    assert shown["locals.tf"] == {"locals": {"environment": "dev"}}
    # A variable the generated files declare sensitive is masked like a module's own.
    assert "s3cr3t-generated" not in described.stdout
    proc = repo.doit("rollout:greeter:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ terraform/greeter: applied" in proc.stdout
    assert "s3cr3t-generated" not in proc.stdout + proc.stderr
    records = repo.run("git", "log", "--all", "--format=%B", "--notes=*").stdout
    assert "s3cr3t-generated" not in records
    assert state_outputs(repo) == {"greeting": "hello myapp in dev"}
    workdir = repo.path / ".atmos/workdir/greeter/dev/greeter"
    assert json.loads((workdir / "config.json").read_text()) == {"app": "myapp"}
    assert 'environment = "dev"' in (workdir / "locals.tf").read_text()
    # Nothing changed: nothing planned again.
    again = repo.doit("rollout:greeter:dev")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "planned" not in again.stdout
    # A generated file the configuration drops leaves the workdir; a changed one plans again.
    repo.replace(
        "stacks/catalog/greeter.yaml", '        config.json:\n          app: "{{ .vars.app_name }}"\n', ""
    )
    repo.replace("stacks/catalog/greeter.yaml", "app_name: myapp", "app_name: other")
    repo.commit("No config.json, another name")
    changed = repo.doit("rollout:greeter:dev")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert state_outputs(repo) == {"greeting": "hello other in dev"}
    assert not (workdir / "config.json").exists()
    # A mapping for a file whose extension says nothing of its format is bad input at its line.
    repo.replace(
        "stacks/catalog/greeter.yaml",
        "        main.tf: |",
        "        notes.txt:\n          a: 1\n        main.tf: |",
    )
    repo.commit("A mapping for a .txt file")
    refused = repo.cli("validate", "greeter")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "generate.notes.txt: a mapping is written as .json" in refused.stdout + refused.stderr
