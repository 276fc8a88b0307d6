"""Jinja2 templates in string values (SPEC §5): sandboxed, StrictUndefined.

A value that is a single expression (`"{{ context.cpu }}"`) keeps its native type, so numbers,
lists and maps reach Terraform as such. References to `component["<name>"].outputs` can only be
rendered once that component is applied; they are found in the template's syntax tree so the
graph can depend on them, and rendered again when the outputs exist.

Jinja2 is imported on first use: a repository without templates never loads it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

SINGLE_EXPRESSION = re.compile(r"^\s*\{\{((?:(?!\}\}|\{\{).)*)\}\}\s*$", re.DOTALL)
KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class TemplateError(Exception):
    keypath: KeyPath
    message: str


@cache
def environment() -> ImmutableSandboxedEnvironment:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def references(source: str, root: str = "component") -> set[str]:
    """Names a template reads under `root`: `component["ecr/api"].outputs…`, `nixpack.api.image`."""
    from jinja2 import TemplateSyntaxError, nodes

    found: set[str] = set()
    try:
        tree = environment().parse(source)
    except TemplateSyntaxError:
        return found
    for node in tree.find_all((nodes.Getitem, nodes.Getattr)):
        base = getattr(node, "node", None)
        if isinstance(base, nodes.Name) and base.name == root:
            if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
                found.add(str(node.arg.value))
            elif isinstance(node, nodes.Getattr):
                found.add(node.attr)
    return found


def output_references(source: str) -> set[str]:
    """Component names whose outputs a template reads; known only once they are applied."""
    return references(source, "component")


def references_in(value: Any, root: str = "component") -> set[str]:
    found: set[str] = set()
    walk_strings(
        value, lambda _path, text: found.update(references(text, root)) if is_template(text) else None
    )
    return found


def walk_strings(value: Any, visit: Callable[[KeyPath, str], None], path: KeyPath = ()) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            walk_strings(item, visit, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            walk_strings(item, visit, (*path, index))
    elif isinstance(value, str):
        visit(path, value)


def render_string(text: str, context: dict[str, Any]) -> Any:
    from jinja2 import Undefined

    env = environment()
    match = SINGLE_EXPRESSION.match(text)
    if match:
        result = env.compile_expression(match.group(1), undefined_to_none=False)(**context)
        if isinstance(result, Undefined):
            str(result)  # raises UndefinedError with Jinja's own explanation
        return result
    return env.from_string(text).render(**context)


def render_tree(
    value: Any, context: dict[str, Any], path: KeyPath = (), keep: Callable[[KeyPath], bool] | None = None
) -> Any:
    """Render every template string in a value tree; raises TemplateError naming the key path.

    `keep(path)`: strings to leave as written (values from Atmos stacks: Go templates, not Jinja)."""
    if isinstance(value, dict):
        return {key: render_tree(item, context, (*path, key), keep) for key, item in value.items()}
    if isinstance(value, list):
        return [render_tree(item, context, (*path, index), keep) for index, item in enumerate(value)]
    if not is_template(value) or (keep is not None and keep(path) and not generated(value)):
        return value
    from jinja2 import TemplateSyntaxError, UndefinedError
    from jinja2.sandbox import SecurityError

    try:
        return render_string(value, context)
    except UndefinedError as err:
        raise TemplateError(path, f"undefined template variable: {err.message}") from None
    except TemplateSyntaxError as err:
        raise TemplateError(path, f"template syntax error: {err.message}") from None
    except SecurityError as err:
        raise TemplateError(path, f"template not allowed: {err}") from None
    except Exception as err:
        raise TemplateError(path, f"template failed: {type(err).__name__}: {err}") from None


def generated(value: Any) -> bool:
    """A `!terraform.output` of a stack, made into an output reference: rendered like a manifest's."""
    from atmos_tasks.yamlfunctions import OutputReference

    return isinstance(value, OutputReference)


class PendingOutputs(dict[str, Any]):
    """Stands in for values known only later (a dependency's outputs, a built image): any key
    renders as a marker naming what it waits for."""

    def __init__(self, component: str, what: str = "outputs") -> None:
        super().__init__()
        self.component = component
        self.what = what

    def __missing__(self, key: str) -> str:
        return f"({self.what} of {self.component}: {key})"

    def __contains__(self, key: object) -> bool:
        return True
