"""Atmos's `source:` (just-in-time vendoring) in the stacks: the module a component's source names
is vendored like a deployment's vendor entry, at the version its stack pins, and Terraform plans
and applies it, for two targets on two versions."""

from __future__ import annotations

import json

from tests.conftest import Repo
from tests.e2e.test_vendor_subdirs import label_repository, outputs

CATALOG = """\
components:
  terraform:
    naming/label:
      metadata:
        component: label              # not in components/terraform/: fetched from its source
      source:
        uri: "git::./.sources/label.git//examples/complete?ref=v{{.Version}}"
        version: "2"
      vars:
        namespace: acme
"""
MANIFEST = """\
deployment:
  name: label
  stacks: [catalog/label]
  components:
    terraform:
      naming/label:
        vars:
          name: "{{ target.name }}"
  targets:
    dev:
      stacks: [deploy/dev]
    prod:
      stacks: [deploy/prod, catalog/label-prod]
"""
PROD = """\
components:
  terraform:
    naming/label:
      source:
        version: "1"
"""


def test_a_stack_source_is_vendored_at_the_version_each_target_pins_and_applies(repo: Repo) -> None:
    label_repository(repo)
    repo.write("stacks/catalog/label.yaml", CATALOG)
    repo.write("stacks/catalog/label-prod.yaml", PROD)
    repo.write("deployments/label.yaml", MANIFEST)
    repo.commit("The label component, fetched from its source: v2, prod pinned to v1")
    described = repo.cli("describe", "label", "--target", "prod", "--format", "json")
    assert described.returncode == 0, described.stdout + described.stderr
    component = json.loads(described.stdout)["targets"]["prod"]["components"]["naming/label"]
    assert component["atmos"]["source"]["version"] == "1"
    for target in ("dev", "prod"):
        proc = repo.doit(f"rollout:label:{target}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "✓ terraform/naming/label: applied" in proc.stdout
    assert outputs(repo, "dev") == {"id": "acme-dev", "label_version": "2"}
    assert outputs(repo, "prod") == {"id": "acmeprod", "label_version": "1"}
    status = repo.cli("vendor", "status", "--deployment", "label", "--format", "json")
    assert status.returncode == 0, status.stderr
    rows = {row["target"]: row for row in json.loads(status.stdout)}
    assert {t: r["version"] for t, r in rows.items()} == {"dev": "2", "prod": "1"}
    # Nothing changed: nothing is vendored, planned or applied again.
    again = repo.doit("rollout:label:dev")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "vendored" not in again.stdout and "planned" not in again.stdout
    # A source that names no uri is bad input at its line.
    repo.write("stacks/catalog/label-prod.yaml", PROD.replace('version: "1"', "uri: ''"))
    repo.commit("A source without a uri")
    refused = repo.cli("validate", "label")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "source must name a uri" in refused.stdout + refused.stderr
