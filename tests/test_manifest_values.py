"""Names a Git ref can hold and typed context values, as the manifest model checks them (SPEC §3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from atmos_tasks.config import load_config
from atmos_tasks.errors import AtmosError
from atmos_tasks.manifest import load_manifest


def load(tmp_path: Path, text: str) -> Any:
    (tmp_path / "deployments").mkdir(exist_ok=True)
    path = tmp_path / "deployments" / "api.yaml"
    path.write_text(text)
    return load_manifest(path, load_config(tmp_path))


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(AtmosError) as err:
        load(tmp_path, text)
    return [p.render() for p in err.value.problems]


def with_context(context: str) -> str:
    return f"deployment:\n  name: api\n  targets:\n    dev:\n      context: {context}\n"


@pytest.mark.parametrize(
    "context",
    [
        "{cpu: 256, memory: 512, replicas: 1}",
        "{cpu: 0.5, memory: 2Gi, replicas: 0}",
        "{cpu: 500m, memory: 512Mi}",
        "{cpu: '1.5', memory: 1e3}",
        "{team: [anything, {goes: here}], region: null}",
        "{}",
    ],
)
def test_context_values_of_the_right_type_load_as_written(tmp_path: Path, context: str) -> None:
    manifest = load(tmp_path, with_context(context))
    written = YAML(typ="safe").load(context)
    assert manifest.model.targets["dev"].context == written
    assert list(manifest.model.targets["dev"].context) == list(written)  # in the written order


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ("{replicas: [1, {a: b}]}", "replicas must be a whole number (0 or more), not a list"),
        ("{replicas: 1.5}", "replicas must be a whole number (0 or more), not 1.5"),
        ("{replicas: true}", "replicas must be a whole number (0 or more), not a boolean"),
        ("{replicas: '2'}", "replicas must be a whole number (0 or more), not '2'"),
        ("{replicas: -1}", "replicas must be a whole number (0 or more), not -1"),
        ("{cpu: lots}", "cpu must be a number or a quantity such as 0.5, 500m or 2Gi, not 'lots'"),
        ("{cpu: -1}", "cpu must be a number or a quantity"),
        ("{cpu: .nan}", "cpu must be a number or a quantity"),
        ("{cpu: 5x}", "cpu must be a number or a quantity"),
        ("{memory: {a: 1}}", "memory must be a number or a quantity such as 0.5, 500m or 2Gi, not a mapping"),
        ("{memory: null}", "memory must be a number or a quantity such as 0.5, 500m or 2Gi, not null"),
    ],
)
def test_a_context_value_of_the_wrong_type_is_located_with_a_hint(
    tmp_path: Path, context: str, message: str
) -> None:
    found = problems(tmp_path, with_context(context))
    assert len(found) == 1, found
    assert found[0].startswith("deployments/api.yaml:5:"), found
    assert message in found[0] and "\n  hint: write " in found[0]


def test_every_wrong_context_value_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        "deployment:\n  name: api\n  targets:\n    dev:\n      context: {cpu: lots, replicas: x}\n"
        "    prod:\n      context:\n        memory: []\n"
    )
    found = problems(tmp_path, text)
    assert [f.split(": ", 2)[1] for f in found] == [
        "deployment.targets.dev.context.cpu",
        "deployment.targets.dev.context.replicas",
        "deployment.targets.prod.context.memory",
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "x.lock",
            "component name 'x.lock' cannot be recorded in Git: its ref part 'x.lock' ends with '.lock'",
        ),
        ("ecs/x.lock", "its ref part 'ecs%2Fx.lock' ends with '.lock'"),
        ("trail.", "component name 'trail.' cannot be recorded in Git: its ref part 'trail.' ends with '.'"),
        ("a..b", "component name 'a..b' is not valid"),
        ('"x\\n"', "component name 'x\\n' is not valid"),
        ("a@{b", "component name 'a@{b' is not valid"),
    ],
)
def test_a_component_name_git_cannot_record_is_refused(tmp_path: Path, name: str, message: str) -> None:
    text = (
        "deployment:\n  name: api\n  components:\n    terraform:\n"
        f"      {name}: {{component: ecr}}\n  targets:\n    dev: {{}}\n"
    )
    found = problems(tmp_path, text)
    assert len(found) == 1 and found[0].startswith("deployments/api.yaml:5:7: "), found
    assert message in found[0]
    assert "hint: " in found[0]


@pytest.mark.parametrize("name", ["x.lock/y", "a.b", "ecs/service-api", "x_lock", "a-"])
def test_component_names_git_can_record_load(tmp_path: Path, name: str) -> None:
    text = (
        "deployment:\n  name: api\n  components:\n    terraform:\n"
        f"      {name}: {{component: ecr}}\n  targets:\n    dev: {{}}\n"
    )
    assert [ref.name for ref in load(tmp_path, text).components()] == [name]


@pytest.mark.parametrize("name", ['"dev\\n"', "dev.lock", "dev.", "Dev", "a:b", '"@"'])
def test_a_target_name_outside_the_rules_is_refused(tmp_path: Path, name: str) -> None:
    found = problems(tmp_path, f"deployment:\n  name: api\n  targets:\n    {name}: {{}}\n")
    assert len(found) == 1 and found[0].startswith("deployments/api.yaml:4:5: target name "), found
    assert "Git refs and tags" in found[0]
