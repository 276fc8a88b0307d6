"""The manifest model and its validation rules (SPEC §3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from atmos_tasks.config import load_config
from atmos_tasks.errors import AtmosError
from atmos_tasks.manifest import ComponentRef, duration_seconds, find_cycle, load_deployment, load_manifest
from tests.conftest import EXAMPLES


def write_repo(tmp_path: Path, manifest: str, name: str = "api") -> Path:
    (tmp_path / "deployments").mkdir()
    (tmp_path / "stacks").mkdir()
    (tmp_path / "components/terraform/ecr").mkdir(parents=True)
    path = tmp_path / "deployments" / f"{name}.yaml"
    path.write_text(manifest)
    return path


def problems(tmp_path: Path, manifest: str) -> list[str]:
    path = write_repo(tmp_path, manifest)
    with pytest.raises(AtmosError) as err:
        load_manifest(path, load_config(tmp_path))
    return [p.render() for p in err.value.problems]


def test_the_example_manifest_loads() -> None:
    manifest = load_deployment(load_config(EXAMPLES), "api")
    assert manifest.name == "api"
    assert manifest.target_names() == ["dev", "staging", "prod"]
    prod = manifest.model.targets["prod"].promotion
    assert prod is not None and prod.sources == ["staging"] and prod.approvals_required == 1
    assert manifest.find_component("ecr/api") == ComponentRef("terraform", "ecr/api")
    assert manifest.find_component("terraform/ecs/service-api") == ComponentRef(
        "terraform", "ecs/service-api"
    )
    assert manifest.dependencies(ComponentRef("terraform", "ecs/service-api")) == [
        ComponentRef("terraform", "ecs/taskdef-api")
    ]


def test_unknown_keys_suggest_the_right_one(tmp_path: Path) -> None:
    found = problems(tmp_path, "deployment:\n  name: api\n  targetz: {}\n  targets: {dev: {}}\n")
    assert len(found) == 1
    assert found[0].startswith("deployments/api.yaml:3:3: unknown key 'targetz' in deployment")
    assert "did you mean 'targets'?" in found[0]


def test_requires_approval_accepts_bool_or_count_and_reports_once(tmp_path: Path) -> None:
    ok = write_repo(
        tmp_path,
        "deployment:\n  name: api\n  targets:\n    dev: {}\n    prod:\n      promotion:\n"
        "        from: dev\n        requires_approval: {count: 2, prevent_self_approval: true}\n",
    )
    promotion = load_manifest(ok, load_config(tmp_path)).model.targets["prod"].promotion
    assert promotion is not None and promotion.approvals_required == 2 and promotion.self_approval_prevented
    ok.write_text(
        "deployment:\n  name: api\n  targets:\n    prod:\n      promotion:\n"
        "        requires_approval: often\n"
    )
    with pytest.raises(AtmosError) as err:
        load_manifest(ok, load_config(tmp_path))
    assert len(err.value.problems) == 1
    assert err.value.problems[0].location is not None and err.value.problems[0].location.line == 6
    assert "{count: N" in (err.value.problems[0].hint or "")


def test_every_problem_is_reported(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "deployment:\n"
        "  name: web\n"
        "  context: {default_target: qa}\n"
        "  components:\n"
        "    terraform:\n"
        "      a: {metadata: {depends_on: [b]}}\n"
        "      b: {metadata: {depends_on: [terraform/a]}}\n"
        "  targets:\n"
        "    dev: {promotion: {from: prod}}\n"
        "    prod: {promotion: {from: dev, allowed_from: [dev]}}\n",
    )
    text = "\n".join(found)
    assert "does not match the file name" in text
    assert "dependency cycle: terraform/a → terraform/b → terraform/a" in text
    assert "promotion cycle" in text
    assert "sets both 'from' and 'allowed_from'" in text
    assert "default_target 'qa' is not a target" in text


def test_invalid_names(tmp_path: Path) -> None:
    found = problems(tmp_path, "deployment:\n  name: Api_1\n  targets: {Dev: {}}\n")
    assert any("deployment name 'Api_1' is not valid" in p for p in found)


def test_find_cycle_and_durations() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]
    assert duration_seconds("30m") == 1800 and duration_seconds("1d2h") == 93600
    with pytest.raises(ValueError):
        duration_seconds("")
