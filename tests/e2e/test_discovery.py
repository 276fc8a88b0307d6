"""list, describe, validate, graph and migrate, driven through the real CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from atmos_tasks.config import load_config
from atmos_tasks.errors import Location
from atmos_tasks.stacks import StackLoader, component_config
from tests.conftest import Repo

COMPONENT_KEYS = {
    "type",
    "component",
    "stack",
    "vars",
    "settings",
    "env",
    "backend_type",
    "backend",
    "metadata",
    "inheritance",
    "depends_on",
    "module",
    "workdir",
    "atmos",  # the Atmos-compatible view of the stacks alone
}


def test_list_filters_by_label(repo: Repo) -> None:
    proc = repo.cli("list", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    # The example's other deployment (hello, the container service) is listed too.
    listed = {d["name"]: d for d in json.loads(proc.stdout)}
    assert sorted(listed) == ["api", "hello"]
    api = listed["api"]
    assert api["targets"] == ["dev", "staging", "prod"]
    assert api["components"] == [
        "terraform/ecr/api",
        "terraform/ecs/taskdef-api",
        "terraform/ecs/service-api",
        "terraform/monitoring/alarms-api",
        "nixpack/api",
    ]
    assert (
        json.loads(repo.cli("list", "--label", "team=platform", "--format", "json").stdout)[0]["name"]
        == "api"
    )
    assert json.loads(repo.cli("list", "--label", "team=payments", "--format", "json").stdout) == []
    assert "api" in repo.cli("list").stdout


def test_describe_json_shape_and_provenance(repo: Repo) -> None:
    proc = repo.cli("describe", "api", "--format", "json", "--provenance")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["deployment"] == "api" and list(data["targets"]) == ["dev", "staging", "prod"]
    prod = data["targets"]["prod"]
    assert prod["stacks"][-1] == "deploy/prod" and prod["context"]["replicas"] == 4
    assert list(prod["components"]) == [
        "ecr/api",
        "api",
        "ecs/taskdef-api",
        "ecs/service-api",
        "monitoring/alarms-api",
    ]
    image = prod["components"]["api"]
    assert image["type"] == "nixpack" and image["source"] == "services/api"
    assert image["image"] == {"registry": None, "repository": "acme/api", "publish": False}
    taskdef = prod["components"]["ecs/taskdef-api"]
    assert taskdef["bindings"] == {"image": "nixpack/api"}
    assert taskdef["depends_on"] == ["nixpack/api", "terraform/ecr/api"]
    service = prod["components"]["ecs/service-api"]
    assert set(service) == COMPONENT_KEYS | {"provenance"}
    assert service["component"] == "ecs-service" and service["stack"] == "platform-ue2-prod"
    assert service["vars"]["replicas"] == 4  # target context, declared by the module
    assert "cpu" not in service["vars"]  # not declared by ecs-service: context keys are filtered
    assert service["vars"]["deployment_minimum_healthy_percent"] == 100  # deploy/prod wins over the catalog
    assert (
        service["vars"]["task_definition_arn"]
        == "{{ component['ecs/taskdef-api'].outputs.task_definition_arn }}"
    )
    assert service["depends_on"] == ["terraform/ecs/taskdef-api"]
    assert service["backend_type"] == "local"
    assert service["backend"]["path"].endswith("state/api/prod/ecs/service-api.tfstate")
    assert service["module"] == {"vendored": False, "path": "components/terraform/ecs-service"}
    # The vendored module: the entry chosen for the target's labels, with its version filled in.
    alarms = {t: data["targets"][t]["components"]["monitoring/alarms-api"]["module"] for t in ("dev", "prod")}
    assert alarms["dev"]["source"] == "git::./.sources/modules.git//alarms?ref=v1.3.0"
    assert alarms["prod"] == {
        "vendored": True,
        "source": "git::./.sources/modules.git//alarms?ref=v1.2.5",
        "version": "1.2.5",
        "entry": "deployments/api.yaml:24:9",
    }
    where = service["provenance"]["vars"]
    assert where["replicas"].startswith("deployments/api.yaml:")
    assert where["deployment_minimum_healthy_percent"] == "stacks/deploy/prod.yaml:13:45"
    assert where["region"] == "stacks/mixins/region/us-east-2.yaml:2:11"
    one = json.loads(
        repo.cli("describe", "api", "--target", "dev", "--component", "ecr/api", "--format", "json").stdout
    )
    assert list(one["targets"]) == ["dev"] and list(one["targets"]["dev"]["components"]) == ["ecr/api"]


def test_validate_reports_five_independent_mistakes_at_once(repo: Repo) -> None:
    manifest = "deployments/api.yaml"
    repo.replace(manifest, "        vars:\n          name: api", "        varz:\n          name: api")  # 1
    repo.replace(manifest, '["terraform/ecr/api"]', '["terraform/ecr/apix"]')  # 2
    repo.replace(manifest, "        from: dev\n", "        from: qa\n")  # 3
    repo.replace(manifest, "stacks: [deploy/prod]", "stacks: [deploy/production]")  # 4
    repo.replace(manifest, "cluster_name: app-ecs", 'cluster_name: "{{ target.nam }}"')  # 5
    proc = repo.cli("validate")
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 5, proc.stderr
    assert all(re.match(r"error: deployments/api\.yaml:\d+:\d+: ", e) for e in errors)
    text = proc.stderr
    for fragment in (
        "unknown key 'varz'",
        "'terraform/ecr/apix'",
        "promotes from 'qa'",
        "stack 'deploy/production' not found",
        "undefined template variable",
    ):
        assert fragment in text
    report = json.loads(repo.cli("validate", "--format", "json").stdout)
    assert report["valid"] is False and len(report["deployments"]["api"]["problems"]) == 5
    assert all(p["line"] and p["hint"] for p in report["deployments"]["api"]["problems"])


def test_validate_passes_on_the_example(repo: Repo) -> None:
    proc = repo.cli("validate", "api")
    assert proc.returncode == 0 and "valid" in proc.stdout


def test_graph_formats(repo: Repo) -> None:
    text = repo.cli("graph", "api", "--target", "dev").stdout
    lines = [line.split()[0] for line in text.splitlines()[1:]]
    assert lines == [
        "plan:api:dev:ecr/api",
        "apply:api:dev:ecr/api",
        "build:api:dev:api",
        "plan:api:dev:ecs/taskdef-api",
        "apply:api:dev:ecs/taskdef-api",
        "plan:api:dev:ecs/service-api",
        "apply:api:dev:ecs/service-api",
        "vendor:api:dev:monitoring/alarms-api",
        "plan:api:dev:monitoring/alarms-api",
        "apply:api:dev:monitoring/alarms-api",
        "record:api:dev",
        "rollout:api:dev",
    ]
    mermaid = repo.cli("graph", "api", "--target", "dev", "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart TD") and mermaid.count("-->") == 15
    dot = repo.cli("graph", "api", "--target", "dev", "--format", "dot").stdout
    assert '"apply:api:dev:ecr/api" -> "plan:api:dev:ecs/taskdef-api";' in dot


def test_migrate_example_stacks_matches_the_original_resolution(repo: Repo) -> None:
    stacks = ["platform-ue2-dev", "platform-ue2-staging", "orgs/acme/platform/ue2/prod"]  # by name or path
    args = [arg for s in stacks for arg in ("--from-stack", s)]
    dry = repo.cli("migrate", *args, "--name", "legacy-api", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert not (repo.path / "deployments/legacy-api.yaml").exists()
    written = repo.cli("migrate", *args, "--name", "legacy-api")
    assert written.returncode == 0, written.stderr
    manifest = YAML(typ="safe").load((repo.path / "deployments/legacy-api.yaml").read_text())
    assert manifest == YAML(typ="safe").load(dry.stdout)
    assert list(manifest["deployment"]["targets"]) == ["dev", "staging", "prod"]
    assert manifest["deployment"]["components"]["terraform"]["ecs/service-api"]["metadata"]["depends_on"] == [
        "terraform/ecs/taskdef-api"
    ]
    assert repo.cli("validate", "legacy-api").returncode == 0
    described = json.loads(repo.cli("describe", "legacy-api", "--format", "json").stdout)
    config = load_config(repo.path)
    for target, path in (
        ("dev", "orgs/acme/platform/ue2/dev"),
        ("staging", "orgs/acme/platform/ue2/staging"),
        ("prod", "orgs/acme/platform/ue2/prod"),
    ):
        merged = StackLoader(config).load_closure([(path, Location("test"))])
        components = described["targets"][target]["components"]
        assert set(components) == {"ecr/api", "ecs/taskdef-api", "ecs/service-api"}
        for name, entry in components.items():
            original = component_config(merged, name, config)
            assert entry["vars"] == original.vars.value, (target, name)
            assert entry["component"] == original.component
    again = repo.cli("migrate", *args, "--name", "legacy-api")
    assert again.returncode == 2 and "--force" in again.stderr


def test_loading_one_deployment_opens_only_its_import_closure(tmp_path: Path, env: dict[str, str]) -> None:
    root = tmp_path / "big"
    (root / "deployments").mkdir(parents=True)
    (root / "components/terraform/svc").mkdir(parents=True)
    (root / "components/terraform/svc/main.tf").write_text('variable "name" { type = string }\n')
    stacks = root / "stacks"
    for team in range(40):
        for index in range(50):  # 2,000 files the deployment never needs, beside the ones it does
            path = stacks / "catalog" / f"team{team}" / f"svc{index}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                f"components:\n  terraform:\n    svc{index}:\n      vars: {{name: t{team}s{index}}}\n"
            )
    closure = {
        "catalog/team7/_defaults.yaml": "vars: {team: seven}\n",
        "catalog/team7/api.yaml": "import: [./_defaults, ../../mixins/region]\n"
        "components:\n  terraform:\n    api:\n      metadata: {component: svc}\n"
        "      vars: {name: api}\n",
        "mixins/region.yaml": "vars: {region: eu-west-1}\n",
        "envs/dev.yaml": "import: [mixins/region]\nvars: {stage: dev}\n",
    }
    for rel, text in closure.items():
        (stacks / rel).parent.mkdir(parents=True, exist_ok=True)
        (stacks / rel).write_text(text)
    (root / "deployments/api.yaml").write_text(
        "deployment:\n  name: api\n  stacks: [catalog/team7/api]\n"
        "  components:\n    terraform:\n      api: {}\n"
        "  targets:\n    dev:\n      stacks: [envs/dev]\n"
    )
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, env=env)
    assert len(list(stacks.rglob("*.yaml"))) == 2004
    probe = (
        "import sys, json\n"
        "opened = []\n"
        "def hook(event, args):\n"
        "    if event == 'open' and isinstance(args[0], str) and '/stacks/' in args[0]:\n"
        "        opened.append(args[0])\n"
        "sys.addaudithook(hook)\n"
        "from atmos_tasks.cli import main\n"
        "code = main(['-C', sys.argv[1], 'describe', 'api', '--format', 'json'])\n"
        "sys.stderr.write(json.dumps(sorted(set(opened))))\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe, str(root)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    opened = {str(Path(p).relative_to(stacks)) for p in json.loads(proc.stderr.splitlines()[-1])}
    assert opened == set(closure)
    assert json.loads(proc.stdout)["targets"]["dev"]["components"]["api"]["vars"] == {
        "name": "api",
        "team": "seven",
        "region": "eu-west-1",
        "stage": "dev",
    }


def test_describe_loads_no_heavy_library(repo: Repo) -> None:
    """Every command is a fresh process: what `describe` imports is most of what it costs."""
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['atmos-tasks', 'describe', 'api', '--format', 'json']\n"
        "try:\n"
        "    runpy.run_module('atmos_tasks.cli', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "heavy = ('docker', 'git', 'cyclonedx', 'hcl2', 'lark', 'diskcache', 'rich', 'filelock', 'doit',\n"
        "         'vendor_cache.store')\n"
        "print(' '.join(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    first = repo.run(sys.executable, "-c", probe)  # fills the on-disk caches (declared variables)
    assert first.returncode == 0, first.stderr
    second = repo.run(sys.executable, "-c", probe)
    assert second.returncode == 0, second.stderr
    assert second.stderr.strip() == ""


def test_migrate_says_which_atmos_component_kinds_it_left_out(repo: Repo) -> None:
    repo.replace(
        "stacks/orgs/acme/platform/ue2/dev.yaml",
        "components:\n  terraform:\n",
        "components:\n  helmfile:\n    nginx:\n      vars: {replicas: 2}\n  terraform:\n",
    )
    repo.commit("A helmfile component beside the Terraform ones")
    proc = repo.cli("migrate", "--from-stack", "platform-ue2-dev", "--name", "legacy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = proc.stdout + proc.stderr
    assert "Atmos helmfile components (nginx) are not supported yet and were left out" in said
    assert "stacks/orgs/acme/platform/ue2/dev.yaml" in said
