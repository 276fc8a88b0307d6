"""A repository shaped like Atmos's `quick-start-advanced` (tests/fixtures/atmos-advanced): orgs,
tenants, stages and regions; a catalog of abstract defaults; mixins; stack names from
`name_template`; Go templates, `!terraform.output` and `settings.depends_on`. Every top-level stack
is migrated into deployments, every component of every stack resolves, the dependency graph shows,
and one target rolls out with real Terraform."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import Repo

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "atmos-advanced"
TENANTS = ("core", "plat")
STACKS = [
    f"{tenant}-{env}-{stage}"
    for tenant in TENANTS
    for env in ("ue2", "uw2")
    for stage in ("dev", "staging", "prod")
]


def test_every_stack_and_component_of_an_advanced_layout_resolves_and_rolls_out(
    tmp_path: Path, env: dict[str, str]
) -> None:
    repo = Repo(tmp_path / "advanced", env)
    shutil.copytree(FIXTURE, repo.path)
    repo.git("init", "-q")
    repo.commit("Atmos stacks as they are")
    for tenant in TENANTS:
        picked = [s for s in STACKS if s.startswith(tenant)]
        proc = repo.cli("migrate", "--name", tenant, *(a for s in picked for a in ("--from-stack", s)))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    repo.commit("Deployments for the existing stacks")
    validate = repo.cli("validate")
    assert validate.returncode == 0, validate.stdout + validate.stderr

    seen: set[str] = set()
    for tenant in TENANTS:
        described = json.loads(repo.cli("describe", tenant, "--format", "json").stdout)
        for target in described["targets"].values():
            components = target["components"]
            assert set(components) == {"vpc", "vpc-flow-logs-bucket"}
            vpc = components["vpc"]
            stack = vpc["stack"]
            seen.add(stack)
            # name_template, Go templates, inheritance and a !terraform.output reference, resolved.
            assert vpc["vars"]["tags"] == {"managed_by": "atmos", "stack": stack}
            assert components["vpc-flow-logs-bucket"]["vars"]["tags"]["component"] == "vpc-flow-logs-bucket"
            assert vpc["inheritance"] == ["vpc/defaults"]
            assert "terraform/vpc-flow-logs-bucket" in vpc["depends_on"]
            # The Atmos-compatible view: the stacks alone, nothing the deployment added.
            atmos = vpc["atmos"]
            assert atmos["atmos_stack"] == atmos["stack"] == stack and atmos["atmos_component"] == "vpc"
            assert "labels" not in atmos["metadata"] and atmos["backend_type"] == ""
            assert atmos["vars"]["tags"] == vpc["vars"]["tags"] and atmos["inheritance"] == ["vpc/defaults"]
            expected_subnets = "3" if stack.endswith("prod") or "-ue2-" in stack else "2"
            assert str(vpc["vars"]["max_subnet_count"]) == expected_subnets
    assert seen == set(STACKS)

    graph = repo.cli("graph", "plat", "--target", "dev").stdout
    assert "apply:plat:dev:vpc-flow-logs-bucket" in graph.split("plan:plat:dev:vpc ", 1)[1].splitlines()[0]
    proc = repo.doit("rollout:plat:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tfvars = json.loads((repo.path / ".atmos/workdir/plat/dev/vpc/vpc.auto.tfvars.json").read_text())
    assert tfvars["vpc_flow_logs_bucket_name"] == "acme-plat-ue2-dev-vpc-flow-logs"
