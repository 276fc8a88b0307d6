"""Parsed templates and the public entry points: parse once, execute many times."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from .errors import TemplateError
from .executor import State
from .funcs import GoFunc, from_callable
from .gofmt import quote
from .parser import Tree, parse_trees
from .runtime import ENV, NOW
from .values import NO_VALUE

MISSING_KEY_OPTIONS = {"default": "default", "invalid": "default", "zero": "zero", "error": "error"}

# What Atmos sets when it renders stack manifests (`missingkey=error`; `default` only when a
# command asks to ignore missing template values).
ATMOS_MISSING_KEY = "error"

FuncArg = Mapping[str, Callable[..., Any] | GoFunc] | None


LIBRARIES = ("atmos", "go")


@lru_cache(maxsize=2)
def standard_funcs(library: str = "atmos") -> dict[str, GoFunc]:
    """The functions a template can call before any of its own.

    "atmos": Go's builtins, overridden by gomplate's functions, overridden by Sprig's (the order
    in which Atmos assembles its FuncMap, so `slice` is Sprig's and `default` is Sprig's).
    "go": text/template's builtins alone.
    """
    from .builtins import BUILTINS

    if library not in LIBRARIES:
        raise ValueError(f"unknown function library {library!r} (one of {', '.join(LIBRARIES)})")
    funcs = dict(BUILTINS)
    if library == "atmos":
        from .gomplate import GOMPLATE
        from .sprig import SPRIG

        funcs.update(GOMPLATE)
        funcs.update(SPRIG)
    return funcs


def _func_map(funcs: FuncArg, library: str) -> dict[str, GoFunc]:
    if not funcs:
        return standard_funcs(library)
    merged = dict(standard_funcs(library))
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
        library: str = "atmos",
    ) -> None:
        left, right = delims
        self.name = name
        self.text = text
        self.delims = (left or "{{", right or "}}")
        self._funcs = _func_map(funcs, library)
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
        if data is None:
            data = NO_VALUE  # Go's reflect.ValueOf(nil): the invalid value
        out: list[str] = []
        state = State(self._trees, self._funcs, MISSING_KEY_OPTIONS[missing_key], target, out, data)
        now_token = NOW.set(now)
        env_token = ENV.set(env)
        try:
            state.walk(data, tree.root)
        except RecursionError:
            message = f"template: {target}: nesting too deep to execute"
            raise TemplateError(
                message, name=self.name, template=target, reason="nesting too deep to execute"
            ) from None
        finally:
            NOW.reset(now_token)
            ENV.reset(env_token)
        return "".join(out)


def parse(
    text: str,
    *,
    name: str = "",
    funcs: FuncArg = None,
    delims: tuple[str, str] = ("{{", "}}"),
    library: str = "atmos",
) -> Template:
    """Parse a template (the parse is cached by text, name, delimiters and function names)."""
    return Template(text, name=name, funcs=funcs, delims=delims, library=library)


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
    library: str = "atmos",
) -> str:
    """Render a Go template over Python data. A text without the left delimiter comes back as is.

    `missing_key` is Go's `missingkey` option ("default", "zero" or "error"; Atmos itself uses
    ATMOS_MISSING_KEY), `now` the clock of `now`/`date` (a timezone-aware datetime), `env` the
    environment of `env`/`expandenv`/`env.Getenv`, `funcs` extra functions (they override the
    library's), `library` "atmos" (Go + gomplate + Sprig) or "go" (Go's builtins only).
    """
    if (delims[0] or "{{") not in text:
        if missing_key not in MISSING_KEY_OPTIONS:
            raise ValueError(f"unrecognized option: missingkey={missing_key}")
        return text
    return Template(text, name=name, funcs=funcs, delims=delims, library=library).execute(
        data, missing_key=missing_key, now=now, env=env
    )
