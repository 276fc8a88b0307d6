"""CycloneDX SBOMs from lock files and Terraform modules, per component and per deployment (SPEC §8).

Lock files are parsed into plain `Package` records by pure functions; only turning them into
`cyclonedx` components, BOMs and validating them imports cyclonedx-python-lib, inside the
functions, so importing this module stays cheap. `python-hcl2` is imported the same way.

Package URLs: `pkg:pypi`, `pkg:npm`, `pkg:golang`, `pkg:cargo` as the purl spec defines them.
Terraform has no registered purl type; providers and registry modules use `pkg:terraform/…`
mirroring their registry address (`pkg:terraform/hashicorp/null@3.2.2`,
`pkg:terraform/terraform-aws-modules/vpc/aws@5.5.1`, with `repository_url` for registries other
than registry.terraform.io), modules from GitHub `pkg:github/org/repo@ref#subdir`, other Git or
HTTP sources `pkg:generic/<name>@<ref>` with `vcs_url` or `download_url`. Local modules have no
purl. A version is only a version when it is exact; a constraint (`>=2`, `~> 5.0`) is kept as the
property `atmos:version-constraint` and the component carries no version.

BOMs are CycloneDX 1.6 JSON without a timestamp unless one is given, and with a serial number
derived from their content, so the same inputs give the same document. They are written directly
as JSON, in the order and form cyclonedx-python-lib writes them; components carrying anything this
module does not write go through the library.

Recording a deployment's SBOM reads every component, changed or not, so what is read is kept by
content: inside `cache_in(directory)`, the packages of a Terraform module or an application's
lock files are stored under the BLAKE3 of the files they were read from (and of this module, the
parsers' versions and Python's), and a run reads them back instead of parsing HCL again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import re
import sys
import threading
import tomllib
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmos_tasks import __version__
from atmos_tasks.images.errors import BuildError
from atmos_tasks.images.sourcetree import require_source_dir

if TYPE_CHECKING:
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component

SPEC_VERSION = "1.6"
TERRAFORM_REGISTRY = "registry.terraform.io"
_SERIAL_NAMESPACE = uuid.UUID("6f1d6c1e-2a53-4f0c-9b8e-6d7a7c1f0b5a")
_EXACT_VERSION = re.compile(r"=?\s*(v?\d+(?:\.\d+)*(?:[-+][0-9A-Za-z.+-]+)?)")


@dataclass(frozen=True)
class Package:
    """One dependency as read from a lock file, before it becomes a CycloneDX component."""

    type: str
    name: str
    version: str | None = None
    namespace: str | None = None
    qualifiers: tuple[tuple[str, str], ...] = ()
    subpath: str | None = None
    optional: bool = False
    properties: tuple[tuple[str, str], ...] = ()
    display_name: str | None = None
    bom_ref: str | None = None

    def purl(self) -> str | None:
        if self.type == "local":
            return None
        found = _PURLS.get(self)
        if found is None:
            from packageurl import PackageURL

            found = _PURLS[self] = str(
                PackageURL(
                    type=self.type,
                    namespace=self.namespace,
                    name=self.name,
                    version=self.version,
                    qualifiers=dict(self.qualifiers) or None,
                    subpath=self.subpath,
                )
            )
        return found

    def ref(self) -> str:
        return self.bom_ref or self.purl() or f"{self.type}/{self.name}"


# A package's purl, computed once per process (packageurl's quoting is most of reading a package).
_PURLS: dict[Package, str] = {}


# --- lock files ---------------------------------------------------------------------------------


def parse_requirements(text: str) -> list[Package]:
    """`name==version` pins, and unpinned names without a version; options, URLs and comments are skipped."""
    packages = []
    for line in re.sub(r"\\\r?\n", " ", text).splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).split(" --")[0].split(";")[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*(.*)", line)
        if not line or line.startswith("-") or not match:
            continue
        name, spec = match.group(1), match.group(2).strip()
        if spec and spec[0] not in "=<>!~@":
            continue  # a bare URL or VCS reference (https://…, git+https://…) names no package
        if spec.startswith("@"):
            packages.append(Package("pypi", name))
            continue
        pinned = re.fullmatch(r"===?\s*([^\s,*]+)", spec)
        constraint = (("atmos:version-constraint", spec),) if spec and not pinned else ()
        packages.append(Package("pypi", name, pinned.group(1) if pinned else None, properties=constraint))
    return packages


def parse_poetry_lock(text: str) -> list[Package]:
    packages = []
    for entry in tomllib.loads(text).get("package", []):
        source = entry.get("source") or {}
        qualifiers: tuple[tuple[str, str], ...] = ()
        if source.get("type") == "git":
            commit = source.get("resolved_reference") or source.get("reference")
            qualifiers = (("vcs_url", f"git+{source['url']}" + (f"@{commit}" if commit else "")),)
        packages.append(Package("pypi", entry["name"], entry.get("version"), qualifiers=qualifiers))
    return packages


def parse_pipfile_lock(text: str) -> list[Package]:
    data = json.loads(text)
    packages = []
    for section, optional in (("default", False), ("develop", True)):
        for name, meta in sorted((data.get(section) or {}).items()):
            pinned = re.fullmatch(r"===?(.+)", str((meta or {}).get("version", "")))
            packages.append(Package("pypi", name, pinned.group(1) if pinned else None, optional=optional))
    return packages


def _npm(name: str, version: object, dev: bool) -> Package:
    namespace, _, bare = name.rpartition("/")
    # A git or tarball dependency records its URL where a version would be; that is no version.
    exact = version if isinstance(version, str) and _EXACT_VERSION.fullmatch(version) else None
    return Package("npm", bare, exact, namespace=namespace or None, optional=dev)


def parse_package_lock(text: str) -> list[Package]:
    """npm lockfileVersion 2 and 3 (`packages`), and 1 (nested `dependencies`)."""
    data = json.loads(text)
    packages = []
    if isinstance(data.get("packages"), dict):
        for key, meta in data["packages"].items():
            # "" is the project itself; keys without node_modules/ are workspace folders.
            if "node_modules/" not in key or meta.get("link"):
                continue
            name = meta.get("name") or key.rsplit("node_modules/", 1)[1]
            packages.append(_npm(name, meta.get("version"), bool(meta.get("dev"))))
        return packages

    def walk(dependencies: Mapping[str, Any]) -> None:
        for name, meta in dependencies.items():
            packages.append(_npm(name, meta.get("version"), bool(meta.get("dev"))))
            walk(meta.get("dependencies") or {})

    walk(data.get("dependencies") or {})
    return packages


def parse_go_sum(text: str) -> list[Package]:
    """One package per module version; the `/go.mod`-only hash lines name the same module."""
    seen: dict[tuple[str, str], Package] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 3:
            continue
        module, version = fields[0], fields[1].removesuffix("/go.mod")
        namespace, _, name = module.rpartition("/")
        seen.setdefault((module, version), Package("golang", name, version, namespace=namespace or None))
    return list(seen.values())


def parse_cargo_lock(text: str) -> list[Package]:
    """Crates with a source; those without are the workspace's own crates, not dependencies."""
    packages = []
    for entry in tomllib.loads(text).get("package", []):
        source = entry.get("source")
        if not source:
            continue
        qualifiers: tuple[tuple[str, str], ...] = ()
        if source.startswith("git+"):
            # git+URL?rev=…#<commit>: purl's vcs_url form is git+URL@<commit>.
            url, _, commit = source.partition("#")
            qualifiers = (("vcs_url", url.partition("?")[0] + (f"@{commit}" if commit else "")),)
        elif "crates.io" not in source:
            qualifiers = (("repository_url", source.partition("+")[2]),)
        packages.append(Package("cargo", entry["name"], entry.get("version"), qualifiers=qualifiers))
    return packages


LOCKFILES: tuple[tuple[str, Any], ...] = (
    ("requirements.txt", parse_requirements),
    ("poetry.lock", parse_poetry_lock),
    ("Pipfile.lock", parse_pipfile_lock),
    ("package-lock.json", parse_package_lock),
    ("npm-shrinkwrap.json", parse_package_lock),
    ("go.sum", parse_go_sum),
    ("Cargo.lock", parse_cargo_lock),
)


def packages_from_lockfiles(source_dir: Path | str) -> list[Package]:
    """Every package of the lock files at the root of `source_dir`, deduplicated, sorted by purl."""
    root = require_source_dir(source_dir)

    def files() -> list[Path]:
        return [root / name for name, _ in LOCKFILES if (root / name).is_file()]

    return _by_content("lockfiles", files, lambda: _read_lockfiles(root, source_dir))


def _read_lockfiles(root: Path, source_dir: Path | str) -> list[Package]:
    found: dict[str, Package] = {}
    for filename, parse in LOCKFILES:
        path = root / filename
        if not path.is_file():
            continue
        try:
            packages = parse(path.read_text())
        except (ValueError, KeyError, TypeError, AttributeError, tomllib.TOMLDecodeError) as error:
            raise BuildError(
                f"{source_dir}/{filename} could not be read as a lock file ({error}); fix it"
            ) from None
        for package in packages:
            found.setdefault(package.ref(), package)
    return [found[ref] for ref in sorted(found)]


def components_from_lockfiles(source_dir: Path | str) -> list[Component]:
    """Components for requirements.txt, poetry.lock, Pipfile.lock, package-lock.json, go.sum, Cargo.lock."""
    return [to_component(package) for package in packages_from_lockfiles(source_dir)]


# --- Terraform ----------------------------------------------------------------------------------


def _unquote(value: object) -> str | None:
    """A literal string from python-hcl2, whose versions differ in keeping the quotes."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        return None
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def _load_hcl(path: Path) -> dict[str, Any]:
    from atmos_tasks import hcl

    try:
        return dict(hcl.load(path.read_text(), ("provider", "module")))
    # python-hcl2 raises lark's parse errors, which share no narrower base class.
    except Exception as error:
        raise BuildError(f"{path} is not valid HCL ({str(error).splitlines()[0]}); fix the file") from None


def _blocks(document: Mapping[str, Any], kind: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
    for block in document.get(kind) or []:
        for label, body in block.items():
            yield _unquote(label) or label, body


def _version(value: str | None) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """(exact version or None, constraint property when it is not exact)."""
    if not value:
        return None, ()
    exact = _EXACT_VERSION.fullmatch(value.strip())
    if exact:
        return exact.group(1), ()
    return None, (("atmos:version-constraint", value),)


def _provider_package(address: str, body: Mapping[str, Any]) -> Package:
    parts = address.split("/")
    host, namespace, name = (
        (parts[0], parts[1], parts[2]) if len(parts) == 3 else (TERRAFORM_REGISTRY, *parts[-2:])
    )
    version, constraint = _version(_unquote(body.get("version")))
    constraints = _unquote(body.get("constraints"))
    properties = [("terraform:kind", "provider"), *constraint]
    if constraints:
        properties.append(("terraform:constraints", constraints))
    qualifiers = () if host == TERRAFORM_REGISTRY else (("repository_url", host),)
    return Package(
        "terraform",
        name,
        version,
        namespace=namespace,
        qualifiers=qualifiers,
        properties=tuple(properties),
        display_name=f"{namespace}/{name}",
    )


_REGISTRY_MODULE = re.compile(r"(?:([a-z0-9.-]+\.[a-z]{2,}(?::\d+)?)/)?([\w-]+)/([\w-]+)/([\w-]+)(?://(.+))?")
_GIT_SUFFIX = re.compile(r"\.git$")
_ARCHIVE_SUFFIX = re.compile(r"\.(git|zip|tar|tgz|tar\.gz|tar\.bz2|tar\.xz)$")


def _module_package(call: str, source: str, version_text: str | None) -> Package:
    version, constraint = _version(version_text)
    properties = (("terraform:kind", "module"), ("terraform:module-call", call), ("terraform:source", source))
    if source.startswith(("./", "../", "/")):
        return Package("local", call, properties=properties, display_name=call, bom_ref=f"module.{call}")
    registry = _REGISTRY_MODULE.fullmatch(source)
    if registry and not source.startswith(("github.com/", "bitbucket.org/")):
        host, namespace, name, system, subdir = registry.groups()
        return Package(
            "terraform",
            system,
            version,
            namespace=f"{namespace}/{name}",
            qualifiers=(("repository_url", host),) if host and host != TERRAFORM_REGISTRY else (),
            subpath=subdir,
            properties=properties + constraint,
            display_name=f"{namespace}/{name}/{system}",
        )
    address, _, query = source.removeprefix("git::").partition("?")
    ref = dict(p.partition("=")[::2] for p in query.split("&") if p).get("ref")
    scheme, sep, rest = address.partition("://")
    location, _, subdir = (rest if sep else scheme).partition("//")
    if location.startswith("github.com/") and location.count("/") >= 2:
        _, org, repo = location.split("/")[:3]
        return Package(
            "github",
            _GIT_SUFFIX.sub("", repo),
            ref,
            namespace=org,
            subpath=subdir or None,
            properties=properties,
            display_name=f"{org}/{_GIT_SUFFIX.sub('', repo)}",
        )
    if sep:
        url = f"{scheme}://{location}"
    else:  # a repository beside the checkout (`git::./modules.git`) keeps its relative path
        url = location if location.startswith(("./", "../", "/")) else f"https://{location}"
    is_git = source.startswith("git::") or location.endswith(".git")
    name = _ARCHIVE_SUFFIX.sub("", location.rstrip("/").rsplit("/", 1)[-1]) or call
    qualifier = ("vcs_url", f"git+{url}") if is_git else ("download_url", source)
    return Package(
        "generic",
        name,
        ref or version,
        qualifiers=(qualifier,),
        subpath=subdir or None,
        properties=properties + constraint,
        display_name=name,
    )


def packages_from_terraform(module_dir: Path | str) -> list[Package]:
    """Providers of `.terraform.lock.hcl` and the module calls of `*.tf` in `module_dir`."""
    root = require_source_dir(module_dir)

    def files() -> list[Path]:
        lock = root / ".terraform.lock.hcl"
        return ([lock] if lock.is_file() else []) + sorted(root.glob("*.tf"))

    return _by_content("terraform", files, lambda: _read_terraform(root))


def _read_terraform(root: Path) -> list[Package]:
    packages: dict[str, Package] = {}
    lock = root / ".terraform.lock.hcl"
    if lock.is_file():
        for address, body in _blocks(_load_hcl(lock), "provider"):
            package = _provider_package(address, body)
            packages[package.ref()] = package
    for path in sorted(root.glob("*.tf")):
        for call, body in _blocks(_load_hcl(path), "module"):
            source = _unquote(body.get("source"))
            if not source:
                raise BuildError(f"{path}: module {call!r} has no literal source; Terraform requires one")
            package = _module_package(call, source, _unquote(body.get("version")))
            previous = packages.get(package.ref())
            if previous is not None:
                # The same module called twice is one dependency; keep every call's name.
                calls = tuple(p for p in package.properties if p[0] == "terraform:module-call")
                package = dataclasses.replace(previous, properties=previous.properties + calls)
            packages[package.ref()] = package
    return [packages[ref] for ref in sorted(packages)]


# --- what was read, by content ------------------------------------------------------------------

_CACHE_DIR: ContextVar[Path | None] = ContextVar("atmos_tasks_sbom_cache", default=None)
# Packages by content key, for this process: components sharing a module or a lock file read it
# once; and the cache files this process wrote or read.
_READ: dict[str, tuple[Package, ...]] = {}
_KEPT: set[Path] = set()
CACHE_FORMAT = 1


@contextlib.contextmanager
def cache_in(directory: Path | str) -> Iterator[None]:
    """Within this block, packages read from lock files and modules are kept in `directory`
    (one JSON file per content key) and read back from it: a later run parses only what changed."""
    token = _CACHE_DIR.set(Path(directory))
    try:
        yield
    finally:
        _CACHE_DIR.reset(token)


@functools.cache
def _cache_salt() -> bytes:
    """What else decides the packages read from a file: this module's code and the parsers' versions."""
    from importlib.metadata import PackageNotFoundError, version

    import blake3

    python = ".".join(map(str, sys.version_info[:2]))  # tomllib reads lock files
    digest = blake3.blake3(f"atmos-tasks sbom cache {CACHE_FORMAT} {__version__} {python}\0".encode())
    from atmos_tasks import hcl

    for code in (__file__, hcl.__file__):
        with contextlib.suppress(OSError):
            digest.update(Path(code).read_bytes())
    for dist in ("python-hcl2", "tree-sitter", "tree-sitter-hcl", "packageurl-python"):
        try:
            digest.update(f"\0{dist} {version(dist)}".encode())
        except PackageNotFoundError:
            digest.update(f"\0{dist} -".encode())
    return digest.digest()


def _content_key(what: str, files: Sequence[Path]) -> str | None:
    """BLAKE3 of the files' names and contents; None when one cannot be read (reading says why)."""
    import blake3

    digest = blake3.blake3(_cache_salt() + what.encode())
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            return None
        digest.update(f"\0{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _by_content(
    what: str, files: Callable[[], list[Path]], read: Callable[[], list[Package]]
) -> list[Package]:
    """`read()`, or what it returned for files with the same content (in this process, or in the
    cache directory of `cache_in`). A failure is never kept: a broken file is read, and refused, again."""
    key = _content_key(what, files())
    if key is None:
        return read()
    directory = _CACHE_DIR.get()
    path = None if directory is None else directory / f"{key}.json"
    found = _READ.get(key)
    if found is None and path is not None:
        found = _load_packages(path)
        if found is not None:
            _KEPT.add(path)
    if found is None:
        packages = read()
        if _content_key(what, files()) != key:
            return packages  # the files changed while they were read: keep nothing
        found = tuple(packages)
    if path is not None and path not in _KEPT:
        _store_packages(path, found)
        _KEPT.add(path)
    _READ[key] = found
    return list(found)


def _package_json(package: Package) -> dict[str, Any]:
    return {**dataclasses.asdict(package), "purl": package.purl()}


def _load_packages(path: Path) -> tuple[Package, ...] | None:
    """The packages a cache file holds; None when it is missing or damaged in any way (a miss)."""

    def text(value: object, optional: bool = True) -> str | None:
        if (value is None and optional) or isinstance(value, str):
            return value
        raise TypeError(value)

    def pairs(value: object) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value
        ):
            raise TypeError(value)
        return tuple((a, b) for a, b in value)

    try:
        entry = json.loads(path.read_bytes())
        if entry.get("format") != CACHE_FORMAT or not isinstance(entry.get("packages"), list):
            return None
        packages = []
        for item in entry["packages"]:
            if not isinstance(item.get("optional"), bool):
                return None
            package = Package(
                type=str(text(item["type"], False)),
                name=str(text(item["name"], False)),
                version=text(item["version"]),
                namespace=text(item["namespace"]),
                qualifiers=pairs(item["qualifiers"]),
                subpath=text(item["subpath"]),
                optional=item["optional"],
                properties=pairs(item["properties"]),
                display_name=text(item["display_name"]),
                bom_ref=text(item["bom_ref"]),
            )
            purl = text(item["purl"], package.type == "local")
            packages.append((package, purl))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    for package, purl in packages:
        if purl is not None:
            _PURLS.setdefault(package, purl)
    return tuple(package for package, _ in packages)


def _store_packages(path: Path, packages: Sequence[Package]) -> None:
    """Written whole or not at all (a temporary file, then a rename); a cache that cannot be
    written only costs the next run a parse."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"format": CACHE_FORMAT, "packages": [_package_json(p) for p in packages]}))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def vendored_module(folder: str, source: str, version: str | None) -> Component:
    """The vendored module a Terraform component runs, as the vendor entry chose it for the target:
    its purl follows the source like a module call's (`pkg:github/…`, `pkg:generic/…?vcs_url=…`),
    `terraform:kind` is `vendored-module`, and the entry's version is kept as written."""
    package = _module_package(folder, source, None)
    dropped = ("terraform:kind", "terraform:module-call")
    kept = tuple(p for p in package.properties if p[0] not in dropped)
    properties = (("terraform:kind", "vendored-module"), *kept)
    if version is not None:
        properties += (("terraform:vendor-version", version),)
    if package.type == "local":
        package = dataclasses.replace(package, bom_ref=f"vendored.{folder}")
    elif package.version is None and version is not None:
        package = dataclasses.replace(package, version=version)
    return to_component(dataclasses.replace(package, properties=properties, display_name=folder))


def components_from_terraform(module_dir: Path | str) -> list[Component]:
    return [to_component(package) for package in packages_from_terraform(module_dir)]


# --- BOMs ---------------------------------------------------------------------------------------


def to_component(package: Package) -> Component:
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentScope, ComponentType
    from packageurl import PackageURL

    purl = package.purl()
    return Component(
        name=package.display_name
        or (f"{package.namespace}/{package.name}" if package.namespace else package.name),
        version=package.version,
        type=ComponentType.LIBRARY,
        purl=PackageURL.from_string(purl) if purl else None,
        bom_ref=package.ref(),
        scope=ComponentScope.OPTIONAL if package.optional else None,
        properties=[Property(name=name, value=value) for name, value in package.properties],
    )


def image_package(image: str) -> Package:
    """`registry/repository@sha256:…` as `pkg:oci/<name>@sha256:…?repository_url=registry/repository`."""
    repository, _, digest = image.partition("@")
    if not digest.startswith("sha256:"):
        raise BuildError(f"image {image!r} is not pinned: give registry/repository@sha256:<digest>")
    head, _, last = repository.rpartition("/")
    # A tag (`repo:tag@digest`) is not part of the name; a registry's port is never in the last segment.
    name = last.split(":")[0]
    location = f"{head}/{name}" if head else name
    return Package("oci", name.lower(), digest, qualifiers=(("repository_url", location),))


def _new_bom(seed: str, timestamp: datetime | None) -> Bom:
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType

    bom = Bom(serial_number=uuid.uuid5(_SERIAL_NAMESPACE, seed))
    # The library stamps "now" by default; None leaves it out, so equal inputs give equal BOMs.
    bom.metadata.timestamp = timestamp  # type: ignore[assignment]
    bom.metadata.tools.components.add(
        Component(name="atmos-tasks", version=__version__, type=ComponentType.APPLICATION)
    )
    return bom


def _to_dict(bom: Bom) -> dict[str, Any]:
    from cyclonedx.output.json import JsonV1Dot6

    return dict(json.loads(JsonV1Dot6(bom).output_as_string()))


def build_sbom(
    name: str,
    version: str | None,
    components: Sequence[Component],
    image: str | None = None,
    *,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """A CycloneDX 1.6 BOM of one component: an application, or with `image`, the container built from it."""
    root = _root_json(name, version, image)
    rows = [_component_json(c) for c in components]
    refs = [row["bom-ref"] for row in rows if row is not None]
    if root is None or len(refs) != len(rows) or len(set(refs)) != len(refs) or name in refs:
        return _build_sbom_with_library(name, version, components, image, timestamp=timestamp)
    found = sorted((row for row in rows if row is not None), key=_order)
    dependencies = [{"ref": ref} for ref in refs]
    dependencies.append({"dependsOn": sorted(refs), "ref": name} if refs else {"ref": name})
    dependencies.sort(key=lambda d: d["ref"])
    seed = json.dumps([name, version, image, sorted(refs)])
    return _document(seed, timestamp, root, found, dependencies)


def _build_sbom_with_library(
    name: str,
    version: str | None,
    components: Sequence[Component],
    image: str | None = None,
    *,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """`build_sbom` through cyclonedx-python-lib's model: for components `_component_json` does not write."""
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    refs = sorted(str(c.bom_ref.value) for c in components)
    bom = _new_bom(json.dumps([name, version, image, refs]), timestamp)
    if image is not None:
        package = image_package(image)
        root = Component(
            name=name,
            version=package.version,
            type=ComponentType.CONTAINER,
            purl=PackageURL.from_string(str(package.purl())),
            bom_ref=name,
        )
    else:
        root = Component(name=name, version=version, type=ComponentType.APPLICATION, bom_ref=name)
    bom.metadata.component = root
    bom.components.update(components)
    bom.register_dependency(root, components)
    return _to_dict(bom)


def aggregate(
    deployment: str,
    per_component: Mapping[str, Mapping[str, Any]],
    *,
    version: str | None = None,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """One BOM for a deployment: each component's BOM becomes a component with its dependencies nested.

    Keys of `per_component` (e.g. `nixpack/api`, `terraform/ecs/service-api`) become the parents'
    bom-refs, and nested bom-refs are prefixed with them (`nixpack/api:pkg:pypi/flask@3.0.0`) so
    that the same library used by two components stays two distinct, valid entries.
    """
    if not _text(deployment) or version == "":
        return _aggregate_with_library(deployment, per_component, version=version, timestamp=timestamp)
    root_ref = f"deployment/{deployment}"
    parents: list[dict[str, Any]] = []
    edges: dict[str, set[str]] = {root_ref: set()}
    seen = {root_ref}
    for key in sorted(per_component):
        nested = _nested(key, per_component[key])
        if nested is None or (seen & nested[1]):  # a bom-ref twice: the library's way, whatever it is
            return _aggregate_with_library(deployment, per_component, version=version, timestamp=timestamp)
        parent, refs, links = nested
        seen |= refs
        parents.append(parent)
        edges[root_ref].add(key)
        edges.setdefault(key, set())
        for source, targets in links:
            edges.setdefault(source, set()).update(targets)
            for target in targets:
                edges.setdefault(target, set())
    root = {"bom-ref": root_ref, "name": deployment, "type": "application"}
    if version is not None:
        root["version"] = version
    dependencies = [
        {"dependsOn": sorted(targets), "ref": ref} if targets else {"ref": ref}
        for ref, targets in sorted(edges.items())
    ]
    seed = json.dumps([deployment, version, sorted(per_component)])
    return _document(seed, timestamp, root, sorted(parents, key=_order), dependencies)


def _aggregate_with_library(
    deployment: str,
    per_component: Mapping[str, Mapping[str, Any]],
    *,
    version: str | None = None,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """`aggregate` through cyclonedx-python-lib's model: for BOMs `_nested` does not read."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType

    bom = _new_bom(json.dumps([deployment, version, sorted(per_component)]), timestamp)
    root = Component(
        name=deployment, version=version, type=ComponentType.APPLICATION, bom_ref=f"deployment/{deployment}"
    )
    bom.metadata.component = root
    for key in sorted(per_component):
        sub = Bom.from_json(dict(per_component[key]))  # type: ignore[attr-defined]
        parent = sub.metadata.component
        if parent is None:
            raise BuildError(f"the SBOM of {key} has no metadata.component; build it with build_sbom()")
        by_ref: dict[str, Component] = {str(parent.bom_ref.value): parent}
        by_ref.update({str(c.bom_ref.value): c for c in sub.components})
        edges = [(str(d.ref.value), [str(t.ref.value) for t in d.dependencies]) for d in sub.dependencies]
        for old, component in by_ref.items():
            component.bom_ref.value = key if component is parent else f"{key}:{old}"
        parent.components = list(sub.components)
        bom.components.add(parent)
        bom.register_dependency(root, [parent])
        for source, targets in edges:
            if source in by_ref:
                bom.register_dependency(by_ref[source], [by_ref[t] for t in targets if t in by_ref])
    return _to_dict(bom)


# --- documents written directly ------------------------------------------------------------------
#
# What cyclonedx-python-lib writes for BOMs of plain components (name, type, bom-ref, group,
# version, purl, scope, properties), built as dictionaries: no model objects, no JSON round trip,
# and no dependency graph searched once per component (the library's `register_dependency` scans
# every dependency, which makes a deployment's BOM quadratic in its components). Anything else goes
# through the library. tests/images/test_sbom_direct.py holds both ways to the same documents.

# Component attributes `_component_json` writes; every other one must hold its default value.
_WRITTEN = frozenset({"_name", "_type", "_bom_ref", "_group", "_version", "_purl", "_scope", "_properties"})
_COMPONENT_KEYS = frozenset({"bom-ref", "group", "name", "properties", "purl", "scope", "type", "version"})
_BOM_KEYS = frozenset(
    (
        "$schema",
        "bomFormat",
        "specVersion",
        "serialNumber",
        "version",
        "metadata",
        "components",
        "dependencies",
    )
)


@functools.cache
def _component_defaults() -> tuple[type, frozenset[str], tuple[tuple[str, Any], ...]] | None:
    """The component class, its attributes and the defaults of those not written; None when this
    version of the library names them otherwise (everything then goes through the library)."""
    from cyclonedx.model.component import Component

    fields = vars(Component(name="-"))
    if not fields.keys() >= _WRITTEN:
        return None
    return Component, frozenset(fields), tuple((k, v) for k, v in fields.items() if k not in _WRITTEN)


@functools.cache
def _enum_values() -> tuple[frozenset[str], frozenset[str]]:
    from cyclonedx.model.component import ComponentScope, ComponentType

    return frozenset(t.value for t in ComponentType), frozenset(s.value for s in ComponentScope)


@functools.cache
def _normal_purl(purl: str) -> str:
    """A purl as the library writes it back after reading it."""
    from packageurl import PackageURL

    return str(PackageURL.from_string(purl).to_string())


def _text(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _order(component: Mapping[str, Any]) -> tuple[tuple[bool, str], ...]:
    """The library's order of components: type, group, name, version, bom-ref, a missing value
    last. Later fields never count: bom-refs are unique in every document written here."""
    fields = ("type", "group", "name", "version", "bom-ref")
    return tuple((component.get(f) is None, component.get(f) or "") for f in fields)


def _component_json(component: Component) -> dict[str, Any] | None:
    """The library's JSON of a plain component; None for any other (a subclass too: the library
    finds what to write by the class)."""
    known = _component_defaults()
    if known is None or type(component) is not known[0]:
        return None
    fields = vars(component)
    if fields.keys() != known[1] or any(fields[k] != v for k, v in known[2]):
        return None
    ref, group, name, version = component.bom_ref.value, component.group, component.name, component.version
    if not (_text(ref) and _text(name)) or not all(v is None or _text(v) for v in (group, version)):
        return None
    found: dict[str, Any] = {"bom-ref": ref}
    if group is not None:
        found["group"] = group
    found["name"] = name
    properties = [{"name": p.name, "value": p.value} for p in component.properties]
    if not all(_text(p["name"]) and _text(p["value"]) for p in properties):
        return None
    if properties:
        found["properties"] = properties
    if component.purl is not None:
        found["purl"] = component.purl.to_string()
    if component.scope is not None:
        found["scope"] = component.scope.value
    found["type"] = component.type.value
    if version is not None:
        found["version"] = version
    return found


def _root_json(name: str, version: str | None, image: str | None) -> dict[str, Any] | None:
    """build_sbom's metadata.component; None for values the library may write otherwise."""
    if image is not None:
        package = image_package(image)
        purl = _normal_purl(str(package.purl()))
        root = {"bom-ref": name, "name": name, "purl": purl, "type": "container", "version": package.version}
    else:
        root = {"bom-ref": name, "name": name, "type": "application", "version": version}
    if not _text(name) or version == "":
        return None
    return {k: v for k, v in root.items() if v is not None}


def _read_row(component: object) -> dict[str, Any] | None:
    """A component of a BOM as the library writes it back after reading it (`Bom.from_json`):
    the purl normalised, the properties sorted and without duplicates. None when it has anything
    else, or a value the library would read otherwise."""
    types, scopes = _enum_values()
    if not isinstance(component, Mapping) or not component.keys() <= _COMPONENT_KEYS:
        return None
    ref, name, kind = component.get("bom-ref"), component.get("name"), component.get("type")
    group, version, purl = component.get("group"), component.get("version"), component.get("purl")
    scope, properties = component.get("scope"), component.get("properties", [])
    if not (_text(ref) and _text(name) and kind in types) or not isinstance(properties, list):
        return None
    if not all(v is None or _text(v) for v in (group, version, purl)) or scope not in (None, *scopes):
        return None
    pairs = set()
    for p in properties:
        if not (isinstance(p, Mapping) and p.keys() == {"name", "value"}):
            return None
        if not (_text(p["name"]) and _text(p["value"])):
            return None
        pairs.add((p["name"], p["value"]))
    found: dict[str, Any] = {"bom-ref": ref}
    if group is not None:
        found["group"] = group
    found["name"] = name
    if pairs:
        found["properties"] = [{"name": n, "value": v} for n, v in sorted(pairs)]
    if purl is not None:
        found["purl"] = _normal_purl(purl)
    if scope is not None:
        found["scope"] = scope
    found["type"] = kind
    if version is not None:
        found["version"] = version
    return found


def _nested(key: str, sub: object) -> tuple[dict[str, Any], set[str], list[tuple[str, list[str]]]] | None:
    """One component's BOM as `aggregate` nests it: its root renamed `key` with its components
    (renamed `key:<bom-ref>`) inside, every bom-ref used, and its dependencies renamed (those
    naming something outside the BOM dropped). None for a BOM only the library can read."""
    if not isinstance(sub, Mapping) or not sub.keys() <= _BOM_KEYS:
        return None
    metadata = sub.get("metadata")
    if not isinstance(metadata, Mapping) or not metadata.keys() <= {"component", "tools", "timestamp"}:
        return None
    parent = _read_row(metadata.get("component"))
    children = sub.get("components", [])
    dependencies = sub.get("dependencies", [])
    if parent is None or not isinstance(children, list) or not isinstance(dependencies, list):
        return None
    rows = []
    renamed = {parent["bom-ref"]: key}
    for child in children:
        row = _read_row(child)
        if row is None or row["bom-ref"] in renamed:
            return None
        renamed[row["bom-ref"]] = f"{key}:{row['bom-ref']}"
        rows.append(row)
    links = []
    for d in dependencies:
        if not isinstance(d, Mapping) or not d.keys() <= {"ref", "dependsOn"} or not _text(d.get("ref")):
            return None
        targets = d.get("dependsOn", [])
        if not isinstance(targets, list) or not all(_text(t) for t in targets):
            return None
        if d["ref"] in renamed:
            links.append((renamed[d["ref"]], [renamed[t] for t in targets if t in renamed]))
    nested = sorted(({**row, "bom-ref": renamed[row["bom-ref"]]} for row in rows), key=_order)
    found = {"bom-ref": key, **({"components": nested} if nested else {})}
    found.update((k, v) for k, v in parent.items() if k != "bom-ref")
    return found, set(renamed.values()), links


@functools.cache
def _skeleton() -> str:
    """A document as the library writes it, to fill in: its keys, their order, its constants."""
    return json.dumps(_skeleton_with(None))


def _skeleton_with(timestamp: datetime | None) -> dict[str, Any]:
    from cyclonedx.model.component import Component, ComponentType

    bom = _new_bom("", timestamp)
    bom.metadata.component = Component(name="root", type=ComponentType.APPLICATION, bom_ref="root")
    bom.components.add(Component(name="component", bom_ref="component"))
    bom.register_dependency(bom.metadata.component, bom.components)
    return _to_dict(bom)


def _document(
    seed: str,
    timestamp: datetime | None,
    root: dict[str, Any],
    components: list[dict[str, Any]],
    dependencies: list[dict[str, Any]],
) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_skeleton()) if timestamp is None else _skeleton_with(timestamp)
    document["components"] = components
    if not components:
        del document["components"]
    document["dependencies"] = dependencies
    document["metadata"]["component"] = root
    document["serialNumber"] = f"urn:uuid:{uuid.uuid5(_SERIAL_NAMESPACE, seed)}"
    return document


def validate(sbom: Mapping[str, Any] | str) -> list[str]:
    """Problems found by the CycloneDX 1.6 JSON schema shipped with cyclonedx-python-lib; empty when valid."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = sbom if isinstance(sbom, str) else json.dumps(sbom)
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text, all_errors=True)
    problems = []
    for error in errors or ():
        detail = getattr(error, "data", None)
        path = "/".join(str(p) for p in getattr(detail, "absolute_path", ()))
        problems.append(f"{path or '(root)'}: {getattr(detail, 'message', error)}")
    return problems
