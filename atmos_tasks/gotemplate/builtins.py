"""text/template's predefined functions (funcs.go): and, or, not, len, index, slice, print,
printf, println, html, js, urlquery, call and the comparisons eq, ne, lt, le, gt, ge."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from .errors import FunctionError
from .funcs import GoFunc
from .gofmt import sprint, sprint_value, sprintf, sprintln
from .values import NO_VALUE, Int64, go_len, is_int, type_name


def _invalid(value: Any) -> bool:
    return value is None or value is NO_VALUE


def _length(item: Any) -> int:
    if _invalid(item):
        raise FunctionError("reflect: call of reflect.Value.Type on zero Value")
    if isinstance(item, str | list | tuple | dict | bytes):
        return go_len(item)
    raise FunctionError(f"len of type {type_name(item)}")


def _index_arg(index: Any, cap: int) -> int:
    if _invalid(index):
        raise FunctionError("cannot index slice/array with nil")
    if not is_int(index):
        raise FunctionError(f"cannot index slice/array with type {type_name(index)}")
    if index < 0 or index > cap:
        raise FunctionError(f"index out of range: {int(index)}")
    return int(index)


def _index(item: Any, *indexes: Any) -> Any:
    if _invalid(item):
        raise FunctionError("index of untyped nil")
    for index in indexes:
        if item is None:
            raise FunctionError("index of nil pointer")
        if isinstance(item, str):
            data = item.encode("utf-8", "surrogatepass")
            position = _index_arg(index, len(data))
            if position == len(data):
                raise FunctionError("reflect: string index out of range")
            item = data[position]
        elif isinstance(item, list | tuple):
            position = _index_arg(index, len(item))
            if position == len(item):
                raise FunctionError("reflect: slice index out of range")
            item = item[position]
        elif isinstance(item, dict):
            if _invalid(index):
                index = None
            if not isinstance(index, str):
                if index is None:
                    raise FunctionError("value is nil; should be of type string")
                raise FunctionError(f"value has type {type_name(index)}; should be string")
            item = item.get(index, "" if type_name(item) == "map[string]string" else None)
        else:
            raise FunctionError(f"can't index item of type {type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if _invalid(item):
        raise FunctionError("slice of untyped nil")
    if len(indexes) > 3:
        raise FunctionError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FunctionError("cannot 3-index slice a string")
        data: Any = item if item.isascii() else item.encode("utf-8", "surrogatepass")
    elif isinstance(item, list | tuple):
        data = item
    else:
        raise FunctionError(f"can't slice item of type {type_name(item)}")
    bounds = [0, len(data)]
    for position, index in enumerate(indexes):
        value = _index_arg(index, len(data))
        if position < 2:
            bounds[position] = value
    if bounds[0] > bounds[1]:
        raise FunctionError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    if len(indexes) == 3:
        third = _index_arg(indexes[2], len(data))
        if bounds[1] > third:
            raise FunctionError(f"invalid slice index: {bounds[1]} > {third}")
    result = data[bounds[0] : bounds[1]]
    if isinstance(result, bytes):
        return result.decode("utf-8", "replace")
    if isinstance(item, list):
        return type(item)(result) if type(item) is not list else list(result)
    return result


def _call(fn: Any, *args: Any) -> Any:
    if _invalid(fn):
        raise FunctionError("call of nil")
    if isinstance(fn, GoFunc):
        return fn.fn(*args)
    if callable(fn):
        return fn(*args)
    raise FunctionError(f"non-function of type {type_name(fn)}")


def _not(arg: Any) -> bool:
    from .values import truth

    return not truth(arg)


# --- comparisons -----------------------------------------------------------------------------


def _basic_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if is_int(value):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, complex):
        return "complex"
    if isinstance(value, str):
        return "string"
    return None


def _eq(arg1: Any, *others: Any) -> bool:
    if not others:
        raise FunctionError("missing argument for comparison")
    arg1 = NO_VALUE if arg1 is None else arg1
    k1 = _basic_kind(arg1)
    for arg in others:
        arg = NO_VALUE if arg is None else arg
        k2 = _basic_kind(arg)
        result = False
        if k1 != k2:
            if arg1 is not NO_VALUE and arg is not NO_VALUE:
                raise FunctionError(
                    f"incompatible types for comparison: {type_name(arg1)} and {type_name(arg)}"
                )
        elif k1 is not None:
            result = arg1 == arg
        else:
            if arg1 is NO_VALUE or arg is NO_VALUE:
                result = arg1 is arg
            elif type_name(arg1) != type_name(arg):
                raise FunctionError(
                    f"non-comparable types {sprint_value(arg1)}: {type_name(arg1)}, {type_name(arg)}: "
                    f"{sprint_value(arg)}"
                )
            elif isinstance(arg, dict | list | tuple):
                raise FunctionError(f"non-comparable type {sprint_value(arg)}: {type_name(arg)}")
            else:
                result = arg1 == arg
        if result:
            return True
    return False


def _ne(arg1: Any, arg2: Any) -> bool:
    return not _eq(arg1, arg2)


def _lt(arg1: Any, arg2: Any) -> bool:
    arg1 = NO_VALUE if arg1 is None else arg1
    arg2 = NO_VALUE if arg2 is None else arg2
    k1 = _basic_kind(arg1)
    k2 = _basic_kind(arg2)
    if k1 is None or k2 is None:
        raise FunctionError("invalid type for comparison")
    if k1 != k2:
        raise FunctionError(f"incompatible types for comparison: {type_name(arg1)} and {type_name(arg2)}")
    if k1 in ("bool", "complex"):
        raise FunctionError("invalid type for comparison")
    return bool(arg1 < arg2)


def _le(arg1: Any, arg2: Any) -> bool:
    return _lt(arg1, arg2) or _eq(arg1, arg2)


def _gt(arg1: Any, arg2: Any) -> bool:
    return not _le(arg1, arg2)


def _ge(arg1: Any, arg2: Any) -> bool:
    return not _lt(arg1, arg2)


# --- escaping --------------------------------------------------------------------------------


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(["<no value>" if arg is None or arg is NO_VALUE else arg for arg in args])


_HTML = {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}


def html_escape(text: str) -> str:
    if not any(char in text for char in "'\"&<>\0"):
        return text
    return "".join(_HTML.get(char, char) for char in text)


_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def js_escape(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if char in _JS:
            out.append(_JS[char])
        elif code < 0x20:
            out.append(f"\\u00{code:02X}")
        elif code >= 0x80 and not char.isprintable():
            out.append(f"\\u{code:04X}")
        else:
            out.append(char)
    return "".join(out)


def _html(*args: Any) -> str:
    return html_escape(_eval_args(args))


def _js(*args: Any) -> str:
    return js_escape(_eval_args(args))


def _urlquery(*args: Any) -> str:
    return quote_plus(_eval_args(args).encode("utf-8", "surrogatepass"), safe="-_.~")


def _printf(fmt: str, *args: Any) -> str:
    return sprintf(fmt, list(args))


def _print(*args: Any) -> str:
    return sprint(list(args))


def _println(*args: Any) -> str:
    return sprintln(list(args))


BUILTINS: dict[str, GoFunc] = {
    "and": GoFunc(lambda *a: a[-1], ("value",), "value", builtin=True),
    "or": GoFunc(lambda *a: a[-1], ("value",), "value", builtin=True),
    "not": GoFunc(_not, ("value",), builtin=True),
    "call": GoFunc(_call, ("value",), "value", builtin=True),
    "html": GoFunc(_html, (), "any", builtin=True),
    "js": GoFunc(_js, (), "any", builtin=True),
    "urlquery": GoFunc(_urlquery, (), "any", builtin=True),
    "index": GoFunc(_index, ("value",), "value", builtin=True),
    "slice": GoFunc(_slice, ("value",), "value", builtin=True),
    "len": GoFunc(_length, ("value",), builtin=True),
    "print": GoFunc(_print, (), "any", builtin=True),
    "printf": GoFunc(_printf, ("string",), "any", builtin=True),
    "println": GoFunc(_println, (), "any", builtin=True),
    "eq": GoFunc(_eq, ("value",), "value", builtin=True),
    "ne": GoFunc(_ne, ("value", "value"), builtin=True),
    "lt": GoFunc(_lt, ("value", "value"), builtin=True),
    "le": GoFunc(_le, ("value", "value"), builtin=True),
    "gt": GoFunc(_gt, ("value", "value"), builtin=True),
    "ge": GoFunc(_ge, ("value", "value"), builtin=True),
}

__all__ = ["BUILTINS", "Int64", "html_escape", "js_escape"]
