"""Repository configuration: the few `atmos.yaml` keys this tool reads (SPEC §2)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from atmos_tasks.errors import AtmosError, Location, Problem
from atmos_tasks.root import find_root as find_root
from atmos_tasks.yamlio import ParseCache, load_data, locate_in_file

LIST_MERGE_STRATEGIES = ("replace", "append", "merge")
# Atmos's built-in component types: none of them can be another type's alias
# (`validateComponentAlias`, pkg/component/aliases.go).
COMPONENT_TYPES = ("terraform", "helmfile", "packer", "ansible")
RECORD_SIGN = ("always", "if-available", "never")
ALLOWED_SIGNERS = "allowed_signers"


@dataclass(frozen=True)
class RepoConfig:
    root: Path
    stacks_base: Path
    terraform_base: Path
    terraform_command: str
    deployments_base: Path
    vendor_base: Path | None
    list_merge_strategy: str = "replace"
    name_pattern: str | None = None
    stack_included_paths: tuple[str, ...] = ()
    stack_excluded_paths: tuple[str, ...] = ()
    # A promotion reads another commit's files from a worktree, but works in the main checkout.
    work_root: Path | None = None
    # The allowed-signers file (relative to the root), read from the commit an approval is for.
    allowed_signers: str = ALLOWED_SIGNERS
    # Whether deployment tags are signed with the deployer's Git signing key.
    record_sign: str = "if-available"
    # `stacks.name_template`: a Go template over the component's sections (wins over name_pattern).
    name_template: str | None = None
    # `templates.settings`: Go templates in stack manifests are rendered only when enabled (as in
    # Atmos), `evaluations` times, with Sprig's and gomplate's functions when each is enabled.
    templates_enabled: bool = False
    template_evaluations: int = 1
    template_sprig: bool = False
    template_gomplate: bool = False
    # `yaml_functions.exec.enabled`: whether `!exec` may run commands from stack files.
    exec_enabled: bool = False
    # `stacks.inherit.metadata` (default true, as in Atmos): components inherit their bases' metadata.
    inherit_metadata: bool = True
    # `components.terraform.aliases`: other names stack files may file Terraform components under
    # (`components.opentofu.vpc`), Atmos's component type aliases.
    terraform_aliases: tuple[str, ...] = ()
    # `cache.url`: the remote cache (`oci://registry/repository`); `--cache` and ATMOS_TASKS_CACHE win.
    cache_url: str | None = None
    # atmos.yaml's top-level `env:`: Atmos sets it for every command it runs (over the process's own
    # environment, under each component's `env`); here, the lowest layer of every Terraform
    # component's `env`.
    env: tuple[tuple[str, str], ...] = ()
    # atmos.yaml's `auth:` (Atmos's identities and providers), as JSON: the lowest layer of every
    # component's `auth` (the Terraform kind refuses to run as an identity it would assume).
    auth: str = ""
    # Functions of atmos.yaml's `env:` kept as written (`!exec` without the opt-in, a store read):
    # a component whose env holds one refuses to run.
    kept_env: tuple[Any, ...] = ()

    @property
    def work_root_path(self) -> Path:
        """The checkout whose `.atmos/` holds working data (the main one, also for worktrees)."""
        return self.work_root or self.root

    @property
    def work_dir(self) -> Path:
        """`.atmos/`: local working data, never committed."""
        return (self.work_root or self.root) / ".atmos"

    @cached_property
    def work_dir_text(self) -> str:
        """`work_dir` as text, made once: a compilation joins a path below it for each component."""
        return os.fspath(self.work_dir)

    def parse_cache(self) -> ParseCache | None:
        """Where parsed YAML files are kept (`yamlio.load_data`); none while the graph cache is off
        or for another commit's worktree (whose files, shown by the same names, would take turns
        with the checkout's in one entry), parsed again and compared while the cache verifies."""
        from atmos_tasks import graphcache

        mode = graphcache.mode()
        if mode == "off" or self.work_root is not None:
            return None
        return ParseCache(self.work_dir / "cache" / "yaml", verifying=mode == "verify")

    def shown(self, path: Path | str) -> str:
        """A path as the user should read it in messages: relative to the repository. (A path in
        the repository written as `str(Path)` writes it is cut as text: a compilation shows one
        per component.)"""
        text, base = os.fspath(path), os.fspath(self.root)
        plain = not text.endswith(("/", "/.")) and "//" not in text and "/./" not in text
        if plain and text.startswith(base + "/"):
            return text[len(base) + 1 :]
        try:
            return str(Path(text).relative_to(self.root))
        except ValueError:
            return str(Path(text))


def _get(data: dict[str, Any], *keys: str) -> Any:
    node: Any = data
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def load_config(root: Path, work_root: Path | None = None) -> RepoConfig:
    root = root.resolve()
    path = root / "atmos.yaml"
    data: dict[str, Any] = {}
    if path.is_file():
        loaded = load_data(path, "atmos.yaml")
        if loaded is not None and not isinstance(loaded, dict):
            raise AtmosError([Problem("atmos.yaml must be a mapping", Location("atmos.yaml", 1, 1))])
        data = loaded or {}
    functions = _get(data, "yaml_functions", "exec", "enabled")
    exec_enabled = functions is True
    if data.get("auth") not in (None, {}) and not isinstance(data.get("auth"), dict):
        raise AtmosError(
            [
                Problem(
                    "atmos.yaml: auth must be a mapping (providers, identities)",
                    locate_in_file(path, "atmos.yaml", ["auth"]),
                    "write e.g. auth: {identities: {dev-admin: {kind: aws/permission-set, default: true}}}",
                )
            ]
        )
    from atmos_tasks.yamlfunctions import Context, contains, evaluate

    kept: list[Any] = []
    if contains(data):
        # atmos.yaml's own `!exec` needs its own opt-in, as a stack file's does. In `env:` (set for
        # every component) one is kept as written, for the components' rollouts to refuse.
        rest = {k: v for k, v in data.items() if k != "env"}
        rest = evaluate(rest, Context(root, "", "atmos.yaml", frozenset(), exec_enabled, "atmos.yaml"))
        if "env" in data:
            env_context = Context(root, "", "atmos.yaml", frozenset(), exec_enabled, "atmos.yaml", kept=kept)
            rest["env"] = evaluate(data["env"], env_context)
        data = rest

    def text(keys: tuple[str, ...], default: str | None) -> str | None:
        value = _get(data, *keys)
        if value is None:
            return default
        if not isinstance(value, str):
            raise AtmosError(
                [
                    Problem(
                        f"{'.'.join(keys)} must be a string, got {type(value).__name__}",
                        locate_in_file(path, "atmos.yaml", keys),
                        "write the path as a string",
                    )
                ]
            )
        return value

    base = root / (text(("base_path",), "") or "")
    strategy = text(("settings", "list_merge_strategy"), "replace") or "replace"
    if strategy not in LIST_MERGE_STRATEGIES:
        raise AtmosError(
            [
                Problem(
                    f"settings.list_merge_strategy is {strategy!r}",
                    locate_in_file(path, "atmos.yaml", ("settings", "list_merge_strategy")),
                    f"use one of {', '.join(LIST_MERGE_STRATEGIES)}",
                )
            ]
        )
    vendor = text(("vendor", "base_path"), None)
    sign = text(("record", "sign"), "if-available") or "if-available"
    if sign not in RECORD_SIGN:
        raise AtmosError(
            [
                Problem(
                    f"record.sign is {sign!r}",
                    locate_in_file(path, "atmos.yaml", ("record", "sign")),
                    f"use one of {', '.join(RECORD_SIGN)}",
                )
            ]
        )
    signers = text(("signing", "allowed_signers"), ALLOWED_SIGNERS) or ALLOWED_SIGNERS
    problem = _signers_problem(signers)
    if problem:
        raise AtmosError(
            [
                Problem(
                    f"signing.allowed_signers {signers!r} {problem}",
                    locate_in_file(path, "atmos.yaml", ("signing", "allowed_signers")),
                    "name a committed file inside the repository, e.g. allowed_signers (the default): "
                    "changing who may approve must itself be a reviewed commit",
                )
            ]
        )
    templates = _get(data, "templates", "settings")
    templates = templates if isinstance(templates, dict) else {}

    def flag(value: Any, keys: tuple[str, ...]) -> bool:
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        raise AtmosError(
            [
                Problem(
                    f"{'.'.join(keys)} must be true or false, got {value!r}",
                    locate_in_file(path, "atmos.yaml", keys),
                    "write true or false",
                )
            ]
        )

    evaluations = templates.get("evaluations", 1)
    if isinstance(evaluations, bool) or not isinstance(evaluations, int) or not 1 <= evaluations <= 10:
        raise AtmosError(
            [
                Problem(
                    f"templates.settings.evaluations must be a whole number (1 to 10), not {evaluations!r}",
                    locate_in_file(path, "atmos.yaml", ("templates", "settings", "evaluations")),
                    "write e.g. evaluations: 2 (each pass renders with the result of the one before)",
                )
            ]
        )
    sprig = templates.get("sprig")
    gomplate = templates.get("gomplate")
    return RepoConfig(
        root=root,
        stacks_base=(base / (text(("stacks", "base_path"), "stacks") or "stacks")).resolve(),
        terraform_base=(
            base / (text(("components", "terraform", "base_path"), "components/terraform") or "")
        ).resolve(),
        terraform_command=text(("components", "terraform", "command"), "terraform") or "terraform",
        deployments_base=(base / (text(("deployments", "base_path"), "deployments") or "")).resolve(),
        vendor_base=(base / vendor).resolve() if vendor else None,
        list_merge_strategy=strategy,
        name_pattern=text(("stacks", "name_pattern"), None),
        stack_included_paths=_paths(data, "included_paths"),
        stack_excluded_paths=_paths(data, "excluded_paths"),
        work_root=work_root,
        allowed_signers=PurePosixPath(signers).as_posix(),
        record_sign=sign,
        name_template=text(("stacks", "name_template"), None),
        templates_enabled=flag(templates.get("enabled"), ("templates", "settings", "enabled")),
        template_evaluations=evaluations,
        exec_enabled=exec_enabled,
        inherit_metadata=flag(_get(data, "stacks", "inherit", "metadata"), ("stacks", "inherit", "metadata"))
        if _get(data, "stacks", "inherit", "metadata") is not None
        else True,
        template_sprig=flag(
            sprig.get("enabled") if isinstance(sprig, dict) else None,
            ("templates", "settings", "sprig", "enabled"),
        ),
        template_gomplate=flag(
            gomplate.get("enabled") if isinstance(gomplate, dict) else None,
            ("templates", "settings", "gomplate", "enabled"),
        ),
        terraform_aliases=_aliases(data, path),
        cache_url=_cache_url(data, path),
        env=_global_env(data, path),
        auth=json.dumps(data["auth"], sort_keys=True, default=str) if data.get("auth") else "",
        kept_env=tuple(kept),
    )


def _global_env(data: dict[str, Any], path: Path) -> tuple[tuple[str, str], ...]:
    """atmos.yaml's `env:` (Atmos's `map[string]string`): names to scalar values, as strings."""
    section = data.get("env")
    if section is None:
        return ()
    if not isinstance(section, dict):
        raise AtmosError(
            [
                Problem(
                    f"env must be a mapping of variable names to values, got {type(section).__name__}",
                    locate_in_file(path, "atmos.yaml", ("env",)),
                    "write e.g. env: {TF_IN_AUTOMATION: 'true'}",
                )
            ]
        )
    found = []
    for name, value in section.items():
        if isinstance(value, dict | list):
            shape = "mapping" if isinstance(value, dict) else "list"
            raise AtmosError(
                [
                    Problem(
                        f"env.{name} must be a single value, got a {shape}",
                        locate_in_file(path, "atmos.yaml", ("env", name)),
                        "write the variable's value as a string",
                    )
                ]
            )
        if isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = "" if value is None else str(value)
        found.append((str(name), text))
    return tuple(found)


CACHE_SCHEMES = ("oci://", "oci+http://")


def _cache_url(data: dict[str, Any], path: Path) -> str | None:
    """`cache: {url: oci://registry/repository}`: where runners share what they fetched and planned."""
    section = data.get("cache")
    if section is None:
        return None
    url = section.get("url") if isinstance(section, dict) else None
    if url is None and isinstance(section, dict):
        return None
    if not isinstance(url, str) or not url.startswith(CACHE_SCHEMES) or "/" not in url.split("://", 1)[1]:
        keys = ("cache", "url") if isinstance(section, dict) else ("cache",)
        got = url if isinstance(section, dict) else section
        raise AtmosError(
            [
                Problem(
                    f"{'.'.join(keys)} must be a URL oci://<registry>/<repository>, got {got!r}",
                    locate_in_file(path, "atmos.yaml", keys),
                    "e.g. cache: {url: oci://ghcr.io/acme/atmos-cache} (oci+http:// for plain HTTP)",
                )
            ]
        )
    return url


def _aliases(data: dict[str, Any], path: Path) -> tuple[str, ...]:
    """`components.terraform.aliases` (one name or a list), checked as Atmos's
    `validateComponentAlias` checks them: not empty, not `terraform` itself, not another component
    type, not twice."""
    keys = ("components", "terraform", "aliases")
    raw = _get(data, *keys)
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list):
        items = [items]
    found: list[str] = []
    for index, item in enumerate(items):
        alias = item.strip().lower() if isinstance(item, str) else ""
        problem = None
        if not alias:
            problem = "an alias must be a non-empty name"
        elif alias == "terraform":
            problem = "'terraform' cannot alias itself"
        elif alias in COMPONENT_TYPES:
            problem = f"{alias!r} is an Atmos component type of its own"
        elif alias in found:
            problem = f"{alias!r} is declared more than once"
        if problem:
            at: list[str | int] = [*keys, index] if isinstance(raw, list) else list(keys)
            raise AtmosError(
                [
                    Problem(
                        f"components.terraform.aliases: {problem}",
                        locate_in_file(path, "atmos.yaml", at),
                        "name the other component types stack files may write Terraform components under, "
                        "e.g. aliases: [opentofu]",
                    )
                ]
            )
        found.append(alias)
    return tuple(found)


def _signers_problem(path: str) -> str | None:
    """Why a path cannot hold the allowed signers: it must be a committed file of the repository."""
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if not parts or path.startswith("/") or PurePosixPath(path).is_absolute():
        return "must be a path relative to the repository"
    if ".." in parts:
        return "leaves the repository"
    if parts[0] == ".atmos":
        return "is under .atmos/, which is local working data and never committed"
    return None


def _paths(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = _get(data, "stacks", key)
    return tuple(str(v) for v in value) if isinstance(value, list) else ()
