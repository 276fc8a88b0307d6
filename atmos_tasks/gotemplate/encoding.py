"""JSON as Go's encoding/json writes it, YAML as gopkg.in/yaml.v3 (indent 2) writes it."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import FunctionError
from .gofmt import format_float
from .values import NO_VALUE, sorted_items


def _json_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise FunctionError(f"json: unsupported value: {format_float(value)}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = format_float(value, "e")
        # Go cleans up e-09 to e-9
        match = re.search(r"e-0(\d)$", text)
        if match:
            text = text[: match.start()] + "e-" + match.group(1)
        return text
    return format_float(value, "f")


def _json_string(text: str, escape_html: bool) -> str:
    out = ['"']
    for char in text:
        code = ord(char)
        if char == '"' or char == "\\":
            out.append("\\" + char)
        elif code < 0x20:
            out.append(
                {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}.get(char, f"\\u{code:04x}")
            )
        elif (escape_html and char in "<>&") or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def to_json(value: Any, *, escape_html: bool = True, indent: str | None = None) -> str:
    """json.Marshal (json.MarshalIndent with `indent`): sorted keys, Go's float and string forms."""
    out: list[str] = []
    _encode(value, out, escape_html, indent, 0)
    return "".join(out)


def _encode(value: Any, out: list[str], escape_html: bool, indent: str | None, depth: int) -> None:
    if value is None or value is NO_VALUE:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        out.append(_json_float(value))
    elif isinstance(value, str):
        out.append(_json_string(value, escape_html))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        out.append("{")
        for index, (key, item) in enumerate(sorted_items({str(k): v for k, v in value.items()})):
            if index:
                out.append(",")
            if indent is not None:
                out.append("\n" + indent * (depth + 1))
            out.append(_json_string(key, escape_html))
            out.append(": " if indent is not None else ":")
            _encode(item, out, escape_html, indent, depth + 1)
        if indent is not None:
            out.append("\n" + indent * depth)
        out.append("}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            if indent is not None:
                out.append("\n" + indent * (depth + 1))
            _encode(item, out, escape_html, indent, depth + 1)
        if indent is not None:
            out.append("\n" + indent * depth)
        out.append("]")
    else:
        json_text = getattr(value, "go_json", None)
        if callable(json_text):
            out.append(_json_string(str(json_text()), escape_html))
        else:
            out.append("{}")


def from_json(text: str, *, numbers_as_float: bool = True) -> Any:
    """json.Unmarshal into interface{}: every number a float64 (Sprig's fromJson)."""
    if numbers_as_float:
        return json.loads(text, parse_int=float, parse_constant=_reject_constant)
    return json.loads(text, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


# --- YAML ------------------------------------------------------------------------------------

_YAML_SPECIAL = re.compile(
    r"""^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF
    |[-+]?(?:0|[1-9][0-9_]*)|[-+]?0[xX][0-9a-fA-F_]+|[-+]?0[oO]?[0-7_]+|[-+]?0[bB][01_]+
    |[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?)$""",
    re.VERBOSE,
)
_PLAIN_UNSAFE_START = set("-?:,[]{}#&*!|>'\"%@`")


def _yaml_scalar_string(text: str) -> str:
    if text == "" or _YAML_SPECIAL.match(text):
        return _yaml_double(text)
    if any((ord(c) < 0x20 and c not in "\t\n") or c in "\ufeff\u2028\u2029\x85" for c in text):
        return _yaml_double(text)
    plain_ok = (
        text[0] not in _PLAIN_UNSAFE_START
        and text[0] not in " \t"
        and text[-1] not in " \t"
        and ": " not in text
        and " #" not in text
        and not text.endswith(":")
        and "\t" not in text
    )
    if text[0] in "-?:" and len(text) > 1 and text[1] not in " \t":
        plain_ok = plain_ok or (": " not in text and " #" not in text and text[-1] not in " :")
    if plain_ok:
        return text
    return "'" + text.replace("'", "''") + "'"


def _yaml_double(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _yaml_literal(text: str, indent: str) -> str:
    if text.endswith("\n"):
        chomp = "+" if text.endswith("\n\n") else ""
        body = text[:-1] if not chomp else text.rstrip("\n")
        trailing = text[len(body) :]
    else:
        chomp, body, trailing = "-", text, ""
    lines = body.split("\n")
    indicator = "2" if lines and lines[0].startswith(" ") else ""
    rendered = "\n".join((indent + line) if line else "" for line in lines)
    extra = "\n" * (len(trailing) - 1) if chomp == "+" else ""
    return f"|{indicator}{chomp}\n{rendered}" + extra


def _yaml_scalar(value: Any, indent: str) -> str:
    if value is None or value is NO_VALUE:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return format_float(value)
    text = value if isinstance(value, str) else str(value)
    if "\n" in text and text.strip("\n"):
        return _yaml_literal(text, indent)
    return _yaml_scalar_string(text)


def to_yaml(value: Any) -> str:
    """yaml.v3's Marshal with an indent of 2: sorted keys, block style, a newline at the end."""
    if isinstance(value, dict | list | tuple) and value:
        lines: list[str] = []
        _yaml_block(value, "", lines)
        return "\n".join(lines) + "\n"
    return _yaml_inline(value, "") + "\n"


def _yaml_inline(value: Any, indent: str) -> str:
    if isinstance(value, dict | list | tuple) and not value:
        return "{}" if isinstance(value, dict) else "[]"
    return _yaml_scalar(value, indent + "  ")


def _yaml_block(value: Any, indent: str, lines: list[str]) -> None:
    """A non-empty mapping or sequence, every line starting with `indent`."""
    if isinstance(value, dict):
        for key, item in sorted_items(value):
            head = indent + _yaml_scalar(key, indent) + ":"
            if isinstance(item, dict | list | tuple) and item:
                lines.append(head)
                _yaml_block(item, indent + "  ", lines)
            else:
                lines.append(head + " " + _yaml_inline(item, indent))
        return
    for item in value:
        if isinstance(item, dict | list | tuple) and item:
            start = len(lines)
            _yaml_block(item, indent + "  ", lines)
            lines[start] = indent + "- " + lines[start][len(indent) + 2 :]
        else:
            lines.append(indent + "- " + _yaml_inline(item, indent + "  "))


def from_yaml(text: str) -> Any:
    """Decode YAML (1.2, as yaml.v3 reads it) into plain data."""
    from io import StringIO

    from ruamel.yaml import YAML

    loader = YAML(typ="safe", pure=True)
    return _plain(loader.load(StringIO(text)))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
