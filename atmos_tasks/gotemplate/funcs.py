"""Template functions with Go signatures.

Go checks every argument against the function's parameter types (`upper 3` fails: "expected
string; found 3"; `repeat (add 1 1) "x"` fails: add returns int64, repeat wants int). A GoFunc
carries those parameter types so the executor can check them the same way.

Parameter types: "any" (interface{}), "value" (reflect.Value: receives the invalid value as
NO_VALUE), "string", "int", "int64", "float64", "bool", "map" (map[string]interface{}), "list"
([]interface{}).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

GO_TYPES = {
    "any": "interface {}",
    "value": "reflect.Value",
    "string": "string",
    "int": "int",
    "int64": "int64",
    "float64": "float64",
    "bool": "bool",
    "map": "map[string]interface {}",
    "list": "[]interface {}",
}


class GoFunc:
    """A callable with Go's parameter list: fixed parameter types and an optional variadic one."""

    __slots__ = ("builtin", "fn", "params", "variadic")

    def __init__(
        self,
        fn: Callable[..., Any],
        params: tuple[str, ...] = (),
        variadic: str | None = None,
        *,
        builtin: bool = False,
    ) -> None:
        self.fn = fn
        self.params = params
        self.variadic = variadic
        self.builtin = builtin

    def __repr__(self) -> str:
        return f"GoFunc({getattr(self.fn, '__name__', self.fn)!r}, {self.params}, {self.variadic})"


def go(*params: str, variadic: str | None = None) -> Callable[[Callable[..., Any]], GoFunc]:
    """Decorator: declare a Python function's Go parameter types."""

    def wrap(fn: Callable[..., Any]) -> GoFunc:
        return GoFunc(fn, tuple(params), variadic)

    return wrap


def from_callable(fn: Callable[..., Any] | GoFunc) -> GoFunc:
    """A user's function: its positional parameters are `interface{}`, *args is variadic."""
    if isinstance(fn, GoFunc):
        return fn
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return GoFunc(fn, (), "any")
    params: list[str] = []
    variadic = None
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            if parameter.default is not parameter.empty:
                variadic = "any"
                break
            params.append("any")
        elif parameter.kind == parameter.VAR_POSITIONAL:
            variadic = "any"
            break
    return GoFunc(fn, tuple(params), variadic)


class Namespace:
    """A gomplate namespace (`strings`, `conv`, ...): a value whose methods are template functions."""

    __slots__ = ("go_type", "methods")

    def __init__(self, go_type: str, methods: Mapping[str, GoFunc]) -> None:
        self.go_type = go_type
        self.methods = dict(methods)

    def go_string(self) -> str:
        return "&{}"

    def __repr__(self) -> str:
        return f"<namespace {self.go_type}>"


def namespace_func(namespace: Namespace) -> GoFunc:
    return GoFunc(lambda: namespace, ())
