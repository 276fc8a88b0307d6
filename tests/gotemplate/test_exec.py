"""Execution, against the tables of Go's src/text/template/exec_test.go.

Go's tests run over a struct (tVal); here the same fields live in a dict, the shape Atmos data
has. Cases that need Go methods, pointers, channels or `call` on Go funcs are left out.
"""

from __future__ import annotations

from typing import Any

import pytest

from atmos_tasks.gotemplate import ATMOS_MISSING_KEY, NO_VALUE, Template, TemplateError, render

T_VAL: dict[str, Any] = {
    "True": True,
    "I": 17,
    "X": "x",
    "S": "xyz",
    "U": {"V": "v"},
    "FloatZero": 0.0,
    "SI": [3, 4, 5],
    "SIEmpty": [],
    "SB": [True, False],
    "AI": [3, 4, 5],
    "MSI": {"one": 1, "two": 2, "three": 3},
    "MSIone": {"one": 1},
    "MSIEmpty": {},
    "MXI": {"one": 1},
    "SMSI": [{"one": 1, "two": 2}, {"eleven": 11, "twelve": 12}],
    "Empty0": None,
    "Empty1": 3,
    "Empty2": "empty2",
    "Empty3": [7, 8],
    "Empty4": {"V": "UinEmpty"},
    "PSI": [21, 22, 23],
}

# (name, input, output, data); transcribed from exec_test.go's execTests.
EXEC_OK: list[tuple[str, str, str, Any]] = [
    ("empty", "", "", None),
    ("text", "some text", "some text", None),
    ("ideal int", "{{printf `%T` 3}}", "int", 0),
    ("ideal float", "{{printf `%T` 1.0}}", "float64", 0),
    ("ideal exp float", "{{printf `%T` 1e1}}", "float64", 0),
    ("ideal complex", "{{printf `%T` 1i}}", "complex128", 0),
    ("ideal int max", "{{printf `%T` 0x7fffffffffffffff}}", "int", 0),
    (".X", "-{{.X}}-", "-x-", T_VAL),
    (".U.V", "-{{.U.V}}-", "-v-", T_VAL),
    ("map .one", "{{.MSI.one}}", "1", T_VAL),
    ("map .two", "{{.MSI.two}}", "2", T_VAL),
    ("map .NO", "{{.MSI.NO}}", "<no value>", T_VAL),
    ("map .one interface", "{{.MXI.one}}", "1", T_VAL),
    ("dot int", "<{{.}}>", "<13>", 13),
    ("dot float", "<{{.}}>", "<15.1>", 15.1),
    ("dot bool", "<{{.}}>", "<true>", True),
    ("dot complex", "<{{.}}>", "<(16.2-17i)>", 16.2 - 17j),
    ("dot string", "<{{.}}>", "<hello>", "hello"),
    ("dot slice", "<{{.}}>", "<[-1 -2 -3]>", [-1, -2, -3]),
    ("dot map", "<{{.}}>", "<map[two:22]>", {"two": 22}),
    ("$ int", "{{$}}", "123", 123),
    ("$.I", "{{$.I}}", "17", T_VAL),
    ("$.U.V", "{{$.U.V}}", "v", T_VAL),
    ("declare in action", "{{$x := $.U.V}}{{$x}}", "v", T_VAL),
    ("simple assignment", "{{$x := 2}}{{$x = 3}}{{$x}}", "3", T_VAL),
    ("nested assignment", "{{$x := 2}}{{if true}}{{$x = 3}}{{end}}{{$x}}", "3", T_VAL),
    (
        "nested assignment changes the last declaration",
        "{{$x := 1}}{{if true}}{{$x := 2}}{{if true}}{{$x = 3}}{{end}}{{end}}{{$x}}",
        "1",
        T_VAL,
    ),
    ("*[]int", "{{.PSI}}", "[21 22 23]", T_VAL),
    ("*[]int[1]", "{{index .PSI 1}}", "22", T_VAL),
    ("empty nil", "{{.Empty0}}", "<no value>", T_VAL),
    ("empty with int", "{{.Empty1}}", "3", T_VAL),
    ("empty with string", "{{.Empty2}}", "empty2", T_VAL),
    ("empty with slice", "{{.Empty3}}", "[7 8]", T_VAL),
    ("empty with map, field", "{{.Empty4.V}}", "UinEmpty", T_VAL),
    ("field on interface", "{{.foo}}", "<no value>", None),
    ("field on parenthesized interface", "{{(.).foo}}", "<no value>", None),
    ("parenthesized non-function with no args", "{{(1)}}", "1", None),
    ("parens: $ in paren", "{{($).X}}", "x", T_VAL),
    (
        "parens in pipeline",
        "{{printf `%d %d %d` (1) (2 | printf `%d`) (len `xyz`)}}",
        "1 %!d(string=2) 3",
        T_VAL,
    ),
    ("if true", "{{if true}}TRUE{{end}}", "TRUE", T_VAL),
    ("if false", "{{if false}}TRUE{{else}}FALSE{{end}}", "FALSE", T_VAL),
    ("if 1", "{{if 1}}NON-ZERO{{else}}ZERO{{end}}", "NON-ZERO", T_VAL),
    ("if 0", "{{if 0}}NON-ZERO{{else}}ZERO{{end}}", "ZERO", T_VAL),
    ("if 1.5", "{{if 1.5}}NON-ZERO{{else}}ZERO{{end}}", "NON-ZERO", T_VAL),
    ("if 0.0", "{{if .FloatZero}}NON-ZERO{{else}}ZERO{{end}}", "ZERO", T_VAL),
    ("if 1.5i", "{{if 1.5i}}NON-ZERO{{else}}ZERO{{end}}", "NON-ZERO", T_VAL),
    ("if emptystring", "{{if ``}}NON-EMPTY{{else}}EMPTY{{end}}", "EMPTY", T_VAL),
    ("if string", "{{if `notempty`}}NON-EMPTY{{else}}EMPTY{{end}}", "NON-EMPTY", T_VAL),
    ("if emptyslice", "{{if .SIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}", "EMPTY", T_VAL),
    ("if slice", "{{if .SI}}NON-EMPTY{{else}}EMPTY{{end}}", "NON-EMPTY", T_VAL),
    ("if emptymap", "{{if .MSIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}", "EMPTY", T_VAL),
    ("if map", "{{if .MSI}}NON-EMPTY{{else}}EMPTY{{end}}", "NON-EMPTY", T_VAL),
    ("if map unset", "{{if .MXI.none}}NON-ZERO{{else}}ZERO{{end}}", "ZERO", T_VAL),
    ("if map not unset", "{{if not .MXI.none}}ZERO{{else}}NON-ZERO{{end}}", "ZERO", T_VAL),
    ("if $x with $y int", "{{if $x := true}}{{with $y := .I}}{{$x}},{{$y}}{{end}}{{end}}", "true,17", T_VAL),
    ("if $x with $x int", "{{if $x := true}}{{with $x := .I}}{{$x}},{{end}}{{$x}}{{end}}", "17,true", T_VAL),
    ("if else if", "{{if false}}FALSE{{else if true}}TRUE{{end}}", "TRUE", T_VAL),
    ("if else chain", "{{if eq 1 3}}1{{else if eq 2 3}}2{{else if eq 3 3}}3{{end}}", "3", T_VAL),
    ("print", '{{print "hello, print"}}', "hello, print", T_VAL),
    ("print 123", "{{print 1 2 3}}", "1 2 3", T_VAL),
    ("print nil", "{{print nil}}", "<nil>", T_VAL),
    ("println", "{{println 1 2 3}}", "1 2 3\n", T_VAL),
    ("printf int", '{{printf "%04x" 127}}', "007f", T_VAL),
    ("printf float", '{{printf "%g" 3.5}}', "3.5", T_VAL),
    ("printf complex", '{{printf "%g" 1+7i}}', "(1+7i)", T_VAL),
    ("printf string", '{{printf "%s" "hello"}}', "hello", T_VAL),
    ("printf field", '{{printf "%s" .U.V}}', "v", T_VAL),
    ("printf dot", '{{with .I}}{{printf "%d" .}}{{end}}', "17", T_VAL),
    ("printf var", '{{with $x := .I}}{{printf "%d" $x}}{{end}}', "17", T_VAL),
    ("printf lots", '{{printf "%d %s %g %s" 127 "hello" 7-3i .X}}', "127 hello (7-3i) x", T_VAL),
    (
        "html",
        '{{html "<script>alert(\\"XSS\\");</script>"}}',
        "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;",
        None,
    ),
    (
        "html pipeline",
        '{{printf "<script>alert(\\"XSS\\");</script>" | html}}',
        "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;",
        None,
    ),
    ("html untyped nil", "{{html .Empty0}}", "&lt;no value&gt;", T_VAL),
    ("js", "{{js .}}", "It\\'d be nice.", "It'd be nice."),
    ("urlquery", '{{"http://www.example.org/"|urlquery}}', "http%3A%2F%2Fwww.example.org%2F", None),
    ("not", "{{not true}} {{not false}}", "false true", None),
    ("and", "{{and false 0}} {{and 1 0}} {{and 0 true}} {{and 1 1}}", "false 0 0 1", None),
    ("or", "{{or 0 0}} {{or 1 0}} {{or 0 true}} {{or 1 1}}", "0 1 true 1", None),
    ("or short-circuit", "{{or 0 1 (index nil 0)}}", "1", None),
    ("and short-circuit", "{{and 1 0 (index nil 0)}}", "0", None),
    ("and pipe-true", "{{1 | and 1}}", "1", None),
    ("and pipe-false", "{{0 | and 1}}", "0", None),
    ("or pipe-true", "{{1 | or 0}}", "1", None),
    ("or pipe-false", "{{0 | or 0}}", "0", None),
    ("and undef", "{{and 1 .Unknown}}", "<no value>", None),
    ("or undef", "{{or 0 .Unknown}}", "<no value>", None),
    ("boolean if", "{{if and true 1 `hi`}}TRUE{{else}}FALSE{{end}}", "TRUE", T_VAL),
    ("boolean if not", "{{if and true 1 `hi` | not}}TRUE{{else}}FALSE{{end}}", "FALSE", None),
    ("boolean if pipe", "{{if true | not | and 1}}TRUE{{else}}FALSE{{end}}", "FALSE", None),
    ("slice[0]", "{{index .SI 0}}", "3", T_VAL),
    ("slice[1]", "{{index .SI 1}}", "4", T_VAL),
    ("map[one]", "{{index .MSI `one`}}", "1", T_VAL),
    ("map[two]", "{{index .MSI `two`}}", "2", T_VAL),
    ("map[NO] of interface values", "{{index .MSI `XXX`}}", "<no value>", T_VAL),
    ("double index", "{{index .SMSI 1 `eleven`}}", "11", T_VAL),
    ("index of an interface field", "{{index .Empty3 0}}", "7", T_VAL),
    ("slice[:]", "{{slice .SI}}", "[3 4 5]", T_VAL),
    ("slice[1:]", "{{slice .SI 1}}", "[4 5]", T_VAL),
    ("slice[1:2]", "{{slice .SI 1 2}}", "[4]", T_VAL),
    ("array[1:2]", "{{slice .AI 1 2}}", "[4]", T_VAL),
    ("string[:]", "{{slice .S}}", "xyz", T_VAL),
    ("string[0:1]", "{{slice .S 0 1}}", "x", T_VAL),
    ("string[1:]", "{{slice .S 1}}", "yz", T_VAL),
    ("string[1:2]", "{{slice .S 1 2}}", "y", T_VAL),
    ("slice of an interface field", "{{slice .Empty3 0 1}}", "[7]", T_VAL),
    ("len slice", "{{len .SI}}", "3", T_VAL),
    ("len map", "{{len .MSI }}", "3", T_VAL),
    ("len of an interface field", "{{len .Empty3}}", "2", T_VAL),
    ("with true", "{{with true}}{{.}}{{end}}", "true", T_VAL),
    ("with false", "{{with false}}{{.}}{{else}}FALSE{{end}}", "FALSE", T_VAL),
    ("with 1", "{{with 1}}{{.}}{{else}}ZERO{{end}}", "1", T_VAL),
    ("with 0", "{{with 0}}{{.}}{{else}}ZERO{{end}}", "ZERO", T_VAL),
    ("with 1.5", "{{with 1.5}}{{.}}{{else}}ZERO{{end}}", "1.5", T_VAL),
    ("with 0.0", "{{with .FloatZero}}{{.}}{{else}}ZERO{{end}}", "ZERO", T_VAL),
    ("with 1.5i", "{{with 1.5i}}{{.}}{{else}}ZERO{{end}}", "(0+1.5i)", T_VAL),
    ("with emptystring", "{{with ``}}{{.}}{{else}}EMPTY{{end}}", "EMPTY", T_VAL),
    ("with string", "{{with `notempty`}}{{.}}{{else}}EMPTY{{end}}", "notempty", T_VAL),
    ("with emptyslice", "{{with .SIEmpty}}{{.}}{{else}}EMPTY{{end}}", "EMPTY", T_VAL),
    ("with slice", "{{with .SI}}{{.}}{{else}}EMPTY{{end}}", "[3 4 5]", T_VAL),
    ("with emptymap", "{{with .MSIEmpty}}{{.}}{{else}}EMPTY{{end}}", "EMPTY", T_VAL),
    ("with map", "{{with .MSIone}}{{.}}{{else}}EMPTY{{end}}", "map[one:1]", T_VAL),
    ("with empty interface, struct field", "{{with .Empty4}}{{.V}}{{end}}", "UinEmpty", T_VAL),
    ("with $x int", "{{with $x := .I}}{{$x}}{{end}}", "17", T_VAL),
    ("with $x struct.U.V", "{{with $x := $}}{{$x.U.V}}{{end}}", "v", T_VAL),
    ("with variable and action", "{{with $x := $}}{{$y := $.U.V}}{{$y}}{{end}}", "v", T_VAL),
    ("with else with", "{{with 0}}{{.}}{{else with true}}{{.}}{{end}}", "true", T_VAL),
    (
        "with else with chain",
        "{{with 0}}{{.}}{{else with false}}{{.}}{{else with `notempty`}}{{.}}{{end}}",
        "notempty",
        T_VAL,
    ),
    ("range []int", "{{range .SI}}-{{.}}-{{end}}", "-3--4--5-", T_VAL),
    ("range empty no else", "{{range .SIEmpty}}-{{.}}-{{end}}", "", T_VAL),
    ("range []int else", "{{range .SI}}-{{.}}-{{else}}EMPTY{{end}}", "-3--4--5-", T_VAL),
    ("range empty else", "{{range .SIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", "EMPTY", T_VAL),
    ("range []int break else", "{{range .SI}}-{{.}}-{{break}}NOTREACHED{{else}}EMPTY{{end}}", "-3-", T_VAL),
    (
        "range []int continue else",
        "{{range .SI}}-{{.}}-{{continue}}NOTREACHED{{else}}EMPTY{{end}}",
        "-3--4--5-",
        T_VAL,
    ),
    ("range []bool", "{{range .SB}}-{{.}}-{{end}}", "-true--false-", T_VAL),
    ("range map", "{{range .MSI}}-{{.}}-{{end}}", "-1--3--2-", T_VAL),
    ("range empty map no else", "{{range .MSIEmpty}}-{{.}}-{{end}}", "", T_VAL),
    ("range map else", "{{range .MSI}}-{{.}}-{{else}}EMPTY{{end}}", "-1--3--2-", T_VAL),
    ("range empty map else", "{{range .MSIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", "EMPTY", T_VAL),
    ("range empty interface", "{{range .Empty3}}-{{.}}-{{else}}EMPTY{{end}}", "-7--8-", T_VAL),
    ("range empty nil", "{{range .Empty0}}-{{.}}-{{end}}", "", T_VAL),
    ("range $x SI", "{{range $x := .SI}}<{{$x}}>{{end}}", "<3><4><5>", T_VAL),
    ("range $x $y SI", "{{range $x, $y := .SI}}<{{$x}}={{$y}}>{{end}}", "<0=3><1=4><2=5>", T_VAL),
    ("range $x MSIone", "{{range $x := .MSIone}}<{{$x}}>{{end}}", "<1>", T_VAL),
    ("range $x $y MSIone", "{{range $x, $y := .MSIone}}<{{$x}}={{$y}}>{{end}}", "<one=1>", T_VAL),
    ("range $x PSI", "{{range $x := .PSI}}<{{$x}}>{{end}}", "<21><22><23>", T_VAL),
    ("declare in range", "{{range $x := .PSI}}<{{$foo:=$x}}{{$x}}>{{end}}", "<21><22><23>", T_VAL),
    ("range int", '{{range $v := .}}{{printf "%T%d" $v $v}}{{end}}', "int0int1int2int3int4", 5),
    ("range 5", '{{range $v := 5}}{{printf "%T%d" $v $v}}{{end}}', "int0int1int2int3int4", None),
    ("range int 0 else", "{{range $v := .}}{{print $v}}{{else}}empty{{end}}", "empty", 0),
    ("or as if true", '{{or .SI "slice is empty"}}', "[3 4 5]", T_VAL),
    ("or as if false", '{{or .SIEmpty "slice is empty"}}', "slice is empty", T_VAL),
    ("decimal", "{{print 1234}}", "1234", T_VAL),
    ("decimal _", "{{print 12_34}}", "1234", T_VAL),
    ("binary", "{{print 0b101}}", "5", T_VAL),
    ("binary _", "{{print 0b_1_0_1}}", "5", T_VAL),
    ("BINARY", "{{print 0B101}}", "5", T_VAL),
    ("octal0", "{{print 0377}}", "255", T_VAL),
    ("octal", "{{print 0o377}}", "255", T_VAL),
    ("octal _", "{{print 0o_3_7_7}}", "255", T_VAL),
    ("OCTAL", "{{print 0O377}}", "255", T_VAL),
    ("hex", "{{print 0x123}}", "291", T_VAL),
    ("hex _", "{{print 0x1_23}}", "291", T_VAL),
    ("HEX", "{{print 0X123ABC}}", "1194684", T_VAL),
    ("float", "{{print 123.4}}", "123.4", T_VAL),
    ("float _", "{{print 0_0_1_2_3.4}}", "123.4", T_VAL),
    ("hex float", "{{print +0x1.ep+2}}", "7.5", T_VAL),
    ("hex float _", "{{print +0x_1.e_0p+0_2}}", "7.5", T_VAL),
    ("HEX float", "{{print +0X1.EP+2}}", "7.5", T_VAL),
    ("print multi", "{{print 1_2_3_4 7.5_00_00_00}}", "1234 7.5", T_VAL),
    ("print multi2", "{{print 1234 0x0_1.e_0p+02}}", "1234 7.5", T_VAL),
    ("bug4", "{{if .Empty0}}non-nil{{else}}nil{{end}}", "nil", T_VAL),
    ("bug9", "{{.cause}}", "neglect", {"cause": "neglect"}),
    ("bug12xe", "{{printf `%T` 0xef}}", "int", T_VAL),
    ("bug12xE", "{{printf `%T` 0xEE}}", "int", T_VAL),
    ("bug12Xe", "{{printf `%T` 0Xef}}", "int", T_VAL),
    ("bug12XE", "{{printf `%T` 0XEE}}", "int", T_VAL),
    ("bug16g", '{{"aaa" |printf "bbb%s"}}', "bbbaaa", T_VAL),
    ("bug16j", '{{1+2i|printf "%v"}}', "(1+2i)", T_VAL),
    ("bug16k", '{{"aaa"|printf }}', "aaa", T_VAL),
    ("bug18a", "{{eq . '.'}}", "true", ord(".")),
    ("bug18b", "{{eq . 'e'}}", "true", ord("e")),
    ("bug18c", "{{eq . 'P'}}", "true", ord("P")),
    ("issue56490", "{{$i := 0}}{{$x := 0}}{{range $i = .AI}}{{end}}{{$i}}", "5", T_VAL),
    (
        "issue60801",
        "{{$k := 0}}{{$v := 0}}{{range $k, $v = .AI}}{{$k}}={{$v}} {{end}}",
        "0=3 1=4 2=5 ",
        T_VAL,
    ),
]


@pytest.mark.parametrize(("name", "text", "expected", "data"), EXEC_OK, ids=[case[0] for case in EXEC_OK])
def test_execute(name: str, text: str, expected: str, data: Any) -> None:
    assert render(text, data, name=name, library="go") == expected


# exec_test.go cases that must fail at execution.
EXEC_ERRORS: list[tuple[str, str, Any]] = [
    ("nil action", "{{nil}}", None),
    ("ideal too big", "{{printf `%T` 0x8000000000000000}}", 0),
    ("map .WRONG args", "{{.MSI.one 1}}", T_VAL),
    ("unparenthesized non-function", "{{1 2}}", None),
    ("parenthesized non-function", "{{(1) 2}}", None),
    ("if nil", "{{if nil}}TRUE{{end}}", T_VAL),
    ("or short-circuit2", "{{or 0 0 (index nil 0)}}", None),
    ("and short-circuit2", "{{and 1 1 (index nil 0)}}", None),
    ("slice[HUGE]", "{{index .SI 10}}", T_VAL),
    ("slice[WRONG]", "{{index .SI `hello`}}", T_VAL),
    ("slice[nil]", "{{index .SI nil}}", T_VAL),
    ("map[nil]", "{{index .MSI nil}}", T_VAL),
    ("map[WRONG]", "{{index .MSI 10}}", T_VAL),
    ("nil[1]", "{{index nil 1}}", T_VAL),
    ("slice[-1:]", "{{slice .SI -1}}", T_VAL),
    ("slice[1:-2]", "{{slice .SI 1 -2}}", T_VAL),
    ("slice[1:2:-1]", "{{slice .SI 1 2 -1}}", T_VAL),
    ("slice[2:1]", "{{slice .SI 2 1}}", T_VAL),
    ("slice[2:2:1]", "{{slice .SI 2 2 1}}", T_VAL),
    ("out of range", "{{slice .SI 4 5}}", T_VAL),
    ("out of range 3", "{{slice .SI 2 2 5}}", T_VAL),
    ("string out of range", "{{slice .S 1 5}}", T_VAL),
    ("3-index slice of string", "{{slice .S 1 2 2}}", T_VAL),
    ("len of int", "{{len 3}}", T_VAL),
    ("len of nothing", "{{len .Empty0}}", T_VAL),
    ("range over two vars of int", "{{range $i, $c := 3}}{{$c}}{{end}}", None),
    ("bug7a", "{{3 2}}", T_VAL),
    ("bug7b", "{{$x := 1}}{{$x 2}}", T_VAL),
    ("bug7c", "{{$x := 1}}{{3 | $x}}", T_VAL),
    ("bug14a", "{{(nil).True}}", T_VAL),
    ("bug14b", "{{$x := nil}}{{$x.anything}}", T_VAL),
    ("bug14c", '{{$x := (1.0)}}{{$y := ("hello")}}{{$x.anything}}{{$y.true}}', T_VAL),
    ("bug16a", "{{true|printf}}", T_VAL),
    ("bug16b", "{{1|printf}}", T_VAL),
    ("bug16c", "{{1.1|printf}}", T_VAL),
    ("bug16d", "{{'x'|printf}}", T_VAL),
    ("bug16e", "{{0i|printf}}", T_VAL),
    ("call nil", "{{call nil}}", T_VAL),
    ("empty call", "{{call}}", T_VAL),
    ("empty call after pipe invalid", "{{1 | call}}", T_VAL),
]


@pytest.mark.parametrize(("name", "text", "data"), EXEC_ERRORS, ids=[case[0] for case in EXEC_ERRORS])
def test_execute_error(name: str, text: str, data: Any) -> None:
    with pytest.raises(TemplateError) as caught:
        render(text, data, name=name, library="go")
    assert str(caught.value).startswith(f"template: {name}")


# Go's cmpTests: `{{if EXPR}}true{{else}}false{{end}}`; None where Go reports an error.
CMP_DATA = {"Three": 3, "NegOne": -1, "Map": None, "NonNilMap": {}}
CMP_TESTS = [
    ("eq true true", "true"),
    ("eq true false", "false"),
    ("eq 1+2i 1+2i", "true"),
    ("eq 1+2i 1+3i", "false"),
    ("eq 1.5 1.5", "true"),
    ("eq 1.5 2.5", "false"),
    ("eq 1 1", "true"),
    ("eq 1 2", "false"),
    ("eq `xy` `xy`", "true"),
    ("eq `xy` `xyz`", "false"),
    ("eq 3 4 5 6 3", "true"),
    ("eq 3 4 5 6 7", "false"),
    ("ne true true", "false"),
    ("ne true false", "true"),
    ("ne 1+2i 1+2i", "false"),
    ("ne 1+2i 1+3i", "true"),
    ("ne 1.5 1.5", "false"),
    ("ne 1.5 2.5", "true"),
    ("ne 1 1", "false"),
    ("ne 1 2", "true"),
    ("ne `xy` `xy`", "false"),
    ("ne `xy` `xyz`", "true"),
    ("lt 1.5 1.5", "false"),
    ("lt 1.5 2.5", "true"),
    ("lt 1 1", "false"),
    ("lt 1 2", "true"),
    ("lt `xy` `xy`", "false"),
    ("lt `xy` `xyz`", "true"),
    ("le 1.5 1.5", "true"),
    ("le 1.5 2.5", "true"),
    ("le 2.5 1.5", "false"),
    ("le 1 1", "true"),
    ("le 1 2", "true"),
    ("le 2 1", "false"),
    ("le `xy` `xy`", "true"),
    ("le `xy` `xyz`", "true"),
    ("le `xyz` `xy`", "false"),
    ("gt 1.5 1.5", "false"),
    ("gt 1.5 2.5", "false"),
    ("gt 1 1", "false"),
    ("gt 2 1", "true"),
    ("gt 1 2", "false"),
    ("gt `xy` `xy`", "false"),
    ("gt `xy` `xyz`", "false"),
    ("ge 1.5 1.5", "true"),
    ("ge 1.5 2.5", "false"),
    ("ge 2.5 1.5", "true"),
    ("ge 1 1", "true"),
    ("ge 1 2", "false"),
    ("ge 2 1", "true"),
    ("ge `xy` `xy`", "true"),
    ("ge `xy` `xyz`", "false"),
    ("ge `xyz` `xy`", "true"),
    ("eq .NegOne .Three", "false"),
    ("lt .NegOne .Three", "true"),
    ("eq (index `x` 0) 'x'", "true"),
    ("eq (index `x` 0) 'y'", "false"),
    ("eq .Map .Map", "true"),
    ("eq .Map nil", "true"),
    ("eq nil .Map", "true"),
    ("eq .Map .NonNilMap", "false"),
    ("eq `xy` 1", None),
    ("eq 2 2.0", None),
    ("lt true true", None),
    ("lt 1+0i 1+0i", None),
    ("eq .NonNilMap .NonNilMap", None),
]


@pytest.mark.parametrize(("expr", "truth"), CMP_TESTS)
def test_comparison(expr: str, truth: str | None) -> None:
    text = f"{{{{if {expr}}}}}true{{{{else}}}}false{{{{end}}}}"
    if truth is None:
        with pytest.raises(TemplateError):
            render(text, CMP_DATA, library="go")
    else:
        assert render(text, CMP_DATA, library="go") == truth


def test_comparison_error_message() -> None:
    with pytest.raises(TemplateError) as caught:
        render("{{eq 2 2.0}}", name="t")
    assert str(caught.value) == (
        'template: t:1:2: executing "t" at <eq 2 2.0>: error calling eq: '
        "incompatible types for comparison: int and float64"
    )


def test_missing_map_key() -> None:  # TestMissingMapKey
    data = {"x": 99}
    template = Template("{{.x}} {{.y}}", name="t1")
    assert template.execute(data) == "99 <no value>"
    assert template.execute(data, missing_key="default") == "99 <no value>"
    assert template.execute(data, missing_key="invalid") == "99 <no value>"
    with pytest.raises(TemplateError, match='map has no entry for key "y"'):
        template.execute(data, missing_key="error")
    with pytest.raises(TemplateError, match='nil data; no entry for key "x"'):
        template.execute(None, missing_key="error")
    with pytest.raises(ValueError):
        template.execute(data, missing_key="bogus")


def test_missing_key_error_names_template_line_and_column() -> None:
    text = "name: {{ .stage }}\nflavor: {{ .flavor }}\n"
    with pytest.raises(TemplateError) as caught:
        render(text, {"stage": "dev"}, name="catalog/eks.yaml", missing_key=ATMOS_MISSING_KEY)
    error = caught.value
    assert str(error) == (
        'template: catalog/eks.yaml:2:11: executing "catalog/eks.yaml" at <.flavor>: '
        'map has no entry for key "flavor"'
    )
    assert (error.name, error.line, error.column, error.context) == ("catalog/eks.yaml", 2, 11, ".flavor")


def test_nested_template_error() -> None:  # TestExecError
    text = (
        "line 1\nline 2\nline 3\n"
        '{{template "one" .}}\n'
        '{{define "one"}}{{template "two" .}}{{end}}\n'
        '{{define "two"}}{{template "three" .}}{{end}}\n'
        '{{define "three"}}{{index "hi" $}}{{end}}'
    )
    with pytest.raises(TemplateError) as caught:
        render(text, 5, name="top")
    assert str(caught.value) == (
        'template: top:7:20: executing "three" at <index "hi" $>: error calling index: index out of range: 5'
    )


def test_execute_gives_field_error() -> None:  # TestExecuteGivesExecError
    with pytest.raises(TemplateError, match="can't evaluate field X in type int"):
        render("hello, {{.X.Y}}", 0)


def test_nil_in_map_is_not_missing() -> None:
    with pytest.raises(TemplateError, match=r"nil pointer evaluating interface \{\}\.b"):
        render("{{.a.b}}", {"a": None}, name="t")
    assert render("{{.a.b}}", {}, name="t") == "<no value>"


def test_missing_key_zero() -> None:
    assert render("{{.y}}", {"x": 1}, missing_key="zero") == "<no value>"


def test_tree_with_delimiters() -> None:  # TestTree, with Python dicts for the binary tree
    def node(val: int, left: Any = None, right: Any = None) -> dict[str, Any]:
        return {"Val": val, "Left": left, "Right": right}

    tree = node(1, node(2, node(3, node(4)), node(5, node(6))), node(7, node(8, node(9)), node(10, node(11))))
    text = """
	(- define "tree" -)
	[
		(- .Val -)
		(- with .Left -)
			(template "tree" . -)
		(- end -)
		(- with .Right -)
			(- template "tree" . -)
		(- end -)
	]
	(- end -)
"""
    template = Template(text, name="root", delims=("(", ")"))
    assert template.execute(tree, template="tree") == "[1[2[3[4]][5[6]]][7[8[9]][10[11]]]]"


@pytest.mark.parametrize(
    ("left", "right"), [("", ""), ("{{", "}}"), ("<<", ">>"), ("|", "|"), ("(日)", "(本)")]
)
def test_delims(left: str, right: str) -> None:  # TestDelims
    true_left, true_right = left or "{{", right or "}}"
    text = true_left + ".Str" + true_right + true_left + "/*comment*/" + true_right
    text += true_left + '"' + true_left + '"' + true_right
    assert render(text, {"Str": "Hello, world"}, delims=(left, right)) == "Hello, world" + true_left


def test_block_and_define() -> None:  # TestBlock (exec_test.go)
    assert render('a({{block "inner" .}}bar({{.}})baz{{end}})b', "hello") == "a(bar(hello)baz)b"


def test_template_not_defined() -> None:
    with pytest.raises(TemplateError, match='template "x" not defined'):
        render('{{template "x"}}', None)


def test_max_exec_depth() -> None:  # TestMaxExecDepth
    with pytest.raises(TemplateError, match="exceeded maximum template depth"):
        render('{{template "tmpl" .}}', None, name="tmpl")


def test_template_without_argument_has_no_value() -> None:
    assert render('{{define "x"}}{{.}}{{end}}{{template "x"}}', {"a": 1}) == "<no value>"


def test_variables_do_not_leak_into_templates() -> None:
    with pytest.raises(TemplateError, match="undefined variable"):
        render('{{define "x"}}{{$y}}{{end}}{{$y := 1}}{{template "x"}}', None)


def test_whitespace_trimming_renders() -> None:
    assert render("a  {{- 1 -}}  b\n{{- 2 }}", None) == "a1b2"


def test_no_delimiter_returns_text_unchanged() -> None:
    assert render("plain: text", {"a": 1}) == "plain: text"


def test_invalid_value_is_exported() -> None:
    assert render("{{.}}", NO_VALUE) == "<no value>"


def test_execute_named_template_missing() -> None:
    template = Template("x", name="top")
    with pytest.raises(TemplateError, match='no template "nope" associated with template "top"'):
        template.execute(None, template="nope")
    assert template.templates == ["top"]


def test_float_printing_like_go() -> None:
    data = {"a": 1000000.0, "b": 123456.0, "c": 0.0001, "d": 0.00001, "e": 1e21, "f": 3.0, "g": 0.1 + 0.2}
    text = "{{.a}} {{.b}} {{.c}} {{.d}} {{.e}} {{.f}} {{.g}}"
    assert render(text, data) == "1e+06 123456 0.0001 1e-05 1e+21 3 0.30000000000000004"


def test_map_printing_sorted() -> None:
    assert (
        render("{{.}}", {"b": [1, None, "x"], "a": {"z": True, "y": 1.5}})
        == "map[a:map[y:1.5 z:true] b:[1 <nil> x]]"
    )
