"""Go's fmt and strconv, as far as templates print values: %v, Sprint, Sprintln, Sprintf, Quote.

Floats print as Go prints them: the shortest representation that round-trips, with an exponent
from 1e+06 up and below 1e-04 (`1e+06`, `1e-05`); maps as `map[k:v]` in sorted key order, lists
as `[a b]`, nil as `<nil>`.
"""

from __future__ import annotations

import math
from typing import Any

from .values import NO_VALUE, is_int, sorted_items, type_name


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest decimal digits that round-trip (as Go's and Python's repr choose them) and
    the decimal point position: value = 0.DIGITS x 10**dp."""
    text = repr(abs(value))
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    stripped = stripped.rstrip("0")
    return (stripped or "0"), point


def _special(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return None


def _exp_suffix(exponent: int, letter: str = "e") -> str:
    return f"{letter}{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def format_float(value: float, verb: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat(value, verb, prec, 64) for verbs e, E, f, g, G (prec -1: shortest)."""
    special = _special(value)
    if special is not None:
        return special
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    magnitude = abs(value)
    if prec >= 0:
        if verb in "gG":
            return sign + format(magnitude, f".{prec or 1}{verb}")
        return sign + format(magnitude, f".{prec}{verb}")
    digits, point = ("0", 1) if magnitude == 0 else _shortest_digits(magnitude)
    if verb in "eE":
        return sign + _exponential(digits, point - 1, verb)
    if verb == "f":
        return sign + _fixed(digits, point)
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        return sign + _exponential(digits, exponent, "E" if verb == "G" else "e")
    return sign + _fixed(digits, point)


def _exponential(digits: str, exponent: int, letter: str) -> str:
    tail = ("." + digits[1:]) if len(digits) > 1 else ""
    return digits[0] + tail + _exp_suffix(exponent, letter)


def _fixed(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * (-point) + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def format_complex(value: complex, verb: str = "g", prec: int = -1) -> str:
    real = format_float(value.real, verb, prec)
    imag = format_float(value.imag, verb, prec)
    if not imag.startswith(("-", "+")):
        imag = "+" + imag
    return f"({real}{imag}i)"


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def quote(text: str, quote_char: str = '"', ascii_only: bool = False) -> str:
    """strconv.Quote (QuoteToASCII with ascii_only, QuoteRune-style with quote_char="'")."""
    out = [quote_char]
    for char in text:
        code = ord(char)
        if char == quote_char or char == "\\":
            out.append("\\" + char)
        elif (code < 0x80 or not ascii_only) and char.isprintable():
            out.append(char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append(quote_char)
    return "".join(out)


def can_backquote(text: str) -> bool:
    return all(char == "\t" or (char != "`" and char != "\ufeff" and (char.isprintable())) for char in text)


def sprint_value(value: Any) -> str:
    """fmt's %v of one value."""
    if value is None or value is NO_VALUE:
        return "<nil>"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, complex):
        return format_complex(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{sprint_value(k)}:{sprint_value(v)}" for k, v in sorted_items(value)) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(sprint_value(item) for item in value) + "]"
    if isinstance(value, bytes | bytearray):
        return "[" + " ".join(str(b) for b in value) + "]"
    go_string = getattr(value, "go_string", None)
    if callable(go_string):
        return str(go_string())
    return str(value)


def sprint(args: list[Any]) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    out: list[str] = []
    previous_string = False
    for index, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if index > 0 and not is_string and not previous_string:
            out.append(" ")
        out.append(sprint_value(arg))
        previous_string = is_string
    return "".join(out)


def sprintln(args: list[Any]) -> str:
    return " ".join(sprint_value(arg) for arg in args) + "\n"


class _Spec:
    __slots__ = ("minus", "plus", "prec", "sharp", "space", "width", "zero")

    def __init__(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = False
        self.width: int | None = None
        self.prec: int | None = None


def _pad(text: str, spec: _Spec, numeric: bool = False) -> str:
    if spec.width is None or len(text) >= spec.width:
        return text
    fill = spec.width - len(text)
    if spec.minus:
        return text + " " * fill
    if spec.zero and numeric:
        sign = text[0] if text[:1] in ("-", "+", " ") else ""
        body = text[len(sign) :]
        prefix = ""
        if body[:2] in ("0x", "0X", "0b", "0o", "0B", "0O"):
            prefix, body = body[:2], body[2:]
        return sign + prefix + "0" * fill + body
    return " " * fill + text


def _bad_verb(verb: str, value: Any) -> str:
    if value is None or value is NO_VALUE:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_name(value)}={sprint_value(value)})"


def _fmt_integer(value: int, verb: str, spec: _Spec) -> str:
    negative = value < 0
    magnitude = -value if negative else value
    prefix = ""
    if verb in "dv":
        digits = str(magnitude)
    elif verb == "b":
        digits = format(magnitude, "b")
        prefix = "0b" if spec.sharp else ""
    elif verb in "oO":
        digits = format(magnitude, "o")
        prefix = "0o" if verb == "O" else ("0" if spec.sharp else "")
    elif verb in "xX":
        digits = format(magnitude, verb)
        prefix = ("0" + verb) if spec.sharp else ""
    elif verb == "c":
        return _pad(chr(value) if 0 <= value <= 0x10FFFF else "\ufffd", spec)
    elif verb == "q":
        return _pad(quote(chr(value) if 0 <= value <= 0x10FFFF else "\ufffd", "'", spec.plus), spec)
    elif verb == "U":
        text = f"U+{value:04X}"
        if spec.sharp and 0 <= value <= 0x10FFFF and chr(value).isprintable():
            text += f" '{chr(value)}'"
        return _pad(text, spec)
    else:
        return _bad_verb(verb, value)
    if spec.prec is not None:
        digits = digits.rjust(spec.prec, "0") if spec.prec else ("" if magnitude == 0 else digits)
    sign = "-" if negative else ("+" if spec.plus else (" " if spec.space else ""))
    return _pad(sign + prefix + digits, spec, numeric=spec.prec is None)


def _fmt_float(value: float, verb: str, spec: _Spec) -> str:
    if verb == "v":
        verb = "g"
    if verb not in "eEfFgG":
        return _bad_verb(verb, value)
    go_verb = "f" if verb == "F" else verb
    prec = spec.prec if spec.prec is not None else (-1 if go_verb in "gG" else 6)
    text = format_float(value, go_verb, prec)
    if spec.plus and not text.startswith("-") and not text.startswith("+"):
        text = "+" + text
    elif spec.space and not text.startswith(("-", "+")):
        text = " " + text
    if text.endswith("Inf") or text == "NaN":
        return _pad(text, spec)  # Go pads infinities with spaces, never zeros
    return _pad(text, spec, numeric=True)


def _fmt_string(value: str, verb: str, spec: _Spec) -> str:
    if verb in "vs":
        text = value if spec.prec is None else value[: spec.prec]
        return _pad(text, spec)
    if verb == "q":
        text = value if spec.prec is None else value[: spec.prec]
        if spec.sharp and can_backquote(text):
            return _pad("`" + text + "`", spec)
        return _pad(quote(text, ascii_only=spec.plus), spec)
    if verb in "xX":
        data = value.encode("utf-8", "surrogatepass")
        if spec.prec is not None:
            data = data[: spec.prec]
        hex_digits = data.hex() if verb == "x" else data.hex().upper()
        pairs = [hex_digits[i : i + 2] for i in range(0, len(hex_digits), 2)]
        prefix = ("0" + verb) if spec.sharp else ""
        text = " ".join(prefix + pair for pair in pairs) if spec.space else prefix + "".join(pairs)
        return _pad(text, spec)
    return _bad_verb(verb, value)


def format_arg(value: Any, verb: str, spec: _Spec | None = None) -> str:
    """One operand of Printf under one verb, with flags, width and precision."""
    spec = spec or _Spec()
    if verb == "T":
        return _pad(type_name(value), spec)
    if value is None or value is NO_VALUE:
        return _pad("<nil>", spec) if verb == "v" else _bad_verb(verb, value)
    if verb == "v" and spec.sharp:
        return _pad(go_syntax(value), spec)
    if isinstance(value, bool):
        if verb in "tv":
            return _pad("true" if value else "false", spec)
        return _bad_verb(verb, value)
    if is_int(value):
        return _fmt_integer(int(value), verb, spec)
    if isinstance(value, float):
        return _fmt_float(value, verb, spec)
    if isinstance(value, complex):
        if verb == "v":
            verb = "g"
        if verb not in "eEfFgG":
            return _bad_verb(verb, value)
        prec = spec.prec if spec.prec is not None else (-1 if verb in "gG" else 6)
        return _pad(format_complex(value, "f" if verb == "F" else verb, prec), spec)
    if isinstance(value, str):
        return _fmt_string(value, verb, spec)
    if isinstance(value, dict):
        inner = _Spec()
        inner.plus, inner.sharp = spec.plus, spec.sharp
        items = " ".join(
            f"{format_arg(k, verb, inner)}:{format_arg(v, verb, inner)}" for k, v in sorted_items(value)
        )
        return _pad("map[" + items + "]", spec)
    if isinstance(value, list | tuple):
        return "[" + " ".join(format_arg(item, verb, spec) for item in value) + "]"
    go_string = getattr(value, "go_string", None)
    if callable(go_string):
        if verb in "vs":
            return _pad(str(go_string()), spec)
        if verb == "q":
            return _pad(quote(str(go_string())), spec)
        return _bad_verb(verb, value)
    return _pad(str(value), spec)


def go_syntax(value: Any) -> str:
    """%#v, for the values templates hold."""
    if value is None or value is NO_VALUE:
        return "interface {}(nil)"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool | int | float | complex):
        return sprint_value(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{go_syntax(k)}:{go_syntax(v)}" for k, v in sorted_items(value))
        return type_name(value) + "{" + inner + "}"
    if isinstance(value, list | tuple):
        return type_name(value) + "{" + ", ".join(go_syntax(item) for item in value) + "}"
    return sprint_value(value)


def sprintf(fmt: str, args: list[Any]) -> str:
    """fmt.Sprintf, with Go's complaints written into the output (`%!d(string=x)`)."""
    out: list[str] = []
    arg_num = 0
    reordered = False
    i = 0
    end = len(fmt)
    while i < end:
        start = i
        while i < end and fmt[i] != "%":
            i += 1
        if i > start:
            out.append(fmt[start:i])
        if i >= end:
            break
        i += 1  # past '%'
        spec = _Spec()
        while i < end:
            char = fmt[i]
            if char == "#":
                spec.sharp = True
            elif char == "0":
                spec.zero = not spec.minus
            elif char == "+":
                spec.plus = True
            elif char == "-":
                spec.minus = True
                spec.zero = False
            elif char == " ":
                spec.space = True
            else:
                break
            i += 1
        # argument index
        i, arg_num, index_ok, was_reordered = _arg_index(fmt, i, arg_num, len(args))
        reordered = reordered or was_reordered
        if i < end and fmt[i] == "*":
            i += 1
            if arg_num < len(args) and is_int(args[arg_num]):
                spec.width = int(args[arg_num])
                if spec.width < 0:
                    spec.minus, spec.width = True, -spec.width
            else:
                out.append("%!(BADWIDTH)")
            arg_num += 1
        else:
            digits_start = i
            while i < end and fmt[i].isdigit():
                i += 1
            if i > digits_start:
                spec.width = int(fmt[digits_start:i])
        if i < end and fmt[i] == ".":
            i += 1
            i, arg_num, index_ok2, was_reordered = _arg_index(fmt, i, arg_num, len(args))
            reordered = reordered or was_reordered
            index_ok = index_ok and index_ok2
            if i < end and fmt[i] == "*":
                i += 1
                if arg_num < len(args) and is_int(args[arg_num]):
                    spec.prec = max(int(args[arg_num]), 0)
                else:
                    out.append("%!(BADPREC)")
                arg_num += 1
            else:
                digits_start = i
                while i < end and fmt[i].isdigit():
                    i += 1
                spec.prec = int(fmt[digits_start:i]) if i > digits_start else 0
        if not reordered:
            i, arg_num, index_ok3, was_reordered = _arg_index(fmt, i, arg_num, len(args))
            reordered = reordered or was_reordered
            index_ok = index_ok and index_ok3
        if i >= end:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if not index_ok:
            out.append(f"%!{verb}(BADINDEX)")
            continue
        if arg_num >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        value = args[arg_num]
        arg_num += 1
        if verb == "w":
            verb = "v"
        out.append(format_arg(value, verb, spec))
    if not reordered and arg_num < len(args):
        extra = ", ".join(
            "<nil>" if a is None or a is NO_VALUE else f"{type_name(a)}={sprint_value(a)}"
            for a in args[arg_num:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _arg_index(fmt: str, i: int, arg_num: int, count: int) -> tuple[int, int, bool, bool]:
    if i >= len(fmt) or fmt[i] != "[":
        return i, arg_num, True, False
    close = fmt.find("]", i)
    if close < 0:
        return i + 1, arg_num, False, True
    text = fmt[i + 1 : close]
    if not text.isdigit() or not 1 <= int(text) <= count:
        return close + 1, arg_num, False, True
    return close + 1, int(text) - 1, True, True
