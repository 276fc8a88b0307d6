"""Targets in promotion order: the rule, and status's cached reading of it from manifests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from atmos_tasks.targetorder import CACHE, manifest_orders, ordered, promotion_order, sources_of


def test_each_target_comes_after_the_targets_it_is_promoted_from() -> None:
    # Listed prod first: the chain decides, not the manifest's order or the alphabet.
    assert promotion_order({"prod": ["staging"], "dev": [], "staging": ["dev"]}) == ["dev", "staging", "prod"]
    assert promotion_order({"dev": [], "prod": ["staging"], "staging": ["dev"]}) == ["dev", "staging", "prod"]


def test_targets_the_chain_does_not_order_keep_the_manifests_order() -> None:
    assert promotion_order(
        {"sandbox": [], "dev": [], "qa": ["dev"], "perf": ["dev"], "prod": ["qa", "perf"]}
    ) == [
        "sandbox",
        "dev",
        "qa",
        "perf",
        "prod",
    ]
    # Unknown sources and a cycle (validation refuses both) leave the order defined.
    assert promotion_order({"a": ["nowhere"], "b": ["c"], "c": ["b"]}) == ["a", "b", "c"]


def test_names_a_manifest_no_longer_has_go_last_sorted() -> None:
    assert ordered(["prod", "old", "dev", "ancient"], ["dev", "staging", "prod"]) == [
        "dev",
        "prod",
        "ancient",
        "old",
    ]


def test_sources_are_read_from_a_raw_targets_section() -> None:
    targets = {
        "dev": {},
        "staging": {"promotion": {"from": "dev"}},
        "prod": {"promotion": {"allowed_from": ["staging"]}},
    }
    assert sources_of(targets) == {"dev": [], "staging": ["dev"], "prod": ["staging"]}
    assert sources_of(["dev"]) is None and sources_of(None) is None


MANIFEST = """deployment:
  name: {name}
  targets:
    prod: {{promotion: {{from: staging}}}}
    staging: {{promotion: {{from: dev}}}}
    dev: {{}}
"""


def test_manifest_orders_are_cached_by_content_and_read_without_yaml_when_unchanged(tmp_path: Path) -> None:
    (tmp_path / "deployments").mkdir()
    manifest = tmp_path / "deployments" / "api.yaml"
    manifest.write_text(MANIFEST.format(name="api"))
    assert manifest_orders(tmp_path, ["api", "gone"]) == {"api": ["dev", "staging", "prod"]}
    cached = json.loads((tmp_path / CACHE).read_text())
    assert cached["base"] == "deployments" and cached["manifests"]["api"]["order"] == [
        "dev",
        "staging",
        "prod",
    ]

    # Unchanged: answered from the cache, whatever the cache says (the YAML is not read again).
    cached["manifests"]["api"]["order"] = ["cached"]
    (tmp_path / CACHE).write_text(json.dumps(cached))
    assert manifest_orders(tmp_path, ["api"]) == {"api": ["cached"]}

    # Changed: read again.
    manifest.write_text(MANIFEST.format(name="api").replace("prod: {promotion: {from: staging}}", "prod: {}"))
    assert manifest_orders(tmp_path, ["api"]) == {"api": ["prod", "dev", "staging"]}


def test_a_broken_manifest_or_a_damaged_cache_is_no_error(tmp_path: Path) -> None:
    (tmp_path / "deployments").mkdir()
    (tmp_path / "deployments" / "api.yml").write_text("deployment: [unclosed\n")
    assert manifest_orders(tmp_path, ["api"]) == {"api": []}
    (tmp_path / CACHE).write_text("{not json")
    assert manifest_orders(tmp_path, ["api"]) == {"api": []}
    assert manifest_orders(tmp_path / "nowhere", ["api"]) == {}


@pytest.mark.parametrize("warm", [False, True])
def test_a_warm_cache_loads_no_yaml_library(tmp_path: Path, warm: bool) -> None:
    import subprocess

    (tmp_path / "deployments").mkdir()
    (tmp_path / "deployments" / "api.yaml").write_text(MANIFEST.format(name="api"))
    if warm:
        manifest_orders(tmp_path, ["api"])
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from atmos_tasks.targetorder import manifest_orders\n"
        f"assert manifest_orders(Path({str(tmp_path)!r}), ['api']) == {{'api': ['dev', 'staging', 'prod']}}\n"
        "print('ruamel' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(not warm)
