"""SBOMs written directly and packages read back by content: the same documents as before.

`build_sbom` and `aggregate` write plain components as dictionaries; `_build_sbom_with_library`
and `_aggregate_with_library` are the code they replaced (cyclonedx-python-lib's model, the JSON
round trip, `register_dependency`), kept for what the direct way does not write. Each test here
holds one to the other, compared as JSON text, key order included, and as the note stores it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atmos_tasks import kinds
from atmos_tasks.images import sbom
from atmos_tasks.images.errors import BuildError
from atmos_tasks.images.sbom import (
    Package,
    aggregate,
    build_sbom,
    cache_in,
    components_from_lockfiles,
    components_from_terraform,
    packages_from_terraform,
    to_component,
    validate,
    vendored_module,
)
from atmos_tasks.record import RecordSpec, sbom_document, write_sbom
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


@pytest.fixture(autouse=True)
def fresh_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with nothing read in this process (the on-disk cache is the test's own)."""
    new_process(monkeypatch)


def new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sbom, "_READ", {})
    monkeypatch.setattr(sbom, "_KEPT", set())


@pytest.fixture
def direct_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail when the library's way is taken: the equality below must be the direct way's."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("went through cyclonedx-python-lib")

    monkeypatch.setattr(sbom, "_build_sbom_with_library", refuse)
    monkeypatch.setattr(sbom, "_aggregate_with_library", refuse)


def no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path) -> Any:
        raise AssertionError(f"parsed {path}")

    monkeypatch.setattr(sbom, "_load_hcl", refuse)


def lock(*providers: tuple[str, str]) -> str:
    return "".join(
        f'provider "registry.terraform.io/hashicorp/{name}" {{\n  version     = "{version}"\n'
        f'  constraints = ">= 1.0.0"\n  hashes = [\n    "h1:ltxyuBWIy9cq0kIKDJH1jeWJy/y7XJLjS4QrsQK4plA=",\n'
        '    "zh:0cdb9c2083bf0902442384f7309367791e4640581652dda456f2d6d7abf0de8d",\n  ]\n}\n\n'
        for name, version in providers
    )


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, dict[str, Any]]]:
    """The parts of a target: Terraform components (module folder, workdir with the module's
    files and a lock file; one vendored, one never initialised, two alike), one image, one app."""
    parts: dict[str, dict[str, Any]] = {}
    locks = {
        "ecs/service-a": lock(("aws", "5.31.0"), ("null", "3.2.2")),
        "ecs/service-b": lock(("aws", "5.31.0"), ("null", "3.2.2")),
        "ecs/service-c": lock(("aws", "5.40.0"), ("random", "3.6.0")),
        "monitoring/alarms": lock(("aws", "5.31.0")),
        "ecr/api": None,
    }
    for index, (name, text_) in enumerate(locks.items()):
        module = tmp_path / "components" / f"m{index}"
        shutil.copytree(TERRAFORM, module)
        work = tmp_path / ".atmos" / "workdir" / name.replace("/", "-")
        work.mkdir(parents=True)
        if text_ is not None:
            (module / ".terraform.lock.hcl").unlink()
            (work / ".terraform.lock.hcl").write_text(text_)
            for tf in module.glob("*.tf"):
                shutil.copy(tf, work / tf.name)
        parts[name] = {"kind": "terraform", "module": str(module), "workdir": str(work), "vendored": None}
    parts["monitoring/alarms"]["vendored"] = {
        "folder": "alarms",
        "source": "git::./.sources/modules.git//alarms?ref=v1.3.0",
        "version": "1.3.0",
    }
    parts["web"] = {"kind": "nixpack", "source": str(APPS / "node")}
    parts["worker"] = {"kind": "nixpack", "source": str(APPS / "python-poetry")}
    yield parts


def the_old_way(parts: dict[str, dict[str, Any]], images: dict[str, str]) -> dict[str, Any]:
    per_component = {
        name: old_build(name, SHA[:12], kinds.get(part["kind"]).sbom_components(part), images.get(name))
        for name, part in parts.items()
    }
    return OLD_AGGREGATE("api", per_component, version=SHA[:12])


def recorded(
    monkeypatch: pytest.MonkeyPatch, root: Path, parts: dict[str, Any], images: dict[str, str]
) -> Any:
    """What the record writes to the note (update_note replaced by a recorder)."""
    written = []

    def update_note(repo: Any, deployment: str, namespace: str, sha: str, change: Any, *rest: Any) -> None:
        written.append((deployment, namespace, sha, change))

    monkeypatch.setattr("atmos_tasks.notes.update_note", update_note)
    spec = RecordSpec(
        root=str(root),
        deployment="api",
        target="dev",
        git_sha=SHA,
        components=tuple((part["kind"], name) for name, part in parts.items()),
        parts=parts,
    )
    outcomes = {name: ({}, {"image": image}) for name, image in images.items()}
    write_sbom(None, spec, sbom_document(spec, outcomes))  # type: ignore[arg-type]
    [(deployment, namespace, sha, change)] = written
    assert (deployment, namespace, sha) == ("api", "sbom", SHA)
    return change["targets"]["dev"]


def test_a_recorded_sbom_is_the_same_document_cold_warm_and_from_disk(
    tmp_path: Path, deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch, direct_only: None
) -> None:
    images = {"web": IMAGE}
    before = the_old_way(deployment, images)
    assert validate(before) == []
    cold = recorded(monkeypatch, tmp_path, deployment, images)
    assert text(cold) == text(before) and note(cold) == note(before)
    cache = tmp_path / ".atmos" / "cache" / "sbom"
    # Two workdirs hold the same files: 4 distinct Terraform folders, 2 apps.
    assert len(list(cache.glob("*.json"))) == 6
    new_process(monkeypatch)  # a new run: only the disk remembers
    no_parsing(monkeypatch)
    assert text(recorded(monkeypatch, tmp_path, deployment, images)) == text(before)


def test_one_changed_lock_file_is_read_again_and_only_it(
    tmp_path: Path, deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded(monkeypatch, tmp_path, deployment, {})
    changed = Path(deployment["ecs/service-c"]["workdir"]) / ".terraform.lock.hcl"
    changed.write_text(lock(("aws", "5.41.0"), ("random", "3.6.0")))
    new_process(monkeypatch)
    parsed = []
    load = sbom._load_hcl
    monkeypatch.setattr(sbom, "_load_hcl", lambda path: parsed.append(path) or load(path))
    after = recorded(monkeypatch, tmp_path, deployment, {})
    assert {p.parent for p in parsed} == {changed.parent}
    assert text(after) == text(the_old_way(deployment, {}))
    service = next(c for c in after["components"] if c["bom-ref"] == "ecs/service-c")
    assert "ecs/service-c:pkg:terraform/hashicorp/aws@5.41.0" in {c["bom-ref"] for c in service["components"]}


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b'{"format": 1, "packages": [{"type": "terraform"',
        b"\x00\xff not json",
        b'{"format": 1, "packages": [{"type": 3}]}',
        b'{"format": 1, "packages": {"type": "terraform"}}',
        b'{"format": 1, "packages": [{"type": "pypi", "name": "x", "version": null, "namespace": null, '
        b'"qualifiers": [["a"]], "subpath": null, "optional": false, "properties": [], '
        b'"display_name": null, "bom_ref": null, "purl": "pkg:pypi/x"}]}',
        b'{"format": 999, "packages": []}',
        b"[]",
    ],
)
def test_a_damaged_cache_file_is_a_miss(tmp_path: Path, damage: bytes) -> None:
    cache = tmp_path / "cache"
    with cache_in(cache):
        expected = [c.purl for c in components_from_terraform(TERRAFORM)]
    [entry] = cache.glob("*.json")
    entry.write_bytes(damage)
    sbom._READ.clear()
    sbom._KEPT.clear()
    with cache_in(cache):
        assert [c.purl for c in components_from_terraform(TERRAFORM)] == expected
    assert json.loads(entry.read_text())["format"] == sbom.CACHE_FORMAT  # written again, whole


def test_an_unwritable_cache_is_no_error(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("a file where the folder would be")
    with cache_in(tmp_path / "cache" / "sbom"):
        assert len(packages_from_terraform(TERRAFORM)) == 9
    assert list(tmp_path.iterdir()) == [tmp_path / "cache"]


def test_broken_files_are_refused_every_time_never_cached(tmp_path: Path) -> None:
    module = tmp_path / "module"
    module.mkdir()
    (module / "main.tf").write_text('module "y" {\n  source = \n')
    for _ in range(2):
        with cache_in(tmp_path / "cache"), pytest.raises(BuildError, match=r"main\.tf is not valid HCL"):
            packages_from_terraform(module)
    (module / "Cargo.lock").write_text("[[package]\nname = ")
    for _ in range(2):
        with (
            cache_in(tmp_path / "cache"),
            pytest.raises(BuildError, match="could not be read as a lock file"),
        ):
            components_from_lockfiles(module)
    assert not (tmp_path / "cache").exists()


def test_the_cache_key_follows_every_file_read(tmp_path: Path) -> None:
    module = tmp_path / "module"
    shutil.copytree(TERRAFORM, module)
    with cache_in(tmp_path / "cache"):
        first = packages_from_terraform(module)
        (module / "extra.tf").write_text('module "more" {\n  source = "hashicorp/consul/aws"\n}\n')
        assert len(packages_from_terraform(module)) == len(first) + 1
        (module / ".terraform.lock.hcl").unlink()
        assert not any(
            p.type == "terraform" and p.display_name == "hashicorp/aws"
            for p in packages_from_terraform(module)
        )
        (module / "extra.tf").unlink()
        shutil.copy(TERRAFORM / ".terraform.lock.hcl", module)
        assert packages_from_terraform(module) == first
    assert len(list((tmp_path / "cache").glob("*.json"))) == 3


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
