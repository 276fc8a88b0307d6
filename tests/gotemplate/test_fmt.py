"""printf and value printing, against Go's fmt documentation (pkg.go.dev/fmt) and fmt_test.go."""

from __future__ import annotations

import pytest

from atmos_tasks.gotemplate import Template, render
from atmos_tasks.gotemplate.gofmt import format_float, quote, sprint, sprintf


@pytest.mark.parametrize(
    ("fmt", "args", "expected"),
    [
        ("%d", [42], "42"),
        ("%5d|%-5d|%05d", [42, 42, 42], "   42|42   |00042"),
        ("%+d % d", [5, 5], "+5  5"),
        ("%x %X %o %O %b", [255, 255, 8, 8, 5], "ff FF 10 0o10 101"),
        ("%#x %#o", [255, 8], "0xff 010"),
        ("%c %q %U", [65, 65, 0x1F600], "A 'A' U+1F600"),
        ("%f %.2f %8.3f %-8.1f|", [3.14159, 3.14159, 3.14159, 3.14159], "3.141590 3.14    3.142 3.1     |"),
        ("%e %E %.3e", [1234.5678, 1234.5678, 1234.5678], "1.234568e+03 1.234568E+03 1.235e+03"),
        ("%g %g %g %.3g", [100000.0, 1000000.0, 1e-5, 3.14159], "100000 1e+06 1e-05 3.14"),
        ("%s|%10s|%-10s|%.2s", ["go", "go", "go", "golang"], "go|        go|go        |go"),
        ("%q %+q %#q", ["a\tb", "héllo", "x"], '"a\\tb" "h\\u00e9llo" `x`'),
        ("%x % x %X", ["hi", "hi", "hi"], "6869 68 69 6869"),
        ("%v %v %v %v", [True, None, [1, "a"], {"b": 1, "a": 2}], "true <nil> [1 a] map[a:2 b:1]"),
        ("%t", [False], "false"),
        (
            "%T %T %T %T %T",
            [1, 1.5, "s", [1], {"a": 1}],
            "int float64 string []interface {} map[string]interface {}",
        ),
        ("%d", ["x"], "%!d(string=x)"),
        ("%s", [5], "%!s(int=5)"),
        ("%d", [None], "%!d(<nil>)"),
        ("%d %d", [1], "1 %!d(MISSING)"),
        ("%d", [1, 2], "1%!(EXTRA int=2)"),
        ("%[2]d %[1]d", [1, 2], "2 1"),
        ("%*d|%-*d|", [4, 7, 4, 7], "   7|7   |"),
        ("100%%", [], "100%"),
        ("%", [], "%!(NOVERB)"),
        ("%z", [1], "%!z(int=1)"),
        ("%v", [{"k": [1.5, None]}], "map[k:[1.5 <nil>]]"),
        ("%q", [["a", "b"]], '["a" "b"]'),
        ("%#v", [{"a": 1}], 'map[string]interface {}{"a":1}'),
    ],
)
def test_sprintf(fmt: str, args: list[object], expected: str) -> None:
    assert sprintf(fmt, args) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
        (float("inf"), "+Inf"),
        (float("-inf"), "-Inf"),
        (float("nan"), "NaN"),
        (1.5e300, "1.5e+300"),
    ],
)
def test_float_v(value: float, expected: str) -> None:
    assert format_float(value) == expected


def test_sprint_spaces_between_non_strings() -> None:  # fmt.Sprint's rule
    assert sprint(["a", 1, 2, "b", "c", 3.5]) == "a1 2bc3.5"


def test_go_quote() -> None:
    assert quote('a"b\\c\n\x01\u2028日本') == '"a\\"b\\\\c\\n\\x01\\u2028日本"'


def test_parse_is_cached_and_reused() -> None:
    first = Template("{{ .a }}-{{ .b }}", name="cached")
    second = Template("{{ .a }}-{{ .b }}", name="cached")
    assert first._trees is second._trees
    assert [first.execute({"a": i, "b": i * 2}) for i in range(3)] == ["0-0", "1-2", "2-4"]


def test_unicode_columns_are_bytes() -> None:
    from atmos_tasks.gotemplate import TemplateError

    with pytest.raises(TemplateError) as caught:
        render("é {{ .x.y }}", {"x": 1}, name="u")
    # Go places a field chain at its last field (.y) and counts bytes: "é {{ .x" is 8 bytes.
    assert caught.value.column == 8
    assert str(caught.value).startswith("template: u:1:8:")
