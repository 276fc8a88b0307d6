"""gomplate v3 functions Atmos enables: the namespaces (`strings.ToUpper`, `conv.ToInt`,
`data.ToYAML`, `math.Add`, `coll.Dict`, ...) and their top-level aliases (`toUpper`, `toYAML`).

A namespace is a function returning an object whose methods are called with the template's
arguments, exactly as `{{ strings.ToUpper "x" }}` works in Go. Datasources, and the aws, gcp,
file, net, random, sockaddr, uuid and semver namespaces, are not provided.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Callable
from typing import Any

from .encoding import from_json, from_yaml, to_json, to_yaml
from .errors import FunctionError
from .funcs import GoFunc, Namespace, namespace_func
from .gofmt import quote, sprint_value
from .gotime import GoTime
from .parser import parse_float, parse_int
from .runtime import current_env, current_now
from .sprig import (
    _compile,
    _expand,
    _expand_env,
    _go_base,
    _go_clean,
    _go_dir,
    _go_ext,
    _go_split,
    merge_into,
    title,
)
from .values import NO_VALUE, Int64, StringSlice, is_int, sort_key, sorted_items, truth, type_name

# --- conv ------------------------------------------------------------------------------------


def to_string(value: Any) -> str:
    """conv.ToString: nil is "nil"."""
    if value is None or value is NO_VALUE:
        return "nil"
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return sprint_value(value)


def _is_int_string(text: str) -> bool:
    try:
        parse_int(text)
    except ValueError:
        return False
    return True


def _is_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, str):
        try:
            parse_float(value)
        except ValueError:
            return False
        return not _is_int_string(value)
    return False


def to_int64(value: Any) -> int:
    """conv.ToInt64: strings may hold commas, base prefixes or a float; anything else is 0."""
    if isinstance(value, str):
        text = value.replace(",", "")
        try:
            return parse_int(text)
        except ValueError:
            try:
                return int(parse_float(text))
            except (ValueError, OverflowError):
                return 0
    if isinstance(value, bool):
        return 1 if value else 0
    if is_int(value):
        return int(value)
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else 0
    return 0


def to_float64(value: Any) -> float:
    if isinstance(value, str):
        text = value.replace(",", "")
        try:
            return float(parse_int(text))
        except ValueError:
            try:
                return parse_float(text)
            except ValueError:
                return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return 0.0


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.lower()
        if text in ("1", "t", "true", "yes", "on"):
            return True
        try:
            return parse_float(text) == 1
        except ValueError:
            return False
    if isinstance(value, int | float):
        return value == 1
    return False


def _items(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    if value is None or value is NO_VALUE:
        return []
    raise FunctionError(f"expected an array or slice, but got a {type_name(value)}")


def _join(value: Any, sep: str) -> str:
    if isinstance(value, str):
        return value
    return sep.join(to_string(item) for item in _items(value))


def _default(default: Any, value: Any) -> Any:
    return value if truth(value) else default


# --- coll ------------------------------------------------------------------------------------


def _dict(*pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    items = list(pairs)
    if len(items) % 2:
        items.append("")
    for index in range(0, len(items), 2):
        out[to_string(items[index])] = items[index + 1]
    return out


def _has(container: Any, key: Any) -> bool:
    if isinstance(container, dict):
        return to_string(key) in container if not isinstance(key, str) else key in container
    if isinstance(container, list | tuple):
        return any(type_name(item) == type_name(key) and item == key for item in container)
    return False


def _keys(*mappings: dict[str, Any]) -> list[Any]:
    if not mappings:
        raise FunctionError("need at least one argument")
    return [key for mapping in mappings for key, _ in sorted_items(mapping)]


def _values(*mappings: dict[str, Any]) -> list[Any]:
    if not mappings:
        raise FunctionError("need at least one argument")
    return [value for mapping in mappings for _, value in sorted_items(mapping)]


def _coll_merge(dst: dict[str, Any], *srcs: dict[str, Any]) -> dict[str, Any]:
    for src in srcs:
        merge_into(dst, src, False)
    return dst


def _sort(*args: Any) -> list[Any]:
    if not args or len(args) > 2:
        raise FunctionError(f"wrong number of args: wanted 1 or 2, got {len(args)}")
    key = to_string(args[0]) if len(args) == 2 else None
    items = _items(args[-1])
    if key is None:
        if all(isinstance(item, str) for item in items) or all(
            isinstance(item, int | float) and not isinstance(item, bool) for item in items
        ):
            return sorted(items)
        return items
    return sorted(items, key=lambda item: sort_key(item.get(key) if isinstance(item, dict) else None))


def _pick_omit(args: tuple[Any, ...], pick: bool) -> dict[str, Any]:
    if len(args) <= 1:
        raise FunctionError(f"wrong number of args: wanted 2 or more, got {len(args)}")
    mapping = args[-1]
    if not isinstance(mapping, dict):
        raise FunctionError(f"wrong map type: must be map[string]interface{{}}, got {type_name(mapping)}")
    keys: set[str] = set()
    for key in args[:-1]:
        if isinstance(key, list | tuple):
            keys.update(to_string(k) for k in key)
        else:
            keys.add(to_string(key))
    return {k: v for k, v in mapping.items() if (k in keys) == pick}


def _flatten(*args: Any) -> list[Any]:
    if not args or len(args) > 2:
        raise FunctionError(f"wrong number of args: wanted 1 or 2, got {len(args)}")
    depth = int(to_int64(args[0])) if len(args) == 2 else -1

    def flat(items: list[Any], level: int) -> list[Any]:
        out: list[Any] = []
        for item in items:
            if isinstance(item, list | tuple) and level != 0:
                out.extend(flat(list(item), level - 1))
            else:
                out.append(item)
        return out

    return flat(_items(args[-1]), depth)


def _uniq(value: Any) -> list[Any]:
    out: list[Any] = []
    for item in _items(value):
        if not any(type_name(seen) == type_name(item) and seen == item for seen in out):
            out.append(item)
    return out


# --- math ------------------------------------------------------------------------------------


def _any_float(values: tuple[Any, ...]) -> bool:
    return any(_is_float(value) for value in values)


def _add(*values: Any) -> Any:
    if _any_float(values):
        return math.fsum(to_float64(v) for v in values)
    return Int64(sum(to_int64(v) for v in values))


def _sub(a: Any, b: Any) -> Any:
    if _any_float((a, b)):
        return to_float64(a) - to_float64(b)
    return Int64(to_int64(a) - to_int64(b))


def _mul(*values: Any) -> Any:
    if _any_float(values):
        return math.prod(to_float64(v) for v in values)
    return Int64(math.prod(to_int64(v) for v in values))


def _div(a: Any, b: Any) -> float:
    divisor = to_float64(b)
    if divisor == 0:
        raise FunctionError("error: division by 0")
    return to_float64(a) / divisor


def _rem(a: Any, b: Any) -> Int64:
    divisor = to_int64(b)
    if divisor == 0:
        raise FunctionError("runtime error: integer divide by zero")
    dividend = to_int64(a)
    return Int64(dividend - divisor * int(dividend / divisor))


def _pow(a: Any, b: Any) -> Any:
    result = math.pow(to_float64(a), to_float64(b))
    return result if _is_float(a) else Int64(to_int64(result))


def _seq(*args: Any) -> list[Int64]:
    start, step = 1, 1
    if len(args) == 1:
        end = to_int64(args[0])
    elif len(args) == 2:
        start, end = to_int64(args[0]), to_int64(args[1])
    elif len(args) == 3:
        start, end, step = to_int64(args[0]), to_int64(args[1]), to_int64(args[2])
    else:
        raise FunctionError(f"expected 1, 2, or 3 arguments, got {len(args)}")
    if end < start and step > 0:
        step = -step
    if step == 0:
        return [Int64(start)]
    values = range(start, end + (1 if step > 0 else -1), step)
    return [Int64(v) for v in values]


def _max(first: Any, *rest: Any) -> Any:
    values = (first, *rest)
    if _any_float(values):
        return max(to_float64(v) for v in values)
    return Int64(max(to_int64(v) for v in values))


def _min(first: Any, *rest: Any) -> Any:
    values = (first, *rest)
    if _any_float(values):
        return min(to_float64(v) for v in values)
    return Int64(min(to_int64(v) for v in values))


def _abs(value: Any) -> Any:
    if _is_float(value):
        return abs(to_float64(value))
    return Int64(abs(to_int64(value)))


def _round(value: Any) -> float:
    number = to_float64(value)
    return float(math.floor(number + 0.5)) if number >= 0 else float(-math.floor(-number + 0.5))


# --- strings ---------------------------------------------------------------------------------


def _indent(*args: Any) -> str:
    if not args or len(args) > 3:
        raise FunctionError("expected 1, 2, or 3 args, got " + str(len(args)))
    text = to_string(args[-1])
    width, pad = 1, " "
    if len(args) == 2:
        if is_int(args[0]):
            width = int(args[0])
        else:
            pad = to_string(args[0])
    elif len(args) == 3:
        width, pad = int(to_int64(args[0])), to_string(args[1])
    if width < 0:
        raise FunctionError("width must be > 0")
    prefix = pad * width
    return "\n".join((prefix + line) if line else line for line in text.split("\n"))


def _trunc(length: int, value: Any) -> str:
    text = to_string(value)
    return text if length < 0 or len(text) <= length else text[:length]


def _abbrev(*args: Any) -> str:
    if len(args) < 2 or len(args) > 3:
        raise FunctionError(f"abbrev requires a 'maxWidth' and 'input' argument, got {len(args)}")
    text = to_string(args[-1])
    width = int(to_int64(args[-2]))
    offset = int(to_int64(args[0])) if len(args) == 3 else 0
    if width < 4 or len(text) <= width:
        return text
    if offset > 0:
        from .sprig import _abbrevboth

        return _abbrevboth(offset, width, text)
    return text[: width - 3] + "..."


def _shell_quote(value: Any) -> str:
    items = value if isinstance(value, list | tuple) else [value]
    return " ".join("'" + to_string(item).replace("'", "'\"'\"'") + "'" for item in items)


def _squote(value: Any) -> str:
    return "'" + to_string(value).replace("'", "''") + "'"


def _slug(value: Any) -> str:
    text = re.sub(r"[^\w\s-]", "", to_string(value).lower())
    return re.sub(r"[\s_-]+", "-", text).strip("-")


def _strings_sort(value: Any) -> StringSlice:
    return StringSlice(sorted(to_string(item) for item in _items(value)))


# --- data ------------------------------------------------------------------------------------


def _data_object(text: Any, parse: Callable[[str], Any], kind: str) -> dict[str, Any]:
    try:
        value = parse(to_string(text))
    except Exception as error:
        raise FunctionError(f"unable to unmarshal object {to_string(text)}: {error}") from None
    if not isinstance(value, dict):
        raise FunctionError(f"unable to unmarshal object {to_string(text)}: not a {kind} object")
    return value


def _data_array(text: Any, parse: Callable[[str], Any]) -> list[Any]:
    try:
        value = parse(to_string(text))
    except Exception as error:
        raise FunctionError(f"unable to unmarshal array {to_string(text)}: {error}") from None
    if not isinstance(value, list):
        raise FunctionError(f"unable to unmarshal array {to_string(text)}: not an array")
    return value


def _json_parse(text: str) -> Any:
    return from_json(text, numbers_as_float=False)


def _to_json_pretty(indent: str, value: Any) -> str:
    return to_json(value, escape_html=False, indent=indent)


# --- test ------------------------------------------------------------------------------------


def _assert(*args: Any) -> str:
    if len(args) == 1:
        if not truth(args[0]):
            raise FunctionError("assertion failed")
        return ""
    if len(args) == 2:
        if not truth(args[1]):
            raise FunctionError(f"assertion failed: {to_string(args[0])}")
        return ""
    raise FunctionError(f"wrong number of args: want 1 or 2, got {len(args)}")


def _test_fail(*args: Any) -> str:
    if not args:
        raise FunctionError("template generation failed")
    if len(args) == 1:
        raise FunctionError(f"template generation failed: {to_string(args[0])}")
    raise FunctionError(f"wrong number of args: want 0 or 1, got {len(args)}")


def _test_required(*args: Any) -> Any:
    if len(args) not in (1, 2):
        raise FunctionError(f"wrong number of args: want 1 or 2, got {len(args)}")
    value = args[-1]
    message = (
        to_string(args[0]) if len(args) == 2 else "can not render template: a required value was not set"
    )
    if value is None or value is NO_VALUE or value == "":
        raise FunctionError(message)
    return value


def _kind(value: Any) -> str:
    from .sprig import _kind as sprig_kind

    return sprig_kind(value)


# --- tables ----------------------------------------------------------------------------------


def _g(fn: Callable[..., Any], *params: str, variadic: str | None = None) -> GoFunc:
    return GoFunc(fn, tuple(params), variadic)


def _digest(name: str) -> GoFunc:
    return _g(
        lambda value: hashlib.new(name, to_string(value).encode("utf-8", "surrogatepass")).hexdigest(), "any"
    )


CONV = {
    "ToString": _g(to_string, "any"),
    "ToStrings": _g(lambda *values: StringSlice(to_string(v) for v in values), variadic="any"),
    "ToInt": _g(lambda value: to_int64(value), "any"),
    "ToInts": _g(lambda *values: [to_int64(v) for v in values], variadic="any"),
    "ToInt64": _g(lambda value: Int64(to_int64(value)), "any"),
    "ToInt64s": _g(lambda *values: [Int64(to_int64(v)) for v in values], variadic="any"),
    "ToFloat64": _g(to_float64, "any"),
    "ToFloat64s": _g(lambda *values: [to_float64(v) for v in values], variadic="any"),
    "ToBool": _g(to_bool, "any"),
    "ToBools": _g(lambda *values: [to_bool(v) for v in values], variadic="any"),
    "Bool": _g(lambda value: to_bool(value), "any"),
    "Atoi": _g(lambda value: to_int64(value), "any"),
    "ParseInt": _g(lambda value, base, _bits: _parse_int_base(to_string(value), base), "any", "int", "int"),
    "ParseFloat": _g(lambda value, _bits: to_float64(to_string(value)), "any", "int"),
    "Default": _g(_default, "any", "any"),
    "Join": _g(_join, "any", "string"),
    "Has": _g(_has, "any", "any"),
    "Slice": _g(lambda *values: list(values), variadic="any"),
    "Dict": _g(_dict, variadic="any"),
}

COLL = {
    "Dict": _g(_dict, variadic="any"),
    "Slice": _g(lambda *values: list(values), variadic="any"),
    "Has": _g(_has, "any", "any"),
    "Keys": _g(_keys, variadic="map"),
    "Values": _g(_values, variadic="map"),
    "Append": _g(lambda value, items: [*_items(items), value], "any", "any"),
    "Prepend": _g(lambda value, items: [value, *_items(items)], "any", "any"),
    "Uniq": _g(_uniq, "any"),
    "Reverse": _g(lambda items: list(reversed(_items(items))), "any"),
    "Merge": _g(_coll_merge, "map", variadic="map"),
    "Sort": _g(_sort, variadic="any"),
    "Pick": _g(lambda *args: _pick_omit(args, True), variadic="any"),
    "Omit": _g(lambda *args: _pick_omit(args, False), variadic="any"),
    "Flatten": _g(_flatten, variadic="any"),
}

MATH = {
    "Add": _g(_add, variadic="any"),
    "Sub": _g(_sub, "any", "any"),
    "Mul": _g(_mul, variadic="any"),
    "Div": _g(_div, "any", "any"),
    "Rem": _g(_rem, "any", "any"),
    "Pow": _g(_pow, "any", "any"),
    "Seq": _g(_seq, variadic="any"),
    "Max": _g(_max, "any", variadic="any"),
    "Min": _g(_min, "any", variadic="any"),
    "Ceil": _g(lambda value: float(math.ceil(to_float64(value))), "any"),
    "Floor": _g(lambda value: float(math.floor(to_float64(value))), "any"),
    "Round": _g(_round, "any"),
    "Abs": _g(_abs, "any"),
    "IsInt": _g(lambda value: is_int(value) or (isinstance(value, str) and _is_int_string(value)), "any"),
    "IsFloat": _g(_is_float, "any"),
    "IsNum": _g(
        lambda value: is_int(value) or _is_float(value) or (isinstance(value, str) and _is_int_string(value)),
        "any",
    ),
}

STRINGS = {
    "ToUpper": _g(lambda value: to_string(value).upper(), "any"),
    "ToLower": _g(lambda value: to_string(value).lower(), "any"),
    "Title": _g(lambda value: title(to_string(value)), "any"),
    "TrimSpace": _g(lambda value: to_string(value).strip(), "any"),
    "Trim": _g(lambda cutset, value: to_string(value).strip(cutset), "string", "any"),
    "TrimLeft": _g(lambda cutset, value: to_string(value).lstrip(cutset), "string", "any"),
    "TrimRight": _g(lambda cutset, value: to_string(value).rstrip(cutset), "string", "any"),
    "TrimPrefix": _g(lambda prefix, value: to_string(value).removeprefix(prefix), "string", "any"),
    "TrimSuffix": _g(lambda suffix, value: to_string(value).removesuffix(suffix), "string", "any"),
    "ReplaceAll": _g(lambda old, new, value: to_string(value).replace(old, new), "string", "string", "any"),
    "Contains": _g(lambda sub, value: sub in to_string(value), "string", "any"),
    "HasPrefix": _g(lambda prefix, value: to_string(value).startswith(prefix), "string", "any"),
    "HasSuffix": _g(lambda suffix, value: to_string(value).endswith(suffix), "string", "any"),
    "Split": _g(lambda sep, value: StringSlice(_go_split(to_string(value), sep, -1)), "string", "any"),
    "SplitN": _g(
        lambda sep, n, value: StringSlice(_go_split(to_string(value), sep, n)), "string", "int", "any"
    ),
    "Repeat": _g(lambda count, value: _repeat(count, to_string(value)), "int", "any"),
    "Indent": _g(_indent, variadic="any"),
    "Trunc": _g(_trunc, "int", "any"),
    "Abbrev": _g(_abbrev, variadic="any"),
    "Quote": _g(lambda value: quote(to_string(value)), "any"),
    "Squote": _g(_squote, "any"),
    "ShellQuote": _g(_shell_quote, "any"),
    "Sort": _g(_strings_sort, "any"),
    "Slug": _g(_slug, "any"),
    "CamelCase": _g(lambda value: _camel(to_string(value)), "any"),
    "SnakeCase": _g(lambda value: _gomplate_snake(to_string(value)), "any"),
    "KebabCase": _g(lambda value: _gomplate_kebab(to_string(value)), "any"),
    "RuneCount": _g(lambda *values: sum(len(to_string(v)) for v in values), variadic="any"),
}

DATA = {
    "JSON": _g(lambda text: _data_object(text, _json_parse, "JSON"), "any"),
    "JSONArray": _g(lambda text: _data_array(text, _json_parse), "any"),
    "YAML": _g(lambda text: _data_object(text, from_yaml, "YAML"), "any"),
    "YAMLArray": _g(lambda text: _data_array(text, from_yaml), "any"),
    "ToJSON": _g(lambda value: to_json(value, escape_html=False), "any"),
    "ToJSONPretty": _g(_to_json_pretty, "string", "any"),
    "ToYAML": _g(to_yaml, "any"),
}

ENV = {
    "Getenv": _g(lambda name, *default: _getenv(to_string(name), default), "any", variadic="string"),
    "ExpandEnv": _g(lambda text: _expand_env(to_string(text)), "any"),
}

BASE64 = {
    "Encode": _g(
        lambda value: base64.b64encode(to_string(value).encode("utf-8", "surrogatepass")).decode(), "any"
    ),
    "Decode": _g(lambda value: _b64decode(to_string(value)), "any"),
}

CRYPTO = {
    "SHA1": _digest("sha1"),
    "SHA224": _digest("sha224"),
    "SHA256": _digest("sha256"),
    "SHA384": _digest("sha384"),
    "SHA512": _digest("sha512"),
}

REGEXP = {
    "Match": _g(
        lambda pattern, value: _compile(pattern).search(to_string(value)) is not None, "string", "any"
    ),
    "Find": _g(lambda pattern, value: _regexp_find(pattern, to_string(value)), "string", "any"),
    "FindAll": _g(lambda *args: _regexp_find_all(args), variadic="any"),
    "Replace": _g(
        lambda pattern, repl, value: _compile(pattern).sub(lambda m: _expand(repl, m), to_string(value)),
        "string",
        "string",
        "any",
    ),
    "ReplaceLiteral": _g(
        lambda pattern, repl, value: _compile(pattern).sub(lambda _m: repl, to_string(value)),
        "string",
        "string",
        "any",
    ),
    "QuoteMeta": _g(lambda value: re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", to_string(value)), "any"),
    "Split": _g(lambda *args: _regexp_split(args), variadic="any"),
}

PATH = {
    "Base": _g(lambda value: _go_base(to_string(value)), "any"),
    "Clean": _g(lambda value: _go_clean(to_string(value)), "any"),
    "Dir": _g(lambda value: _go_dir(to_string(value)), "any"),
    "Ext": _g(lambda value: _go_ext(to_string(value)), "any"),
    "IsAbs": _g(lambda value: to_string(value).startswith("/"), "any"),
    "Join": _g(lambda *parts: _path_join([to_string(p) for p in parts]), variadic="any"),
}

TEST = {
    "Assert": _g(_assert, variadic="any"),
    "Fail": _g(_test_fail, variadic="any"),
    "Required": _g(_test_required, variadic="any"),
    "Ternary": _g(
        lambda if_true, if_false, condition: if_true if to_bool(condition) else if_false, "any", "any", "any"
    ),
    "Kind": _g(_kind, "any"),
    "IsKind": _g(
        lambda kind, value: (
            _kind(value) == kind or (kind == "number" and _kind(value) in ("int", "int64", "float64"))
        ),
        "string",
        "any",
    ),
}

TIME = {
    "Now": _g(lambda: GoTime(current_now())),
}


def _repeat(count: int, text: str) -> str:
    if count < 0:
        raise FunctionError(f"negative count {count}")
    return text * count


_NON_ALNUM = re.compile(r"[\W_]+")


def _case_prepare(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    lowered = text.lower()
    lowered = lowered.replace(lowered[0], text[0], 1)  # the first letter keeps its case
    return _NON_ALNUM.sub(" ", lowered).strip()


def _camel(text: str) -> str:
    """gomplate's strings.CamelCase: `hello jello` -> `helloJello`."""
    text = text.strip()
    if not text:
        return ""
    titled = title(text)
    titled = titled.replace(titled[0], text[0], 1)
    return _NON_ALNUM.sub("", titled)


def _gomplate_snake(text: str) -> str:
    return re.sub(r"\s+", "_", _case_prepare(text))


def _gomplate_kebab(text: str) -> str:
    return re.sub(r"\s+", "-", _case_prepare(text))


def _parse_int_base(text: str, base: int) -> int:
    try:
        return int(text.replace("_", ""), base) if base else parse_int(text)
    except ValueError:
        raise FunctionError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None


def _getenv(name: str, default: tuple[str, ...]) -> str:
    value = current_env().get(name, "")
    if value == "" and default:
        return default[0]
    return value


def _b64decode(text: str) -> str:
    try:
        return base64.b64decode(text.encode(), validate=True).decode("utf-8", "replace")
    except Exception as error:
        raise FunctionError(str(error)) from None


def _regexp_find(pattern: str, text: str) -> str:
    match = _compile(pattern).search(text)
    return match.group(0) if match else ""


def _regexp_find_all(args: tuple[Any, ...]) -> list[str]:
    if len(args) == 2:
        pattern, text, count = args[0], args[1], -1
    elif len(args) == 3:
        pattern, count, text = args[0], int(to_int64(args[1])), args[2]
    else:
        raise FunctionError(f"wrong number of args: want 2 or 3, got {len(args)}")
    found = [m.group(0) for m in _compile(to_string(pattern)).finditer(to_string(text))]
    return found if count < 0 else found[:count]


def _regexp_split(args: tuple[Any, ...]) -> list[str]:
    if len(args) == 2:
        pattern, text, count = args[0], args[1], -1
    elif len(args) == 3:
        pattern, count, text = args[0], int(to_int64(args[1])), args[2]
    else:
        raise FunctionError(f"wrong number of args: want 2 or 3, got {len(args)}")
    if count == 0:
        return []
    return _compile(to_string(pattern)).split(to_string(text), maxsplit=0 if count < 0 else count - 1)


def _path_join(parts: list[str]) -> str:
    joined = "/".join(part for part in parts if part)
    return _go_clean(joined) if joined else ""


NAMESPACES = {
    "conv": Namespace("*funcs.ConvFuncs", CONV),
    "coll": Namespace("*funcs.CollFuncs", COLL),
    "math": Namespace("*funcs.MathFuncs", MATH),
    "strings": Namespace("*funcs.StringFuncs", STRINGS),
    "data": Namespace("*funcs.DataFuncs", DATA),
    "env": Namespace("*funcs.EnvFuncs", ENV),
    "base64": Namespace("*funcs.Base64Funcs", BASE64),
    "crypto": Namespace("*funcs.CryptoFuncs", CRYPTO),
    "regexp": Namespace("*funcs.ReFuncs", REGEXP),
    "path": Namespace("*funcs.PathFuncs", PATH),
    "filepath": Namespace("*funcs.FilePathFuncs", PATH),
    "test": Namespace("*funcs.TestFuncs", TEST),
    "time": Namespace("*funcs.TimeFuncs", TIME),
}

GOMPLATE: dict[str, GoFunc] = {name: namespace_func(namespace) for name, namespace in NAMESPACES.items()}
GOMPLATE.update(
    {
        # conv
        "bool": CONV["Bool"],
        "has": COLL["Has"],
        "slice": COLL["Slice"],
        "join": CONV["Join"],
        "default": CONV["Default"],
        # coll
        "dict": COLL["Dict"],
        "keys": COLL["Keys"],
        "values": COLL["Values"],
        "append": COLL["Append"],
        "prepend": COLL["Prepend"],
        "uniq": COLL["Uniq"],
        "reverse": COLL["Reverse"],
        "merge": COLL["Merge"],
        "sort": COLL["Sort"],
        "flatten": COLL["Flatten"],
        "pick": COLL["Pick"],
        "omit": COLL["Omit"],
        # data
        "json": DATA["JSON"],
        "jsonArray": DATA["JSONArray"],
        "yaml": DATA["YAML"],
        "yamlArray": DATA["YAMLArray"],
        "toJSON": DATA["ToJSON"],
        "toJSONPretty": DATA["ToJSONPretty"],
        "toYAML": DATA["ToYAML"],
        # strings
        "replaceAll": STRINGS["ReplaceAll"],
        "title": STRINGS["Title"],
        "toUpper": STRINGS["ToUpper"],
        "toLower": STRINGS["ToLower"],
        "trimSpace": STRINGS["TrimSpace"],
        "indent": STRINGS["Indent"],
        "quote": STRINGS["Quote"],
        "shellQuote": STRINGS["ShellQuote"],
        "squote": STRINGS["Squote"],
        "contains": _g(lambda sub, text: sub in text, "string", "string"),
        "hasPrefix": _g(lambda prefix, text: text.startswith(prefix), "string", "string"),
        "hasSuffix": _g(lambda suffix, text: text.endswith(suffix), "string", "string"),
        "split": _g(lambda text, sep: StringSlice(_go_split(text, sep, -1)), "string", "string"),
        "splitN": _g(lambda text, sep, n: StringSlice(_go_split(text, sep, n)), "string", "string", "int"),
        "trim": _g(lambda text, cutset: text.strip(cutset), "string", "string"),
        # math
        "add": MATH["Add"],
        "sub": MATH["Sub"],
        "mul": MATH["Mul"],
        "div": MATH["Div"],
        "rem": MATH["Rem"],
        "pow": MATH["Pow"],
        "seq": MATH["Seq"],
        # test
        "assert": TEST["Assert"],
        "fail": TEST["Fail"],
        "required": TEST["Required"],
        "ternary": TEST["Ternary"],
        "kind": TEST["Kind"],
        "isKind": TEST["IsKind"],
        # env
        "getenv": ENV["Getenv"],
    }
)
