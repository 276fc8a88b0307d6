"""Sprig functions, against the examples of Sprig's documentation (masterminds.github.io/sprig)
and the Go types its functions return."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from atmos_tasks.gotemplate import TemplateError, render

NOW = datetime(2024, 3, 5, 14, 7, 9, tzinfo=UTC)

# (template, expected) from Sprig's docs (strings.md, lists.md, dicts.md, math.md, ...).
SPRIG_DOCS = [
    ('{{ trim "   hello    " }}', "hello"),
    ('{{ trimAll "$" "$5.00" }}', "5.00"),
    ('{{ trimSuffix "-" "hello-" }}', "hello"),
    ('{{ trimPrefix "-" "-hello" }}', "hello"),
    ('{{ upper "hello" }}', "HELLO"),
    ('{{ lower "HELLO" }}', "hello"),
    ('{{ title "hello world" }}', "Hello World"),
    ('{{ untitle "Hello World" }}', "hello world"),
    ('{{ repeat 3 "hello" }}', "hellohellohello"),
    ('{{ substr 0 5 "hello world" }}', "hello"),
    ('{{ nospace "hello w o r l d" }}', "helloworld"),
    ('{{ trunc 5 "hello world" }}', "hello"),
    ('{{ trunc -5 "hello world" }}', "world"),
    ('{{ abbrev 5 "hello world" }}', "he..."),
    ('{{ abbrevboth 5 10 "1234 5678 9123" }}', "...5678..."),
    ('{{ initials "First Try" }}', "FT"),
    ('{{ contains "cat" "catch" }}', "true"),
    ('{{ hasPrefix "cat" "catch" }}', "true"),
    ('{{ hasSuffix "cat" "catch" }}', "false"),
    ('{{ cat "hello" "beautiful" "world" }}', "hello beautiful world"),
    ('{{ replace " " "-" "I Am Henry VIII" }}', "I-Am-Henry-VIII"),
    ('{{ plural "one anchovy" "many anchovies" 1 }}', "one anchovy"),
    ('{{ plural "one anchovy" "many anchovies" 2 }}', "many anchovies"),
    ('{{ snakecase "FirstName" }}', "first_name"),
    ('{{ camelcase "http_server" }}', "HttpServer"),
    ('{{ kebabcase "FirstName" }}', "first-name"),
    ('{{ swapcase "This Is A.Test" }}', "tHIS iS a.tEST"),
    ('{{ quote "a" "b" }}', '"a" "b"'),
    ('{{ squote "a" }}', "'a'"),
    ('{{ "a\\nb" | indent 2 }}', "  a\n  b"),
    ('{{ "a\\nb" | nindent 2 }}', "\n  a\n  b"),
    ('{{ splitList "$" "foo$bar$baz" }}', "[foo bar baz]"),
    ('{{ $a := split "$" "foo$bar$baz" }}{{ $a._0 }}{{ $a._2 }}', "foobaz"),
    ('{{ $a := splitn "$" 2 "foo$bar$baz" }}{{ $a._1 }}', "bar$baz"),
    ('{{ list 1 2 3 | join "-" }}', "1-2-3"),
    ('{{ sortAlpha (list "b" "c" "a") }}', "[a b c]"),
    ("{{ until 5 }}", "[0 1 2 3 4]"),
    ("{{ untilStep 3 6 2 }}", "[3 5]"),
    ("{{ seq 5 }}", "1 2 3 4 5"),
    ("{{ seq -3 }}", "1 0 -1 -2 -3"),
    ("{{ seq 0 2 }}", "0 1 2"),
    ("{{ seq 2 -2 }}", "2 1 0 -1 -2"),
    ("{{ seq 0 2 10 }}", "0 2 4 6 8 10"),
    ("{{ seq 0 -2 -5 }}", "0 -2 -4"),
    ("{{ add 1 2 3 }}", "6"),
    ("{{ add1 4 }}", "5"),
    ("{{ sub 5 3 }}", "2"),
    ("{{ div 7 2 }}", "3"),
    ("{{ div -7 2 }}", "-3"),
    ("{{ mod 7 3 }}", "1"),
    ("{{ mod -7 3 }}", "-1"),
    ("{{ mul 2 3 4 }}", "24"),
    ("{{ max 1 2 3 }}", "3"),
    ("{{ min 1 2 3 }}", "1"),
    ("{{ floor 123.9999 }}", "123"),
    ("{{ ceil 123.001 }}", "124"),
    ("{{ round 123.555555 3 }}", "123.556"),
    ("{{ addf 1.5 2 2 }}", "5.5"),
    ('{{ add "3" 4.9 }}', "7"),
    ("{{ first (list 1 2 3) }}", "1"),
    ("{{ last (list 1 2 3) }}", "3"),
    ("{{ rest (list 1 2 3) }}", "[2 3]"),
    ("{{ initial (list 1 2 3) }}", "[1 2]"),
    ("{{ append (list 1 2 3) 6 }}", "[1 2 3 6]"),
    ("{{ prepend (list 1 2 3) 0 }}", "[0 1 2 3]"),
    ("{{ concat (list 1 2 3) (list 4 5) (list 6) }}", "[1 2 3 4 5 6]"),
    ("{{ reverse (list 1 2 3) }}", "[3 2 1]"),
    ("{{ uniq (list 1 1 1 2) }}", "[1 2]"),
    ("{{ without (list 1 2 3 4) 3 }}", "[1 2 4]"),
    ("{{ without (list 1 2 3 4 5) 1 3 5 }}", "[2 4]"),
    ("{{ has 4 (list 1 2 3 4) }}", "true"),
    ("{{ has 5 (list 1 2 3 4) }}", "false"),
    ('{{ compact (list 1 "" "a" 0 false) }}', "[1 a]"),
    ("{{ slice (list 1 2 3 4 5) 1 3 }}", "[2 3]"),
    ('{{ $d := dict "name1" "value1" "name2" "value2" }}{{ $d.name2 }}', "value2"),
    ('{{ get (dict "a" 1) "a" }}', "1"),
    ('{{ get (dict "a" 1) "b" }}', ""),
    ('{{ $d := dict "a" 1 }}{{ $_ := set $d "b" 2 }}{{ $d }}', "map[a:1 b:2]"),
    ('{{ $d := dict "a" 1 "b" 2 }}{{ $_ := unset $d "a" }}{{ $d }}', "map[b:2]"),
    ('{{ hasKey (dict "a" 1) "a" }}', "true"),
    ('{{ pluck "name1" (dict "name1" "a") (dict "name1" "b") (dict "x" 1) }}', "[a b]"),
    ('{{ keys (dict "b" 1) (dict "a" 2) | sortAlpha }}', "[a b]"),
    ('{{ pick (dict "name1" 1 "name2" 2 "name3" 3) "name1" "name3" }}', "map[name1:1 name3:3]"),
    ('{{ omit (dict "name1" 1 "name2" 2 "name3" 3) "name1" "name3" }}', "map[name2:2]"),
    ('{{ values (dict "a" 1) }}', "[1]"),
    ('{{ dig "user" "role" "name" "guest" (dict "user" (dict "role" (dict "name" "admin"))) }}', "admin"),
    ('{{ dig "user" "nope" "guest" (dict "user" (dict)) }}', "guest"),
    ('{{ default "foo" .Bar }}', "foo"),
    ('{{ default "foo" "bar" }}', "bar"),
    ('{{ default "foo" 0 }}', "foo"),
    ('{{ default "foo" (list) }}', "foo"),
    ("{{ empty 0 }} {{ empty 1 }} {{ empty (dict) }} {{ empty .Missing }}", "true false true true"),
    ("{{ coalesce 0 1 2 }}", "1"),
    ('{{ coalesce .name .parent.name "Matt" }}', "Matt"),
    ('{{ ternary "foo" "bar" true }}', "foo"),
    ('{{ true | ternary "foo" "bar" }}', "foo"),
    ('{{ false | ternary "foo" "bar" }}', "bar"),
    ('{{ all 1 "a" true }} {{ all 1 "" }} {{ any 0 "" 1 }} {{ any 0 "" }}', "true false true false"),
    ('{{ atoi "42" }} {{ atoi "x" }}', "42 0"),
    ('{{ int64 "42" | printf "%T" }}', "int64"),
    ('{{ int "0x1F" }}', "31"),
    ('{{ float64 "1.5" }}', "1.5"),
    ('{{ toString 42 | printf "%T" }}', "string"),
    ("{{ toStrings (list 1 2 3) }}", "[1 2 3]"),
    ('{{ toStrings (list 1 2 3) | printf "%q" }}', '["1" "2" "3"]'),
    ('{{ b64enc "hello" }}', "aGVsbG8="),
    ('{{ b64dec "aGVsbG8=" }}', "hello"),
    ('{{ b32enc "hello" }}', "NBSWY3DP"),
    ('{{ b32dec "NBSWY3DP" }}', "hello"),
    ('{{ sha1sum "Hello world!" }}', "d3486ae9136e7856bc42212385ea797094475802"),
    ('{{ sha256sum "Hello world!" }}', "c0535e4be2b79ffd93291305436bf889314e4a3faec05ecffcbb7df31ad9e51a"),
    ('{{ adler32sum "Hello world!" }}', "487130206"),
    ('{{ regexMatch "^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\\\.[A-Za-z]{2,}$" "test@acme.com" }}', "true"),
    ('{{ regexFindAll "[2,4,6,8]" "123456789" -1 }}', "[2 4 6 8]"),
    ('{{ regexFindAll "[2,4,6,8]" "123456789" 2 }}', "[2 4]"),
    ('{{ regexFind "[a-zA-Z][1-9]" "abcd1234" }}', "d1"),
    ('{{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }}', "-W-xxW-"),
    ('{{ regexReplaceAllLiteral "a(x*)b" "-ab-axxb-" "${1}" }}', "-${1}-${1}-"),
    ('{{ regexSplit "z+" "pizza" -1 }}', "[pi a]"),
    ('{{ regexQuoteMeta "1.2.3" }}', "1\\.2\\.3"),
    (
        '{{ base "foo/bar/baz" }} {{ dir "foo/bar/baz" }} {{ ext "foo.bar" }} {{ clean "foo/../bar" }}',
        "baz foo/bar .bar bar",
    ),
    ('{{ isAbs "/x" }}', "true"),
    (
        '{{ typeOf 1 }} {{ typeOf "a" }} {{ typeOf (list) }} {{ typeOf (dict) }} {{ typeOf 1.5 }}',
        "int string []interface {} map[string]interface {} float64",
    ),
    (
        '{{ kindOf 1 }} {{ kindOf (list) }} {{ kindIs "map" (dict) }} {{ typeIs "string" "a" }}',
        "int slice true true",
    ),
    ("{{ deepEqual (list 1 2) (list 1 2) }}", "true"),
]


@pytest.mark.parametrize(("text", "expected"), SPRIG_DOCS)
def test_sprig_documented_examples(text: str, expected: str) -> None:
    assert render(text, {}, now=NOW) == expected


def test_to_json_like_go() -> None:
    data = {"b": [1, 2.5, None, True], "a": "<x&y>", "c": {"z": 1e21, "y": 1e-7}}
    assert (
        render("{{ toJson . }}", data)
        == '{"a":"\\u003cx\\u0026y\\u003e","b":[1,2.5,null,true],"c":{"y":1e-7,"z":1e+21}}'
    )
    assert render("{{ toRawJson . }}", {"a": "<x>"}) == '{"a":"<x>"}'
    assert render("{{ toPrettyJson . }}", {"a": [1], "b": {}}) == '{\n  "a": [\n    1\n  ],\n  "b": {}\n}'


def test_from_json_gives_float64_numbers() -> None:
    assert render(
        '{{ $o := fromJson .s }}{{ $o.a }} {{ printf "%T" $o.a }} {{ $o.b.c }}',
        {"s": '{"a": 1, "b": {"c": "x"}}'},
    ) == ("1 float64 x")
    assert render("{{ fromJson .s }}", {"s": "not json"}) == "<no value>"


def test_merge_keeps_destination_values() -> None:
    # Sprig's docs: merge gives precedence to the destination, mergeOverwrite to the sources.
    data = {
        "dst": {"default": "default", "overwrite": "me", "key": True},
        "src": {"overwrite": "overwritten", "key": False},
    }
    assert render("{{ merge .dst .src }}", data) == "map[default:default key:true overwrite:me]"
    data = {
        "dst": {"default": "default", "overwrite": "me", "key": True},
        "src": {"overwrite": "overwritten", "key": False},
    }
    assert (
        render("{{ mergeOverwrite .dst .src }}", data)
        == "map[default:default key:false overwrite:overwritten]"
    )


def test_merge_is_deep() -> None:
    data = {"a": {"x": {"p": 1}, "l": [1]}, "b": {"x": {"q": 2, "p": 9}, "l": [2], "n": "new"}}
    assert render("{{ merge .a .b | toJson }}", data) == '{"l":[1],"n":"new","x":{"p":1,"q":2}}'


def test_arithmetic_returns_int64_like_sprig() -> None:
    assert render('{{ add 1 1 | printf "%T" }}', {}) == "int64"
    with pytest.raises(TemplateError, match="wrong type for value; expected int; got int64"):
        render('{{ repeat (add 1 1) "x" }}', {}, name="t")
    with pytest.raises(TemplateError, match="error calling div: runtime error: integer divide by zero"):
        render("{{ div 1 0 }}", {})


def test_typed_parameters_are_checked_like_go() -> None:
    with pytest.raises(TemplateError, match="expected string; found 3"):
        render("{{ upper 3 }}", {})
    with pytest.raises(TemplateError, match="wrong type for value; expected string; got int"):
        render("{{ upper .port }}", {"port": 8080})
    with pytest.raises(TemplateError, match="wrong number of args for upper: want 1 got 2"):
        render('{{ upper "a" "b" }}', {})


def test_required_and_fail() -> None:
    with pytest.raises(TemplateError) as caught:
        render('{{ required "region is required" .region }}', {}, name="stack.yaml")
    assert str(caught.value) == (
        'template: stack.yaml:1:3: executing "stack.yaml" at <required "region is required" .region>: '
        "error calling required: region is required"
    )
    assert render('{{ required "x" .region }}', {"region": "us-east-2"}) == "us-east-2"
    with pytest.raises(TemplateError, match="error calling fail: boom"):
        render('{{ fail "boom" }}', {})


def test_first_of_a_string_fails() -> None:
    with pytest.raises(TemplateError, match="Cannot find first on type string"):
        render('{{ first "abc" }}', {})


def test_dates_with_an_injected_clock() -> None:
    assert render('{{ now | date "2006-01-02T15:04:05Z07:00" }}', {}, now=NOW).startswith("2024-03-05")
    assert (
        render('{{ dateInZone "2006-01-02 15:04 MST" (now) "UTC" }}', {}, now=NOW) == "2024-03-05 14:07 UTC"
    )
    assert render("{{ now | unixEpoch }}", {}, now=NOW) == "1709647629"
    assert render('{{ dateInZone "Jan _2 3:04PM" 0 "UTC" }}', {}) == "Jan  1 12:00AM"
    assert render('{{ dateInZone "15:04" (now | dateModify "-1.5h") "UTC" }}', {}, now=NOW) == "12:37"
    assert render('{{ dateInZone "15:04" (now | dateModify "bogus") "UTC" }}', {}, now=NOW) == "14:07"
    plus_two = timezone(timedelta(hours=2))
    assert render("{{ now }}", {}, now=NOW.astimezone(plus_two)) == "2024-03-05 16:07:09 +0200 +0200"
    assert render("{{ now }}", {}, now=NOW) == "2024-03-05 14:07:09 +0000 UTC"


def test_env_reads_the_given_environment() -> None:
    env = {"STAGE": "dev", "HOME": "/home/x"}
    assert render('{{ env "STAGE" }}-{{ env "NOPE" }}', {}, env=env) == "dev-"
    assert render('{{ expandenv "$HOME/${STAGE}" }}', {}, env=env) == "/home/x/dev"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FirstName", "first_name"),
        ("HTTPServer", "http_server"),
        ("NoHTTPS", "no_https"),
        ("GO_PATH", "go_path"),
        ("GO PATH", "go_path"),
        ("GO-PATH", "go_path"),
        ("http2xx", "http_2xx"),
        ("HTTP20xOK", "http_20x_ok"),
        ("Duration2m3s", "duration_2m3s"),
        ("Bld4Floor3rd", "bld4_floor_3rd"),
    ],
)
def test_snakecase_like_xstrings(text: str, expected: str) -> None:  # xstrings.ToSnakeCase examples
    assert render("{{ snakecase . }}", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("some_words", "SomeWords"),
        ("http_server", "HttpServer"),
        ("no_https", "NoHttps"),
        ("_complex__case_", "_Complex_Case_"),
    ],
)
def test_camelcase_like_xstrings(text: str, expected: str) -> None:  # xstrings.ToCamelCase examples
    assert render("{{ camelcase . }}", text) == expected


def test_atmos_style_stack_snippet() -> None:
    text = """vars:
  name: {{ .vars.namespace }}-{{ .vars.stage | upper }}
  tags: {{ toJson .tags }}
{{- range $k, $v := .settings }}
  {{ $k }}: {{ $v | quote }}
{{- end }}
"""
    data: dict[str, Any] = {
        "vars": {"namespace": "acme", "stage": "dev"},
        "tags": {"Team": "platform"},
        "settings": {"b": 2, "a": "x"},
    }
    assert render(text, data) == 'vars:\n  name: acme-DEV\n  tags: {"Team":"platform"}\n  a: "x"\n  b: "2"\n'
