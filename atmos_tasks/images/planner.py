"""Build plans: nixpacks' model of "source tree in, image recipe out", in Python (SPEC §8).

A provider is detected from marker files, in nixpacks' order (go, node, python, rust, staticfile;
the first that matches wins), unless `dockerfile_escape` hands the build to the tree's own
Dockerfile. The provider derives the phases of a `BuildPlan` — setup, install, build, start — and
`settings.nixpack` overrides any of them. The plan is plain data: it is saved as canonical JSON,
its BLAKE3 is part of the build task's key, and it is rendered by `dockerfile` or built without a
daemon by `oci`.

Everything here is pure apart from reading the source tree it is given.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import tomllib
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Literal

import blake3
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from atmos_tasks.images.errors import BuildError, build_failed
from atmos_tasks.images.sourcetree import DEFAULT_EXCLUDE, compile_patterns, require_source_dir, source_hash

__all__ = [
    "DEFAULT_BASE_IMAGES",
    "DETECTION_ORDER",
    "MARKERS",
    "PLAN_SCHEMA",
    "BaseImage",
    "BuildPlan",
    "CopySpec",
    "NixpackSettings",
    "Phase",
    "Setup",
    "Start",
    "choose_builder",
    "detect_provider",
    "make_plan",
    "needs_daemon",
    "parse_settings",
    "source_hash",
]

PLAN_SCHEMA = 1
WORKDIR = "/app"

DETECTION_ORDER: tuple[str, ...] = ("go", "node", "python", "rust", "staticfile")
STATIC_ROOTS: tuple[str, ...] = (".", "public", "dist", "site")
MARKERS: Mapping[str, tuple[str, ...]] = {
    "go": ("go.mod",),
    "node": ("package.json",),
    "python": ("requirements.txt", "pyproject.toml", "Pipfile"),
    "rust": ("Cargo.toml",),
    "staticfile": tuple("index.html" if root == "." else f"{root}/index.html" for root in STATIC_ROOTS),
}

# Each provider's toolchain comes from its language's official image, so `setup.pkgs` is empty by
# default; a site that mirrors images overrides these with `settings.nixpack.base_image`.
DEFAULT_BASE_IMAGES: Mapping[str, str] = {
    "go": "golang:1.22-bookworm",
    "node": "node:20-bookworm-slim",
    "python": "python:3.12-slim-bookworm",
    "rust": "rust:1.77-slim-bookworm",
    "staticfile": "busybox:1.36",
}

VENV = "/opt/venv"
# A literal PATH rather than `$PATH`: the OCI backend writes Env without a shell to expand it.
VENV_PATH = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
POETRY_VERSION = "1.8.3"
STATIC_PORT = "8080"

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:-]*")
_PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_:=~-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Characters that only a shell gives meaning to; quotes and backslashes shlex handles itself.
_SHELL_OPERATORS = re.compile(r"[|&;<>()$`*?\[\]\n]")


# --- settings -----------------------------------------------------------------------------------


class NixpackSettings(BaseModel):
    """`settings.nixpack` of a component. Only keys listed here are accepted."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    base_image: str | None = None
    base_image_path: str | None = None
    install_cmd: str | list[str] | None = None
    build_cmd: str | list[str] | None = None
    start_cmd: str | list[str] | None = None
    pkgs: list[str] | None = None
    apt_pkgs: list[str] | None = None
    env: dict[str, str] | None = None
    exclude: list[str] | None = None
    dockerfile_escape: bool = False
    dockerfile: str = "Dockerfile"
    test_cmd: str | list[str] | None = None
    builder: Literal["auto", "docker", "oci"] = "auto"
    publish: bool = True


ALLOWED_SETTINGS: tuple[str, ...] = tuple(sorted(NixpackSettings.model_fields))
# Phases the tree's own Dockerfile decides; setting them next to `dockerfile_escape` is a mistake.
_NOT_WITH_ESCAPE = ("base_image", "install_cmd", "build_cmd", "start_cmd", "pkgs", "apt_pkgs", "env")


def parse_settings(settings: Mapping[str, Any] | NixpackSettings | None) -> NixpackSettings:
    """Validate `settings.nixpack`; every problem is named in one `BuildError`."""
    if isinstance(settings, NixpackSettings):
        return settings
    raw = dict(settings or {})
    unknown = sorted(set(raw) - set(ALLOWED_SETTINGS))
    if unknown:
        raise BuildError(
            f"unknown settings.nixpack key(s): {', '.join(unknown)}; allowed: {', '.join(ALLOWED_SETTINGS)}"
        )
    try:
        parsed = NixpackSettings.model_validate(raw)
    except ValidationError as error:
        keys = dict.fromkeys(str(e["loc"][0]) for e in error.errors())
        problems = "; ".join(
            f"settings.nixpack.{key}: expected {_expected(key)}, got {raw[key]!r:.60}" for key in keys
        )
        raise BuildError(f"bad settings: {problems}") from None
    _check_values(parsed)
    return parsed


def _expected(key: str) -> str:
    annotation = NixpackSettings.model_fields[key].annotation
    if isinstance(annotation, type):
        return annotation.__name__
    text = str(annotation).replace("typing.", "").replace(" | None", "")
    if text.startswith("Literal["):
        return "one of " + text.removeprefix("Literal[").removesuffix("]")
    return text


def _check_values(s: NixpackSettings) -> None:
    problems: list[str] = []
    if s.dockerfile_escape:
        problems += [
            f"settings.nixpack.{key} has no effect with dockerfile_escape (the Dockerfile decides); "
            "remove it or edit the Dockerfile"
            for key in _NOT_WITH_ESCAPE
            if getattr(s, key) is not None
        ]
    if s.base_image is not None:
        reference, _, digest = s.base_image.partition("@")
        if not _REFERENCE.fullmatch(reference) or (digest and not _DIGEST.fullmatch(digest)):
            problems.append(
                f"settings.nixpack.base_image {s.base_image!r} is not an image reference like "
                "'busybox:1.36' or 'busybox@sha256:<64 hex>'"
            )
    for key in ("pkgs", "apt_pkgs"):
        bad = [name for name in getattr(s, key) or () if not _PACKAGE.fullmatch(name)]
        if bad:
            problems.append(f"settings.nixpack.{key}: not package names: {', '.join(map(repr, bad))}")
    bad_env = [name for name in s.env or {} if not _ENV_NAME.fullmatch(name)]
    if bad_env:
        problems.append(f"settings.nixpack.env: not variable names: {', '.join(map(repr, bad_env))}")
    if any("\n" in value for value in (s.env or {}).values()):
        problems.append("settings.nixpack.env: values must be single lines")
    for key in ("install_cmd", "build_cmd", "start_cmd"):
        value = getattr(s, key)
        commands = [value] if isinstance(value, str) else value or []
        if any("\n" in command for command in commands):
            problems.append(f"settings.nixpack.{key}: write one command per list item, not one with newlines")
    if s.start_cmd is not None and not (
        s.start_cmd if isinstance(s.start_cmd, list) else s.start_cmd.strip()
    ):
        problems.append("settings.nixpack.start_cmd: an empty command starts nothing; give one")
    try:
        compile_patterns(s.exclude or ())
    except BuildError as error:
        problems.append(f"settings.nixpack.exclude: {error}")
    if Path(s.dockerfile).is_absolute() or ".." in Path(s.dockerfile).parts:
        problems.append("settings.nixpack.dockerfile must be a path inside the source directory")
    if s.builder == "oci" and s.test_cmd is not None:
        # Tests run the image in a Docker engine; an OCI layout on disk is not in any engine.
        problems.append(
            "settings.nixpack.test_cmd needs the docker backend, and builder is oci: "
            "set builder: docker (or auto), or remove test_cmd"
        )
    if problems:
        raise BuildError("bad settings: " + "; ".join(problems))


# --- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseImage:
    """The image to build on: a reference, and once resolved by the integrator, its digest."""

    reference: str
    digest: str | None = None

    @property
    def pinned(self) -> str:
        """`reference@digest` when pinned (Docker accepts `name:tag@digest`), else the reference."""
        return f"{self.reference}@{self.digest}" if self.digest else self.reference


@dataclass(frozen=True)
class Setup:
    pkgs: tuple[str, ...] = ()
    apt_pkgs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Phase:
    cmds: tuple[str, ...] = ()


@dataclass(frozen=True)
class Start:
    """The container's command as argv (exec form); None leaves the base image's own."""

    cmd: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CopySpec:
    src: str = "."
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE


@dataclass(frozen=True)
class BuildPlan:
    provider: str
    base_image: BaseImage
    setup: Setup = Setup()
    install: Phase = Phase()
    build: Phase = Phase()
    start: Start = Start()
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    copy: CopySpec = CopySpec()
    workdir: str = WORKDIR
    dockerfile: str | None = None
    base_image_path: str | None = None
    schema: int = PLAN_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return dict(_adapter().dump_python(self, mode="json"))

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace; what is saved and hashed."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def plan_hash(self) -> str:
        return blake3.blake3(self.to_json().encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str | bytes) -> BuildPlan:
        try:
            return _adapter().validate_json(text)
        except ValidationError as error:
            raise BuildError(f"saved build plan is not valid: {error.errors()[0]['msg']}") from None

    def pin_base(self, digest: str) -> BuildPlan:
        """The same plan with its base image pinned to `digest` (sha256:<64 hex>)."""
        if not _DIGEST.fullmatch(digest):
            raise BuildError(f"base image digest {digest!r} is not sha256:<64 hex>")
        if self.base_image.reference == "scratch":
            raise BuildError("scratch is not an image and has no digest to pin")
        return dataclasses.replace(self, base_image=BaseImage(self.base_image.reference, digest))


@cache
def _adapter() -> TypeAdapter[BuildPlan]:
    return TypeAdapter(BuildPlan)


def needs_daemon(plan: BuildPlan) -> bool:
    """True when building runs commands inside a container (anything but copying files)."""
    return bool(
        plan.provider == "dockerfile"
        or plan.setup.pkgs
        or plan.setup.apt_pkgs
        or plan.install.cmds
        or plan.build.cmds
    )


def choose_builder(
    plan: BuildPlan, builder: Literal["auto", "docker", "oci"], engine_available: bool
) -> Literal["docker", "oci"]:
    """The backend for `plan`: Docker when asked or when an engine answers, else the OCI writer."""
    if builder == "oci" and needs_daemon(plan):
        raise BuildError(
            f"builder: oci cannot run the {plan.provider} plan's install/build/setup commands; "
            "set builder: docker (or auto), or make the plan copy-only with install_cmd: [] and build_cmd: []"
        )
    if builder == "oci" or (builder == "auto" and not engine_available and not needs_daemon(plan)):
        return "oci"
    if not engine_available:
        raise build_failed(
            f"the {plan.provider} plan needs a Docker engine and none answered: start Docker "
            "(or set DOCKER_HOST) and retry"
        )
    return "docker"


# --- detection ----------------------------------------------------------------------------------


def detect_provider(
    source_dir: Path | str, settings: Mapping[str, Any] | NixpackSettings | None = None
) -> str:
    """The provider for the tree: `dockerfile` when escaping, else the first in `DETECTION_ORDER`."""
    root = require_source_dir(source_dir)
    parsed = parse_settings(settings)
    if parsed.dockerfile_escape:
        return "dockerfile"
    for provider in DETECTION_ORDER:
        if any((root / marker).is_file() for marker in MARKERS[provider]):
            return provider
    looked_for = ", ".join(dict.fromkeys(m.split("/")[-1] for p in DETECTION_ORDER for m in MARKERS[p]))
    raise BuildError(
        f"no provider matched {source_dir}: looked for {looked_for} "
        f"(index.html at the root or in public/, dist/ or site/); "
        "set settings.nixpack.dockerfile_escape or add one of these"
    )


def make_plan(
    source_dir: Path | str, settings: Mapping[str, Any] | NixpackSettings | None = None
) -> BuildPlan:
    """Detect the provider, derive its plan, then apply the overrides of `settings.nixpack`."""
    root = require_source_dir(source_dir)
    parsed = parse_settings(settings)
    provider = detect_provider(root, parsed)
    exclude = tuple(dict.fromkeys([*DEFAULT_EXCLUDE, *(parsed.exclude or ())]))
    if provider == "dockerfile":
        return _dockerfile_plan(root, source_dir, parsed, exclude)

    derived = _PROVIDERS[provider](root, source_dir)
    if derived.build_problem and parsed.build_cmd is None:
        raise BuildError(derived.build_problem)
    start = _start_argv(parsed.start_cmd) if parsed.start_cmd is not None else _procfile_start(root)
    if start is None:
        start = derived.start
    if start is None:
        raise BuildError(
            f"no start command for the {provider} app in {source_dir}: looked for "
            f"{derived.start_looked_for}; set settings.nixpack.start_cmd"
        )
    return BuildPlan(
        provider=provider,
        base_image=_base_image(parsed.base_image or DEFAULT_BASE_IMAGES[provider]),
        setup=Setup(pkgs=tuple(parsed.pkgs or ()), apt_pkgs=tuple(parsed.apt_pkgs or ())),
        install=Phase(_commands(parsed.install_cmd) if parsed.install_cmd is not None else derived.install),
        build=Phase(_commands(parsed.build_cmd) if parsed.build_cmd is not None else derived.build),
        start=Start(start),
        env={**derived.env, **(parsed.env or {})},
        copy=CopySpec(exclude=exclude),
        base_image_path=parsed.base_image_path,
    )


def _base_image(value: str) -> BaseImage:
    reference, _, digest = value.partition("@")
    return BaseImage(reference, digest or None)


def _commands(value: str | list[str]) -> tuple[str, ...]:
    commands = [value] if isinstance(value, str) else value
    return tuple(c for c in commands if c.strip())


def _start_argv(value: str | list[str]) -> tuple[str, ...]:
    """A list is argv as given; a string is split into argv unless it needs a shell to mean it."""
    if isinstance(value, list):
        return tuple(value)
    try:
        words = shlex.split(value)
    except ValueError:
        words = []
    assignment = bool(words) and "=" in words[0] and _ENV_NAME.fullmatch(words[0].partition("=")[0])
    if not words or assignment or _SHELL_OPERATORS.search(value) or any(w[0] in "~#" for w in words if w):
        return ("/bin/sh", "-c", value)
    return tuple(words)


def _procfile_start(root: Path) -> tuple[str, ...] | None:
    """Like nixpacks, a Procfile's `web` process (else its first) is the start command of any provider."""
    procfile = root / "Procfile"
    if not procfile.is_file():
        return None
    processes: dict[str, str] = {}
    for line in procfile.read_text(errors="replace").splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.lstrip().startswith("#") and command.strip():
            processes.setdefault(name.strip(), command.strip())
    web = processes.get("web") or next(iter(processes.values()), None)
    return _start_argv(web) if web else None


@dataclasses.dataclass(frozen=True)
class _Derived:
    """What a provider contributes before overrides."""

    install: tuple[str, ...] = ()
    build: tuple[str, ...] = ()
    start: tuple[str, ...] | None = None
    start_looked_for: str = ""
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Raised only when the user does not supply the build command that would make it moot.
    build_problem: str | None = None


def _go(root: Path, label: Path | str) -> _Derived:
    install = ("go mod download",)
    env = {"CGO_ENABLED": "0"}
    package = "."
    if not any(root.glob("*.go")):
        commands = sorted(p.name for p in (root / "cmd").glob("*") if p.is_dir() and any(p.glob("*.go")))
        if len(commands) != 1:
            found = f"found {', '.join(commands)}" if commands else "found none"
            return _Derived(
                install=install,
                env=env,
                build_problem=f"no main package to build in {label}: looked for *.go at the root and one "
                f"cmd/<name>/ ({found}); set settings.nixpack.build_cmd and start_cmd",
                start_looked_for="Procfile, the binary of the main package",
            )
        package = f"./cmd/{commands[0]}"
    return _Derived(
        install=install,
        # -trimpath keeps the builder's paths out of the binary, so it only depends on the source.
        build=(f"go build -trimpath -o {WORKDIR}/out {package}",),
        start=(f"{WORKDIR}/out",),
        env=env,
    )


def _read_json(path: Path, label: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise BuildError(f"{label} is not valid JSON ({error}); fix the file") from None


def _read_toml(path: Path, label: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise BuildError(f"{label} is not valid TOML ({error}); fix the file") from None


def node_package_manager(root: Path, package: Mapping[str, Any]) -> str:
    """`packageManager` in package.json wins; else the lock file, in nixpacks' order."""
    declared = package.get("packageManager")
    if isinstance(declared, str) and declared.split("@")[0] in ("npm", "yarn", "pnpm"):
        return declared.split("@")[0]
    if (root / "pnpm-lock.yaml").is_file():
        return "pnpm"
    if (root / "yarn.lock").is_file():
        return "yarn"
    return "npm"


def _node(root: Path, label: Path | str) -> _Derived:
    package = _read_json(root / "package.json", f"{label}/package.json")
    if not isinstance(package, dict):
        raise BuildError(f"{label}/package.json must hold a JSON object; fix the file")
    scripts: dict[str, Any] = package["scripts"] if isinstance(package.get("scripts"), dict) else {}
    manager = node_package_manager(root, package)
    # NODE_ENV=production is set for the whole build, as nixpacks does; the install commands still
    # ask for devDependencies explicitly because the build script usually needs them.
    install: tuple[str, ...]
    if manager == "pnpm":
        install = ("corepack enable", "pnpm install --frozen-lockfile --production=false")
    elif manager == "yarn" and (root / ".yarnrc.yml").is_file():
        install = ("corepack enable", "yarn install --immutable")
    elif manager == "yarn":
        install = ("yarn install --frozen-lockfile --production=false",)
    elif (root / "package-lock.json").is_file() or (root / "npm-shrinkwrap.json").is_file():
        install = ("npm ci --include=dev",)
    else:
        install = ("npm install --include=dev",)
    start: tuple[str, ...] | None = None
    if "start" in scripts:
        start = (manager, "start")
    elif isinstance(package.get("main"), str):
        start = ("node", package["main"])
    elif (root / "index.js").is_file():
        start = ("node", "index.js")
    return _Derived(
        install=install,
        build=(f"{manager} run build",) if "build" in scripts else (),
        start=start,
        start_looked_for="Procfile, scripts.start and main in package.json, index.js",
        env={"NODE_ENV": "production"},
    )


def _python(root: Path, label: Path | str) -> _Derived:
    venv = f"python -m venv {VENV}"
    env = {
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "VIRTUAL_ENV": VENV,
        "PATH": VENV_PATH,
    }
    scripts: dict[str, Any] = {}
    if (root / "requirements.txt").is_file():
        install: tuple[str, ...] = (venv, "pip install --no-cache-dir -r requirements.txt")
    elif (root / "pyproject.toml").is_file():
        pyproject = _read_toml(root / "pyproject.toml", f"{label}/pyproject.toml")
        # Console scripts exist only when the project itself is installed, as on this path.
        scripts = {
            **pyproject.get("tool", {}).get("poetry", {}).get("scripts", {}),
            **pyproject.get("project", {}).get("scripts", {}),
        }
        if (root / "poetry.lock").is_file():
            install = (
                venv,
                f"pip install --no-cache-dir poetry=={POETRY_VERSION}",
                "poetry install --only main --no-interaction --no-ansi",
            )
        else:
            install = (venv, "pip install --no-cache-dir .")
    else:
        lock = "--deploy" if (root / "Pipfile.lock").is_file() else "--skip-lock"
        install = (venv, "pip install --no-cache-dir pipenv", f"pipenv install --system {lock}")
    start: tuple[str, ...] | None = None
    if scripts:
        start = (next(iter(scripts)),)
    elif (root / "main.py").is_file():
        start = ("python", "main.py")
    elif (root / "app.py").is_file():
        start = ("python", "app.py")
    return _Derived(
        install=install,
        start=start,
        start_looked_for="Procfile, [project.scripts] in pyproject.toml, main.py, app.py",
        env=env,
    )


def _rust(root: Path, label: Path | str) -> _Derived:
    cargo = _read_toml(root / "Cargo.toml", f"{label}/Cargo.toml")
    package = cargo.get("package", {})
    bins = [b["name"] for b in cargo.get("bin", []) if isinstance(b, dict) and "name" in b]
    binary = package.get("default-run") or (bins[0] if bins else package.get("name"))
    locked = " --locked" if (root / "Cargo.lock").is_file() else ""
    return _Derived(
        build=(f"cargo build --release{locked}",),
        start=(f"{WORKDIR}/target/release/{binary}",) if binary else None,
        start_looked_for="Procfile, [package] default-run, [[bin]] name, [package] name in Cargo.toml",
    )


def _staticfile(root: Path, label: Path | str) -> _Derived:
    site = next(r for r in STATIC_ROOTS if (root / r / "index.html").is_file())
    directory = WORKDIR if site == "." else f"{WORKDIR}/{site}"
    return _Derived(start=("busybox", "httpd", "-f", "-v", "-p", STATIC_PORT, "-h", directory))


_PROVIDERS = {"go": _go, "node": _node, "python": _python, "rust": _rust, "staticfile": _staticfile}


def _dockerfile_plan(
    root: Path, label: Path | str, settings: NixpackSettings, exclude: Sequence[str]
) -> BuildPlan:
    path = root / settings.dockerfile
    if not path.is_file():
        raise BuildError(
            f"dockerfile_escape is set but {label}/{settings.dockerfile} does not exist: add it, "
            "or set settings.nixpack.dockerfile to its path"
        )
    return BuildPlan(
        provider="dockerfile",
        base_image=_base_image(
            _final_from(path.read_text(errors="replace"), f"{label}/{settings.dockerfile}")
        ),
        copy=CopySpec(exclude=tuple(exclude)),
        dockerfile=Path(settings.dockerfile).as_posix(),
        base_image_path=settings.base_image_path,
    )


def _final_from(text: str, label: str) -> str:
    """The image the last stage builds on, following `FROM <stage>` back to an image."""
    stages: dict[str, str] = {}
    image = None
    for line in re.sub(r"\\\n", " ", text).splitlines():
        words = [w for w in line.split() if not w.startswith("--")]
        if len(words) >= 2 and words[0].upper() == "FROM":
            image = stages.get(words[1].lower(), words[1])
            if len(words) >= 4 and words[2].upper() == "AS":
                stages[words[3].lower()] = image
    if image is None:
        raise BuildError(f"{label} has no FROM line; add one (e.g. FROM busybox:1.36)")
    return image
