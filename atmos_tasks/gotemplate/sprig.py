"""Sprig v3 functions (github.com/Masterminds/sprig), with their Go signatures and results.

Numbers keep Sprig's Go types: `add`, `sub`, `mul`, `div`, `mod`, `max`, `min` and `int64`
return an int64 (passing one where Go wants an int fails as in Go); `fromJson` yields float64
numbers; `keys` and `splitList` yield `[]string`. Functions that are random (uuidv4, rand*,
shuffle), cryptographic (genPrivateKey, ...), semver and network ones are not provided.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import math
import os.path
import posixpath
import re
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from .encoding import from_json, to_json
from .errors import FunctionError
from .funcs import GoFunc
from .gofmt import quote, sprint_value
from .gotime import GoTime, format_time, load_zone
from .parser import parse_float, parse_int
from .runtime import current_env, current_now
from .values import NO_VALUE, Int64, IntSlice, StringMap, StringSlice, is_empty, is_int, type_name

# --- conversions (Sprig's strval/strslice, spf13/cast) ---------------------------------------


def strval(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return sprint_value(value)


def strslice(value: Any) -> StringSlice:
    if isinstance(value, StringSlice):
        return value
    if isinstance(value, list | tuple):
        return StringSlice(strval(item) for item in value if item is not None)
    if value is None or value is NO_VALUE:
        return StringSlice()
    return StringSlice([strval(value)])


def _trim_zero_decimal(text: str) -> str:
    found_zero = False
    for i in range(len(text), 0, -1):
        char = text[i - 1]
        if char == ".":
            if found_zero:
                return text[: i - 1]
        elif char == "0":
            found_zero = True
        else:
            return text
    return text


def to_int64(value: Any) -> int:
    """cast.ToInt64: numbers truncate, strings parse (base prefixes honoured), anything else is 0."""
    if isinstance(value, bool):
        return 1 if value else 0
    if is_int(value):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return 0
        return int(value)
    if isinstance(value, str):
        try:
            return parse_int(_trim_zero_decimal(value))
        except ValueError:
            return 0
    return 0


def to_float64(value: Any) -> float:
    """cast.ToFloat64."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        lowered = value.lower().lstrip("+-")
        if lowered in ("inf", "infinity", "nan"):
            return float(value.replace("infinity", "inf").replace("Infinity", "inf"))
        try:
            return parse_float(value)
        except ValueError:
            return 0.0
    return 0.0


def _as_list(value: Any, what: str) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    raise FunctionError(f"Cannot {what} on type {type_name(value)}")


# --- strings -----------------------------------------------------------------------------------


def _upper(text: str) -> str:
    return "".join(c.upper() if len(c.upper()) == 1 else c for c in text)


def _lower(text: str) -> str:
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


_GO_SPACE = (
    " \t\n\v\f\r\x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
)


def _trim_space(text: str) -> str:
    return text.strip(_GO_SPACE)


def _is_separator(char: str) -> bool:
    if ord(char) <= 0x7F:
        return not (char.isalnum() or char == "_")
    if char.isalpha() or char.isdigit():
        return False
    return char in _GO_SPACE


def title(text: str) -> str:
    """strings.Title: the first letter of each word upper-cased (title-cased)."""
    out = []
    previous = " "
    for char in text:
        out.append(char.title()[0] if _is_separator(previous) else char)
        previous = char
    return "".join(out)


def _untitle(text: str) -> str:
    out = []
    previous = " "
    for char in text:
        out.append(char.lower() if previous in _GO_SPACE else char)
        previous = char
    return "".join(out)


def _swapcase(text: str) -> str:
    # xstrings.SwapCase: upper <-> lower, title-case letters lower-cased
    return "".join(c.lower() if c.isupper() or c.istitle() else c.upper() if c.islower() else c for c in text)


def _substr(start: int, end: int, text: str) -> str:
    data = text.encode("utf-8", "surrogatepass")
    if start < 0:
        piece = data[:end]
    elif end < 0 or end > len(data):
        piece = data[start:]
    else:
        if start > end:
            raise FunctionError(f"runtime error: slice bounds out of range [{start}:{end}]")
        piece = data[start:end]
    return piece.decode("utf-8", "replace")


def _trunc(count: int, text: str) -> str:
    if count < 0 and len(text) + count > 0:
        return text[len(text) + count :]
    if count >= 0 and len(text) > count:
        return text[:count]
    return text


def _abbrev(width: int, text: str) -> str:
    if width < 4 or len(text) <= width:
        return text
    return text[: width - 3] + "..."


def _abbrevboth(left: int, right: int, text: str) -> str:
    if right < 4 or (left > 0 and right < 7):
        return text
    if len(text) <= right:
        return text
    left = max(left, 0)
    if left > len(text):
        left = len(text)
    if len(text) - left < right - 3:
        left = len(text) - (right - 3)
    if left <= 4:
        return text[: right - 3] + "..."
    if right < 7:
        return text
    if left + right - 3 < len(text):
        return "..." + _abbrev(right - 3, text[left:])
    return "..." + text[len(text) - (right - 3) :]


def _initials(text: str) -> str:
    return "".join(word[0] for word in text.split() if word)


def _repeat(count: int, text: str) -> str:
    if count < 0:
        raise FunctionError("strings: negative Repeat count")
    return text * count


def _indent(spaces: int, text: str) -> str:
    pad = " " * max(spaces, 0)
    return pad + text.replace("\n", "\n" + pad)


def _nindent(spaces: int, text: str) -> str:
    return "\n" + _indent(spaces, text)


def _quote(*values: Any) -> str:
    return " ".join(quote(strval(value)) for value in values if value is not None)


def _squote(*values: Any) -> str:
    return " ".join(f"'{strval(value)}'" for value in values if value is not None)


def _cat(*values: Any) -> str:
    return " ".join(strval(value) for value in values if value is not None)


def _plural(one: str, many: str, count: int) -> str:
    return one if count == 1 else many


def _split(sep: str, text: str) -> StringMap:
    parts = _go_split(text, sep, -1)
    return StringMap((f"_{index}", part) for index, part in enumerate(parts))


def _splitn(sep: str, count: int, text: str) -> StringMap:
    parts = _go_split(text, sep, count)
    return StringMap((f"_{index}", part) for index, part in enumerate(parts))


def _go_split(text: str, sep: str, count: int) -> list[str]:
    """strings.SplitN: an empty separator splits into characters."""
    if count == 0:
        return []
    if sep == "":
        chars = list(text)
        if 0 < count < len(chars):
            return [*chars[: count - 1], "".join(chars[count - 1 :])]
        return chars
    return text.split(sep, count - 1) if count > 0 else text.split(sep)


def _split_list(sep: str, text: str) -> StringSlice:
    return StringSlice(_go_split(text, sep, -1))


def _join(sep: str, value: Any) -> str:
    return sep.join(strslice(value))


def _sort_alpha(value: Any) -> StringSlice:
    if isinstance(value, list | tuple):
        return StringSlice(sorted(strslice(value)))
    return StringSlice([strval(value)])


# xstrings: word-case conversions


def _is_connector(char: str) -> bool:
    return char in "-_" or char in _GO_SPACE


def camelcase(text: str) -> str:
    """xstrings.ToCamelCase: `http_server` -> `HttpServer`."""
    if not text:
        return ""
    out: list[str] = []
    chars = list(text)
    i = 0
    current = ""
    while i < len(chars):
        current = chars[i]
        i += 1
        if not _is_connector(current):
            current = current.upper()
            break
        out.append(current)
    else:
        return "".join(out)
    while i < len(chars):
        previous = current
        current = chars[i]
        i += 1
        if _is_connector(current) and _is_connector(previous):
            out.append(previous)
            continue
        if _is_connector(previous):
            current = current.upper()
        else:
            out.append(previous)
    out.append(current)
    return "".join(out)


def _next_word(text: str) -> tuple[str, str, str]:
    """xstrings' word scanner: (kind, word, rest), kind in connector/number/upper/lower/punct/other."""
    first = text[0]
    if _is_connector(first):
        end = 1
        while end < len(text) and _is_connector(text[end]):
            end += 1
        return "connector", text[:end], text[end:]
    if first.isdecimal():
        end = 1
        while end < len(text) and text[end].isdecimal():
            end += 1
        return "number", text[:end], text[end:]
    if first.isupper():
        end = 1
        if end < len(text) and text[end].isupper():
            while end < len(text) and text[end].isupper():
                end += 1
            if end < len(text) and text[end].islower():
                end -= 1
            return "upper", text[:end], text[end:]
        while end < len(text) and text[end].islower():
            end += 1
        return "upper", text[:end], text[end:]
    if first.isalpha():
        end = 1
        while end < len(text) and text[end].isalpha() and not text[end].isupper():
            end += 1
        return "lower", text[:end], text[end:]
    if first.isprintable() and not first.isalnum():
        return "punct", first, text[1:]
    return "other", first, text[1:]


def _case_words(text: str, connector: str) -> str:
    """xstrings.ToSnakeCase / ToKebabCase: `FirstName` -> `first_name`, `HTTP2xx` -> `http_2xx`."""
    if not text:
        return ""
    out: list[str] = []

    def lower(kind: str, word: str) -> None:
        out.append(connector if kind == "connector" else _lower(word))

    kind, word, rest = _next_word(text)
    while rest:
        if kind != "connector":
            lower(kind, word)
        previous, last = kind, word
        kind, word, rest = _next_word(rest)
        if previous == "number":
            while kind in ("lower", "number") and rest:
                lower(kind, word)
                kind, word, rest = _next_word(rest)
            if kind in ("lower", "number") and not rest:
                continue
            if kind not in ("punct", "connector", "other"):
                out.append(connector)
        elif previous == "connector":
            lower(previous, last)
        elif previous == "punct":
            pass
        else:
            if kind != "number":
                if kind not in ("connector", "punct"):
                    out.append(connector)
                continue
            if not rest:
                continue
            number = word
            kind, word, rest = _next_word(rest)
            if kind != "lower":
                lower("number", number)
                if kind not in ("connector", "punct"):
                    out.append(connector)
                continue
            out.append(connector)
            lower("number", number)
            while kind in ("lower", "number") and rest:
                lower(kind, word)
                kind, word, rest = _next_word(rest)
            if kind in ("lower", "number") and not rest:
                continue
            if kind not in ("punct", "connector", "other"):
                out.append(connector)
    lower(kind, word)
    return "".join(out)


def snakecase(text: str) -> str:
    return _case_words(text, "_")


def kebabcase(text: str) -> str:
    return _case_words(text, "-")


# --- regular expressions (Go's RE2 syntax, read by Python's re) ------------------------------


def _compile(pattern: str) -> re.Pattern[str]:
    translated = re.sub(r"\(\?P<", "(?P<", pattern)
    try:
        return re.compile(translated)
    except re.error as error:
        raise FunctionError(f"error parsing regexp: {error}: `{pattern}`") from None


def _regex_match(pattern: str, text: str) -> bool:
    try:
        return _compile(pattern).search(text) is not None
    except FunctionError:
        return False


def _regex_find(pattern: str, text: str) -> str:
    match = _compile(pattern).search(text)
    return match.group(0) if match else ""


def _regex_find_all(pattern: str, text: str, count: int) -> StringSlice:
    found = [m.group(0) for m in _compile(pattern).finditer(text)]
    return StringSlice(found if count < 0 else found[:count])


def _expand(template: str, match: re.Match[str]) -> str:
    """Go's Regexp.Expand: $1, ${1}, $name, ${name}; $$ is a dollar sign."""
    out = []
    i = 0
    while i < len(template):
        char = template[i]
        if char != "$" or i + 1 >= len(template):
            out.append(char)
            i += 1
            continue
        if template[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if template[i + 1] == "{":
            close = template.find("}", i + 2)
            name = template[i + 2 : close] if close > 0 else ""
            if close < 0 or not re.fullmatch(r"\w+", name):
                out.append(char)
                i += 1
                continue
            i = close + 1
        else:
            found = re.match(r"\w+", template[i + 1 :])
            if not found:
                out.append(char)
                i += 1
                continue
            name = found.group(0)
            i += 1 + len(name)
        try:
            value = match.group(int(name)) if name.isdigit() else match.group(name)
        except (IndexError, error_types()):
            value = ""
        out.append(value or "")
    return "".join(out)


def error_types() -> type[Exception]:
    return re.error


def _regex_replace_all(pattern: str, text: str, replacement: str) -> str:
    return _compile(pattern).sub(lambda m: _expand(replacement, m), text)


def _regex_replace_all_literal(pattern: str, text: str, replacement: str) -> str:
    return _compile(pattern).sub(lambda _m: replacement, text)


def _regex_split(pattern: str, text: str, count: int) -> StringSlice:
    if count == 0:
        return StringSlice()
    compiled = _compile(pattern)
    if pattern and text == "":
        return StringSlice([""])
    parts = compiled.split(text, maxsplit=0 if count < 0 else count - 1)
    return StringSlice(part for part in parts if isinstance(part, str))


# --- encodings and hashes ----------------------------------------------------------------------


def _b64dec(text: str) -> str:
    try:
        return base64.b64decode(text.encode(), validate=True).decode("utf-8", "replace")
    except Exception as error:
        return f"illegal base64 data at input byte {_bad_byte(text, error)}"


def _bad_byte(text: str, _error: Exception) -> int:
    for index, char in enumerate(text):
        if not (char.isalnum() or char in "+/="):
            return index
    return len(text) - (len(text) % 4)


def _b32dec(text: str) -> str:
    try:
        return base64.b32decode(text.encode()).decode("utf-8", "replace")
    except Exception:
        return f"illegal base32 data at input byte {_bad_byte(text, ValueError())}"


def _digest(name: str) -> Callable[[str], str]:
    def run(text: str) -> str:
        return hashlib.new(name, text.encode("utf-8", "surrogatepass")).hexdigest()

    return run


# --- defaults, flow ----------------------------------------------------------------------------


def _default(default: Any, *given: Any) -> Any:
    if not given or is_empty(given[0]):
        return default
    return given[0]


def _coalesce(*values: Any) -> Any:
    for value in values:
        if not is_empty(value):
            return value
    return None


def _ternary(if_true: Any, if_false: Any, condition: bool) -> Any:
    return if_true if condition else if_false


def _fail(message: str) -> Any:
    raise FunctionError(message)


def _required(message: str, value: Any) -> Any:
    if value is None or (value == "" and isinstance(value, str)):
        raise FunctionError(message)
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "invalid"
    if isinstance(value, bool):
        return "bool"
    if is_int(value):
        return "int64" if isinstance(value, Int64) else "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list | tuple):
        return "slice"
    return "struct"


# --- lists -------------------------------------------------------------------------------------


def _first(value: Any) -> Any:
    items = _as_list(value, "find first")
    return items[0] if items else None


def _last(value: Any) -> Any:
    items = _as_list(value, "find last")
    return items[-1] if items else None


def _rest(value: Any) -> Any:
    items = _as_list(value, "find rest")
    return items[1:] if items else None


def _initial(value: Any) -> Any:
    items = _as_list(value, "find initial")
    return items[:-1] if items else None


def _append(value: Any, item: Any) -> list[Any]:
    return [*_as_list(value, "push"), item]


def _prepend(value: Any, item: Any) -> list[Any]:
    return [item, *_as_list(value, "prepend")]


def _concat(*lists: Any) -> list[Any]:
    out: list[Any] = []
    for value in lists:
        if not isinstance(value, list | tuple):
            raise FunctionError(f"Cannot concat type {type_name(value)} as list")
        out.extend(value)
    return out


def _deep_equal(left: Any, right: Any) -> bool:
    if type_name(left) != type_name(right):
        return False
    return bool(left == right)


def _in_list(items: list[Any], needle: Any) -> bool:
    return any(_deep_equal(item, needle) for item in items)


def _uniq(value: Any) -> list[Any]:
    out: list[Any] = []
    for item in _as_list(value, "uniq"):
        if not _in_list(out, item):
            out.append(item)
    return out


def _without(value: Any, *omit: Any) -> list[Any]:
    return [item for item in _as_list(value, "find without") if not _in_list(list(omit), item)]


def _has(needle: Any, haystack: Any) -> bool:
    if haystack is None or haystack is NO_VALUE:
        return False
    return _in_list(_as_list(haystack, "find has"), needle)


def _slice(value: Any, *indexes: Any) -> Any:
    if not isinstance(value, list | tuple):
        kind = _kind(value)
        raise FunctionError(
            f"list should be type of slice or array but {'ptr' if kind == 'invalid' else kind}"
        )
    if not value:
        return None
    start = to_int64(indexes[0]) if indexes else 0
    end = to_int64(indexes[1]) if len(indexes) > 1 else len(value)
    if not 0 <= start <= end <= len(value):
        raise FunctionError(f"reflect: slice index out of range [{start}:{end}]")
    return list(value[start:end])


def _compact(value: Any) -> list[Any]:
    return [item for item in _as_list(value, "compact") if not is_empty(item)]


def _reverse(value: Any) -> list[Any]:
    return list(reversed(_as_list(value, "find reverse")))


def _until(count: int) -> IntSlice:
    return _until_step(0, count, 1 if count >= 0 else -1)


def _until_step(start: int, stop: int, step: int) -> IntSlice:
    if step == 0 or (step > 0 and start >= stop) or (step < 0 and start <= stop):
        return IntSlice()
    return IntSlice(range(start, stop, step))


def _seq(*params: int) -> str:
    if len(params) == 0:
        return ""
    if len(params) == 1:
        start, end, step = 1, params[0], 1 if params[0] >= 1 else -1
    elif len(params) == 2:
        start, end = params
        step = 1 if end >= start else -1
    elif len(params) == 3:
        start, step, end = params
        if (end > start and step <= 0) or (end < start and step >= 0) or (end == start and step == 0):
            return ""
    else:
        return ""
    values = list(range(start, end + (1 if step > 0 else -1), step)) if step else [start]
    return " ".join(str(v) for v in values)


# --- dicts -------------------------------------------------------------------------------------


def _dict(*pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    items = list(pairs)
    if len(items) % 2:
        items.append("")
    for index in range(0, len(items), 2):
        out[strval(items[index])] = items[index + 1]
    return out


def _get(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key, "")


def _set(mapping: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    mapping[key] = value
    return mapping


def _unset(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    mapping.pop(key, None)
    return mapping


def _pluck(key: str, *mappings: dict[str, Any]) -> list[Any]:
    return [mapping[key] for mapping in mappings if key in mapping]


def _keys(*mappings: dict[str, Any]) -> StringSlice:
    return StringSlice(key for mapping in mappings for key in mapping)


def _pick(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: mapping[key] for key in keys if key in mapping}


def _omit(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if key not in keys}


def merge_into(dst: dict[str, Any], src: dict[str, Any], overwrite: bool) -> None:
    """mergo's Merge (WithOverride when overwrite), as Sprig and gomplate call it: nested maps
    merge; without overwrite a key is filled only where dst lacks it or holds an empty value;
    with it, src's values win, except that empty lists and maps never replace anything."""
    for key, value in src.items():
        present = key in dst
        current = dst.get(key)
        if value is None:
            if overwrite:
                dst[key] = None
            continue
        if isinstance(value, dict) and isinstance(current, dict):
            merge_into(current, value, overwrite)
            if current:
                continue
        if isinstance(value, dict | list) and present and not is_empty(current):
            if overwrite and isinstance(value, list) and value:
                dst[key] = value
            continue
        if overwrite or not present or is_empty(current):
            dst[key] = value


def _merge(dst: dict[str, Any], *srcs: dict[str, Any]) -> dict[str, Any]:
    for src in srcs:
        merge_into(dst, src, False)
    return dst


def _merge_overwrite(dst: dict[str, Any], *srcs: dict[str, Any]) -> dict[str, Any]:
    for src in srcs:
        merge_into(dst, src, True)
    return dst


def _dig(*params: Any) -> Any:
    if len(params) < 3:
        raise FunctionError("dig needs at least three arguments")
    mapping = params[-1]
    default = params[-2]
    keys = params[:-2]
    for index, key in enumerate(keys):
        if not isinstance(mapping, dict):
            raise FunctionError(
                f"interface conversion: interface {{}} is {type_name(mapping)}, not map[string]interface {{}}"
            )
        if not isinstance(key, str):
            raise FunctionError(f"interface conversion: interface {{}} is {type_name(key)}, not string")
        if key not in mapping:
            return default
        mapping = mapping[key]
        if index == len(keys) - 1:
            return mapping
    return default


# --- math --------------------------------------------------------------------------------------


def _go_div(a: int, b: int) -> int:
    if b == 0:
        raise FunctionError("runtime error: integer divide by zero")
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b >= 0) else -quotient


def _go_mod(a: int, b: int) -> int:
    if b == 0:
        raise FunctionError("runtime error: integer divide by zero")
    return a - b * _go_div(a, b)


def _round(value: Any, places: int, *options: float) -> float:
    round_on = options[0] if options else 0.5
    power = math.pow(10, places)
    digit = power * to_float64(value)
    fraction, _ = math.modf(digit)
    rounded = math.ceil(digit) if fraction >= round_on else math.floor(digit)
    return rounded / power


def _maxf(first: Any, *others: Any) -> float:
    return max([to_float64(first), *(to_float64(v) for v in others)])


def _minf(first: Any, *others: Any) -> float:
    return min([to_float64(first), *(to_float64(v) for v in others)])


# --- dates -------------------------------------------------------------------------------------


def _time_of(value: Any) -> GoTime:
    if isinstance(value, GoTime):
        return value
    if is_int(value) and not isinstance(value, bool):
        return GoTime(datetime.fromtimestamp(int(value), UTC).astimezone())
    return GoTime(current_now())


def _date_in_zone(layout: str, value: Any, zone: str) -> str:
    moment = _time_of(value)
    location = load_zone(zone) or UTC
    return format_time(moment.moment.astimezone(location), layout)


def _date(layout: str, value: Any) -> str:
    return _date_in_zone(layout, value, "Local")


_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> timedelta:
    """time.ParseDuration: `1h30m`, `-1.5h`, `300ms`."""
    body = text
    sign = 1
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return timedelta(0)
    if not body:
        raise FunctionError(f'time: invalid duration "{text}"')
    position = 0
    seconds = 0.0
    for match in _DURATION.finditer(body):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(body):
        raise FunctionError(f'time: invalid duration "{text}"')
    return timedelta(seconds=sign * seconds)


def _date_modify(modification: str, value: Any) -> GoTime:
    moment = _time_of(value)
    try:
        delta = parse_duration(modification)
    except FunctionError:
        return moment
    return GoTime(moment.moment + delta)


# --- the table ---------------------------------------------------------------------------------


def _f(fn: Callable[..., Any], *params: str, variadic: str | None = None) -> GoFunc:
    return GoFunc(fn, tuple(params), variadic)


SPRIG: dict[str, GoFunc] = {
    # strings
    "upper": _f(_upper, "string"),
    "lower": _f(_lower, "string"),
    "title": _f(title, "string"),
    "untitle": _f(_untitle, "string"),
    "swapcase": _f(_swapcase, "string"),
    "substr": _f(_substr, "int", "int", "string"),
    "repeat": _f(_repeat, "int", "string"),
    "trunc": _f(_trunc, "int", "string"),
    "trim": _f(_trim_space, "string"),
    "trimAll": _f(lambda cutset, text: text.strip(cutset), "string", "string"),
    "trimPrefix": _f(lambda prefix, text: text.removeprefix(prefix), "string", "string"),
    "trimSuffix": _f(lambda suffix, text: text.removesuffix(suffix), "string", "string"),
    "nospace": _f(lambda text: "".join(c for c in text if c not in _GO_SPACE), "string"),
    "abbrev": _f(_abbrev, "int", "string"),
    "abbrevboth": _f(_abbrevboth, "int", "int", "string"),
    "initials": _f(_initials, "string"),
    "contains": _f(lambda sub, text: sub in text, "string", "string"),
    "hasPrefix": _f(lambda prefix, text: text.startswith(prefix), "string", "string"),
    "hasSuffix": _f(lambda suffix, text: text.endswith(suffix), "string", "string"),
    "quote": _f(_quote, variadic="any"),
    "squote": _f(_squote, variadic="any"),
    "cat": _f(_cat, variadic="any"),
    "indent": _f(_indent, "int", "string"),
    "nindent": _f(_nindent, "int", "string"),
    "replace": _f(lambda old, new, text: text.replace(old, new), "string", "string", "string"),
    "plural": _f(_plural, "string", "string", "int"),
    "snakecase": _f(snakecase, "string"),
    "camelcase": _f(camelcase, "string"),
    "kebabcase": _f(kebabcase, "string"),
    "split": _f(_split, "string", "string"),
    "splitList": _f(_split_list, "string", "string"),
    "splitn": _f(_splitn, "string", "int", "string"),
    "join": _f(_join, "string", "any"),
    "sortAlpha": _f(_sort_alpha, "any"),
    "toString": _f(strval, "any"),
    "toStrings": _f(strslice, "any"),
    "atoi": _f(lambda text: _atoi(text), "string"),
    "int": _f(lambda value: to_int64(value), "any"),
    "int64": _f(lambda value: Int64(to_int64(value)), "any"),
    "float64": _f(to_float64, "any"),
    "toDecimal": _f(lambda value: Int64(_octal(value)), "any"),
    # regular expressions
    "regexMatch": _f(_regex_match, "string", "string"),
    "mustRegexMatch": _f(lambda p, t: _compile(p).search(t) is not None, "string", "string"),
    "regexFind": _f(_regex_find, "string", "string"),
    "regexFindAll": _f(_regex_find_all, "string", "string", "int"),
    "regexReplaceAll": _f(_regex_replace_all, "string", "string", "string"),
    "regexReplaceAllLiteral": _f(_regex_replace_all_literal, "string", "string", "string"),
    "regexSplit": _f(_regex_split, "string", "string", "int"),
    "regexQuoteMeta": _f(lambda text: re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text), "string"),
    # encodings
    "b64enc": _f(lambda text: base64.b64encode(text.encode("utf-8", "surrogatepass")).decode(), "string"),
    "b64dec": _f(_b64dec, "string"),
    "b32enc": _f(lambda text: base64.b32encode(text.encode("utf-8", "surrogatepass")).decode(), "string"),
    "b32dec": _f(_b32dec, "string"),
    "sha1sum": _f(_digest("sha1"), "string"),
    "sha256sum": _f(_digest("sha256"), "string"),
    "sha512sum": _f(_digest("sha512"), "string"),
    "adler32sum": _f(lambda text: str(zlib.adler32(text.encode("utf-8", "surrogatepass"))), "string"),
    "toJson": _f(lambda value: _quiet(lambda: to_json(value)), "any"),
    "mustToJson": _f(lambda value: to_json(value), "any"),
    "toPrettyJson": _f(lambda value: _quiet(lambda: to_json(value, indent="  ")), "any"),
    "mustToPrettyJson": _f(lambda value: to_json(value, indent="  "), "any"),
    "toRawJson": _f(lambda value: _quiet(lambda: to_json(value, escape_html=False)), "any"),
    "mustToRawJson": _f(lambda value: to_json(value, escape_html=False), "any"),
    "fromJson": _f(lambda text: _quiet(lambda: from_json(text), None), "string"),
    "mustFromJson": _f(lambda text: _must_from_json(text), "string"),
    # operating system and paths
    "env": _f(lambda *names: _env(*names), variadic="string"),
    "expandenv": _f(lambda text: _expand_env(text), "string"),
    "base": _f(lambda path: _go_base(path), "string"),
    "dir": _f(lambda path: _go_dir(path), "string"),
    "ext": _f(lambda path: _go_ext(path), "string"),
    "clean": _f(lambda path: _go_clean(path), "string"),
    "isAbs": _f(lambda path: path.startswith("/"), "string"),
    "osBase": _f(lambda path: _go_base(path), "string"),
    "osDir": _f(lambda path: _go_dir(path), "string"),
    "osExt": _f(lambda path: _go_ext(path), "string"),
    "osClean": _f(lambda path: _go_clean(path), "string"),
    "osIsAbs": _f(lambda path: os.path.isabs(path), "string"),
    # defaults and flow
    "default": _f(_default, "any", variadic="any"),
    "empty": _f(is_empty, "any"),
    "coalesce": _f(_coalesce, variadic="any"),
    "all": _f(lambda *values: all(not is_empty(v) for v in values), variadic="any"),
    "any": _f(lambda *values: any(not is_empty(v) for v in values), variadic="any"),
    "ternary": _f(_ternary, "any", "any", "bool"),
    "fail": _f(_fail, "string"),
    "required": _f(_required, "string", "any"),
    "typeOf": _f(type_name, "any"),
    "typeIs": _f(lambda target, value: type_name(value) == target, "string", "any"),
    "typeIsLike": _f(lambda target, value: type_name(value) in (target, "*" + target), "string", "any"),
    "kindOf": _f(_kind, "any"),
    "kindIs": _f(lambda target, value: _kind(value) == target, "string", "any"),
    "deepEqual": _f(_deep_equal, "any", "any"),
    # lists
    "list": _f(lambda *values: list(values), variadic="any"),
    "tuple": _f(lambda *values: list(values), variadic="any"),
    "first": _f(_first, "any"),
    "last": _f(_last, "any"),
    "rest": _f(_rest, "any"),
    "initial": _f(_initial, "any"),
    "append": _f(_append, "any", "any"),
    "push": _f(_append, "any", "any"),
    "prepend": _f(_prepend, "any", "any"),
    "concat": _f(_concat, variadic="any"),
    "reverse": _f(_reverse, "any"),
    "uniq": _f(_uniq, "any"),
    "without": _f(_without, "any", variadic="any"),
    "has": _f(_has, "any", "any"),
    "compact": _f(_compact, "any"),
    "slice": _f(_slice, "any", variadic="any"),
    "until": _f(_until, "int"),
    "untilStep": _f(_until_step, "int", "int", "int"),
    "seq": _f(_seq, variadic="int"),
    # dicts
    "dict": _f(_dict, variadic="any"),
    "get": _f(_get, "map", "string"),
    "set": _f(_set, "map", "string", "any"),
    "unset": _f(_unset, "map", "string"),
    "hasKey": _f(lambda mapping, key: key in mapping, "map", "string"),
    "pluck": _f(_pluck, "string", variadic="map"),
    "keys": _f(_keys, variadic="map"),
    "values": _f(lambda mapping: list(mapping.values()), "map"),
    "pick": _f(_pick, "map", variadic="string"),
    "omit": _f(_omit, "map", variadic="string"),
    "merge": _f(_merge, "map", variadic="map"),
    "mergeOverwrite": _f(_merge_overwrite, "map", variadic="map"),
    "deepCopy": _f(lambda value: copy.deepcopy(value), "any"),
    "dig": _f(_dig, variadic="any"),
    # math
    "add1": _f(lambda value: Int64(to_int64(value) + 1), "any"),
    "add": _f(lambda *values: Int64(sum(to_int64(v) for v in values)), variadic="any"),
    "sub": _f(lambda a, b: Int64(to_int64(a) - to_int64(b)), "any", "any"),
    "mul": _f(
        lambda a, *rest: Int64(math.prod([to_int64(a), *(to_int64(v) for v in rest)])), "any", variadic="any"
    ),
    "div": _f(lambda a, b: Int64(_go_div(to_int64(a), to_int64(b))), "any", "any"),
    "mod": _f(lambda a, b: Int64(_go_mod(to_int64(a), to_int64(b))), "any", "any"),
    "max": _f(
        lambda a, *rest: Int64(max([to_int64(a), *(to_int64(v) for v in rest)])), "any", variadic="any"
    ),
    "biggest": _f(
        lambda a, *rest: Int64(max([to_int64(a), *(to_int64(v) for v in rest)])), "any", variadic="any"
    ),
    "min": _f(
        lambda a, *rest: Int64(min([to_int64(a), *(to_int64(v) for v in rest)])), "any", variadic="any"
    ),
    "floor": _f(lambda value: float(math.floor(to_float64(value))), "any"),
    "ceil": _f(lambda value: float(math.ceil(to_float64(value))), "any"),
    "round": _f(_round, "any", "int", variadic="float64"),
    "add1f": _f(lambda value: to_float64(value) + 1, "any"),
    "addf": _f(lambda *values: math.fsum(to_float64(v) for v in values), variadic="any"),
    "subf": _f(
        lambda a, *rest: to_float64(a) - math.fsum(to_float64(v) for v in rest), "any", variadic="any"
    ),
    "mulf": _f(
        lambda a, *rest: math.prod([to_float64(a), *(to_float64(v) for v in rest)]), "any", variadic="any"
    ),
    "divf": _f(lambda a, *rest: _divf(to_float64(a), [to_float64(v) for v in rest]), "any", variadic="any"),
    "maxf": _f(_maxf, "any", variadic="any"),
    "minf": _f(_minf, "any", variadic="any"),
    # dates
    "now": _f(lambda: GoTime(current_now())),
    "date": _f(_date, "string", "any"),
    "dateInZone": _f(_date_in_zone, "string", "any", "string"),
    "date_in_zone": _f(_date_in_zone, "string", "any", "string"),
    "htmlDate": _f(lambda value: _date("2006-01-02", value), "any"),
    "htmlDateInZone": _f(lambda value, zone: _date_in_zone("2006-01-02", value, zone), "any", "string"),
    "unixEpoch": _f(lambda value: str(int(_time_of(value).moment.timestamp())), "any"),
    "dateModify": _f(_date_modify, "string", "any"),
    "date_modify": _f(_date_modify, "string", "any"),
}


def _env(*names: str) -> Any:
    """Sprig's `env "NAME"`; without an argument, gomplate's `env` namespace (`env.Getenv`)."""
    if not names:
        from .gomplate import NAMESPACES

        return NAMESPACES["env"]
    if len(names) > 1:
        raise FunctionError(f"wrong number of args for env: want 1 got {len(names)}")
    return current_env().get(names[0], "")


def _atoi(text: str) -> int:
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body.isascii() or not body.isdigit():
        return 0
    return int(text)


def _octal(value: Any) -> int:
    try:
        return int(strval(value), 8)
    except ValueError:
        return 0


def _divf(first: float, rest: list[float]) -> float:
    result = first
    for value in rest:
        result = result / value if value else (math.copysign(math.inf, result) if result else math.nan)
    return result


def _quiet(fn: Callable[[], Any], fallback: Any = "") -> Any:
    try:
        return fn()
    except Exception:
        return fallback


def _must_from_json(text: str) -> Any:
    try:
        return from_json(text)
    except ValueError as error:
        raise FunctionError(str(error)) from None


_ENV_REF = re.compile(r"\$(\{([^}]*)\}|[A-Za-z0-9_]+|[*#$@!?\-0-9])")


def _expand_env(text: str) -> str:
    env = current_env()

    def replace(match: re.Match[str]) -> str:
        name = match.group(2) if match.group(2) is not None else match.group(1)
        return env.get(name, "")

    return _ENV_REF.sub(replace, text)


def _go_clean(path: str) -> str:
    if path == "":
        return "."
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def _go_base(path: str) -> str:
    if path == "":
        return "."
    stripped = path.rstrip("/")
    if stripped == "":
        return "/"
    return stripped.rsplit("/", 1)[-1]


def _go_dir(path: str) -> str:
    head = path[: path.rfind("/") + 1]
    return _go_clean(head)


def _go_ext(path: str) -> str:
    for index in range(len(path) - 1, -1, -1):
        if path[index] == "/":
            break
        if path[index] == ".":
            return path[index:]
    return ""
