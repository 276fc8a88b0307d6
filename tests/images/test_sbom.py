"""Lock files and Terraform modules to CycloneDX, validated against the schema shipped in the library."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from atmos_tasks.images.errors import BuildError
from atmos_tasks.images.sbom import (
    aggregate,
    build_sbom,
    components_from_lockfiles,
    components_from_terraform,
    packages_from_lockfiles,
    parse_requirements,
    validate,
    vendored_module,
)
from tests.images.conftest import APPS, FIXTURES, write_tree

TERRAFORM = FIXTURES / "terraform" / "ecs-service"
IMAGE = "registry.example.com:5000/acme/web@sha256:" + "9f" * 32


def purls(source: Path) -> list[str]:
    return [str(c.purl) for c in components_from_lockfiles(source)]


def test_requirements_pins_unpinned_entries_and_skipped_lines() -> None:
    by_purl = {str(p.purl()): p for p in packages_from_lockfiles(APPS / "python-requirements")}
    assert sorted(by_purl) == [
        "pkg:pypi/flask@3.0.2",
        "pkg:pypi/gunicorn@21.2.0",  # continued onto a --hash line
        "pkg:pypi/my-internal-lib",  # a direct URL reference has no version
        "pkg:pypi/python-dateutil",
        "pkg:pypi/requests@2.31.0",  # extras, markers and a trailing comment dropped
        "pkg:pypi/sqlalchemy",
    ]
    assert dict(by_purl["pkg:pypi/sqlalchemy"].properties) == {"atmos:version-constraint": ">=2.0,<3"}


def test_requirements_parser_ignores_options_and_comments() -> None:
    assert parse_requirements("# only a comment\n--extra-index-url https://x\n-c constraints.txt\n\n") == []
    assert (
        parse_requirements("https://x.example/a-1.0.whl\ngit+https://github.com/a/b.git#egg=b\n./lib\n") == []
    )
    assert [p.version for p in parse_requirements("a===1.0\nb==2.*\nc == 3.1\n")] == ["1.0", None, "3.1"]


def test_poetry_lock_with_a_git_source() -> None:
    assert purls(APPS / "python-poetry") == [
        "pkg:pypi/annotated-types@0.6.0",
        "pkg:pypi/orjson@3.9.12",
        "pkg:pypi/pydantic-core@2.14.6",
        "pkg:pypi/pydantic@2.5.3",
        "pkg:pypi/report-kit@0.4.1?vcs_url=git%2Bhttps://github.com/acme/report-kit.git"
        "%408f2c1d0e5b7a9c3d4e6f8a0b1c2d3e4f5a6b7c8d",
        "pkg:pypi/typing-extensions@4.9.0",
    ]


def test_pipfile_lock_marks_develop_packages_optional() -> None:
    scopes = {str(c.purl): c.scope for c in components_from_lockfiles(APPS / "python-pipfile")}
    assert set(scopes) == {"pkg:pypi/fastapi@0.109.0", "pkg:pypi/uvicorn@0.27.0", "pkg:pypi/pytest@8.0.0"}
    assert scopes["pkg:pypi/pytest@8.0.0"] is not None and scopes["pkg:pypi/pytest@8.0.0"].value == "optional"
    assert scopes["pkg:pypi/fastapi@0.109.0"] is None


def test_package_lock_v3_including_nested_and_scoped_packages() -> None:
    components = {str(c.purl): c for c in components_from_lockfiles(APPS / "node")}
    assert sorted(components) == [
        "pkg:npm/%40fastify/cors@9.0.1",
        "pkg:npm/fastify-plugin@4.5.1",
        "pkg:npm/fastify@4.26.0",
        "pkg:npm/mnemonist@0.39.6",
        "pkg:npm/obliterator@2.0.4",  # node_modules/mnemonist/node_modules/obliterator
        "pkg:npm/typescript@5.3.3",
    ]
    assert components["pkg:npm/%40fastify/cors@9.0.1"].name == "@fastify/cors"
    typescript = components["pkg:npm/typescript@5.3.3"].scope
    assert typescript is not None and typescript.value == "optional"  # "dev": true


def test_package_lock_v1_nested_dependencies_and_git_urls() -> None:
    assert purls(FIXTURES / "lockfiles" / "npm-v1") == [
        "pkg:npm/%40types/node@14.18.63",
        "pkg:npm/debug@2.6.9",
        "pkg:npm/express@4.18.2",
        "pkg:npm/left-pad",  # a git URL is not a version
        "pkg:npm/ms@2.0.0",
    ]


def test_package_lock_v2_skips_the_root_and_workspace_links(tmp_path: Path) -> None:
    lock = {
        "lockfileVersion": 2,
        "packages": {
            "": {"name": "mono"},
            "packages/ui": {"name": "@mono/ui", "version": "1.0.0"},
            "node_modules/@mono/ui": {"resolved": "packages/ui", "link": True},
            "node_modules/react": {"version": "18.2.0"},
            "node_modules/string-width-cjs": {"name": "string-width", "version": "4.2.3"},
        },
        "dependencies": {"react": {"version": "18.2.0"}},
    }
    write_tree(tmp_path, {"package-lock.json": json.dumps(lock)})
    assert purls(tmp_path) == ["pkg:npm/react@18.2.0", "pkg:npm/string-width@4.2.3"]


def test_go_sum_dedupes_go_mod_lines() -> None:
    assert purls(APPS / "go") == [
        "pkg:golang/github.com/gorilla/mux@v1.8.1",
        "pkg:golang/golang.org/x/net@v0.20.0",
        "pkg:golang/golang.org/x/sync@v0.6.0",
    ]


def test_cargo_lock_skips_local_crates_and_records_git_sources() -> None:
    assert purls(APPS / "rust") == [
        "pkg:cargo/metrics-shim@0.2.0?vcs_url=git%2Bhttps://github.com/acme/metrics-shim"
        "%404c1e7b2a9f0d3e5c6b7a8f9e0d1c2b3a4f5e6d7c",
        "pkg:cargo/pin-project-lite@0.2.13",
        "pkg:cargo/serde@1.0.195",
        "pkg:cargo/tokio@1.35.1",
    ]


def test_several_lock_files_in_one_tree_are_merged_without_duplicates(tmp_path: Path) -> None:
    for name in ("requirements.txt", "app.py"):
        shutil.copy(APPS / "python-requirements" / name, tmp_path / name)
    shutil.copy(APPS / "node" / "package-lock.json", tmp_path)
    (tmp_path / "poetry.lock").write_text('[[package]]\nname = "flask"\nversion = "3.0.2"\n')
    found = purls(tmp_path)
    assert len(found) == len(set(found)) == 12
    assert found == sorted(found)


def test_a_broken_lock_file_is_named(tmp_path: Path) -> None:
    write_tree(tmp_path, {"Cargo.lock": "[[package]\nname = "})
    with pytest.raises(BuildError, match=r"Cargo.lock could not be read as a lock file") as caught:
        components_from_lockfiles(tmp_path)
    assert caught.value.exit_code == 2


def test_terraform_providers_and_module_calls() -> None:
    components = {str(c.bom_ref.value): c for c in components_from_terraform(TERRAFORM)}
    assert sorted(components) == [
        "module.alarms",
        "pkg:generic/certs-2.0.0?download_url=https://artifacts.example.com/modules/certs-2.0.0.zip",
        "pkg:github/acme/terraform-dns@v1.3.2#records",
        "pkg:github/cloudposse/terraform-null-label@0.25.0",
        "pkg:terraform/hashicorp/aws@5.31.0",
        "pkg:terraform/hashicorp/null@2.1.2",
        "pkg:terraform/integrations/github@5.42.0?repository_url=registry.opentofu.org",
        "pkg:terraform/terraform-aws-modules/alb/aws@9.4.0",
        "pkg:terraform/terraform-aws-modules/ecs/aws#modules/service",
    ]
    aws = components["pkg:terraform/hashicorp/aws@5.31.0"]
    assert (aws.name, aws.version) == ("hashicorp/aws", "5.31.0")
    assert {(p.name, p.value) for p in aws.properties} == {
        ("terraform:kind", "provider"),
        ("terraform:constraints", ">= 5.0.0, < 6.0.0"),
    }
    service = components["pkg:terraform/terraform-aws-modules/ecs/aws#modules/service"]
    assert service.version is None  # "~> 5.7" is a constraint, not a version
    assert ("atmos:version-constraint", "~> 5.7") in {(p.name, p.value) for p in service.properties}
    label = components["pkg:github/cloudposse/terraform-null-label@0.25.0"]
    calls = sorted(p.value for p in label.properties if p.name == "terraform:module-call")
    assert calls == ["labels", "labels_internal"]  # one dependency, called twice
    assert components["module.alarms"].purl is None


def test_terraform_without_lock_file_and_with_bad_hcl(tmp_path: Path) -> None:
    write_tree(
        tmp_path, {"main.tf": 'module "x" {\n  source = "hashicorp/consul/aws"\n  version = "0.11.0"\n}\n'}
    )
    assert [str(c.purl) for c in components_from_terraform(tmp_path)] == [
        "pkg:terraform/hashicorp/consul/aws@0.11.0"
    ]
    (tmp_path / "broken.tf").write_text('module "y" {\n  source = \n')
    with pytest.raises(BuildError, match=r"broken.tf is not valid HCL"):
        components_from_terraform(tmp_path)


def test_component_sbom_with_image_validates() -> None:
    sbom = build_sbom("nixpack/web", "1.4.0", components_from_lockfiles(APPS / "node"), image=IMAGE)
    assert validate(sbom) == []
    assert sbom["specVersion"] == "1.6"
    root = sbom["metadata"]["component"]
    assert root["type"] == "container"
    assert root["purl"] == (
        "pkg:oci/web@sha256:" + "9f" * 32 + "?repository_url=registry.example.com:5000/acme/web"
    )
    assert len(sbom["components"]) == 6
    assert next(d for d in sbom["dependencies"] if d["ref"] == "nixpack/web")["dependsOn"] == sorted(
        c["bom-ref"] for c in sbom["components"]
    )


def test_terraform_sbom_validates_and_is_deterministic() -> None:
    first = build_sbom("terraform/ecs/service", None, components_from_terraform(TERRAFORM))
    second = build_sbom("terraform/ecs/service", None, components_from_terraform(TERRAFORM))
    assert validate(first) == []
    assert first == second
    assert "timestamp" not in first["metadata"]
    stamped = build_sbom("x", "1", [], timestamp=datetime(2024, 5, 1, tzinfo=UTC))
    assert stamped["metadata"]["timestamp"].startswith("2024-05-01T00:00:00")
    assert validate(stamped) == []
    assert build_sbom("x", "2", [])["serialNumber"] != build_sbom("x", "1", [])["serialNumber"]


def test_unpinned_image_is_refused() -> None:
    with pytest.raises(BuildError, match="is not pinned"):
        build_sbom("web", "1", [], image="registry.example.com/acme/web:latest")


def test_deployment_aggregate_nests_each_component_and_validates() -> None:
    per_component: dict[str, dict[str, Any]] = {
        "nixpack/web": build_sbom("web", "1.4.0", components_from_lockfiles(APPS / "node"), image=IMAGE),
        "nixpack/worker": build_sbom("worker", "0.2.0", components_from_lockfiles(APPS / "python-poetry")),
        "terraform/ecs/service": build_sbom("ecs/service", None, components_from_terraform(TERRAFORM)),
    }
    # Both apps use a library of the same purl: it must appear under each parent.
    per_component["nixpack/worker"] = build_sbom(
        "worker",
        "0.2.0",
        [*components_from_lockfiles(APPS / "python-poetry"), *components_from_lockfiles(APPS / "node")[:1]],
    )
    bom = aggregate("api", per_component, version="0123abc")
    assert validate(bom) == []
    assert bom["metadata"]["component"] == {
        "bom-ref": "deployment/api",
        "name": "api",
        "type": "application",
        "version": "0123abc",
    }
    parents = {c["bom-ref"]: c for c in bom["components"]}
    assert sorted(parents) == sorted(per_component)
    assert parents["nixpack/web"]["type"] == "container"
    assert len(parents["nixpack/web"]["components"]) == 6
    assert len(parents["terraform/ecs/service"]["components"]) == 9
    assert "nixpack/web:pkg:npm/%40fastify/cors@9.0.1" in {
        c["bom-ref"] for c in parents["nixpack/web"]["components"]
    }
    assert "nixpack/worker:pkg:npm/%40fastify/cors@9.0.1" in {
        c["bom-ref"] for c in parents["nixpack/worker"]["components"]
    }
    edges = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    assert edges["deployment/api"] == sorted(per_component)
    assert len(edges["terraform/ecs/service"]) == 9
    assert all(ref.startswith("terraform/ecs/service:") for ref in edges["terraform/ecs/service"])
    assert aggregate("api", dict(reversed(per_component.items())), version="0123abc") == bom


def test_aggregate_survives_a_json_round_trip_as_stored_in_git_notes() -> None:
    sbom = build_sbom("web", "1", components_from_lockfiles(APPS / "go"))
    stored = json.loads(json.dumps(sbom))
    assert validate(aggregate("api", {"nixpack/web": stored})) == []


def test_validate_reports_schema_problems() -> None:
    sbom = build_sbom("web", "1", components_from_lockfiles(APPS / "go"))
    sbom["components"][0]["type"] = "gadget"
    del sbom["components"][1]["name"]
    problems = validate(json.dumps(sbom))
    assert any(p.startswith("components/0/type: 'gadget' is not one of") for p in problems)
    assert any("'name' is a required property" in p for p in problems)


def test_importing_the_modules_stays_cheap() -> None:
    code = (
        "import sys, atmos_tasks.images.planner, atmos_tasks.images.sbom, atmos_tasks.images.oci, "
        "atmos_tasks.images.dockerfile\n"
        "heavy = [m for m in ('cyclonedx', 'hcl2', 'lark', 'packageurl', 'jsonschema') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_a_vendored_module_is_named_by_its_source_and_the_entrys_version() -> None:
    github = vendored_module("vpc", "github.com/acme/modules.git//vpc?ref=v2.1.0", "2.1.0")
    assert github.name == "vpc" and str(github.purl) == "pkg:github/acme/modules@v2.1.0#vpc"
    props = {p.name: p.value for p in github.properties}
    assert props == {
        "terraform:kind": "vendored-module",
        "terraform:source": "github.com/acme/modules.git//vpc?ref=v2.1.0",
        "terraform:vendor-version": "2.1.0",
    }
    beside = vendored_module("alarms", "git::./.sources/modules.git//alarms?ref=v1.3.0", "1.3.0")
    assert str(beside.purl) == "pkg:generic/modules@v1.3.0?vcs_url=git%2B./.sources/modules.git#alarms"
    archive = vendored_module("dns", "https://example.com/dns.tar.gz", "0.4.0")
    assert str(archive.purl).startswith("pkg:generic/dns@0.4.0?download_url=")  # no ref: the entry's version
    local = vendored_module("base", "./modules/base", None)
    assert local.purl is None and str(local.bom_ref.value) == "vendored.base"
    bom = build_sbom("monitoring/alarms-api", "abc123", [beside, github])
    assert validate(bom) == []
