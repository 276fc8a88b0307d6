"""Malformed manifests and stacks: exit 2, file:line:column and a hint, no traceback, nothing written."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.conftest import Repo
from tests.hostile import CASES as DEEP_CASES
from tests.hostile import alias_bomb, deep_value, line_span, run_measured

MANIFEST = "deployments/api.yaml"


@dataclass
class Case:
    mutate: Callable[[Repo], None]
    file: str
    line_of: str  # the reported line is the first line of `file` containing this text
    message: str


def edit(rel: str, old: str, new: str) -> Callable[[Repo], None]:
    return lambda repo: repo.replace(rel, old, new)


def add_stack_import(repo: Repo) -> None:
    repo.write(
        "stacks/catalog/ecs/_defaults.yaml",
        "import:\n  - catalog/ecs/taskdef-api\n\nterraform:\n  vars:\n    tags:\n      runtime: ecs\n",
    )


CASES = {
    "a kind no plugin provides": Case(
        edit(
            MANIFEST,
            "\n  components:\n    nixpack:\n",
            "\n  components:\n    helmfile:\n      ingress: {}\n    nixpack:\n",
        ),
        MANIFEST,
        "helmfile:",
        "unknown component kind 'helmfile'",
    ),
    "unknown key": Case(
        edit(MANIFEST, 'depends_on: ["terraform/ecr/api"]', 'dependson: ["terraform/ecr/api"]'),
        MANIFEST,
        "dependson:",
        "unknown key 'dependson'",
    ),
    "wrong type": Case(
        edit(MANIFEST, "labels: { tier: prod }", "labels: [prod]"),
        MANIFEST,
        "labels: [prod]",
        "valid dictionary",
    ),
    "missing name": Case(
        edit(MANIFEST, "  name: api\n", ""),
        MANIFEST,
        "description: The api service",
        "missing required key 'name'",
    ),
    "name differs from file": Case(
        edit(MANIFEST, "  name: api\n", "  name: web\n"),
        MANIFEST,
        "name: web",
        "does not match the file name",
    ),
    "dangling depends_on": Case(
        edit(MANIFEST, '["terraform/ecr/api"]', '["terraform/ecr/apii"]'),
        MANIFEST,
        "terraform/ecr/apii",
        "not a component of this deployment",
    ),
    "dependency cycle": Case(
        edit(
            MANIFEST,
            "      ecr/api:\n",
            '      ecr/api:\n        metadata:\n          depends_on: ["terraform/ecs/service-api"]\n',
        ),
        MANIFEST,
        'depends_on: ["terraform/ecs/service-api"]',
        "dependency cycle: terraform/ecr/api → terraform/ecs/service-api → terraform/ecs/taskdef-api"
        " → terraform/ecr/api",
    ),
    "promotion cycle": Case(
        edit(
            MANIFEST,
            "      context: { cpu: 256, memory: 512, replicas: 1 }\n",
            "      context: { cpu: 256, memory: 512, replicas: 1 }\n      promotion:\n        from: prod\n",
        ),
        MANIFEST,
        "from: prod",
        "promotion cycle",
    ),
    "from with allowed_from": Case(
        edit(MANIFEST, "        from: dev\n", "        from: dev\n        allowed_from: [dev]\n"),
        MANIFEST,
        "allowed_from: [dev]",
        "sets both 'from' and 'allowed_from'",
    ),
    "unknown promotion source": Case(
        edit(MANIFEST, "        from: dev\n", "        from: qa\n"),
        MANIFEST,
        "from: qa",
        "promotes from 'qa', which is not a target",
    ),
    "missing stack file": Case(
        edit(MANIFEST, "- catalog/ecr/api", "- catalog/ecr/apii"),
        MANIFEST,
        "catalog/ecr/apii",
        "stack 'catalog/ecr/apii' not found",
    ),
    "import cycle": Case(
        add_stack_import,
        "stacks/catalog/ecs/_defaults.yaml",
        "- catalog/ecs/taskdef-api",
        "import cycle: stacks/catalog/ecs/taskdef-api.yaml → stacks/catalog/ecs/_defaults.yaml → "
        "stacks/catalog/ecs/taskdef-api.yaml",
    ),
    "undefined template variable in the manifest": Case(
        edit(MANIFEST, "cluster_name: app-ecs", 'cluster_name: "{{ context.cluster }}"'),
        MANIFEST,
        "context.cluster",
        "undefined template variable",
    ),
    # Stack files are Go templates (Atmos's), rendered with the component's own sections.
    "undefined template variable in a stack": Case(
        edit("stacks/catalog/ecs/service-api.yaml", "service_name: api", 'service_name: "{{ .vars.nam }}"'),
        "stacks/catalog/ecs/service-api.yaml",
        ".vars.nam",
        'map has no entry for key "nam"',
    ),
    "invalid YAML": Case(
        edit(MANIFEST, "  description: The api", "  description: [The api"),
        MANIFEST,
        "labels:",
        "invalid YAML",
    ),
    # In a stack (or atmos.yaml's env:), a store read resolves and only the rollout of its
    # component refuses it (exit 1); atmos.yaml's own settings are read by every command.
    "YAML function in atmos.yaml that needs a store": Case(
        edit("atmos.yaml", "  name_pattern:", "  name_template: !store.get ssm /naming\n  name_pattern:"),
        "atmos.yaml",
        "!store.get",
        "YAML function !store.get is not supported",
    ),
    "YAML function in a manifest": Case(
        edit(MANIFEST, "cluster_name: app-ecs", "cluster_name: !env CLUSTER"),
        MANIFEST,
        "!env CLUSTER",
        "YAML function !env CLUSTER in a manifest",
    ),
    "unknown default target": Case(
        edit(MANIFEST, "default_target: dev", "default_target: qa"),
        MANIFEST,
        "default_target: qa",
        "default_target 'qa' is not a target",
    ),
    "missing component folder": Case(
        edit("stacks/catalog/ecr/api.yaml", "component: ecr", "component: ecrx"),
        "stacks/catalog/ecr/api.yaml",
        "component: ecrx",
        "folder 'ecrx' is neither",
    ),
    "one name under two types": Case(
        edit(MANIFEST, "    nixpack:\n", "    nixpack:\n      ecr/api: {}\n"),
        MANIFEST,
        "ecr/api: {}",
        "defined under both",
    ),
    "tests of an image no engine runs": Case(
        edit(
            MANIFEST,
            "            publish: false\n",
            "            publish: false\n            builder: oci\n            test_cmd: ./run-tests\n",
        ),
        MANIFEST,
        "nixpack:\n            base_image: scratch",
        "settings.nixpack.test_cmd needs the docker backend",
    ),
    "bad target in the task name": Case(
        lambda repo: None, MANIFEST, "  targets:\n    dev", "has no target 'qa'"
    ),
}


def line_number(repo: Repo, rel: str, text: str) -> int:
    content = (repo.path / rel).read_text()
    index = content.index(text)
    return content.count("\n", 0, index) + 1 + text[: len(text) - len(text.lstrip("\n"))].count("\n")


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exits_2_with_location_and_hint_and_writes_nothing(repo: Repo, name: str) -> None:
    case = CASES[name]
    case.mutate(repo)
    if repo.git("status", "--porcelain"):
        repo.commit(f"Break: {name}")
    task = "rollout:api:qa" if name == "bad target in the task name" else "rollout:api:dev"
    proc = repo.doit(task)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    assert case.message in proc.stderr, proc.stderr
    expected_line = line_number(repo, case.file, case.line_of)
    assert re.search(rf"{re.escape(case.file)}:{expected_line}:\d+: ", proc.stderr), proc.stderr
    assert "hint: " in proc.stderr
    if name == "a kind no plugin provides":
        known = re.search(r"known kinds: (.*)", proc.stderr)
        assert known and {"terraform", "nixpack"} <= set(known.group(1).split(", "))
    assert repo.refs() == {} and repo.tags() == []
    for folder in ("state", "workdir", "vendor-cache"):
        assert not (repo.path / ".atmos" / folder).exists(), folder


def test_validation_reports_every_manifest_problem_at_once(repo: Repo) -> None:
    repo.replace(MANIFEST, "  name: api\n", "  name: web\n")
    repo.replace(MANIFEST, '["terraform/ecr/api"]', '["terraform/ecr/apii"]')
    repo.replace(MANIFEST, "        from: dev\n", "        from: qa\n")
    repo.commit("Three mistakes")
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 2
    assert proc.stderr.count("error: ") == 3 and "3 problems found" in proc.stderr


# Hostile YAML: where each file takes a hostile value (the line it follows, and its indentation).
HOSTILE_PLACES = {
    "manifest": (MANIFEST, "          name: api\n", 10),  # a component's vars
    "stack": ("stacks/catalog/ecr/api.yaml", "        scan_on_push: true\n", 8),  # a component's vars
    "atmos.yaml": ("atmos.yaml", None, 0),
    "vendor.yaml": ("vendor.yaml", None, 0),  # the repository's vendor manifest, read for `alarms`
}
VENDOR_YAML = "apiVersion: atmos/v1\nkind: AtmosVendorConfig\nspec:\n  sources: []\n"
HOSTILE = {
    **{
        f"{place}, {style} {depth}": (place, deep_value("deep", style, depth, HOSTILE_PLACES[place][2]))
        for place in HOSTILE_PLACES
        for style, depth in DEEP_CASES
    },
    "manifest, alias bomb": ("manifest", alias_bomb("laughs", 10)),
    "stack, alias bomb": ("stack", alias_bomb("laughs", 8)),
    "stack, recursive alias": ("stack", "        loop: &loop\n          - a\n          - *loop\n"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_yaml_exits_2_at_its_line_quickly_in_little_memory(repo: Repo, name: str) -> None:
    place, snippet = HOSTILE[name]
    rel, after, _indent = HOSTILE_PLACES[place]
    path = repo.path / rel
    text = path.read_text() if path.exists() else VENDOR_YAML
    text = text.replace(after, after + snippet, 1) if after else text + snippet
    path.write_text(text)
    repo.commit(f"Hostile YAML: {name}")
    span = line_span(text, snippet)
    for command in (["atmos_tasks.cli", "validate"], ["doit", "rollout:api:dev"]):
        proc = run_measured([sys.executable, "-m", *command], cwd=repo.path, env=repo.env, timeout=60)
        out = proc.output
        assert proc.returncode == 2, (command, proc.returncode, out[-3000:])
        assert "Traceback" not in out
        found = re.search(rf"{re.escape(rel)}:(\d+):\d+: YAML (nested deeper|alias)", out)
        assert found and int(found.group(1)) in span, (command, out[-3000:])
        assert "hint: " in out
        # The goal is 2 s and 200 MB; the time bound leaves room for a slow, shared CI machine.
        assert proc.seconds < 10 and proc.peak_mb < 200, (command, proc.seconds, proc.peak_mb)
    assert repo.refs() == {} and repo.refs("refs/notes/") == {} and repo.tags("") == []
    assert not (repo.path / ".atmos" / "vendor-cache").exists()
