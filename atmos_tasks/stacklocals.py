"""Atmos's file-scoped `locals:` in a stack file (pkg/locals, internal/exec/stack_processor_locals.go).

Locals are values a file names once and uses in its own templates (`{{ .locals.name_prefix }}`); they
never reach another file, and they are not part of the merged configuration. Three scopes cascade
within a file: the file's `locals:`, then `terraform.locals:` (which sees and may override the
file's), then a component's `locals:` (which sees both). A local may read other locals (resolved in
dependency order; a cycle is an error naming it) and the `vars`, `settings` and `env` written in the
same file at its scope.

After they are resolved, each string of the file that reads `.locals` is rendered with them as the
file is read, so the merged configuration holds the value; other templates wait for the component's
(Atmos renders the file with its locals before it parses it). A component's locals are not
inherited from its bases here (Atmos merges a base's locals under the component's): a component
reads a local its base declares only if the file declares it too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

KeyPath = tuple[str | int, ...]
# Renders one Go template with a context; raises with a message on failure.
Render = Callable[[str, dict[str, Any], KeyPath], str]

_REFERENCE = re.compile(r"\.locals\.([A-Za-z_][A-Za-z0-9_-]*)")


class LocalsError(ValueError):
    """A local that cannot be resolved, or a template that reads one wrongly: where and why."""

    def __init__(self, keypath: KeyPath, message: str, hint: str) -> None:
        super().__init__(message)
        self.keypath, self.message, self.hint = keypath, message, hint


def has_locals(data: dict[str, Any]) -> bool:
    if "locals" in data:
        return True
    terraform = data.get("terraform")
    if isinstance(terraform, dict) and "locals" in terraform:
        return True
    components = _components(data)
    return any(isinstance(c, dict) and "locals" in c for c in components.values())


def apply_locals(data: dict[str, Any], render: Render) -> dict[str, Any]:
    """The file's data with its locals resolved, the strings that read them rendered, and every
    `locals:` section removed."""
    data = dict(data)
    file_scope = _section_context(data)
    global_locals = resolve(data.pop("locals", None), file_scope, {}, ("locals",), render)
    terraform = data.get("terraform")
    terraform_locals = global_locals
    if isinstance(terraform, dict):
        terraform = dict(terraform)
        scope = _merged_context(file_scope, _section_context(terraform))
        terraform_locals = resolve(
            terraform.pop("locals", None), scope, global_locals, ("terraform", "locals"), render
        )
        data["terraform"] = _render_reading(terraform, scope, terraform_locals, ("terraform",), render)
    for key in list(data):
        if key not in ("terraform", "components"):
            data[key] = _render_reading(data[key], file_scope, global_locals, (key,), render)
    components = data.get("components")
    if isinstance(components, dict) and isinstance(components.get("terraform"), dict):
        section_scope = _merged_context(
            file_scope, _section_context(terraform) if isinstance(terraform, dict) else {}
        )
        rendered: dict[str, Any] = {}
        for name, component in components["terraform"].items():
            path: KeyPath = ("components", "terraform", name)
            if not isinstance(component, dict):
                rendered[name] = component
                continue
            component = dict(component)
            scope = _merged_context(section_scope, _section_context(component))
            own = resolve(component.pop("locals", None), scope, terraform_locals, (*path, "locals"), render)
            rendered[name] = _render_reading(component, scope, own, path, render)
        data["components"] = {**components, "terraform": rendered}
    return data


def resolve(
    declared: Any, scope: dict[str, Any], parent: dict[str, Any], path: KeyPath, render: Render
) -> dict[str, Any]:
    """One scope's locals over its parent's, each resolved after the locals it reads."""
    if declared is None:
        return dict(parent)
    if not isinstance(declared, dict):
        raise LocalsError(path, "locals must be a mapping of names to values", "write locals: {name: value}")
    reads = {name: _references(value) & set(declared) - {name} for name, value in declared.items()}
    for name, value in declared.items():
        if name in _references(value):
            raise LocalsError((*path, name), f"local {name!r} reads itself", "give it a value of its own")
    resolved = dict(parent)
    pending = dict(reads)
    while pending:
        ready = sorted(name for name, needs in pending.items() if not needs & set(pending))
        if not ready:
            cycle = " → ".join(_cycle(pending))
            raise LocalsError(
                (*path, sorted(pending)[0]),
                f"locals read each other in a cycle: {cycle}",
                "break the cycle: one of them must not read the others",
            )
        for name in ready:
            context = {**scope, "locals": resolved}
            resolved[name] = _render_value(declared[name], context, (*path, name), render)
            del pending[name]
    return resolved


def _cycle(pending: dict[str, set[str]]) -> list[str]:
    start = sorted(pending)[0]
    seen = [start]
    current = start
    while True:
        current = sorted(pending[current] & set(pending))[0]
        if current in seen:
            return [*seen[seen.index(current) :], current]
        seen.append(current)


def _references(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_REFERENCE.findall(value)) if "{{" in value else set()
    if isinstance(value, dict):
        return set().union(*(_references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    return set()


def _render_value(value: Any, context: dict[str, Any], path: KeyPath, render: Render) -> Any:
    from atmos_tasks.yamlfunctions import YamlFunction

    if isinstance(value, YamlFunction):
        raise LocalsError(
            path,
            f"{value} in a local is not supported yet",
            "write the function where the value is used (vars, settings, env): it runs there",
        )
    if isinstance(value, str):
        return render(value, context, path) if "{{" in value else value
    if isinstance(value, dict):
        return {k: _render_value(v, context, (*path, k), render) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(v, context, (*path, i), render) for i, v in enumerate(value)]
    return value


def _render_reading(
    value: Any, scope: dict[str, Any], locals_: dict[str, Any], path: KeyPath, render: Render
) -> Any:
    """`value` with each string that reads `.locals` rendered; other strings stay as written."""
    if isinstance(value, str):
        if "{{" in value and ".locals" in value:
            return render(value, {**scope, "locals": locals_}, path)
        return value
    if isinstance(value, dict):
        return {k: _render_reading(v, scope, locals_, (*path, k), render) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_reading(v, scope, locals_, (*path, i), render) for i, v in enumerate(value)]
    return value


def _section_context(section: Any) -> dict[str, Any]:
    """What a scope's templates read besides its locals: its `vars`, `settings`, `env`."""
    if not isinstance(section, dict):
        return {}
    return {key: section[key] for key in ("vars", "settings", "env") if isinstance(section.get(key), dict)}


def _merged_context(outer: dict[str, Any], inner: dict[str, Any]) -> dict[str, Any]:
    merged = dict(outer)
    for key, value in inner.items():
        merged[key] = {**outer.get(key, {}), **value}
    return merged


def _components(data: dict[str, Any]) -> dict[str, Any]:
    components = data.get("components")
    terraform = components.get("terraform") if isinstance(components, dict) else None
    return terraform if isinstance(terraform, dict) else {}
