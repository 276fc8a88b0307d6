"""How Go values look from Python: the invalid value, Go's type names, truth and ordering.

Data reaches templates as plain Python values, read the way Go reads the `map[string]any`
documents a YAML decoder produces: a dict is `map[string]interface {}`, a list `[]interface {}`,
a str `string`, an int `int`, a float `float64`, a bool `bool`, None a nil interface.

Go's executor also has an *invalid* value (the zero `reflect.Value`): a missing map key under
`missingkey=default`, a nil interface once a pipeline has unwrapped it, the data of `{{template
"x"}}` without an argument. It prints as `<no value>` and is `NO_VALUE` here. None and NO_VALUE
differ where Go's do: `.a.b` on a nil `a` is an error, on a missing `a` it is `<no value>`.
"""

from __future__ import annotations

from typing import Any


class _NoValue:
    """The invalid reflect.Value: prints as `<no value>`, is false, has no type."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_VALUE"

    def __bool__(self) -> bool:
        return False


NO_VALUE: Any = _NoValue()


class Int64(int):
    """A Go `int64` (what Sprig's arithmetic returns): equal to an int, a different Go type."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Int64({int(self)})"


class StringSlice(list):  # type: ignore[type-arg]
    """A Go `[]string` (splitList, toStrings, keys, sortAlpha)."""

    go_type = "[]string"


class IntSlice(list):  # type: ignore[type-arg]
    """A Go `[]int` (until, untilStep)."""

    go_type = "[]int"


class StringMap(dict):  # type: ignore[type-arg]
    """A Go `map[string]string` (split, splitn)."""

    go_type = "map[string]string"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def type_name(value: Any) -> str:
    """Go's `%T` of a value (and the type named in execution errors)."""
    if value is None or value is NO_VALUE:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Int64):
        return "int64"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, complex):
        return "complex128"
    if isinstance(value, str):
        return "string"
    go_type = getattr(value, "go_type", None)
    if isinstance(go_type, str):
        return go_type
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    if isinstance(value, bytes | bytearray):
        return "[]uint8"
    if callable(value):
        return "func(...interface {}) interface {}"
    return type(value).__name__


def receiver_type_name(value: Any) -> str:
    """The type Go names for a value found inside a map or list (an interface slot)."""
    return "interface {}" if value is None else type_name(value)


def truth(value: Any) -> bool:
    """text/template's isTrue: the zero value of its type is false."""
    if value is None or value is NO_VALUE:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | complex):
        return value != 0
    if isinstance(value, str | list | tuple | dict | bytes | bytearray):
        return len(value) > 0
    return True


def is_empty(value: Any) -> bool:
    """Sprig's `empty`: the same as not-true, structs (times, namespaces) are never empty."""
    return not truth(value)


def _kind_rank(value: Any) -> int:
    if value is None or value is NO_VALUE:
        return 0
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return 2
    if isinstance(value, float):
        return 3
    if isinstance(value, str):
        return 4
    return 5


def sort_key(value: Any) -> tuple[int, Any]:
    """Go's fmtsort order for map keys: by kind, then by value (NaN-free)."""
    rank = _kind_rank(value)
    if rank in (2, 3):
        return (2, value)
    if rank == 1:
        return (1, int(value))
    if rank == 4:
        return (4, value)
    return (rank, str(value))


def sorted_items(mapping: dict[Any, Any]) -> list[tuple[Any, Any]]:
    keys = list(mapping)
    if all(type(key) is str for key in keys):
        keys.sort()
    else:
        keys.sort(key=sort_key)
    return [(key, mapping[key]) for key in keys]


def go_len(value: Any) -> int:
    """len() the way Go counts: strings in bytes."""
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    return len(value)
