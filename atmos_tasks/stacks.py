"""Atmos-compatible stack loading, scoped to the stacks a deployment declares (SPEC §4).

Only the declared stack files and their import closure are opened. Each value remembers where it
was written (file and key path) so errors and `describe --provenance` can point at it.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from atmos_tasks import inputs
from atmos_tasks.config import LIST_MERGE_STRATEGIES, RepoConfig
from atmos_tasks.errors import AtmosError, Location, Problem, Where
from atmos_tasks.stacklocals import LocalsError, apply_locals, has_locals
from atmos_tasks.yamlfunctions import Context as FunctionContext
from atmos_tasks.yamlfunctions import YamlFunction, contains, evaluate, expand_includes
from atmos_tasks.yamlio import load_data, locate_in_file

# A provenance tree mirrors a value tree: a dict for a mapping, an Origin for anything else.
Prov = Any
SECTIONS = ("vars", "settings", "env")


@dataclass(frozen=True)
class Origin:
    """Where a value was written: a file (as shown to the user) and the key path inside it."""

    file: str
    keypath: tuple[str | int, ...]

    def __str__(self) -> str:
        return f"{self.file}:{'.'.join(str(p) for p in self.keypath)}"


@dataclass
class StackFile:
    path: Path
    shown: str
    data: dict[str, Any]
    # The files its `!include`s read (included as it is read, as Atmos does).
    included: tuple[Path, ...] = ()


@dataclass
class Sourced:
    """A mapping together with its provenance tree."""

    value: dict[str, Any] = field(default_factory=dict)
    prov: dict[str, Prov] = field(default_factory=dict)
    # For merged stacks (`StackLoader.load_closure`): per component, the (logical stack, file) of the
    # declared Atmos top-level stacks defining it, when a deployment composes several of them.
    parents: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # For one file's merge layer, when atmos.yaml declares Terraform aliases: per component, the
    # envelope it is written under (`terraform` or an alias) and where (file, key path).
    envelopes: dict[str, Origin] = field(default_factory=dict)


def _prov_of(value: Any, origin_file: str, keypath: tuple[str | int, ...]) -> Prov:
    if isinstance(value, dict):
        return {k: _prov_of(v, origin_file, (*keypath, k)) for k, v in value.items()}
    return Origin(origin_file, keypath)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def deep_merge(
    dst: Sourced, src: dict[str, Any], src_prov: dict[str, Prov], strategy: str = "replace"
) -> None:
    """Merge `src` into `dst` (later wins): maps merge; anything else is replaced, per SPEC §4."""
    _merge_map(dst.value, dst.prov, src, src_prov, strategy)


def _merge_map(
    dst: dict[str, Any], dprov: dict[str, Prov], src: dict[str, Any], sprov: dict[str, Prov], strategy: str
) -> None:
    for key, value in src.items():
        old = dst.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            sub = dprov.get(key)
            if not isinstance(sub, dict):
                sub = dprov[key] = {}
            _merge_map(old, sub, value, sprov.get(key) or {}, strategy)
        elif isinstance(value, list) and isinstance(old, list) and strategy != "replace":
            dst[key] = _merge_lists(old, value, strategy)
            dprov[key] = sprov.get(key)
        else:
            dst[key] = _copy(value)
            dprov[key] = _copy_prov(sprov.get(key))


def _copy_prov(prov: Prov) -> Prov:
    if isinstance(prov, dict):
        return {k: _copy_prov(v) for k, v in prov.items()}
    return prov


def _merge_lists(old: list[Any], new: list[Any], strategy: str) -> list[Any]:
    if strategy == "append":
        return [*_copy(old), *_copy(new)]
    merged = []
    for index in range(max(len(old), len(new))):
        if index >= len(new):
            merged.append(_copy(old[index]))
        elif index >= len(old):
            merged.append(_copy(new[index]))
        elif isinstance(old[index], dict) and isinstance(new[index], dict):
            into = Sourced(_copy(old[index]), {})
            deep_merge(into, new[index], {}, strategy)
            merged.append(into.value)
        else:
            merged.append(_copy(old[index]))
    return merged


def global_env(config: RepoConfig) -> Sourced:
    """atmos.yaml's `env:`, the lowest layer of a component's `env` (Atmos sets it for every
    command, under the component's own)."""
    value = dict(config.env)
    return Sourced(value, _prov_of(value, "atmos.yaml", ("env",)))


def global_auth(config: RepoConfig | None) -> Sourced:
    """atmos.yaml's `auth:`, the lowest layer of a component's `auth` (`processAuthConfig`)."""
    if config is None or not config.auth:
        return Sourced()
    import json

    value = json.loads(config.auth)
    return Sourced(value, _prov_of(value, "atmos.yaml", ("auth",)))


def merge_all(layers: list[Sourced], strategy: str = "replace") -> Sourced:
    out = Sourced()
    for layer in layers:
        deep_merge(out, layer.value, layer.prov, strategy)
    return out


def _section(sourced: Sourced, *keys: str) -> Sourced:
    value: Any = sourced.value
    prov: Any = sourced.prov
    for key in keys:
        if isinstance(value, dict) and isinstance(value.get(key), YamlFunction):
            # A mapping the stack processor merges, written as a function it would run only after
            # merging (`!include` has been read in place already): never dropped silently.
            function = value[key]
            raise AtmosError.single(
                f"{function.tag} as the whole `{key}:` section is not supported: Atmos merges sections "
                "before it runs the function",
                function.location,
                f"use !include for a whole section, or write {key}: as a mapping with the function in a "
                "value",
            )
        if not isinstance(value, dict) or not isinstance(value.get(key), dict):
            return Sourced()
        value = value[key]
        prov = prov.get(key) if isinstance(prov, dict) else None
    return Sourced(value, prov if isinstance(prov, dict) else {})


class StackLoader:
    """Reads stack files on demand and memoises what it parsed for the rest of the run."""

    def __init__(self, config: RepoConfig) -> None:
        self.config = config
        self._files: dict[Path, StackFile] = {}
        self.opened: list[Path] = []

    def read(self, path: Path) -> StackFile:
        cached = self._files.get(path)
        if cached is not None:
            inputs.file(path)  # read once, observed each time (`inputs.scoped`)
            for read in cached.included:
                inputs.file(read)
            return cached
        shown = self.config.shown(path)
        self.opened.append(path)
        inputs.file(path)
        data = load_data(path, shown, self.config.parse_cache())
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise AtmosError([Problem("a stack file must be a mapping", Location(shown, 1, 1))])
        included: list[Path] = []
        if contains(data):
            data = expand_includes(data, self.config.root, included)
        if has_locals(data):
            data = self._locals(StackFile(path, shown, data), data)
        stack = StackFile(path, shown, data, tuple(included))
        self._files[path] = stack
        return stack

    def _locals(self, stack: StackFile, data: dict[str, Any]) -> dict[str, Any]:
        """The file with its `locals:` resolved and the templates that read them rendered."""
        config = self.config

        def render(text: str, context: dict[str, Any], path: tuple[str | int, ...]) -> str:
            try:
                return _go_render(config, text, context, stack.shown)
            except _GoTemplateError as err:
                raise LocalsError(
                    path,
                    f"{'.'.join(map(str, path))}: {err}",
                    "a file's locals read its other locals (.locals.x) and its own vars, settings and "
                    "env; locals never reach another file",
                ) from None

        try:
            return apply_locals(data, render)
        except LocalsError as err:
            raise _error(stack, list(err.keypath), err.message, err.hint) from None

    def top_level(self, name: str, where: Where) -> Path:
        path = self._match_one(self.config.stacks_base / name)
        if path is None:
            raise AtmosError(
                [Problem(f"stack {name!r} not found", where, "check the stack path in the manifest")]
            )
        return path

    @staticmethod
    def _match_one(base: Path) -> Path | None:
        if base.suffix in (".yaml", ".yml"):
            return base if base.is_file() else None
        for ext in (".yaml", ".yml"):
            candidate = base.with_name(base.name + ext)
            if candidate.is_file():
                return candidate
        return None

    def resolve_import(self, entry: str, importer: StackFile) -> list[Path]:
        """The files one import entry names: globs match in lexical order of their paths."""
        if entry.startswith(("./", "../")):
            base = importer.path.parent / entry
        else:
            base = self.config.stacks_base / entry
        text = os.path.normpath(str(base))
        if not glob.has_magic(text):
            found = self._match_one(Path(text))
            return [found] if found else []
        patterns = [text] if text.endswith((".yaml", ".yml")) else [text + ".yaml", text + ".yml"]
        matches = sorted(
            {Path(p) for pattern in patterns for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)}
        )
        inputs.matched("\0".join(patterns), [str(p) for p in matches])
        return matches

    def load_closure(self, top: Sequence[tuple[str, Where]], strategy: str | None = None) -> Sourced:
        """Merge the declared top-level stacks, each with its import closure, in order."""
        strategy = strategy or self.config.list_merge_strategy
        layers: list[Sourced] = []
        parents: list[tuple[Path, list[Sourced]]] = []
        for name, where in top:
            path = self.top_level(name, where)
            own, _, _ = self._process(path, Sourced(), Sourced(), [])
            parents.append((path, own))
            layers.extend(own)
        _check_envelopes(self.config, layers)
        merged = merge_all(layers, strategy)
        merged.parents = self._parents(parents, strategy)
        return merged

    def _parents(
        self, parents: list[tuple[Path, list[Sourced]]], strategy: str
    ) -> dict[str, tuple[tuple[str, str], ...]]:
        """For each component, the logical stacks (and files) of the declared Atmos top-level stacks
        that define it, when a deployment composes two or more of them: Atmos resolves a
        component's bases only within its own logical stack (its "top-level stack composition"
        keeps peer parents apart). Declared files that are not Atmos top-level stacks (catalog
        entries outside `stacks.included_paths`) are shared by all and scope nothing."""
        tops = [(path, layers) for path, layers in parents if is_top_level_stack(self.config, path)]
        if len({path for path, _ in tops}) < 2:
            return {}
        owners: dict[str, list[tuple[str, str]]] = {}
        for path, layers in tops:
            parent = merge_all(layers, strategy).value
            entry = (_parent_identity(self.config, path, parent), self.config.shown(path))
            for component in _nested(parent, "components", "terraform"):
                if entry not in owners.setdefault(component, []):
                    owners[component].append(entry)
        return {component: tuple(entries) for component, entries in owners.items()}

    def _process(
        self, path: Path, inline: Sourced, imported: Sourced, chain: list[StackFile]
    ) -> tuple[list[Sourced], Sourced, Sourced]:
        """One stack file and its imports, depth first: the layers to merge (`[import 1, …,
        import n, the file]`) and the `overrides` in scope, threaded as Atmos's
        `processYAMLConfigFileWithContextInternal` threads them (internal/exec/stack_processor_utils.go):

        - `inline`: this file's `overrides` and `terraform.overrides` under those of the files
          importing it (an importing file's overrides win);
        - `imported`: the overrides of every file processed before in import order, earlier
          sibling imports included (an import sees the overrides of the imports listed before it).

        The components this file defines get `imported` then `inline` as their `overrides`."""
        stack = self.read(path)
        data = stack.data
        if "metadata" in data:
            raise _error(
                stack,
                ["metadata"],
                "a stack file's own `metadata:` (stack-wide defaults) is not supported yet",
                "set metadata on the components (or their abstract bases) instead",
            )
        strategy = self.config.list_merge_strategy
        inline = merge_all([*_own_overrides(stack), inline], strategy)
        layers: list[Sourced] = []
        for index, (text, skip_if_missing) in enumerate(self._imports(stack)):
            if text.endswith(".tmpl"):
                raise _error(
                    stack,
                    ["import", index],
                    f"templated stack import {text!r} is not supported",
                    "render the template to a plain .yaml file and import that",
                )
            if re.match(r"^(?:[a-z][a-z0-9+.-]*::|[a-z][a-z0-9+.-]*://)", text):
                # go-getter sources (https://, git::, s3::…): Atmos downloads them at every load.
                raise _error(
                    stack,
                    ["import", index],
                    f"remote stack import {text!r} is not supported",
                    "vendor the file into the stacks folder (a vendor.yaml entry) and import it by its path",
                )
            matches = self.resolve_import(text, stack)
            if not matches:
                if skip_if_missing:
                    continue
                raise _error(
                    stack,
                    ["import", index],
                    f"import {text!r} matches no stack file",
                    "fix the path (relative to the stacks folder, or ./ and ../ relative to this "
                    "file) or mark it skip_if_missing: true",
                )
            # The matches of one import all see the overrides gathered so far (Atmos processes
            # them in parallel), then each one's overrides are gathered, in order.
            results = []
            for match in matches:
                chain_paths = [s.path for s in chain] + [stack.path]
                if match in chain_paths:
                    cycle = [self.config.shown(p) for p in chain_paths[chain_paths.index(match) :]]
                    raise _error(
                        stack,
                        ["import", index],
                        "import cycle: " + " → ".join([*cycle, self.config.shown(match)]),
                        "remove one of these imports; a stack cannot import itself, even indirectly",
                    )
                results.append(self._process(match, inline, imported, [*chain, stack]))
            for sub_layers, sub_inline, sub_imported in results:
                imported = merge_all([imported, sub_imported, sub_inline], strategy)
                layers.extend(sub_layers)
        scoped = merge_all([imported, inline], strategy)
        layers.append(_with_overrides(stack, scoped, self.config.terraform_aliases))
        return layers, inline, imported

    def _imports(self, stack: StackFile) -> list[tuple[str, bool]]:
        raw = stack.data.get("import")
        if raw is None:
            return []
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list):
            raise _error(stack, ["import"], "'import' must be a list", "write each import as a list item")
        entries = []
        for index, item in enumerate(raw):
            if isinstance(item, str):
                entries.append((item, False))
                continue
            if not (isinstance(item, dict) and isinstance(item.get("path"), str)):
                raise _error(
                    stack,
                    ["import", index],
                    "an import must be a path or {path, skip_if_missing}",
                    "write a stack path such as catalog/vpc",
                )
            if "context" in item:
                raise _error(
                    stack,
                    ["import", index],
                    "import 'context' is not supported",
                    "templated imports are out of scope; import a plain stack file",
                )
            unknown = set(item) - IMPORT_KEYS
            if unknown:
                raise _error(
                    stack,
                    ["import", index],
                    f"unknown import key(s): {', '.join(sorted(unknown))}",
                    "an import is a path or {path, skip_if_missing}",
                )
            entries.append((item["path"], bool(item.get("skip_if_missing", False))))
        return entries


IMPORT_KEYS = {"path", "skip_if_missing", "skip_templates_processing", "ignore_missing_template_values"}


def _error(stack: StackFile, keypath: list[str | int], message: str, hint: str) -> AtmosError:
    """A problem in a stack file; its position is looked up only now, when it is needed."""
    return AtmosError([Problem(message, locate_in_file(stack.path, stack.shown, keypath), hint)])


def _nested(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    node: Any = data
    for key in keys:
        if not isinstance(node, dict):
            return {}
        node = node.get(key)
    return node if isinstance(node, dict) else {}


def _own_overrides(stack: StackFile) -> list[Sourced]:
    """A file's `overrides` then `terraform.overrides` (which wins), each with its provenance."""
    found = []
    for keys in (("overrides",), ("terraform", "overrides")):
        node: Any = stack.data
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            continue
        if not isinstance(node, dict):
            raise _error(
                stack,
                list(keys),
                f"'{'.'.join(keys)}' must be a mapping",
                "write e.g. overrides: {vars: {team: a}}",
            )
        found.append(Sourced(node, _prov_of(node, stack.shown, keys)))
    return found


def _with_overrides(stack: StackFile, overrides: Sourced, aliases: tuple[str, ...] = ()) -> Sourced:
    """The file as a merge layer, with the overrides in scope bound to every terraform component it
    defines (Atmos sets each one's `overrides` section, replacing one written there)."""
    data = stack.data
    prov = _prov_of(data, stack.shown, ())
    envelopes: dict[str, Origin] = {}
    if aliases:
        data, prov, envelopes = _canonical_envelopes(stack, data, prov, aliases)
    components = _nested(data, "components", "terraform")
    if not overrides.value or not components:
        return Sourced(data, prov, envelopes=envelopes)
    patched_terraform = {}
    for name, section in components.items():
        if isinstance(section, dict):
            section = {**section, "overrides": overrides.value}
            prov["components"]["terraform"][name]["overrides"] = overrides.prov
        patched_terraform[name] = section
    patched = {**data, "components": {**data["components"], "terraform": patched_terraform}}
    return Sourced(patched, prov, envelopes=envelopes)


def _canonical_envelopes(
    stack: StackFile, data: dict[str, Any], prov: dict[str, Prov], aliases: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Prov], dict[str, Origin]]:
    """A file's `components.<alias>` (atmos.yaml's `components.terraform.aliases`, e.g. `opentofu`)
    filed under `components.terraform`, as Atmos's `NormalizeComponentSections`
    (pkg/component/aliases.go) files them; a component under both envelopes is an error. The
    provenance keeps the lines as written."""
    components = data.get("components")
    if not isinstance(components, dict):
        return data, prov, {}
    envelopes = {
        name: Origin(stack.shown, ("components", "terraform", name))
        for name in _nested(data, "components", "terraform")
    }
    if not any(alias in components for alias in aliases):
        return data, prov, envelopes
    terraform = dict(components.get("terraform") or {})
    terraform_prov = dict(_nested_prov(prov, "components", "terraform") or {})
    rest = {k: v for k, v in components.items() if k != "terraform" and k not in aliases}
    rest_prov = {k: v for k, v in prov["components"].items() if k != "terraform" and k not in aliases}
    for alias in aliases:
        section = components.get(alias)
        if section is None:
            continue
        if not isinstance(section, dict):
            raise _error(
                stack,
                ["components", alias],
                f"components.{alias} must be a mapping of components",
                f"write components: {{{alias}: {{vpc: {{vars: …}}}}}}",
            )
        for name, config in section.items():
            if name in terraform:
                where = locate_in_file(stack.path, stack.shown, ["components", alias, name], at_key=True)
                raise AtmosError(
                    [
                        Problem(
                            f"component {name!r} is defined under both components.terraform and "
                            f"components.{alias}",
                            where,
                            f"{alias} is an alias of terraform (atmos.yaml components.terraform.aliases): "
                            "define the component once",
                        )
                    ]
                )
            terraform[name] = config
            terraform_prov[name] = _nested_prov(prov, "components", alias, name)
            envelopes[name] = Origin(stack.shown, ("components", alias, name))
    return (
        {**data, "components": {**rest, "terraform": terraform}},
        {**prov, "components": {**rest_prov, "terraform": terraform_prov}},
        envelopes,
    )


def _check_envelopes(config: RepoConfig, layers: list[Sourced]) -> None:
    """A component defined under `components.terraform` in one file and under an alias envelope in
    another: Atmos files the envelopes of the stack's merged `components` section, and refuses a
    component under both (`mergeAliasComponentSection`)."""
    first: dict[str, Origin] = {}
    for layer in layers:
        for name, origin in layer.envelopes.items():
            seen = first.setdefault(name, origin)
            if seen.keypath[1] != origin.keypath[1]:
                raise AtmosError(
                    [
                        Problem(
                            f"component {name!r} is defined under both components.{seen.keypath[1]} "
                            f"({seen.file}) and components.{origin.keypath[1]}",
                            locate_in_file(
                                config.root / origin.file, origin.file, list(origin.keypath), at_key=True
                            ),
                            "an alias of terraform (atmos.yaml components.terraform.aliases) files the same "
                            "components: define the component under one of them",
                        )
                    ]
                )


def _parent_identity(config: RepoConfig, path: Path, parent: dict[str, Any]) -> str:
    """The logical stack a top-level stack belongs to, from its own global sections: `name:`, else
    `stacks.name_template`, else `stacks.name_pattern`, else its path (a name that needs a
    component's sections falls back to the path, as Atmos's `logicalStackIdentity` does)."""
    sections: dict[str, Any] = {}
    for section in SECTIONS:
        value = parent.get(section)
        sections[section] = value if isinstance(value, dict) else {}
    sections["providers"] = _nested(parent, "terraform", "providers")
    try:
        return stack_name(config, path, parent, sections["vars"], sections)
    except AtmosError:
        return stack_name(replace(config, name_template=None, name_pattern=None), path, {}, {})


@dataclass
class ComponentConfig:
    """A component as the stacks define it (what `atmos describe component` returns)."""

    name: str
    defined: bool
    vars: Sourced
    settings: Sourced
    env: Sourced
    metadata: dict[str, Any]
    # The Terraform folder Atmos runs: `metadata.component` (the component's own or inherited),
    # else the `component` key below.
    component: str
    backend_type: str | None
    backend: dict[str, Any]
    inheritance: list[str]
    # Only when `stacks.inherit.metadata: false`: the bases' `metadata.component`, not inherited.
    base_folders: dict[str, str] = field(default_factory=dict)
    # The `component` key `atmos describe component` shows (and templates read as `.component`):
    # the own `metadata.component`, else the base named by a top-level `component:`, else the
    # component's name. It differs from the folder when `metadata.component` is inherited.
    describe_component: str = ""
    # Where each `metadata` value was written (a provenance tree, as `Sourced.prov`).
    metadata_prov: dict[str, Prov] = field(default_factory=dict)
    # The list_merge_strategy its sections were merged with (atmos.yaml's, unless settings set one).
    list_merge_strategy: str = "replace"
    # Atmos's `providers`: the stack's `terraform.providers`, the bases', its own, its overrides',
    # deep-merged; the Terraform kind writes them to providers_override.tf.json.
    providers: Sourced = field(default_factory=Sourced)
    # Atmos's `dependencies` section but its `components`: `tools`, `files`, `folders`.
    dependencies: Sourced = field(default_factory=Sourced)
    # `dependencies.components`, appended from the stack's, the bases' and its own lists (Atmos's
    # "child lists extend parent lists"), each entry with where it was written.
    dependency_components: list[Any] = field(default_factory=list)
    dependency_origins: list[Origin | None] = field(default_factory=list)
    # Atmos's `hooks`: the stack's `hooks` and `terraform.hooks`, the bases', its own, its
    # overrides', deep-merged (a hook's name is its key); the Terraform kind says which fire.
    hooks: Sourced = field(default_factory=Sourced)
    # Atmos's `provision` (what Atmos prepares before Terraform: the backend, the workdir): the
    # stack's `provision` and `terraform.provision`, the bases', its own.
    provision: Sourced = field(default_factory=Sourced)
    # Atmos's `auth` (identities, providers): atmos.yaml's, the stack's `auth` and `terraform.auth`,
    # the bases', its own, its overrides'.
    auth: Sourced = field(default_factory=Sourced)
    # Atmos's `source` (the module fetched just in time: `uri`, `version`, paths): the stack's
    # `source` and `terraform.source`, the bases', its own; the Terraform kind vendors it.
    source: Sourced = field(default_factory=Sourced)
    # Atmos's `generate` (file name → text or mapping, written into the component before it runs):
    # the stack's `generate` and `terraform.generate`, the bases', its own, its overrides'.
    generate: Sourced = field(default_factory=Sourced)
    # Atmos's `secrets` (secret providers and the secret variables read with `!secret`): the
    # stack's `secrets` and `terraform.secrets`, the bases', its own, its overrides'.
    secrets: Sourced = field(default_factory=Sourced)
    # Functions of its sections that cannot run here, kept as written for its rollout to refuse:
    # `!store`/`!secret` (atmos-tasks reads no Atmos store yet), `!exec` without the opt-in.
    kept: tuple[YamlFunction, ...] = ()

    @property
    def abstract(self) -> bool:
        return self.metadata.get("type") == "abstract"

    @property
    def enabled(self) -> bool:
        return self.metadata.get("enabled", True) is not False

    def describe(self) -> dict[str, Any]:
        """The keys `atmos describe component` returns for these sections (`dependencies` only when
        set, as Atmos adds it)."""
        shown = {
            "vars": self.vars.value,
            "settings": self.settings.value,
            "env": self.env.value,
            "backend_type": self.backend_type or "",
            "backend": self.backend,
            "metadata": self.metadata,
            "component": self.describe_component or self.component,
            "inheritance": self.inheritance,
            "providers": self.providers.value,
        }
        dependencies = self.dependencies_section()
        if dependencies:
            shown["dependencies"] = dependencies
        for section in ("hooks", "provision", "auth", "source", "generate", "secrets"):
            value = getattr(self, section).value
            if value:
                shown[section] = value
        return shown

    def dependencies_section(self) -> dict[str, Any]:
        section = dict(self.dependencies.value)
        if self.dependency_components:
            section["components"] = list(self.dependency_components)
        return section

    def name_sections(self) -> dict[str, Any]:
        """What `stacks.name_template` reads besides `.vars` (Atmos renders it over the component's
        whole section)."""
        return {
            "settings": self.settings.value,
            "env": self.env.value,
            "metadata": self.metadata,
            "providers": self.providers.value,
        }


# Never inherited from a base: what it inherits from, and whether it is abstract (Atmos's
# `processBaseComponentConfigInternal`, internal/exec/stack_processor_utils.go).
METADATA_NOT_INHERITED = ("inherits", "type")


def component_config(
    merged: Sourced, name: str, config: RepoConfig | None = None, where: Where | None = None
) -> ComponentConfig:
    """Resolve one terraform component as Atmos's stack processor does: globals → bases → its own
    sections → overrides, with its own `settings.list_merge_strategy` when it (or a base, or the
    stack) sets one, and `metadata` inherited from its bases except `inherits` and `type`."""
    global_strategy = config.list_merge_strategy if config else "replace"
    components = _section(merged, "components", "terraform")
    own = _section(components, name)
    defined = name in components.value

    def locate(component: str, *keys: str) -> Where | None:
        origin = find_origin(components.prov, [component, *keys])
        if config is not None and origin is not None:
            return origin_location(config, origin)
        return where

    own_folder = _nested(own.value, "metadata").get("component")
    if own_folder is not None and not isinstance(own_folder, str):
        raise AtmosError(
            [
                Problem(
                    f"metadata.component of {name!r} must be a string (a folder under the Terraform "
                    "components folder)",
                    locate(name, "metadata", "component"),
                    "write e.g. component: vpc",
                )
            ]
        )
    bases = _Bases(components, config, locate, merged.parents.get(name, ()), merged.parents)
    bases.resolve(name)
    order = bases.order

    # The component's list_merge_strategy: the last one set in the stack's (and terraform's)
    # settings, its bases', its own, its overrides' (`effectiveAtmosConfig`,
    # internal/exec/stack_processor_merge.go); it merges its bases too.
    settings_layers = [
        _section(merged, "settings"),
        _section(merged, "terraform", "settings"),
        *(_section(components, base, "settings") for base in order),
        _section(own, "settings"),
        _section(own, "overrides", "settings"),
    ]
    strategy, strategy_at = global_strategy, None
    for layer in settings_layers:
        value = layer.value.get("list_merge_strategy")
        if isinstance(value, str) and value:
            strategy, strategy_at = value, layer.prov.get("list_merge_strategy")
    if strategy not in LIST_MERGE_STRATEGIES:
        location = where
        if config is not None and isinstance(strategy_at, Origin):
            location = origin_location(config, strategy_at)
        raise AtmosError(
            [
                Problem(
                    f"component {name!r}: settings.list_merge_strategy is {strategy!r}",
                    location,
                    f"use one of {', '.join(LIST_MERGE_STRATEGIES)}",
                )
            ]
        )

    sections: dict[str, Sourced] = {}
    for section in SECTIONS:
        # As Atmos groups them: global with terraform, the bases together, then the component.
        globals_ = merge_all([_section(merged, section), _section(merged, "terraform", section)], strategy)
        inherited = merge_all([_section(components, base, section) for base in order], strategy)
        sections[section] = merge_all(
            [globals_, inherited, _section(own, section), _section(own, "overrides", section)], strategy
        )

    # `mergeComponentConfigurations` (internal/exec/stack_processor_merge.go): the stack's
    # `terraform.providers`, the bases', the component's own, its `overrides.providers`.
    providers = merge_all(
        [
            _section(merged, "terraform", "providers"),
            *(_section(components, base, "providers") for base in order),
            _section(own, "providers"),
            _section(own, "overrides", "providers"),
        ],
        strategy,
    )

    def layered(section: str, *, overrides: bool = True, lowest: Sourced | None = None) -> Sourced:
        """`section` as the same function merges `hooks` (GlobalAndTerraformHooks), `auth`,
        `secrets`, `generate` and `provision`: the stack's and its `terraform:`'s, the bases', the
        component's own, its overrides' (not for `provision`)."""
        return merge_all(
            [
                *([lowest] if lowest is not None else []),
                _section(merged, section),
                _section(merged, "terraform", section),
                *(_section(components, base, section) for base in order),
                _section(own, section),
                *([_section(own, "overrides", section)] if overrides else []),
            ],
            strategy,
        )

    hooks = layered("hooks")
    # `processAuthConfig` (the same file): atmos.yaml's auth is the lowest layer.
    auth = layered("auth", lowest=global_auth(config))
    declared_secrets = layered("secrets")
    generate = layered("generate")
    # `processComponentSourceProvision` (the same file): global → base components → component, for
    # `source` (a plain string is its `uri`) and `provision`.
    provision = layered("provision", overrides=False)
    fetched = merge_all(
        [
            _source_section(merged, ()),
            _source_section(merged, ("terraform",)),
            *(_source_section(components, (base,)) for base in order),
            _source_section(own, ()),
        ],
        strategy,
    )

    dependencies, dependency_components, dependency_origins = _dependencies(
        merged, components, order, own, strategy
    )

    own_metadata = _section(own, "metadata")
    inherit_metadata = metadata_inherited(config)
    if inherit_metadata:
        inherited_metadata = merge_all(
            [_without(_section(components, base, "metadata"), METADATA_NOT_INHERITED) for base in order],
            strategy,
        )
        metadata = merge_all([inherited_metadata, own_metadata], strategy)
    else:
        metadata = merge_all([own_metadata], strategy)

    if metadata.value.get("type") != "abstract" and metadata.value.get("enabled", True) is not False:
        # What is never deployed (abstract, disabled) runs nothing of what it declares.
        _refuse_unsupported(config, merged, components, order, own, name, where)
        _check_dependency_entries(config, name, dependency_components, dependency_origins, where)

    backend_type = None
    backend_layers = [_section(merged, "terraform", "backend")]
    for source in [_section(merged, "terraform"), *(_section(components, b) for b in order), own]:
        value = source.value.get("backend_type")
        if isinstance(value, str) and value:
            backend_type = value
    for base in order:
        backend_layers.append(_section(components, base, "backend"))
    backend_layers.append(_section(own, "backend"))
    backend_all = merge_all(backend_layers, global_strategy).value
    backend: Any = backend_all.get(backend_type, {}) if backend_type else {}

    # `processMetadataInheritance` (stack_processor_process_stacks_helpers_inheritance.go): the
    # `component` key is the own metadata.component, else the base a top-level `component:`
    # names, else the component itself; `ProcessComponentMetadata` (internal/exec/utils.go) then
    # runs the folder of the merged (inherited) metadata.component, if there is one.
    shown_component = own_folder if isinstance(own_folder, str) else bases.top_level_base or name
    folder = metadata.value.get("component")
    if not isinstance(folder, str) or not folder:
        folder = shown_component
    base_folders = {}
    if not inherit_metadata:
        for base in order:
            base_folder = _nested(components.value.get(base) or {}, "metadata").get("component")
            if isinstance(base_folder, str):
                base_folders[base] = base_folder
    return ComponentConfig(
        name=name,
        defined=defined,
        vars=sections["vars"],
        settings=sections["settings"],
        env=sections["env"],
        metadata=metadata.value,
        component=folder,
        backend_type=backend_type,
        backend=_copy(backend) if isinstance(backend, dict) else {},
        inheritance=bases.inheritance,
        base_folders=base_folders,
        describe_component=shown_component,
        metadata_prov=metadata.prov,
        list_merge_strategy=strategy,
        providers=providers,
        dependencies=dependencies,
        dependency_components=dependency_components,
        dependency_origins=dependency_origins,
        hooks=hooks,
        provision=provision,
        auth=auth,
        source=fetched,
        generate=generate,
        secrets=declared_secrets,
    )


def _source_section(sourced: Sourced, keys: tuple[str, ...]) -> Sourced:
    """`source:` under `keys`: a mapping, or a plain string Atmos reads as its `uri`."""
    node: Any = sourced.value
    prov: Any = sourced.prov
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
        prov = prov.get(key) if isinstance(prov, dict) else None
    value = node.get("source") if isinstance(node, dict) else None
    if isinstance(value, str) and value:
        at = prov.get("source") if isinstance(prov, dict) else None
        return Sourced({"uri": value}, {"uri": at} if isinstance(at, Origin) else {})
    return _section(sourced, *keys, "source")


def _dependencies(
    merged: Sourced, components: Sourced, order: list[str], own: Sourced, strategy: str
) -> tuple[Sourced, list[Any], list[Origin | None]]:
    """A component's `dependencies` as Atmos merges them (the stack's, its `terraform:`'s, the
    bases', its own): `dependencies.components` lists are appended ("child lists extend parent
    lists", pkg/schema/dependencies.go), the rest deep-merged."""
    layers = [
        _section(merged, "dependencies"),
        _section(merged, "terraform", "dependencies"),
        *(_section(components, base, "dependencies") for base in order),
        _section(own, "dependencies"),
    ]
    entries: list[Any] = []
    origins: list[Origin | None] = []
    for layer in layers:
        listed = layer.value.get("components")
        if listed is None:
            continue
        at = layer.prov.get("components")
        if not isinstance(listed, list):
            # Not a list: refused when the entries are checked.
            entries.append(_NotAList(listed))
            origins.append(at if isinstance(at, Origin) else None)
            continue
        for index, entry in enumerate(listed):
            entries.append(_copy(entry))
            origins.append(Origin(at.file, (*at.keypath, index)) if isinstance(at, Origin) else None)
    rest = merge_all([_without(layer, ("components",)) for layer in layers], strategy)
    return rest, entries, origins


@dataclass(frozen=True)
class _NotAList:
    """A `dependencies.components` written as something other than a list."""

    value: Any


def _check_dependency_entries(
    config: RepoConfig | None,
    name: str,
    entries: list[Any],
    origins: list[Origin | None],
    where: Where | None,
) -> None:
    """Each `dependencies.components` entry as Atmos's `Dependencies.Normalize` accepts it: a
    mapping naming the component by `component` or `name` (not two different ones), or a
    `kind: file`/`folder` entry with its `path`."""

    def problem(index: int, message: str, hint: str) -> AtmosError:
        origin = origins[index]
        location = origin_location(config, origin) if config is not None and origin is not None else where
        message = f"component {name!r}: dependencies.components[{index}] {message}"
        return AtmosError([Problem(message, location, hint)])

    for index, entry in enumerate(entries):
        if isinstance(entry, _NotAList):
            origin = origins[index]
            location = origin_location(config, origin) if config is not None and origin is not None else where
            raise AtmosError(
                [
                    Problem(
                        f"component {name!r}: dependencies.components must be a list",
                        location,
                        "write each dependency as a list item: components: [{name: vpc}]",
                    )
                ]
            )
        if not isinstance(entry, dict):
            raise problem(
                index,
                "must be a mapping",
                "write each entry as {name: <component>} (and stack: for another stack)",
            )
        if entry.get("kind") in ("file", "folder"):
            if not entry.get("path"):
                raise problem(index, f"(kind: {entry['kind']}) has no path", "add path: <file or folder>")
            continue
        component, alias = entry.get("component"), entry.get("name")
        if component and alias and component != alias:
            raise problem(
                index,
                f"names two components ({component!r} as component, {alias!r} as name)",
                "keep one of component: and name:",
            )
        if not isinstance(component or alias, str) or not (component or alias):
            raise problem(index, "names no component", "write {name: <component>}")


def _without(sourced: Sourced, keys: tuple[str, ...]) -> Sourced:
    return Sourced(
        {k: v for k, v in sourced.value.items() if k not in keys},
        {k: v for k, v in sourced.prov.items() if k not in keys},
    )


def metadata_inherited(config: RepoConfig | None) -> bool:
    """atmos.yaml's `stacks.inherit.metadata` (default true, as in Atmos): whether a component
    inherits its bases' `metadata` (except `inherits` and `type`)."""
    return True if config is None else config.inherit_metadata


# The context keys of an Atmos `settings.depends_on` entry that name another stack.
STACK_KEYS = ("namespace", "tenant", "environment", "stage")


@dataclass(frozen=True)
class StackDependency:
    """One `settings.depends_on` or `dependencies.components` entry: its key, the component, and
    whether it is in this stack."""

    key: Any
    component: str | None
    same_stack: bool
    # Where it is written: "settings.depends_on" (its key in `key`) or "dependencies.components"
    # (its index), with the entry's origin for the latter.
    section: str = "settings.depends_on"
    origin: Origin | None = None
    # A component of another Atmos kind (`kind: helmfile`…); None for a Terraform component.
    kind: str | None = None


def stack_dependencies(
    component: ComponentConfig, stack: str, aliases: tuple[str, ...] = ()
) -> list[StackDependency]:
    """Atmos's own dependencies of a component, each in this stack or not: `settings.depends_on`
    (a map or a list of `{component, namespace?, tenant?, environment?, stage?, stack?}`) and
    `dependencies.components` (`{name or component, stack?, kind?}`; `kind: file`/`folder` entries
    only mark it affected and are left out). An entry names another stack when its `stack`, or one
    of its context keys, differs from this one's (`internal/exec/describe_dependents.go`)."""
    raw = component.settings.value.get("depends_on")
    items = (
        list(raw.items()) if isinstance(raw, dict) else list(enumerate(raw)) if isinstance(raw, list) else []
    )
    found = []
    for key, entry in items:
        if not isinstance(entry, dict) or not isinstance(entry.get("component"), str):
            found.append(StackDependency(key, None, True))
            continue
        found.append(StackDependency(key, entry["component"], _same_stack(component, entry, stack)))
    for index, entry in enumerate(component.dependency_components):
        origin = component.dependency_origins[index] if index < len(component.dependency_origins) else None
        if not isinstance(entry, dict):
            found.append(StackDependency(index, None, True, "dependencies.components", origin))
            continue
        kind = entry.get("kind")
        if kind in ("file", "folder"):
            continue
        name = entry.get("component") or entry.get("name")
        other_kind = kind if isinstance(kind, str) and kind and kind not in ("terraform", *aliases) else None
        found.append(
            StackDependency(
                index,
                name if isinstance(name, str) and name else None,
                _same_stack(component, entry, stack),
                "dependencies.components",
                origin,
                other_kind,
            )
        )
    return found


def _same_stack(component: ComponentConfig, entry: dict[str, Any], stack: str) -> bool:
    other_stack = isinstance(entry.get("stack"), str) and entry["stack"] not in ("", stack)
    other_context = any(
        k in entry and str(entry[k]) != str(component.vars.value.get(k, "")) for k in STACK_KEYS
    )
    return not (other_stack or other_context)


# Component sections of Atmos that atmos-tasks does not run yet: refused where they are written,
# never ignored (none today). `hooks`, `provision` and `auth` resolve: the Terraform kind refuses,
# before it plans, what it would have to run (`refused_runs`, `auth_identity`); `source` and
# `generate` it runs (a vendor entry; files written into the component).
UNSUPPORTED_SECTIONS: dict[str, str] = {}
# Where Atmos reads each of them besides the component and its bases: the stack's global section
# and its `terraform:` one (`GlobalAndTerraformHooks`, `GlobalAuth`…), only the `terraform:` one for
# command (internal/exec/stack_processor_merge.go).
_STACK_SCOPES: dict[str, tuple[tuple[str, ...], ...]] = {
    "command": (("terraform",),),
}
_DEFAULT_SCOPES: tuple[tuple[str, ...], ...] = ((), ("terraform",))
# `dependencies:` (pkg/schema/dependencies.go): `files` and `folders` only mark a component affected
# (`atmos describe affected`), nothing a rollout runs; `components` orders it (task-graph edges, as
# settings.depends_on); `tools` are checked on the runner before the component plans (`tools.py`).
DEPENDENCY_KEYS_REFUSED: dict[str, str] = {}


def _refuse_unsupported(
    config: RepoConfig | None,
    merged: Sourced,
    components: Sourced,
    order: list[str],
    own: Sourced,
    name: str,
    where: Where | None,
) -> None:
    """Refuse a section Atmos would merge into the component (its own or overrides', a base's, the
    stack's) and atmos-tasks does not run, at the most specific place it is written."""

    def places(section: str) -> list[tuple[Any, Prov, str]]:
        found = [
            (
                (own.value.get("overrides") or {}).get(section)
                if isinstance(own.value.get("overrides"), dict)
                else None,
                _nested_prov(own.prov, "overrides", section),
                "its overrides",
            ),
            (own.value.get(section), own.prov.get(section), ""),
        ]
        for base in reversed(order):
            section_of = components.value.get(base)
            value = section_of.get(section) if isinstance(section_of, dict) else None
            found.append((value, _nested_prov(components.prov, base, section), f"its base {base!r}"))
        for scope in reversed(_STACK_SCOPES.get(section, _DEFAULT_SCOPES)):
            node: Any = merged.value
            for key in scope:
                node = node.get(key) if isinstance(node, dict) else None
            value = node.get(section) if isinstance(node, dict) else None
            shown = ".".join([*scope, section])
            found.append((value, _nested_prov(merged.prov, *scope, section), f"the stack's `{shown}:`"))
        return [(value, prov, via) for value, prov, via in found if value not in (None, {}, [], "")]

    def location(prov: Prov) -> Where | None:
        origin = mapping_origin(prov, [])
        return origin_location(config, origin) if config is not None and origin is not None else where

    for section, hint in UNSUPPORTED_SECTIONS.items():
        found = places(section)
        if found:
            _value, prov, via = found[0]
            inherited = f" (from {via})" if via else ""
            message = f"component {name!r}: Atmos's `{section}:` section{inherited} is not supported yet"
            raise AtmosError([Problem(message, location(prov), hint)])
    for value, prov, via in places("command"):
        wanted = config.terraform_command if config is not None else "terraform"
        if value != wanted:
            inherited = f" (from {via})" if via else ""
            message = f"component {name!r}: `command: {value}`{inherited} is not supported yet"
            raise AtmosError(
                [
                    Problem(
                        message,
                        location(prov),
                        f"atmos-tasks runs {wanted!r} for every component: set components.terraform.command "
                        "in atmos.yaml, or remove the component's command",
                    )
                ]
            )
    for value, prov, via in places("dependencies"):
        if not isinstance(value, dict):
            continue
        for key, hint in DEPENDENCY_KEYS_REFUSED.items():
            if value.get(key) not in (None, {}, []):
                inherited = f" (from {via})" if via else ""
                message = f"component {name!r}: Atmos's `dependencies.{key}`{inherited} is not supported yet"
                sub = prov.get(key) if isinstance(prov, dict) else None
                raise AtmosError([Problem(message, location(sub), hint)])


def _nested_prov(prov: Prov, *keys: str) -> Prov:
    for key in keys:
        prov = prov.get(key) if isinstance(prov, dict) else None
    return prov


def _any_origin(prov: Prov) -> Origin | None:
    if isinstance(prov, Origin):
        return prov
    if isinstance(prov, dict):
        for item in prov.values():
            found = _any_origin(item)
            if found is not None:
                return found
    return None


class _Bases:
    """A component's bases as Atmos's `processComponentInheritance` walks them
    (stack_processor_process_stacks_helpers_inheritance.go, `processBaseComponentConfigInternal` in
    stack_processor_utils.go): first the base a top-level `component:` names, then each of
    `metadata.inherits`; each base after its own bases (its top-level `component:` unless it is
    abstract, then its `metadata.inherits`). `order` is the merge order: a base reached twice is
    merged twice, as Atmos merges it. `inheritance` prepends each merged base, without duplicates."""

    def __init__(
        self,
        components: Sourced,
        config: RepoConfig | None,
        locate: Callable[..., Where | None],
        scope: tuple[tuple[str, str], ...],
        parents: dict[str, tuple[tuple[str, str], ...]],
    ) -> None:
        self.components = components
        self.config = config
        self.locate = locate
        self.scope = scope
        self.parents = parents
        self.order: list[str] = []
        self.inheritance: list[str] = []
        self.first: str | None = None
        # Atmos's `FinalBaseComponentName` after the top-level `component:`: the first base merged.
        self.top_level_base: str | None = None

    def resolve(self, name: str) -> None:
        top = self._top_level_component(name)
        if top:
            self._visit(name, top, [name], via_component=True)
        self.top_level_base = self.first
        for base in self._inherits(name):
            self._visit(name, base, [name], via_component=False)

    def _section(self, name: str) -> dict[str, Any] | None:
        section = self.components.value.get(name)
        return section if isinstance(section, dict) else None

    def _top_level_component(self, name: str) -> str | None:
        value = (self._section(name) or {}).get("component")
        if value is None or (isinstance(value, str) and value):
            return value
        raise AtmosError(
            [
                Problem(
                    f"the top-level component: of {name!r} must be a component name",
                    self.locate(name, "component"),
                    "name a component of the stack to inherit from, or set metadata.component to "
                    "choose the Terraform folder",
                )
            ]
        )

    def _inherits(self, name: str) -> list[str]:
        inherits = _nested(self._section(name) or {}, "metadata").get("inherits")
        if not inherits:
            return []
        if not isinstance(inherits, list) or not all(isinstance(b, str) for b in inherits):
            raise AtmosError(
                [
                    Problem(
                        f"metadata.inherits of {name!r} must be a list of component names",
                        self.locate(name, "metadata", "inherits"),
                        "write inherits: [base-a, base-b]",
                    )
                ]
            )
        return inherits

    def _visit(self, derived: str, base: str, chain: list[str], via_component: bool) -> None:
        keys = ("component",) if via_component else ("metadata", "inherits")
        if base == derived:
            return  # a component naming itself has no base (Atmos returns at once)
        if base in chain:
            raise AtmosError(
                [
                    Problem(
                        "inheritance cycle: " + " → ".join([*chain, base]),
                        self.locate(derived, *keys),
                        "remove one of these metadata.inherits (or component:) entries",
                    )
                ]
            )
        section = self._section(base)
        if section is None:
            if via_component:
                self._folder_fallback(derived, base)
                return
            raise AtmosError(
                [
                    Problem(
                        f"component {derived!r} inherits from {base!r}, which is not defined in the stack",
                        self.locate(derived, *keys),
                        "define the base component in an imported stack file or fix the name",
                    )
                ]
            )
        self._check_scope(derived, base, keys)
        if _nested(section, "metadata").get("type") != "abstract":
            nested = self._top_level_component(base)
            if nested:
                self._visit(base, nested, [*chain, base], via_component=True)
        for deeper in self._inherits(base):
            self._visit(base, deeper, [*chain, base], via_component=False)
        self.order.append(base)
        if self.first is None:
            self.first = base
        if base in self.inheritance:
            self.inheritance.remove(base)
        self.inheritance.insert(0, base)

    def _folder_fallback(self, derived: str, base: str) -> None:
        """A top-level `component:` naming no component of the stack: Atmos accepts it when it names
        a Terraform folder, and inherits nothing (the component's folder stays its own unless
        metadata.component says otherwise)."""
        config = self.config
        if config is not None:
            inputs.file(config.terraform_base / base)  # a folder: observed by its tree, or as missing
        if config is None or (config.terraform_base / base).is_dir():
            return
        folder = config.shown(config.terraform_base)
        raise AtmosError(
            [
                Problem(
                    f"component {derived!r}: component: {base!r} is neither a component of the stack "
                    f"nor a folder under {folder}/",
                    self.locate(derived, "component"),
                    "Atmos reads a top-level component: as the base component to inherit from; name a "
                    "component of the stack, or set metadata.component to choose the Terraform folder",
                )
            ]
        )

    def _check_scope(self, derived: str, base: str, keys: tuple[str, ...]) -> None:
        """A deployment composing several Atmos top-level stacks: a base must belong to the derived
        component's own logical stack (Atmos refuses inheritance across logical stacks)."""
        mine = {identity for identity, _ in self.scope}
        theirs = self.parents.get(base, ())
        if not mine or not theirs or mine & {identity for identity, _ in theirs}:
            return
        where_base = ", ".join(f"stack {identity!r} ({file})" for identity, file in theirs)
        where_mine = ", ".join(f"{identity!r}" for identity in sorted(mine))
        raise AtmosError(
            [
                Problem(
                    f"component {derived!r} inherits from {base!r}, which is defined only in "
                    f"{where_base}, not in its own stack {where_mine}",
                    self.locate(derived, *keys),
                    "Atmos resolves metadata.inherits within one logical stack: import the base's "
                    "catalog file into this top-level stack, or give both top-level stacks the same name",
                )
            ]
        )


def origin_location(config: RepoConfig, origin: Origin) -> Location:
    """Line and column of a stack value, found by re-reading its file with positions."""
    return locate_in_file(config.root / origin.file, origin.file, list(origin.keypath))


def find_origin(prov: Prov, keypath: list[str | int]) -> Origin | None:
    node = prov
    for part in keypath:
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            break
    if isinstance(node, Origin):
        return node
    return None


def mapping_origin(prov: Prov, keypath: list[str | int]) -> Origin | None:
    """Where the value at `keypath` was written, a mapping included: its own key, found from the
    first value written below it (a mapping merged from several files: the first one's)."""
    node = prov
    for part in keypath:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    depth = 0
    while isinstance(node, dict) and node:
        node, depth = next(iter(node.values())), depth + 1
    if not isinstance(node, Origin) or depth > len(node.keypath):
        return None
    return Origin(node.file, node.keypath[: len(node.keypath) - depth])


def stack_name(
    config: RepoConfig,
    path: Path,
    data: dict[str, Any],
    variables: dict[str, Any],
    sections: dict[str, Any] | None = None,
) -> str:
    """A top-level `name:` wins, else `stacks.name_template` (a Go template over the component's
    sections: `.vars`, `.settings`, `.env`…), else `stacks.name_pattern` from the vars, else the
    file's path relative to the stacks folder (Atmos's order, `pkg/config/utils.go`)."""
    name = data.get("name")
    if isinstance(name, str) and name:
        return name
    if config.name_template:
        context = {"vars": variables, "settings": {}, "env": {}, **(sections or {})}
        try:
            rendered = _go_render(config, config.name_template, context, "name-template")
        except _GoTemplateError as err:
            raise AtmosError(
                [
                    Problem(
                        f"stacks.name_template: {err}",
                        locate_in_file(config.root / "atmos.yaml", "atmos.yaml", ["stacks", "name_template"]),
                        "it reads the component's sections, e.g. {{ .vars.tenant }}-{{ .vars.stage }}; "
                        "every stack's components must define what it reads",
                    )
                ]
            ) from None
        if rendered.strip():
            return rendered.strip()
    pattern = config.name_pattern
    if pattern:
        fields = re.findall(r"\{(\w+)\}", pattern)
        if fields and all(isinstance(variables.get(f), str | int) and variables.get(f) != "" for f in fields):
            return re.sub(r"\{(\w+)\}", lambda m: str(variables[m.group(1)]), pattern)
    rel = path.relative_to(config.stacks_base) if path.is_relative_to(config.stacks_base) else path
    return str(rel.with_suffix(""))


# --- Go templates in stack manifests (Atmos's last phase) -------------------------------------------


class _GoTemplateError(Exception):
    pass


@cache
def _function_library(sprig: bool, gomplate: bool) -> tuple[str, dict[str, Any] | None]:
    """Go's builtins plus what atmos.yaml enables, decided once per run (not per value): both
    libraries are the gotemplate module's own "atmos" set (Atmos's order: Sprig over gomplate)."""
    if sprig and gomplate:
        return "atmos", None
    if not (sprig or gomplate):
        return "go", None
    if sprig:
        from atmos_tasks.gotemplate.sprig import SPRIG

        return "go", dict(SPRIG)
    from atmos_tasks.gotemplate.gomplate import GOMPLATE

    return "go", dict(GOMPLATE)


def _go_render(config: RepoConfig, text: str, context: dict[str, Any], name: str) -> str:
    """One Go template, as Atmos renders stack manifests: `missingkey=error`, Sprig's and gomplate's
    functions when `templates.settings.sprig`/`gomplate` are enabled."""
    from atmos_tasks import gotemplate

    library, funcs = _function_library(config.template_sprig, config.template_gomplate)
    try:
        return gotemplate.render(
            text,
            context,
            name=name,
            funcs=funcs,
            missing_key=gotemplate.ATMOS_MISSING_KEY,
            library=library,
        )
    except gotemplate.TemplateError as err:
        raise _GoTemplateError(str(err)) from None


def workspace_name(component: ComponentConfig, stack: str) -> str:
    """The Terraform workspace Atmos gives a component: `metadata.terraform_workspace`, else the stack
    name, with `-<component>` for a component whose folder is another's (`BuildTerraformWorkspace`)."""
    explicit = component.metadata.get("terraform_workspace")
    if isinstance(explicit, str) and explicit:
        return explicit
    if component.component != component.name:
        return f"{stack}-{component.name}".replace("/", "-")
    return stack


def template_context(component: ComponentConfig, stack: str, stack_file: str) -> dict[str, Any]:
    """What a stack's Go templates see: the component as `atmos describe component` shows it."""
    return {
        **component.describe(),
        "atmos_component": component.name,
        "atmos_stack": stack,
        "atmos_stack_file": stack_file,
        "atmos_manifest": stack_file,
        "stack": stack,
        "workspace": workspace_name(component, stack),
    }


def evaluate_templates(
    component: ComponentConfig, config: RepoConfig, stack: str, stack_file: str, where: Where | None = None
) -> ComponentConfig:
    """Render the Go templates of a component's `vars`, `settings`, `env`, `providers`, `hooks`,
    `generate` (and its backend and `dependencies.components`) with its own sections as context,
    `templates.settings.evaluations` times, as Atmos does after merging
    (`ProcessTmplWithDatasources`). Without `templates.settings.enabled`, values stay as written, as
    in Atmos. Each string is a template of its own (Atmos renders the YAML text of the whole section
    at once: the same result for templates inside values)."""
    if not config.templates_enabled:
        return component
    sections = {
        "vars": component.vars,
        "settings": component.settings,
        "env": component.env,
        "providers": component.providers,
        "hooks": component.hooks,
        "generate": component.generate,
        # Not `source`: its `{{.Version}}` is the vendoring's own template, filled from `version`.
        "auth": component.auth,
        "provision": component.provision,
        "secrets": component.secrets,
    }
    values = {name: sourced.value for name, sourced in sections.items()}
    backend = component.backend
    entries = component.dependency_components

    def current() -> ComponentConfig:
        return replace(
            component,
            vars=Sourced(values["vars"], component.vars.prov),
            settings=Sourced(values["settings"], component.settings.prov),
            env=Sourced(values["env"], component.env.prov),
            providers=Sourced(values["providers"], component.providers.prov),
            hooks=Sourced(values["hooks"], component.hooks.prov),
            generate=Sourced(values["generate"], component.generate.prov),
            auth=Sourced(values["auth"], component.auth.prov),
            provision=Sourced(values["provision"], component.provision.prov),
            secrets=Sourced(values["secrets"], component.secrets.prov),
            backend=backend,
            dependency_components=entries,
        )

    for _ in range(config.template_evaluations):
        context = template_context(current(), stack, stack_file)
        values = {
            name: _render_tree(config, value, sections[name].prov, context, (name,), where)
            for name, value in values.items()
        }
        backend = _render_tree(config, backend, {}, context, ("backend",), where)
        entries = [
            _render_tree(config, entry, origin, context, ("dependencies", "components", index), where)
            for index, (entry, origin) in enumerate(zip(entries, component.dependency_origins, strict=False))
        ]
    return current()


def evaluate_functions(
    component: ComponentConfig, config: RepoConfig, stack: str, components: frozenset[str]
) -> ComponentConfig:
    """Run the YAML functions of a component's sections (after its templates, as Atmos does);
    `components`: the deployment's components a `!terraform.output` may read. A provider's
    configuration cannot wait for another component's outputs (it is written before `init`)."""
    _refuse_outputs_in(component.providers.value, "providers")
    sections = (
        component.vars.value,
        component.settings.value,
        component.env.value,
        component.backend,
        component.providers.value,
        component.dependency_components,
        component.hooks.value,
        component.generate.value,
        component.source.value,
        component.auth.value,
        component.provision.value,
        component.secrets.value,
    )
    if not any(contains(section) for section in sections):
        return component
    kept: list[YamlFunction] = []
    context = FunctionContext(config.root, component.name, stack, components, config.exec_enabled, kept=kept)
    evaluated = replace(
        component,
        vars=Sourced(evaluate(component.vars.value, context), component.vars.prov),
        settings=Sourced(evaluate(component.settings.value, context), component.settings.prov),
        env=Sourced(evaluate(component.env.value, context), component.env.prov),
        backend=evaluate(component.backend, context),
        providers=Sourced(evaluate(component.providers.value, context), component.providers.prov),
        dependency_components=evaluate(component.dependency_components, context),
        hooks=Sourced(evaluate(component.hooks.value, context), component.hooks.prov),
        generate=Sourced(evaluate(component.generate.value, context), component.generate.prov),
        source=Sourced(evaluate(component.source.value, context), component.source.prov),
        auth=Sourced(evaluate(component.auth.value, context), component.auth.prov),
        provision=Sourced(evaluate(component.provision.value, context), component.provision.prov),
        secrets=Sourced(evaluate(component.secrets.value, context), component.secrets.prov),
    )
    return replace(evaluated, kept=tuple(kept))


def _refuse_outputs_in(value: Any, section: str) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _refuse_outputs_in(item, section)
    elif isinstance(value, list):
        for item in value:
            _refuse_outputs_in(item, section)
    elif isinstance(value, YamlFunction) and value.tag in ("!terraform.output", "!terraform.state"):
        raise AtmosError(
            [
                Problem(
                    f"{value}: another component's outputs in `{section}:` are not supported",
                    value.location,
                    "Atmos writes providers_override.tf.json before Terraform runs: read the value in the "
                    "component's Terraform code (a variable set from the output in vars:), or write it",
                )
            ]
        )


def _render_tree(
    config: RepoConfig,
    value: Any,
    prov: Prov,
    context: dict[str, Any],
    path: tuple[str | int, ...],
    where: Where | None,
) -> Any:
    if isinstance(value, dict):
        return {
            k: _render_tree(
                config, v, prov.get(k, prov) if isinstance(prov, dict) else prov, context, (*path, k), where
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_render_tree(config, v, prov, context, (*path, i), where) for i, v in enumerate(value)]
    if isinstance(value, YamlFunction) and "{{" in value.text:
        # Atmos renders the YAML text, functions' arguments included, before it runs them.
        text = _render_tree(config, value.text, prov, context, path, where)
        return replace(value, text=text)
    if not isinstance(value, str) or "{{" not in value:
        return value
    origin = prov if isinstance(prov, Origin) else None
    try:
        return _go_render(config, value, context, origin.file if origin else ".".join(map(str, path)))
    except _GoTemplateError as err:
        location = origin_location(config, origin) if origin is not None else where
        raise AtmosError(
            [
                Problem(
                    f"{'.'.join(map(str, path))}: {err}",
                    location,
                    "a stack's Go templates read the component's own sections: .vars, .settings, .env, "
                    ".metadata, .backend, .atmos_component, .atmos_stack, .workspace… (manifests use Jinja: "
                    "{{ target.name }} belongs in deployments/*.yaml)",
                )
            ]
        ) from None


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Doublestar glob semantics: `**/` spans any directories (or none), `*` stays within one."""
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out += "(?:.*/)?"
            index += 3
        elif pattern.startswith("**", index):
            out += ".*"
            index += 2
        elif pattern[index] == "*":
            out += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            out += "[^/]"
            index += 1
        else:
            out += re.escape(pattern[index])
            index += 1
    return re.compile(out + r"\Z")


def _top_level_patterns(config: RepoConfig) -> tuple[list[re.Pattern[str]], list[re.Pattern[str]]]:
    included = [glob_regex(p) for p in (config.stack_included_paths or ("**/*",))]
    excluded = [
        glob_regex(p) for p in (config.stack_excluded_paths or ("**/_defaults.yaml", "**/_defaults.yml"))
    ]
    return included, excluded


def _is_top_level(rel: str, included: list[re.Pattern[str]], excluded: list[re.Pattern[str]]) -> bool:
    stem = rel.rsplit(".", 1)[0]
    return any(r.match(rel) or r.match(stem) for r in included) and not any(r.match(rel) for r in excluded)


def is_top_level_stack(config: RepoConfig, path: Path) -> bool:
    """Whether Atmos lists this file as a top-level stack (`stacks.included_paths`/`excluded_paths`),
    decided from its path alone (the stacks folder is not scanned)."""
    if path.suffix not in (".yaml", ".yml") or not path.is_relative_to(config.stacks_base):
        return False
    return _is_top_level(path.relative_to(config.stacks_base).as_posix(), *_top_level_patterns(config))


def top_level_stacks(config: RepoConfig) -> list[Path]:
    """Candidate top-level stack files (`stacks.included_paths`/`excluded_paths` of atmos.yaml)."""
    base = config.stacks_base
    included, excluded = _top_level_patterns(config)
    found = []
    for path in base.rglob("*"):
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            continue
        if _is_top_level(path.relative_to(base).as_posix(), included, excluded):
            found.append(path)
    return sorted(found)
