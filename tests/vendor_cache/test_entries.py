"""Vendor entries: label selection per target, layer precedence, manifest and vendor.yaml spellings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vendor_cache import (
    ManifestError,
    VendorEntry,
    entries_from_manifest,
    read_vendor_yaml,
    resolve_entries,
    select_entries,
)

SRC = "github.com/acme/modules.git//vpc?ref={{ version }}"


def test_labels_pick_the_entry_for_each_target() -> None:
    default = VendorEntry("vpc", SRC, "v1.0.0")
    prod = VendorEntry("vpc", SRC, "v0.9.0", labels={"env": ["prod", "dr"]})
    sg = VendorEntry("sg", "modules/sg")
    entries = [default, prod, sg]
    assert select_entries(entries, {"env": "dev"}) == {"vpc": default, "sg": sg}
    assert select_entries(entries, {"env": "prod"})["vpc"] is prod
    assert select_entries(entries, {"env": "dr", "region": "eu"})["vpc"] is prod
    assert select_entries([prod], {"region": "eu"}) == {}


def test_labels_compare_as_text() -> None:
    entry = VendorEntry("vpc", SRC, "v1", labels={"critical": [True], "tier": 1})
    assert entry.labels == {"critical": ("true",), "tier": ("1",)}
    assert entry.applies_to({"critical": True, "tier": "1"})
    assert not entry.applies_to({"critical": False, "tier": "1"})


def test_two_equally_specific_entries_are_ambiguous() -> None:
    a = VendorEntry("vpc", SRC, "v1", labels={"env": ["prod"]})
    b = VendorEntry("vpc", SRC, "v2", labels={"tier": ["gold"]})
    with pytest.raises(ManifestError, match="apply equally") as raised:
        select_entries([a, b], {"env": "prod", "tier": "gold"})
    assert raised.value.exit_code == 2


def test_earlier_layers_win_per_component_and_target() -> None:
    inline_prod = VendorEntry("vpc", SRC, "v2", labels={"env": ["prod"]})
    repo_default = VendorEntry("vpc", SRC, "v1")
    repo_sg = VendorEntry("sg", "modules/sg")
    layers = [[inline_prod], [repo_default, repo_sg]]
    assert resolve_entries(layers, {"env": "prod"}) == {"vpc": inline_prod, "sg": repo_sg}
    assert resolve_entries(layers, {"env": "dev"}) == {"vpc": repo_default, "sg": repo_sg}


def test_manifest_entries_name_components_by_targets_or_component(tmp_path: Path) -> None:
    entries = entries_from_manifest(
        [
            {"source": SRC, "version": "v1", "targets": ["vpc", "vpc-peer"], "labels": {"env": ["dev"]}},
            {"component": "sg", "source": "./sg", "included_paths": ["**/*.tf"]},
        ],
        base_dir=tmp_path,
    )
    assert [(e.component, e.version) for e in entries] == [("vpc", "v1"), ("vpc-peer", "v1"), ("sg", None)]
    assert entries[0].labels == {"env": ("dev",)}
    assert entries[2].included_paths == ("**/*.tf",)
    assert entries[2].base_dir == tmp_path
    with pytest.raises(ManifestError, match="names no component"):
        entries_from_manifest([{"source": SRC}])


@pytest.mark.parametrize("name", ["", "/abs", "a/../b", "a//b", ".", "a/./b", "vpc/"])
def test_component_names_must_stay_inside_the_workspace(name: str) -> None:
    with pytest.raises(ManifestError, match="unusable component name"):
        VendorEntry(name, SRC)


VENDOR_YAML = """\
apiVersion: atmos/v1
kind: AtmosVendorConfig
metadata:
  name: example
spec:
  imports:
    - vendor/extra
  sources:
    - component: vpc
      source: github.com/acme/modules.git//vpc?ref={{.Version}}
      version: "1.10"
      targets: ["components/terraform/vpc"]
      included_paths: ["**/*.tf"]
      excluded_paths: ["**/examples"]
      tags: [network]
    - component: unused
      source: ./local/unused
"""


def test_read_vendor_yaml_filters_components_and_follows_imports(tmp_path: Path) -> None:
    (tmp_path / "vendor.yaml").write_text(VENDOR_YAML)
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor/extra.yaml").write_text(
        "apiVersion: atmos/v1\nkind: AtmosVendorConfig\nspec:\n  sources:\n"
        "    - component: sg\n      source: ../modules/sg\n      tags: [network, security]\n"
    )
    entries = read_vendor_yaml(tmp_path / "vendor.yaml", components=["vpc", "sg"])
    assert [e.component for e in entries] == ["sg", "vpc"]
    sg, vpc = entries
    assert sg.base_dir == tmp_path / "vendor"
    assert vpc.version == "1.10"
    assert vpc.rendered_source == "github.com/acme/modules.git//vpc?ref=1.10"
    assert vpc.included_paths == ("**/*.tf",) and vpc.excluded_paths == ("**/examples",)
    assert [e.component for e in read_vendor_yaml(tmp_path / "vendor.yaml", tags=["security"])] == ["sg"]
    # Each entry knows the file and line it is written at, for the errors vendoring it may raise.
    assert sg.origin == f"{tmp_path / 'vendor/extra.yaml'}:5"
    assert str(vpc.origin).startswith(f"{tmp_path / 'vendor.yaml'}:")
    assert sg == dataclasses.replace(sg, origin="elsewhere")  # not part of what the entry is


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("apiVersion: atmos/v1\nkind: Other\n", "kind 'Other'"),
        (
            "apiVersion: atmos/v1\nkind: AtmosVendorConfig\nspec:\n  sources:\n    - source: x\n",
            "no `component:`",
        ),
        (
            "apiVersion: atmos/v1\nkind: AtmosVendorConfig\nspec:\n  sources:\n"
            "    - component: vpc\n      source: x\n      version: 1.10\n",
            "version 1.1 was read as a number",
        ),
        ("apiVersion: atmos/v1\nkind: AtmosVendorConfig\nspec:\n  imports: [missing]\n", "matches no file"),
        ("key: [unclosed\n", "not valid YAML"),
        ("apiVersion: atmos/v1\nkind: AtmosVendorConfig\nspec:\n  sources: {a: 1}\n", "must be a list"),
        (
            "apiVersion: atmos/v1\nkind: AtmosVendorConfig\nspec:\n  sources:\n"
            "    - component: ../escape\n      source: x\n",
            "spec.sources #1: vendor entry for 'x' has an unusable component name '../escape'",
        ),
    ],
)
def test_vendor_yaml_problems_name_the_file(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "vendor.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as raised:
        read_vendor_yaml(path)
    assert complaint in str(raised.value)
    assert str(path) in str(raised.value)


def test_vendor_yaml_errors_carry_the_line(tmp_path: Path) -> None:
    path = tmp_path / "vendor.yaml"
    path.write_text(
        "apiVersion: atmos/v1\nkind: AtmosVendorConfig\nspec:\n  sources:\n    - component: a\n"
        "      source: x\n    - version: v1\n"
    )
    with pytest.raises(ManifestError, match=r"vendor.yaml:7: spec.sources #2 has no `component:`"):
        read_vendor_yaml(path)


def test_a_file_imported_twice_is_not_a_cycle(tmp_path: Path) -> None:
    head = "apiVersion: atmos/v1\nkind: AtmosVendorConfig\nspec:\n"
    (tmp_path / "vendor.yaml").write_text(head + "  imports: [a, b]\n")
    (tmp_path / "a.yaml").write_text(head + "  imports: [common]\n")
    (tmp_path / "b.yaml").write_text(head + "  imports: [common]\n")
    (tmp_path / "common.yaml").write_text(head + "  sources:\n    - {component: vpc, source: ./vpc}\n")
    entries = read_vendor_yaml(tmp_path / "vendor.yaml")
    assert [e.component for e in entries] == ["vpc", "vpc"]
    assert select_entries(entries, {})["vpc"].base_dir == tmp_path


def test_import_cycles_are_reported(tmp_path: Path) -> None:
    head = "apiVersion: atmos/v1\nkind: AtmosVendorConfig\nspec:\n  imports: ["
    (tmp_path / "a.yaml").write_text(head + "b]\n")
    (tmp_path / "b.yaml").write_text(head + "a]\n")
    with pytest.raises(ManifestError, match="imports itself"):
        read_vendor_yaml(tmp_path / "a.yaml")
