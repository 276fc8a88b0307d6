"""Property tests: whatever the text, the lexer, parser and executor answer with a result or a
TemplateError, never another exception."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from atmos_tasks.gotemplate import TemplateError, render
from atmos_tasks.gotemplate.lexer import T, lex

FRAGMENTS = [
    "{{",
    "}}",
    "{{- ",
    " -}}",
    "{{/*",
    "*/}}",
    " ",
    "\n",
    ".",
    ".a",
    ".b.c",
    "$",
    "$x",
    ":=",
    "=",
    "|",
    "(",
    ")",
    ",",
    "if",
    "else",
    "end",
    "range",
    "with",
    "define",
    "template",
    "block",
    "break",
    "continue",
    "nil",
    "true",
    '"s"',
    "`raw`",
    "'c'",
    "1",
    "-2.5",
    "0x1F",
    "1e3",
    "3i",
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "printf",
    "eq",
    "lt",
    "default",
    "toJson",
    "upper",
    "list",
    "dict",
    "strings.ToUpper",
    "coll.Dict",
    "text",
]

DATA: dict[str, Any] = {"a": [1, "two", None, {"k": 3.5}], "b": {"c": True}, "s": "x", "n": 0}


def _render(text: str) -> None:
    try:
        result = render(text, DATA, name="prop")
    except TemplateError as error:
        assert str(error).startswith("template: ")
    else:
        assert isinstance(result, str)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_renders_or_fails_cleanly(text: str) -> None:
    _render(text)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30))
def test_template_like_text_renders_or_fails_cleanly(fragments: list[str]) -> None:
    _render("".join(fragments))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=20).map("".join))
def test_wrapped_in_an_action(body: str) -> None:
    _render("{{" + body + "}}")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_lexer_ends_with_eof_or_error(text: str) -> None:
    items = lex(text)
    assert items[-1].typ in (T.EOF, T.ERROR)
    assert all(item.typ not in (T.EOF, T.ERROR) for item in items[:-1])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="{"), max_size=60))
def test_text_without_delimiters_is_unchanged(text: str) -> None:
    assert render(text, DATA) == text


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    for text in ("{{" + "(" * 5000 + "1" + ")" * 5000 + "}}", "{{if 1}}" * 3000 + "{{end}}" * 3000):
        _render(text)
