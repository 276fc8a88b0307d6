"""The parser, against the tables of Go's src/text/template/parse/parse_test.go."""

from __future__ import annotations

import pytest

from atmos_tasks.gotemplate import TemplateError
from atmos_tasks.gotemplate.lexer import T
from atmos_tasks.gotemplate.parser import is_empty_tree, new_number, parse_trees

FUNCS = {"printf", "contains"}  # parse_test.go's builtins map


def root(text: str, name: str = "test") -> str:
    return parse_trees(name, text, FUNCS)[name].root.source()


# Go's parseTests with noError: (name, input, the tree's String() with text quoted).
PARSE_OK = [
    ("empty", "", ""),
    ("comment", "{{/*\n\n\n*/}}", ""),
    ("spaces", " \t\n", '" \\t\\n"'),
    ("text", "some text", '"some text"'),
    ("field", "{{.X}}", "{{.X}}"),
    ("simple command", "{{printf}}", "{{printf}}"),
    ("$ invocation", "{{$}}", "{{$}}"),
    ("variable invocation", "{{with $x := 3}}{{$x 23}}{{end}}", "{{with $x := 3}}{{$x 23}}{{end}}"),
    ("variable with fields", "{{$.I}}", "{{$.I}}"),
    ("multi-word command", "{{printf `%d` 23}}", "{{printf `%d` 23}}"),
    ("pipeline", "{{.X|.Y}}", "{{.X | .Y}}"),
    ("pipeline with decl", "{{$x := .X|.Y}}", "{{$x := .X | .Y}}"),
    ("nested pipeline", "{{.X (.Y .Z) (.A | .B .C) (.E)}}", "{{.X (.Y .Z) (.A | .B .C) (.E)}}"),
    ("field applied to parentheses", "{{(.Y .Z).Field}}", "{{(.Y .Z).Field}}"),
    ("simple if", "{{if .X}}hello{{end}}", '{{if .X}}"hello"{{end}}'),
    ("if with else", "{{if .X}}true{{else}}false{{end}}", '{{if .X}}"true"{{else}}"false"{{end}}'),
    (
        "if with else if",
        "{{if .X}}true{{else if .Y}}false{{end}}",
        '{{if .X}}"true"{{else}}{{if .Y}}"false"{{end}}{{end}}',
    ),
    (
        "if else chain",
        "+{{if .X}}X{{else if .Y}}Y{{else if .Z}}Z{{end}}+",
        '"+"{{if .X}}"X"{{else}}{{if .Y}}"Y"{{else}}{{if .Z}}"Z"{{end}}{{end}}{{end}}"+"',
    ),
    ("simple range", "{{range .X}}hello{{end}}", '{{range .X}}"hello"{{end}}'),
    ("chained field range", "{{range .X.Y.Z}}hello{{end}}", '{{range .X.Y.Z}}"hello"{{end}}'),
    (
        "nested range",
        "{{range .X}}hello{{range .Y}}goodbye{{end}}{{end}}",
        '{{range .X}}"hello"{{range .Y}}"goodbye"{{end}}{{end}}',
    ),
    ("range with else", "{{range .X}}true{{else}}false{{end}}", '{{range .X}}"true"{{else}}"false"{{end}}'),
    (
        "range over pipeline",
        "{{range .X|.M}}true{{else}}false{{end}}",
        '{{range .X | .M}}"true"{{else}}"false"{{end}}',
    ),
    ("range []int", "{{range .SI}}{{.}}{{end}}", "{{range .SI}}{{.}}{{end}}"),
    ("range 1 var", "{{range $x := .SI}}{{.}}{{end}}", "{{range $x := .SI}}{{.}}{{end}}"),
    ("range 2 vars", "{{range $x, $y := .SI}}{{.}}{{end}}", "{{range $x, $y := .SI}}{{.}}{{end}}"),
    ("range with break", "{{range .SI}}{{.}}{{break}}{{end}}", "{{range .SI}}{{.}}{{break}}{{end}}"),
    ("range with continue", "{{range .SI}}{{.}}{{continue}}{{end}}", "{{range .SI}}{{.}}{{continue}}{{end}}"),
    (
        "constants",
        "{{range .SI 1 -3.2i true false 'a' nil}}{{end}}",
        "{{range .SI 1 -3.2i true false 'a' nil}}{{end}}",
    ),
    ("template", "{{template `x`}}", '{{template "x"}}'),
    ("template with arg", "{{template `x` .Y}}", '{{template "x" .Y}}'),
    ("with", "{{with .X}}hello{{end}}", '{{with .X}}"hello"{{end}}'),
    (
        "with with else",
        "{{with .X}}hello{{else}}goodbye{{end}}",
        '{{with .X}}"hello"{{else}}"goodbye"{{end}}',
    ),
    (
        "with with else with",
        "{{with .X}}hello{{else with .Y}}goodbye{{end}}",
        '{{with .X}}"hello"{{else}}{{with .Y}}"goodbye"{{end}}{{end}}',
    ),
    (
        "with else chain",
        "{{with .X}}X{{else with .Y}}Y{{else with .Z}}Z{{end}}",
        '{{with .X}}"X"{{else}}{{with .Y}}"Y"{{else}}{{with .Z}}"Z"{{end}}{{end}}{{end}}',
    ),
    ("trim left", "x \r\n\t{{- 3}}", '"x"{{3}}'),
    ("trim right", "{{3 -}}\n\n\ty", '{{3}}"y"'),
    ("trim left and right", "x \r\n\t{{- 3 -}}\n\n\ty", '"x"{{3}}"y"'),
    ("trim with extra spaces", "x\n{{-  3   -}}\ny", '"x"{{3}}"y"'),
    ("comment trim left", "x \r\n\t{{- /* hi */}}", '"x"'),
    ("comment trim right", "{{/* hi */ -}}\n\n\ty", '"y"'),
    ("comment trim left and right", "x \r\n\t{{- /* */ -}}\n\n\ty", '"x""y"'),
    ("block definition", '{{block "foo" .}}hello{{end}}', '{{template "foo" .}}'),
    ("newline in assignment", "{{ $x \n := \n 1 \n }}", "{{$x := 1}}"),
    ("newline in pipeline", '{{\n"x"\n|\nprintf\n}}', '{{"x" | printf}}'),
    ("newline in comment", "{{/*\nhello\n*/}}", ""),
    ("newline in comment trimmed", "{{-\n/*\nhello\n*/\n-}}", ""),
    (
        "spaces around continue",
        "{{range .SI}}{{.}}{{ continue }}{{end}}",
        "{{range .SI}}{{.}}{{continue}}{{end}}",
    ),
    ("spaces around break", "{{range .SI}}{{.}}{{ break }}{{end}}", "{{range .SI}}{{.}}{{break}}{{end}}"),
    ("bug0a", "{{$x := 0}}{{$x}}", "{{$x := 0}}{{$x}}"),
    ("bug1c", "{{$x:=.}}{{$x +2}}", "{{$x := .}}{{$x +2}}"),
    ("bug2a", "{{range $x := 0}}{{$x}}{{end}}", "{{range $x := 0}}{{$x}}{{end}}"),
    ("bug2b", "{{range $x = 0}}{{$x}}{{end}}", "{{range $x = 0}}{{$x}}{{end}}"),
    ("paren nesting normal", "{{ (( 1 )) }}", "{{((1))}}"),
    ("paren nesting in pipeline", "{{ ((( 1 ))) | printf }}", "{{(((1))) | printf}}"),
    (
        "paren nesting with other constructs",
        "{{ if ((( true ))) }}YES{{ end }}",
        '{{if (((true)))}}"YES"{{end}}',
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), PARSE_OK, ids=[case[0] for case in PARSE_OK])
def test_parse(name: str, text: str, expected: str) -> None:
    assert root(text) == expected


# Go's parseTests with hasError.
PARSE_ERRORS = [
    ("emptyAction", "{{}}"),
    ("newline in empty action", "{{\n}}"),
    ("unclosed action", "hello{{range"),
    ("unmatched end", "{{end}}"),
    ("unmatched else", "{{else}}"),
    ("unmatched else after if", "{{if .X}}hello{{end}}{{else}}"),
    ("multiple else", "{{if .X}}1{{else}}2{{else}}3{{end}}"),
    ("missing end", "hello{{range .x}}"),
    ("missing end after else", "hello{{range .x}}{{else}}"),
    ("undefined function", "hello{{undefined}}"),
    ("undefined variable", "{{$x}}"),
    ("variable undefined after end", "{{with $x := 4}}{{end}}{{$x}}"),
    ("variable undefined in template", "{{template $v}}"),
    ("declare with field", "{{with $x.Y := 4}}{{end}}"),
    ("template with field ref", "{{template .X}}"),
    ("invalid punctuation", "{{printf 3, 4}}"),
    ("multidecl outside range", "{{with $v, $u := 3}}{{end}}"),
    ("too many decls in range", "{{range $u, $v, $w := 3}}{{end}}"),
    ("dot applied to parentheses", "{{printf (printf .).}}"),
    ("adjacent args", "{{printf 3`x`}}"),
    ("adjacent args with .", "{{printf `x`.}}"),
    ("extra end after if", "{{if .X}}a{{else if .Y}}b{{end}}{{end}}"),
    ("break outside range", "{{range .}}{{end}} {{break}}"),
    ("continue outside range", "{{range .}}{{end}} {{continue}}"),
    ("break in range else", "{{range .}}{{else}}{{break}}{{end}}"),
    ("continue in range else", "{{range .}}{{else}}{{continue}}{{end}}"),
    ("bug0b", "{{$x += 1}}{{$x}}"),
    ("bug0c", "{{$x ! 2}}{{$x}}"),
    ("bug0d", "{{$x % 3}}{{$x}}"),
    ("bug0e", "{{range $x := $y := 3}}{{end}}"),
    ("bug1a", "{{$x:=.}}{{$x!2}}"),
    ("bug1b", "{{$x:=.}}{{$x+2}}"),
    ("dot after integer", "{{1.E}}"),
    ("dot after float", "{{0.1.E}}"),
    ("dot after boolean", "{{true.E}}"),
    ("dot after char", "{{'a'.any}}"),
    ("dot after string", '{{"hello".guys}}'),
    ("dot after dot", "{{..E}}"),
    ("dot after nil", "{{nil.E}}"),
    ("wrong pipeline dot", "{{12|.}}"),
    ("wrong pipeline number", "{{.|12|printf}}"),
    ("wrong pipeline string", '{{.|printf|"error"}}'),
    ("wrong pipeline char", "{{12|printf|'e'}}"),
    ("wrong pipeline boolean", "{{.|true}}"),
    ("wrong pipeline nil", "{{'c'|nil}}"),
    ("empty pipeline", '{{printf "%d" ( ) }}'),
    ("block definition without pipeline", '{{block "foo"}}hello{{end}}'),
]


@pytest.mark.parametrize(("name", "text"), PARSE_ERRORS, ids=[case[0] for case in PARSE_ERRORS])
def test_parse_error(name: str, text: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_trees("test", text, FUNCS)
    assert str(caught.value).startswith("template: test:")


# Go's errorTests: the message must contain the expected text.
ERROR_TESTS = [
    ("unclosed1", "line1\n{{", "unclosed1:2: unclosed action"),
    ("unclosed2", "line1\n{{define `x`}}line2\n{{", "unclosed2:3: unclosed action"),
    ("unclosed3", 'line1\n{{"x"\n"y"\n', "unclosed3:4: unclosed action started at unclosed3:2"),
    ("unclosed4", "{{\n\n\n\n\n", "unclosed4:6: unclosed action started at unclosed4:1"),
    ("var1", "line1\n{{\nx\n}}", 'var1:3: function "x" not defined'),
    ("function", "{{foo}}", 'function "foo" not defined'),
    ("comment1", "{{/*}}", "comment1:1: unclosed comment"),
    ("comment2", "{{/*\nhello\n}}", "comment2:1: unclosed comment"),
    ("lparen", "{{.X (1 2 3}}", "unclosed left paren"),
    ("rparen", "{{.X 1 2 3 ) }}", "unexpected right paren"),
    ("rparen2", "{{(.X 1 2 3", "unclosed action"),
    ("space", "{{`x`3}}", "in operand"),
    ("idchar", "{{a#}}", "'#'"),
    ("charconst", "{{'a}}", "unterminated character constant"),
    ("stringconst", '{{"a}}', "unterminated quoted string"),
    ("rawstringconst", "{{`a}}", "unterminated raw quoted string"),
    ("number", "{{0xi}}", "number syntax"),
    ("multidefine", "{{define `a`}}a{{end}}{{define `a`}}b{{end}}", "multiple definition of template"),
    ("eof", "{{range .X}}", "unexpected EOF"),
    ("variable", "{{$x := 23}}{{with $x.y := 3}}{{$x 23}}{{end}}", 'unexpected ":="'),
    ("multidecl", "{{$a,$b,$c := 23}}", "too many declarations"),
    ("undefvar", "{{$a}}", "undefined variable"),
    ("wrongdot", "{{true.any}}", "unexpected . after term"),
    ("wrongpipeline", "{{12|false}}", "non executable command in pipeline"),
    ("emptypipeline", "{{ ( ) }}", "missing value for parenthesized pipeline"),
    ("multilinerawstring", "{{ $v := `\n` }} {{", "multilinerawstring:2: unclosed action"),
    ("rangeundefvar", "{{range $k}}{{end}}", "undefined variable"),
    ("rangeundefvars", "{{range $k, $v}}{{end}}", "undefined variable"),
    ("rangemissingvalue1", "{{range $k,}}{{end}}", "missing value for range"),
    ("rangemissingvalue2", "{{range $k, $v := }}{{end}}", "missing value for range"),
    ("rangenotvariable1", "{{range $k, .}}{{end}}", "range can only initialize variables"),
    ("rangenotvariable2", "{{range $k, 123 := .}}{{end}}", "range can only initialize variables"),
]


@pytest.mark.parametrize(("name", "text", "expected"), ERROR_TESTS, ids=[case[0] for case in ERROR_TESTS])
def test_error_messages(name: str, text: str, expected: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_trees(name, text, set())
    assert expected in str(caught.value)


def test_unterminated_string_line() -> None:  # exec_test.go TestUnterminatedStringError
    with pytest.raises(TemplateError, match="X:3: unterminated raw quoted string"):
        parse_trees("X", "hello\n\n{{`unterminated\n\n\n\n}}\n some more\n\n", set())


def test_break_is_a_function_when_defined() -> None:  # TestKeywordsAndFuncs
    text = "{{range .X}}{{break 20}}{{end}}"
    assert parse_trees("", text, {"break"})[""].root.source() == text
    with pytest.raises(TemplateError):
        parse_trees("", text, set())


def test_block_defines_a_template() -> None:  # TestBlock
    trees = parse_trees("outer", 'a{{block "inner" .}}bar{{.}}baz{{end}}b', set())
    assert trees["outer"].root.source(False) == 'a{{template "inner" .}}b'
    assert trees["inner"].root.source(False) == "bar{{.}}baz"


@pytest.mark.parametrize(
    ("text", "empty"),
    [
        ("", True),
        ("hello", False),
        (" \t\n \t\n", True),
        ("{{/* comment */}}", True),
        ('{{define "x"}}something{{end}}', True),
        ("{{define `x`}}something{{end}}\n\n{{define `y`}}something{{end}}\n\n", True),
        ("{{define `x`}}something{{end}}\nx\n{{define `y`}}something{{end}}\ny\n", False),
        ("{{define `x`}}something{{end}}{{if 3}}foo{{end}}", False),
    ],
)
def test_is_empty_tree(text: str, empty: bool) -> None:  # TestIsEmpty
    assert is_empty_tree(parse_trees("root", text, set())["root"].root) is empty


# Go's numberTests: (text, int, uint, float, complex) or None when the text must not parse.
NUMBERS = [
    ("0", 0, 0, 0.0, None),
    ("-0", 0, 0, 0.0, None),
    ("73", 73, 73, 73.0, None),
    ("7_3", 73, 73, 73.0, None),
    ("0b10_010_01", 73, 73, 73.0, None),
    ("0B10_010_01", 73, 73, 73.0, None),
    ("073", 0o73, 0o73, 59.0, None),
    ("0o73", 0o73, 0o73, 59.0, None),
    ("0O73", 0o73, 0o73, 59.0, None),
    ("0x73", 0x73, 0x73, 115.0, None),
    ("0X73", 0x73, 0x73, 115.0, None),
    ("0x7_3", 0x73, 0x73, 115.0, None),
    ("-73", -73, None, -73.0, None),
    ("+73", 73, None, 73.0, None),
    ("100", 100, 100, 100.0, None),
    ("1e9", 1000000000, 1000000000, 1e9, None),
    ("-1e9", -1000000000, None, -1e9, None),
    ("-1.2", None, None, -1.2, None),
    ("1e19", None, 10**19, 1e19, None),
    ("1e1_9", None, 10**19, 1e19, None),
    ("1E19", None, 10**19, 1e19, None),
    ("-1e19", None, None, -1e19, None),
    ("0x_1p4", 16, 16, 16.0, None),
    ("0X_1P4", 16, 16, 16.0, None),
    ("0x_1p-4", None, None, 1 / 16, None),
    ("4i", None, None, None, 4j),
    ("-1.2+4.2i", None, None, None, -1.2 + 4.2j),
    ("073i", None, None, None, 73j),
    ("0i", 0, 0, 0.0, 0j),
    ("-1.2+0i", None, None, -1.2, -1.2 + 0j),
    ("-12+0i", -12, None, -12.0, -12 + 0j),
    ("13+0i", 13, 13, 13.0, 13 + 0j),
    ("0123", 0o123, 0o123, 83.0, None),
    ("-0x0", 0, 0, 0.0, None),
    ("0xdeadbeef", 0xDEADBEEF, 0xDEADBEEF, float(0xDEADBEEF), None),
    ("'a'", 97, 97, 97.0, None),
    ("'\\n'", 10, 10, 10.0, None),
    ("'\\\\'", 92, 92, 92.0, None),
    ("'\\''", 39, 39, 39.0, None),
    ("'\\xFF'", 255, 255, 255.0, None),
    ("'パ'", 0x30D1, 0x30D1, float(0x30D1), None),
    ("'\\u30d1'", 0x30D1, 0x30D1, float(0x30D1), None),
    ("'\\U000030d1'", 0x30D1, 0x30D1, float(0x30D1), None),
    ("0xef", 0xEF, 0xEF, 239.0, None),
]
BROKEN_NUMBERS = ["+-2", "0x123.", "1e.", "0xi.", "1+2.", "'x", "'xx'", "'433937734937734969526500969526500'"]


def _number(text: str):  # type: ignore[no-untyped-def]
    if text.startswith("'"):
        typ = T.CHAR_CONSTANT
    elif "+" in text[1:] or "-" in text[1:].replace("e-", "").replace("p-", ""):
        typ = T.COMPLEX
    else:
        typ = T.NUMBER
    return new_number(0, text, typ)


@pytest.mark.parametrize(("text", "as_int", "as_uint", "as_float", "as_complex"), NUMBERS)
def test_number_parse(
    text: str, as_int: int | None, as_uint: int | None, as_float: float | None, as_complex: complex | None
) -> None:
    node = _number(text)
    assert (node.int64 if node.is_int else None) == as_int
    assert (node.uint64 if node.is_uint else None) == as_uint
    assert (node.float64 if node.is_float else None) == as_float
    assert (node.complex128 if node.is_complex else None) == as_complex


@pytest.mark.parametrize("text", BROKEN_NUMBERS)
def test_number_parse_errors(text: str) -> None:
    with pytest.raises(ValueError):
        _number(text)


def test_line_numbers_of_actions() -> None:  # TestLineNum
    tree = parse_trees("bench", "{{printf 1234}}\n" * 3, FUNCS)["bench"]
    actions = tree.root.nodes[0::2]
    assert [node.line for node in actions] == [1, 2, 3]  # type: ignore[attr-defined]
