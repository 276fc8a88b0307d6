"""Atmos-compatible stack loading, scoped to the stacks a deployment declares (SPEC §4).

Only the declared stack files and their import closure are opened. Each value remembers where it
was written (file and key path) so errors and `describe --provenance` can point at it.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from atmos_tasks.config import RepoConfig
from atmos_tasks.errors import AtmosError, Location, Problem, Where
from atmos_tasks.yamlfunctions import Context as FunctionContext
from atmos_tasks.yamlfunctions import YamlFunction, contains, evaluate
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


@dataclass
class Sourced:
    """A mapping together with its provenance tree."""

    value: dict[str, Any] = field(default_factory=dict)
    prov: dict[str, Prov] = field(default_factory=dict)


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


def merge_all(layers: list[Sourced], strategy: str = "replace") -> Sourced:
    out = Sourced()
    for layer in layers:
        deep_merge(out, layer.value, layer.prov, strategy)
    return out


def _section(sourced: Sourced, *keys: str) -> Sourced:
    value: Any = sourced.value
    prov: Any = sourced.prov
    for key in keys:
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
            return cached
        shown = self.config.shown(path)
        self.opened.append(path)
        data = load_data(path, shown)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise AtmosError([Problem("a stack file must be a mapping", Location(shown, 1, 1))])
        stack = StackFile(path, shown, data)
        self._files[path] = stack
        return stack

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
        return sorted(
            {Path(p) for pattern in patterns for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)}
        )

    def load_closure(self, top: list[tuple[str, Where]], strategy: str | None = None) -> Sourced:
        """Merge the declared top-level stacks, each with its import closure, in order."""
        strategy = strategy or self.config.list_merge_strategy
        layers: list[Sourced] = []
        for name, where in top:
            path = self.top_level(name, where)
            for stack, data in self._process(path, {}, []):
                layers.append(Sourced(data, _prov_of(data, stack.shown, ())))
        return merge_all(layers, strategy)

    def _process(
        self, path: Path, parent_overrides: dict[str, Any], chain: list[StackFile]
    ) -> Iterator[tuple[StackFile, dict[str, Any]]]:
        stack = self.read(path)
        data = stack.data
        if "locals" in data:
            raise _error(
                stack,
                ["locals"],
                "stack `locals:` are not supported yet",
                "write the values under vars or settings (templates read them as .vars.x / .settings.x)",
            )
        # The importing file's overrides win over this file's own (Atmos merges parent last).
        overrides = _merge_plain(
            [_nested(data, "overrides"), _nested(data, "terraform", "overrides"), parent_overrides],
            self.config.list_merge_strategy,
        )
        for index, (text, skip_if_missing) in enumerate(self._imports(stack)):
            if text.endswith(".tmpl"):
                raise _error(
                    stack,
                    ["import", index],
                    f"templated stack import {text!r} is not supported",
                    "render the template to a plain .yaml file and import that",
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
                yield from self._process(match, overrides, [*chain, stack])
        yield stack, _with_overrides(data, overrides)

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


def _merge_plain(layers: list[dict[str, Any]], strategy: str) -> dict[str, Any]:
    out = Sourced()
    for layer in layers:
        if layer:
            deep_merge(out, layer, {}, strategy)
    return out.value


def _with_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Attach the overrides in scope to every terraform component this file defines.

    Overrides apply to components defined in the same file and in the files it imports, never
    to those of the files that import it; binding them here, file by file, gives that scoping.
    """
    components = _nested(data, "components", "terraform")
    if not overrides or not components:
        return data
    patched = dict(data)
    patched_components = dict(data["components"])
    patched_terraform = {}
    for name, section in components.items():
        if isinstance(section, dict):
            section = {**section, "overrides": overrides}
        patched_terraform[name] = section
    patched_components["terraform"] = patched_terraform
    patched["components"] = patched_components
    return patched


@dataclass
class ComponentConfig:
    """A component as the stacks define it (what `atmos describe component` returns)."""

    name: str
    defined: bool
    vars: Sourced
    settings: Sourced
    env: Sourced
    metadata: dict[str, Any]
    component: str
    backend_type: str | None
    backend: dict[str, Any]
    inheritance: list[str]
    base_folders: dict[str, str] = field(default_factory=dict)

    @property
    def abstract(self) -> bool:
        return self.metadata.get("type") == "abstract"

    @property
    def enabled(self) -> bool:
        return self.metadata.get("enabled", True) is not False

    def describe(self) -> dict[str, Any]:
        """The keys `atmos describe component` returns for these sections."""
        return {
            "vars": self.vars.value,
            "settings": self.settings.value,
            "env": self.env.value,
            "backend_type": self.backend_type or "",
            "backend": self.backend,
            "metadata": self.metadata,
            "component": self.component,
            "inheritance": self.inheritance,
        }


def component_config(
    merged: Sourced, name: str, config: RepoConfig | None = None, where: Where | None = None
) -> ComponentConfig:
    """Resolve one terraform component: globals → bases → its own sections → overrides."""
    strategy = config.list_merge_strategy if config else "replace"
    components = _section(merged, "components", "terraform")
    own = _section(components, name)
    defined = name in components.value
    _refuse_unsupported(config, own, name, where)
    metadata: dict[str, Any] = _nested(own.value, "metadata")
    inheritance: list[str] = []

    def locate(component: str) -> Where | None:
        origin = find_origin(components.prov, [component, "metadata", "inherits"])
        if config is not None and origin is not None:
            return origin_location(config, origin)
        return where

    bases = _bases(components, name, [name], inheritance, locate)
    layers: dict[str, list[Sourced]] = {s: [] for s in SECTIONS}
    for section in SECTIONS:
        layers[section].append(_section(merged, section))
        layers[section].append(_section(merged, "terraform", section))
        for base in bases:
            layers[section].append(_section(components, base, section))
        layers[section].append(_section(own, section))
        layers[section].append(_section(own, "overrides", section))
    backend_type = None
    backend_layers = [_section(merged, "terraform", "backend")]
    for source in [_section(merged, "terraform"), *(_section(components, b) for b in bases), own]:
        value = source.value.get("backend_type")
        if isinstance(value, str) and value:
            backend_type = value
    for base in bases:
        backend_layers.append(_section(components, base, "backend"))
    backend_layers.append(_section(own, "backend"))
    backend_all = merge_all(backend_layers, strategy).value
    backend: Any = backend_all.get(backend_type, {}) if backend_type else {}
    # metadata is per component, never inherited: a derived component names its folder itself.
    folder = metadata.get("component") if isinstance(metadata.get("component"), str) else None
    if folder is None and isinstance(own.value.get("component"), str):
        folder = own.value["component"]
    return ComponentConfig(
        name=name,
        defined=defined,
        vars=merge_all(layers["vars"], strategy),
        settings=merge_all(layers["settings"], strategy),
        env=merge_all(layers["env"], strategy),
        metadata=_copy(metadata),
        component=folder or name,
        backend_type=backend_type,
        backend=_copy(backend) if isinstance(backend, dict) else {},
        inheritance=inheritance,
        base_folders={
            b: components.value[b]["metadata"]["component"]
            for b in bases
            if isinstance(_nested(components.value.get(b) or {}, "metadata").get("component"), str)
        },
    )


# Component sections of Atmos that atmos-tasks does not run yet: refused where they are written,
# never ignored (a hook that does not run, or a source that is not fetched, changes what deploys).
UNSUPPORTED_SECTIONS = {
    "hooks": "run the step in CI before or after the rollout",
    "provision": "vendor the module (deployment vendor:) instead",
    "source": "vendor the module with the deployment's vendor: entries",
    "dependencies": "install the tools on the runner (dependencies.tools is not run)",
    "generate": "commit the generated files",
}


def _refuse_unsupported(config: RepoConfig | None, own: Sourced, name: str, where: Where | None) -> None:
    for section, hint in UNSUPPORTED_SECTIONS.items():
        if section not in own.value:
            continue
        leaf = _any_origin(own.prov.get(section))
        location = where
        if config is not None and leaf is not None and section in leaf.keypath:
            keypath = leaf.keypath[: leaf.keypath.index(section) + 1]
            location = origin_location(config, Origin(leaf.file, keypath))
        message = f"component {name!r}: Atmos's `{section}:` section is not supported yet"
        raise AtmosError([Problem(message, location, hint)])


def _any_origin(prov: Prov) -> Origin | None:
    if isinstance(prov, Origin):
        return prov
    if isinstance(prov, dict):
        for item in prov.values():
            found = _any_origin(item)
            if found is not None:
                return found
    return None


def _bases(
    components: Sourced,
    name: str,
    chain: list[str],
    inheritance: list[str],
    locate: Callable[[str], Where | None],
) -> list[str]:
    """Bases in merge order (a base's own bases first); fills `inheritance` as Atmos reports it."""
    inherits = _nested(components.value.get(name) or {}, "metadata").get("inherits")
    if not inherits:
        return []
    if not isinstance(inherits, list) or not all(isinstance(b, str) for b in inherits):
        raise AtmosError(
            [
                Problem(
                    f"metadata.inherits of {name!r} must be a list of component names",
                    locate(name),
                    "write inherits: [base-a, base-b]",
                )
            ]
        )
    ordered: list[str] = []
    for base in inherits:
        if base in chain:
            raise AtmosError(
                [
                    Problem(
                        "inheritance cycle: " + " → ".join([*chain, base]),
                        locate(chain[-1]),
                        "remove one of these metadata.inherits entries",
                    )
                ]
            )
        if base not in components.value:
            raise AtmosError(
                [
                    Problem(
                        f"component {name!r} inherits from {base!r}, which is not defined in the stack",
                        locate(name),
                        "define the base component in an imported stack file or fix the name",
                    )
                ]
            )
        for deeper in _bases(components, base, [*chain, base], inheritance, locate):
            if deeper not in ordered:
                ordered.append(deeper)
        if base in ordered:
            ordered.remove(base)
        ordered.append(base)
        if base in inheritance:
            inheritance.remove(base)
        inheritance.insert(0, base)
    return ordered


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


def _go_render(config: RepoConfig, text: str, context: dict[str, Any], name: str) -> str:
    """One Go template, as Atmos renders stack manifests: `missingkey=error`, Sprig's and gomplate's
    functions when `templates.settings.sprig`/`gomplate` are enabled."""
    from atmos_tasks import gotemplate

    if config.template_sprig or config.template_gomplate:
        from atmos_tasks.gotemplate.gomplate import GOMPLATE
        from atmos_tasks.gotemplate.sprig import SPRIG

        funcs = {**(GOMPLATE if config.template_gomplate else {}), **(SPRIG if config.template_sprig else {})}
    else:
        funcs = {}
    try:
        return gotemplate.render(
            text,
            context,
            name=name,
            funcs=funcs or None,
            missing_key=gotemplate.ATMOS_MISSING_KEY,
            library="go",
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
    """Render the Go templates of a component's `vars`, `settings` and `env` (and its backend) with
    its own sections as context, `templates.settings.evaluations` times, as Atmos does after
    merging (`ProcessTmplWithDatasources`). Without `templates.settings.enabled`, values stay as
    written, as in Atmos. Each string is a template of its own (Atmos renders the YAML text of the
    whole section at once: the same result for templates inside values)."""
    if not config.templates_enabled:
        return component
    sections = {"vars": component.vars, "settings": component.settings, "env": component.env}
    values = {name: sourced.value for name, sourced in sections.items()}
    backend = component.backend
    for _ in range(config.template_evaluations):
        current = replace(
            component,
            vars=Sourced(values["vars"], component.vars.prov),
            settings=Sourced(values["settings"], component.settings.prov),
            env=Sourced(values["env"], component.env.prov),
            backend=backend,
        )
        context = template_context(current, stack, stack_file)
        values = {
            name: _render_tree(config, value, sections[name].prov, context, (name,), where)
            for name, value in values.items()
        }
        backend = _render_tree(config, backend, {}, context, ("backend",), where)
    return replace(
        component,
        vars=Sourced(values["vars"], component.vars.prov),
        settings=Sourced(values["settings"], component.settings.prov),
        env=Sourced(values["env"], component.env.prov),
        backend=backend,
    )


def evaluate_functions(
    component: ComponentConfig, config: RepoConfig, stack: str, components: frozenset[str]
) -> ComponentConfig:
    """Run the YAML functions of a component's sections (after its templates, as Atmos does);
    `components`: the deployment's components a `!terraform.output` may read."""
    sections = (component.vars.value, component.settings.value, component.env.value, component.backend)
    if not any(contains(section) for section in sections):
        return component
    context = FunctionContext(config.root, component.name, stack, components, config.exec_enabled)
    return replace(
        component,
        vars=Sourced(evaluate(component.vars.value, context), component.vars.prov),
        settings=Sourced(evaluate(component.settings.value, context), component.settings.prov),
        env=Sourced(evaluate(component.env.value, context), component.env.prov),
        backend=evaluate(component.backend, context),
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


def top_level_stacks(config: RepoConfig) -> list[Path]:
    """Candidate top-level stack files (`stacks.included_paths`/`excluded_paths` of atmos.yaml)."""
    base = config.stacks_base
    included = [glob_regex(p) for p in (config.stack_included_paths or ("**/*",))]
    excluded = [
        glob_regex(p) for p in (config.stack_excluded_paths or ("**/_defaults.yaml", "**/_defaults.yml"))
    ]
    found = []
    for path in base.rglob("*"):
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            continue
        rel = path.relative_to(base).as_posix()
        stem = rel.rsplit(".", 1)[0]
        if any(r.match(rel) or r.match(stem) for r in included) and not any(r.match(rel) for r in excluded):
            found.append(path)
    return sorted(found)
