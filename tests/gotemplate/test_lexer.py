"""The lexer, against the tables of Go's src/text/template/parse/lex_test.go."""

from __future__ import annotations

import pytest

from atmos_tasks.gotemplate.lexer import T, lex

# Go's lexTests (src/text/template/parse/lex_test.go), as (type, value) pairs.
L, R, EOF, SP = (T.LEFT_DELIM, "{{"), (T.RIGHT_DELIM, "}}"), (T.EOF, ""), (T.SPACE, " ")
LPAR, RPAR, PIPE = (T.LEFT_PAREN, "("), (T.RIGHT_PAREN, ")"), (T.PIPE, "|")
RAW = '`abc\\n\\t\\" `'
RAW_NL = "`now is{{\n}}the time`"

LEX_TESTS = [
    ("empty", "", [EOF]),
    ("spaces", " \t\n", [(T.TEXT, " \t\n"), EOF]),
    ("text", "now is the time", [(T.TEXT, "now is the time"), EOF]),
    (
        "text with comment",
        "hello-{{/* this is a comment */}}-world",
        [(T.TEXT, "hello-"), (T.COMMENT, "/* this is a comment */"), (T.TEXT, "-world"), EOF],
    ),
    ("punctuation", "{{,@% }}", [L, (T.CHAR, ","), (T.CHAR, "@"), (T.CHAR, "%"), SP, R, EOF]),
    ("parens", "{{((3))}}", [L, LPAR, LPAR, (T.NUMBER, "3"), RPAR, RPAR, R, EOF]),
    ("empty action", "{{}}", [L, R, EOF]),
    ("for", "{{for}}", [L, (T.IDENTIFIER, "for"), R, EOF]),
    (
        "block",
        '{{block "foo" .}}',
        [L, (T.BLOCK, "block"), SP, (T.STRING, '"foo"'), SP, (T.DOT, "."), R, EOF],
    ),
    ("quote", '{{"abc \\n\\t\\" "}}', [L, (T.STRING, '"abc \\n\\t\\" "'), R, EOF]),
    ("raw quote", "{{" + RAW + "}}", [L, (T.RAW_STRING, RAW), R, EOF]),
    ("raw quote with newline", "{{" + RAW_NL + "}}", [L, (T.RAW_STRING, RAW_NL), R, EOF]),
    (
        "numbers",
        "{{1 02 0x14 0X14 -7.2i 1e3 1E3 +1.2e-4 4.2i 1+2i 1_2 0x1.e_fp4 0X1.E_FP4}}",
        [L]
        + [
            item
            for text in ["1", "02", "0x14", "0X14", "-7.2i", "1e3", "1E3", "+1.2e-4", "4.2i"]
            for item in ((T.NUMBER, text), SP)
        ]
        + [
            (T.COMPLEX, "1+2i"),
            SP,
            (T.NUMBER, "1_2"),
            SP,
            (T.NUMBER, "0x1.e_fp4"),
            SP,
            (T.NUMBER, "0X1.E_FP4"),
            R,
            EOF,
        ],
    ),
    (
        "characters",
        "{{'a' '\\n' '\\'' '\\\\' '\\u00FF' '\\xFF' '本'}}",
        [L]
        + [
            item
            for text in ["'a'", "'\\n'", "'\\''", "'\\\\'", "'\\u00FF'", "'\\xFF'"]
            for item in ((T.CHAR_CONSTANT, text), SP)
        ]
        + [(T.CHAR_CONSTANT, "'本'"), R, EOF],
    ),
    ("bools", "{{true false}}", [L, (T.BOOL, "true"), SP, (T.BOOL, "false"), R, EOF]),
    ("dot", "{{.}}", [L, (T.DOT, "."), R, EOF]),
    ("nil", "{{nil}}", [L, (T.NIL, "nil"), R, EOF]),
    (
        "dots",
        "{{.x . .2 .x.y.z}}",
        [
            L,
            (T.FIELD, ".x"),
            SP,
            (T.DOT, "."),
            SP,
            (T.NUMBER, ".2"),
            SP,
            (T.FIELD, ".x"),
            (T.FIELD, ".y"),
            (T.FIELD, ".z"),
            R,
            EOF,
        ],
    ),
    (
        "keywords",
        "{{range if else end with}}",
        [
            L,
            (T.RANGE, "range"),
            SP,
            (T.IF, "if"),
            SP,
            (T.ELSE, "else"),
            SP,
            (T.END, "end"),
            SP,
            (T.WITH, "with"),
            R,
            EOF,
        ],
    ),
    (
        "variables",
        "{{$c := printf $ $hello $23 $ $var.Field .Method}}",
        [
            L,
            (T.VARIABLE, "$c"),
            SP,
            (T.DECLARE, ":="),
            SP,
            (T.IDENTIFIER, "printf"),
            SP,
            (T.VARIABLE, "$"),
            SP,
            (T.VARIABLE, "$hello"),
            SP,
            (T.VARIABLE, "$23"),
            SP,
            (T.VARIABLE, "$"),
            SP,
            (T.VARIABLE, "$var"),
            (T.FIELD, ".Field"),
            SP,
            (T.FIELD, ".Method"),
            R,
            EOF,
        ],
    ),
    ("variable invocation", "{{$x 23}}", [L, (T.VARIABLE, "$x"), SP, (T.NUMBER, "23"), R, EOF]),
    (
        "pipeline",
        'intro {{echo hi 1.2 |noargs|args 1 "hi"}} outro',
        [
            (T.TEXT, "intro "),
            L,
            (T.IDENTIFIER, "echo"),
            SP,
            (T.IDENTIFIER, "hi"),
            SP,
            (T.NUMBER, "1.2"),
            SP,
            PIPE,
            (T.IDENTIFIER, "noargs"),
            PIPE,
            (T.IDENTIFIER, "args"),
            SP,
            (T.NUMBER, "1"),
            SP,
            (T.STRING, '"hi"'),
            R,
            (T.TEXT, " outro"),
            EOF,
        ],
    ),
    (
        "declaration",
        "{{$v := 3}}",
        [L, (T.VARIABLE, "$v"), SP, (T.DECLARE, ":="), SP, (T.NUMBER, "3"), R, EOF],
    ),
    (
        "2 declarations",
        "{{$v , $w := 3}}",
        [
            L,
            (T.VARIABLE, "$v"),
            SP,
            (T.CHAR, ","),
            SP,
            (T.VARIABLE, "$w"),
            SP,
            (T.DECLARE, ":="),
            SP,
            (T.NUMBER, "3"),
            R,
            EOF,
        ],
    ),
    (
        "field of parenthesized expression",
        "{{(.X).Y}}",
        [L, LPAR, (T.FIELD, ".X"), RPAR, (T.FIELD, ".Y"), R, EOF],
    ),
    (
        "trimming spaces before and after",
        "hello- {{- 3 -}} -world",
        [(T.TEXT, "hello-"), L, (T.NUMBER, "3"), R, (T.TEXT, "-world"), EOF],
    ),
    (
        "trimming spaces before and after comment",
        "hello- {{- /* hello */ -}} -world",
        [(T.TEXT, "hello-"), (T.COMMENT, "/* hello */"), (T.TEXT, "-world"), EOF],
    ),
    # errors
    ("badchar", "#{{\x01}}", [(T.TEXT, "#"), L, (T.ERROR, "unrecognized character in action: U+0001")]),
    ("unclosed action", "{{", [L, (T.ERROR, "unclosed action")]),
    ("EOF in action", "{{range", [L, (T.RANGE, "range"), (T.ERROR, "unclosed action")]),
    ("unclosed quote", '{{"\n"}}', [L, (T.ERROR, "unterminated quoted string")]),
    ("unclosed raw quote", "{{`xx}}", [L, (T.ERROR, "unterminated raw quoted string")]),
    ("unclosed char constant", "{{'\n}}", [L, (T.ERROR, "unterminated character constant")]),
    ("bad number", "{{3k}}", [L, (T.ERROR, 'bad number syntax: "3k"')]),
    ("unclosed paren", "{{(3}}", [L, LPAR, (T.NUMBER, "3"), (T.ERROR, "unclosed left paren")]),
    ("extra right paren", "{{3)}}", [L, (T.NUMBER, "3"), (T.ERROR, "unexpected right paren")]),
    ("long pipeline deadlock", "{{|||||}}", [L, PIPE, PIPE, PIPE, PIPE, PIPE, R, EOF]),
    ("text with bad comment", "hello-{{/*/}}-world", [(T.TEXT, "hello-"), (T.ERROR, "unclosed comment")]),
    (
        "text with comment close separated from delim",
        "hello-{{/* */ }}-world",
        [(T.TEXT, "hello-"), (T.ERROR, "comment ends before closing delimiter")],
    ),
    ("unmatched right delimiter", "hello-{.}}-world", [(T.TEXT, "hello-{.}}-world"), EOF]),
]


@pytest.mark.parametrize(("name", "text", "expected"), LEX_TESTS, ids=[case[0] for case in LEX_TESTS])
def test_lex(name: str, text: str, expected: list[tuple[T, str]]) -> None:
    assert [(item.typ, item.val) for item in lex(text)] == expected


# Go's lexDelimTests: the same with delimiters $$ and @@.
LD, RD = (T.LEFT_DELIM, "$$"), (T.RIGHT_DELIM, "@@")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "$$,@%{{}}@@",
            [LD, (T.CHAR, ","), (T.CHAR, "@"), (T.CHAR, "%")] + [(T.CHAR, c) for c in "{{}}"] + [RD, EOF],
        ),
        ("$$@@", [LD, RD, EOF]),
        ("$$for@@", [LD, (T.IDENTIFIER, "for"), RD, EOF]),
        ('$$"abc \\n\\t\\" "@@', [LD, (T.STRING, '"abc \\n\\t\\" "'), RD, EOF]),
        ("$$" + RAW + "@@", [LD, (T.RAW_STRING, RAW), RD, EOF]),
    ],
)
def test_lex_delims(text: str, expected: list[tuple[T, str]]) -> None:
    assert [(item.typ, item.val) for item in lex(text, "$$", "@@")] == expected


def test_delims_alphanumeric() -> None:  # TestDelimsAlphaNumeric
    items = lex("{{hub .host hub}}", "{{hub", "hub}}")
    assert [(i.typ, i.val) for i in items] == [
        (T.LEFT_DELIM, "{{hub"),
        SP,
        (T.FIELD, ".host"),
        SP,
        (T.RIGHT_DELIM, "hub}}"),
        EOF,
    ]


def test_delims_and_markers() -> None:  # TestDelimsAndMarkers
    items = lex("{{- .x -}} {{- - .x - -}}", "{{- ", " -}}")
    assert [(i.typ, i.val) for i in items] == [
        (T.LEFT_DELIM, "{{- "),
        (T.FIELD, ".x"),
        (T.RIGHT_DELIM, " -}}"),
        (T.LEFT_DELIM, "{{- "),
        (T.FIELD, ".x"),
        (T.RIGHT_DELIM, " -}}"),
        EOF,
    ]


# Go's lexPosTests: (type, position, value, line).
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", [(T.EOF, 0, "", 1)]),
        (
            "{{,@%#}}",
            [
                (T.LEFT_DELIM, 0, "{{", 1),
                (T.CHAR, 2, ",", 1),
                (T.CHAR, 3, "@", 1),
                (T.CHAR, 4, "%", 1),
                (T.CHAR, 5, "#", 1),
                (T.RIGHT_DELIM, 6, "}}", 1),
                (T.EOF, 8, "", 1),
            ],
        ),
        (
            "0123{{hello}}xyz",
            [
                (T.TEXT, 0, "0123", 1),
                (T.LEFT_DELIM, 4, "{{", 1),
                (T.IDENTIFIER, 6, "hello", 1),
                (T.RIGHT_DELIM, 11, "}}", 1),
                (T.TEXT, 13, "xyz", 1),
                (T.EOF, 16, "", 1),
            ],
        ),
        (
            "{{x -}}\n{{y}}",
            [
                (T.LEFT_DELIM, 0, "{{", 1),
                (T.IDENTIFIER, 2, "x", 1),
                (T.RIGHT_DELIM, 5, "}}", 1),
                (T.LEFT_DELIM, 8, "{{", 2),
                (T.IDENTIFIER, 10, "y", 2),
                (T.RIGHT_DELIM, 11, "}}", 2),
                (T.EOF, 13, "", 2),
            ],
        ),
        (
            "{{x}}\n{{- y}}",
            [
                (T.LEFT_DELIM, 0, "{{", 1),
                (T.IDENTIFIER, 2, "x", 1),
                (T.RIGHT_DELIM, 3, "}}", 1),
                (T.LEFT_DELIM, 6, "{{", 2),
                (T.IDENTIFIER, 10, "y", 2),
                (T.RIGHT_DELIM, 11, "}}", 2),
                (T.EOF, 13, "", 2),
            ],
        ),
        (
            '{{/*\n*/}}\n{{undefinedFunction "test"}}',
            [
                (T.COMMENT, 2, "/*\n*/", 1),
                (T.TEXT, 9, "\n", 2),
                (T.LEFT_DELIM, 10, "{{", 3),
                (T.IDENTIFIER, 12, "undefinedFunction", 3),
                (T.SPACE, 29, " ", 3),
                (T.STRING, 30, '"test"', 3),
                (T.RIGHT_DELIM, 36, "}}", 3),
                (T.EOF, 38, "", 3),
            ],
        ),
    ],
)
def test_lex_positions(text: str, expected: list[tuple[T, int, str, int]]) -> None:
    assert [(i.typ, i.pos, i.val, i.line) for i in lex(text)] == expected
