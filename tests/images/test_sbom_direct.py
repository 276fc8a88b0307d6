"""SBOMs written directly and packages read back by content: the same documents as before.

`build_sbom` and `aggregate` write plain components as dictionaries; `_build_sbom_with_library`
and `_aggregate_with_library` are the code they replaced (cyclonedx-python-lib's model, the JSON
round trip, `register_dependency`), kept for what the direct way does not write. Each test here
holds one to the other, compared as JSON text, key order included, and as the note stores it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atmos_tasks.images import sbom
from atmos_tasks.images.errors import BuildError
from atmos_tasks.images.sbom import (
    Package,
    aggregate,
    build_sbom,
    components_from_lockfiles,
    components_from_terraform,
    to_component,
    validate,
    vendored_module,
)
from tests.images.conftest import APPS, FIXTURES

TERRAFORM = FIXTURES / "terraform" / "ecs-service"
IMAGE = "registry.example.com:5000/acme/web@sha256:" + "9f" * 32
SHA = "0123456789abcdef0123456789abcdef01234567"


def text(document: Any) -> str:
    return json.dumps(document)


def note(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"  # as notes.update_note writes it


# The library's way, held before `direct_only` replaces it.
OLD_BUILD = sbom._build_sbom_with_library
OLD_AGGREGATE = sbom._aggregate_with_library


def old_build(name: str, version: str | None, components: list[Any], image: str | None = None) -> Any:
    return OLD_BUILD(name, version, components, image)


@pytest.fixture
def direct_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail when the library's way is taken: the equality below must be the direct way's."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("went through cyclonedx-python-lib")

    monkeypatch.setattr(sbom, "_build_sbom_with_library", refuse)
    monkeypatch.setattr(sbom, "_aggregate_with_library", refuse)


def test_a_deployment_sbom_is_the_same_document(direct_only: None) -> None:
    """Terraform components (providers, module calls, a vendored module), an image, an app."""
    terraform = components_from_terraform(TERRAFORM)
    vendored = vendored_module("alarms", "git::./.sources/modules.git//alarms?ref=v1.3.0", "1.3.0")
    parts = {
        "ecs/service-a": (terraform, None),
        "ecs/service-b": (terraform[2:], None),
        "monitoring/alarms": ([vendored, *terraform[:3]], None),
        "ecr/api": ([], None),
        "web": (components_from_lockfiles(APPS / "node"), IMAGE),
        "worker": (components_from_lockfiles(APPS / "python-poetry"), None),
    }
    old = {name: old_build(name, SHA[:12], found, image) for name, (found, image) in parts.items()}
    new = {name: build_sbom(name, SHA[:12], found, image) for name, (found, image) in parts.items()}
    assert [text(new[name]) for name in parts] == [text(old[name]) for name in parts]
    before = OLD_AGGREGATE("api", old, version=SHA[:12])
    after = aggregate("api", new, version=SHA[:12])
    assert validate(before) == []
    assert text(after) == text(before) and note(after) == note(before)
    stamp = datetime(2024, 5, 1, tzinfo=UTC)
    assert text(aggregate("api", new, timestamp=stamp)) == text(OLD_AGGREGATE("api", old, timestamp=stamp))


def test_plain_components_are_written_directly(direct_only: None) -> None:
    components = [
        vendored_module("vpc", "github.com/acme/modules.git//vpc?ref=v2.1.0", "2.1.0"),
        vendored_module("base", "./modules/base", None),
        *components_from_terraform(TERRAFORM),
        *components_from_lockfiles(APPS / "python-pipfile"),  # optional scope
        *components_from_lockfiles(APPS / "rust"),  # qualifiers
    ]
    for image in (None, IMAGE):
        assert text(build_sbom("c", "1", components, image)) == text(old_build("c", "1", components, image))
    assert text(build_sbom("c", None, [])) == text(old_build("c", None, []))


def test_other_components_go_through_the_library() -> None:
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.component import Component

    hashed = to_component(Package("pypi", "flask", "3.0.2"))
    hashed.hashes.add(HashType(alg=HashAlgorithm.SHA_256, content="ab" * 32))
    described = Component(name="tool", bom_ref="tool", description="made here")

    class Special(Component):
        pass

    special = Special(name="special", bom_ref="special")  # the library writes it by its class
    for components in ([hashed], [described], [special]):
        assert text(build_sbom("c", "1", components)) == text(old_build("c", "1", components))
    assert build_sbom("c", "1", [hashed])["components"][0]["hashes"]
    assert build_sbom("c", "1", [described])["components"][0]["description"] == "made here"
    odd = old_build("c", "1", [described])
    odd["components"][0]["hashes"] = [{"alg": "SHA-256", "content": "ab" * 32}]
    assert text(aggregate("api", {"c": odd})) == text(OLD_AGGREGATE("api", {"c": odd}))
    assert aggregate("api", {"c": odd})["components"][0]["components"][0]["description"] == "made here"


def test_a_bom_without_its_component_is_still_refused() -> None:
    with pytest.raises(BuildError, match=r"has no metadata\.component"):
        aggregate("api", {"x": {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}})


# --- any BOM of plain components, as read by aggregate -------------------------------------------

names = st.sampled_from(["a", "b", "web", "Web", "z/y", "ecs/service", "é", "a b", "x:y"])
values = st.one_of(st.none(), st.sampled_from(["1", "1.0.0", "v2", "0.1", "sha256:" + "ab" * 32]))
purls = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "pkg:pypi/flask@3.0.2",
            "pkg:npm/%40fastify/cors@9.0.1",
            "pkg:NPM/Left-Pad",
            "pkg:terraform/hashicorp/aws@5.31.0?repository_url=registry.opentofu.org",
            "pkg:github/acme/terraform-dns@v1.3.2#records",
            "pkg:generic/certs?download_url=https://x.example/c.zip&b=1&a=2",
            "pkg:oci/web@sha256:" + "9f" * 32 + "?repository_url=registry.example.com:5000/acme/web",
        ]
    ),
)
properties = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["p", "q", "terraform:kind"]), "value": st.sampled_from(["1", "2", "x"])}
    ),
    max_size=4,
)


@st.composite
def components(draw: st.DrawFn, ref: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"bom-ref": ref or draw(names), "name": draw(names)}
    found["type"] = draw(st.sampled_from(["library", "application", "container", "framework"]))
    for key, strategy in (("version", values), ("purl", purls), ("group", st.one_of(st.none(), names))):
        value = draw(strategy)
        if value is not None:
            found[key] = value
    if draw(st.booleans()):
        found["properties"] = draw(properties)
    if draw(st.booleans()):
        found["scope"] = draw(st.sampled_from(["required", "optional", "excluded"]))
    return found


@st.composite
def boms(draw: st.DrawFn) -> dict[str, Any]:
    refs = draw(st.lists(st.sampled_from(["r1", "r2", "r3", "pkg:pypi/a@1", "m.x"]), unique=True, max_size=4))
    root = draw(components(ref=draw(st.sampled_from(["root", "r9"]))))
    children = [draw(components(ref=ref)) for ref in refs]
    known = [root["bom-ref"], *refs, "elsewhere"]
    dependencies = [
        {"ref": source, "dependsOn": draw(st.lists(st.sampled_from(known), max_size=3))}
        for source in draw(st.lists(st.sampled_from(known), max_size=4))
    ]
    document: dict[str, Any] = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}
    document["metadata"] = {"component": root}
    if children or draw(st.booleans()):
        document["components"] = children
    document["dependencies"] = [d if d["dependsOn"] else {"ref": d["ref"]} for d in dependencies]
    return document


@given(
    st.dictionaries(st.sampled_from(["terraform/a", "terraform/b", "nixpack/web", "x"]), boms(), max_size=4),
    values,
)
def test_aggregate_reads_any_plain_bom_as_the_library_does(
    per_component: dict[str, Any], version: str | None
) -> None:
    assert text(aggregate("api", per_component, version=version)) == text(
        OLD_AGGREGATE("api", per_component, version=version)
    )


packages = st.builds(
    Package,
    type=st.sampled_from(["pypi", "npm", "terraform", "github", "generic", "local"]),
    name=names,
    version=values,
    namespace=st.one_of(st.none(), st.sampled_from(["hashicorp", "@scope", "acme/mods"])),
    qualifiers=st.sampled_from(
        [(), (("repository_url", "registry.opentofu.org"),), (("vcs_url", "git+./m.git"),)]
    ),
    subpath=st.one_of(st.none(), st.just("modules/service")),
    optional=st.booleans(),
    properties=st.lists(st.tuples(st.sampled_from(["p", "q"]), st.sampled_from(["1", "2"])), max_size=3).map(
        tuple
    ),
    display_name=st.one_of(st.none(), names),
)


@given(st.lists(packages, max_size=6, unique_by=lambda p: p.ref()), st.sampled_from([None, IMAGE]), values)
def test_build_sbom_writes_any_packages_as_the_library_does(
    found: list[Package], image: str | None, version: str | None
) -> None:
    listed = [to_component(p) for p in found]
    assert text(build_sbom("c", version, listed, image)) == text(old_build("c", version, listed, image))
