"""Parsed templates and the public entry points: parse once, execute many times."""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from .errors import TemplateError
from .executor import State
from .funcs import GoFunc, from_callable
from .gofmt import quote
from .parser import Tree, parse_trees

MISSING_KEY_OPTIONS = {"default": "default", "invalid": "default", "zero": "zero", "error": "error"}

# What Atmos sets when it renders stack manifests (`missingkey=error`; `default` only when a
# command asks to ignore missing template values).
ATMOS_MISSING_KEY = "error"

FuncArg = Mapping[str, Callable[..., Any] | GoFunc] | None

_now: contextvars.ContextVar[datetime | None] = contextvars.ContextVar("gotemplate_now", default=None)
_env: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "gotemplate_env", default=None
)


def current_now() -> datetime:
    """The clock functions read: the `now` a render was given, else the local time."""
    value = _now.get()
    return value if value is not None else datetime.now().astimezone()


def current_env() -> Mapping[str, str]:
    value = _env.get()
    return value if value is not None else os.environ


@lru_cache(maxsize=1)
def standard_funcs() -> dict[str, GoFunc]:
    """Go's builtins, then gomplate's functions, then Sprig's (Sprig wins, as in Atmos)."""
    from .builtins import BUILTINS
    from .gomplate import GOMPLATE
    from .sprig import SPRIG

    funcs = dict(BUILTINS)
    funcs.update(GOMPLATE)
    funcs.update(SPRIG)
    return funcs


def _func_map(funcs: FuncArg) -> dict[str, GoFunc]:
    if not funcs:
        return standard_funcs()
    merged = dict(standard_funcs())
    for name, fn in funcs.items():
        merged[name] = from_callable(fn)
    return merged


@lru_cache(maxsize=512)
def _parse_cached(name: str, text: str, left: str, right: str, names: frozenset[str]) -> dict[str, Tree]:
    return _parse(name, text, left, right, names)


def _parse(
    name: str, text: str, left: str, right: str, names: frozenset[str] | dict[str, GoFunc]
) -> dict[str, Tree]:
    try:
        return parse_trees(name, text, names, left, right)
    except RecursionError:
        message = f"template: {name}: nesting too deep to parse"
        raise TemplateError(message, name=name, reason="nesting too deep to parse") from None


class Template:
    """A parsed template and the templates it defines; execute it with any data, any number of times."""

    def __init__(
        self,
        text: str,
        *,
        name: str = "",
        funcs: FuncArg = None,
        delims: tuple[str, str] = ("{{", "}}"),
    ) -> None:
        left, right = delims
        self.name = name
        self.text = text
        self.delims = (left or "{{", right or "}}")
        self._funcs = _func_map(funcs)
        names = frozenset(self._funcs)
        self._trees = _parse_cached(name, text, self.delims[0], self.delims[1], names)

    @property
    def templates(self) -> list[str]:
        """The names of every template this text holds (its own and each `define`/`block`)."""
        return sorted(self._trees)

    def execute(
        self,
        data: Any = None,
        *,
        template: str | None = None,
        missing_key: str = "default",
        now: datetime | None = None,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """Go's Execute (ExecuteTemplate when `template` names a defined template)."""
        if missing_key not in MISSING_KEY_OPTIONS:
            raise ValueError(f"unrecognized option: missingkey={missing_key}")
        target = self.name if template is None else template
        tree = self._trees.get(target)
        if tree is None:
            message = f"template: no template {quote(target)} associated with template {quote(self.name)}"
            raise TemplateError(message, name=self.name, template=target, reason=message)
        out: list[str] = []
        state = State(self._trees, self._funcs, MISSING_KEY_OPTIONS[missing_key], target, out, data)
        now_token = _now.set(now)
        env_token = _env.set(env)
        try:
            state.walk(data, tree.root)
        except RecursionError:
            message = f"template: {target}: nesting too deep to execute"
            raise TemplateError(
                message, name=self.name, template=target, reason="nesting too deep to execute"
            ) from None
        finally:
            _now.reset(now_token)
            _env.reset(env_token)
        return "".join(out)


def parse(
    text: str, *, name: str = "", funcs: FuncArg = None, delims: tuple[str, str] = ("{{", "}}")
) -> Template:
    """Parse a template (cached by text, name, delimiters and function names)."""
    return Template(text, name=name, funcs=funcs, delims=delims)


def render(
    text: str,
    data: Any = None,
    *,
    name: str = "",
    funcs: FuncArg = None,
    missing_key: str = "default",
    delims: tuple[str, str] = ("{{", "}}"),
    now: datetime | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Render a Go template over Python data. A text without the left delimiter comes back as is."""
    if (delims[0] or "{{") not in text:
        if missing_key not in MISSING_KEY_OPTIONS:
            raise ValueError(f"unrecognized option: missingkey={missing_key}")
        return text
    return Template(text, name=name, funcs=funcs, delims=delims).execute(
        data, missing_key=missing_key, now=now, env=env
    )
