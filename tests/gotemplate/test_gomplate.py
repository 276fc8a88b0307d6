"""gomplate namespaces and aliases, against gomplate's documented examples (docs.gomplate.ca)."""

from __future__ import annotations

import pytest

from atmos_tasks.gotemplate import TemplateError, render

GOMPLATE_DOCS = [
    ('{{ strings.ToUpper "hello" }}', "HELLO"),
    ('{{ "hello" | strings.ToUpper }}', "HELLO"),
    ('{{ strings.ToLower "HELLO" }}', "hello"),
    ('{{ strings.Title "hello, world!" }}', "Hello, World!"),
    ('{{ "  foo  " | strings.TrimSpace }}', "foo"),
    ('{{ "_-foo-_" | strings.Trim "_-" }}', "foo"),
    ('{{ "http://example.com" | strings.TrimPrefix "http://" }}', "example.com"),
    ('{{ "hello.world" | strings.TrimSuffix ".world" }}', "hello"),
    ('{{ strings.ReplaceAll "." "-" "172.21.1.42" }}', "172-21-1-42"),
    ('{{ "172.21.1.42" | strings.ReplaceAll "." "-" }}', "172-21-1-42"),
    ('{{ "foo" | strings.Contains "f" }}', "true"),
    ('{{ "http://example.com" | strings.HasPrefix "http" }}', "true"),
    ('{{ "a.b.c" | strings.Split "." }}', "[a b c]"),
    ('{{ "a,b,c" | strings.SplitN "," 2 }}', "[a b,c]"),
    ('{{ "ban" | strings.Repeat 3 }}', "banbanban"),
    ('{{ "hello\\nworld" | strings.Indent 4 "|" }}', "||||hello\n||||world"),
    ('{{ "hello world" | strings.Trunc 5 }}', "hello"),
    ('{{ "hello world" | strings.Abbrev 8 }}', "hello..."),
    ('{{ "in" | strings.Quote }}', '"in"'),
    ('{{ "it\'s a banana" | strings.Squote }}', "'it''s a banana'"),
    ('{{ "hello jello" | strings.CamelCase }}', "helloJello"),
    ('{{ "hello jello" | strings.SnakeCase }}', "hello_jello"),
    ('{{ "hello jello" | strings.KebabCase }}', "hello-jello"),
    ('{{ "Hello, World!" | strings.Slug }}', "hello-world"),
    ('{{ strings.Sort (coll.Slice "foo" "bar" "baz") }}', "[bar baz foo]"),
    ('{{ conv.ToString 42 | printf "%T" }}', "string"),
    ("{{ conv.ToString nil }}", "nil"),
    ('{{ conv.ToInt "9_001" }}', "9001"),
    ('{{ conv.ToInt "0x2a" }}', "42"),
    ('{{ conv.ToInt "1,000" }}', "1000"),
    ('{{ $x := conv.ToInt64 "42.9" }}{{ printf "%T %v" $x $x }}', "int64 42"),
    ('{{ conv.ToFloat64 "8.233e-1" }}', "0.8233"),
    ('{{ conv.ToBool "yes" }} {{ conv.ToBool "0" }} {{ conv.ToBool 1 }}', "true false true"),
    ('{{ conv.Default "foo" "" }} {{ conv.Default "foo" "bar" }}', "foo bar"),
    ('{{ conv.Join (coll.Slice "foo" "bar") "," }}', "foo,bar"),
    ('{{ coll.Dict "name" "Frank" "age" 42 | data.ToYAML }}', "age: 42\nname: Frank\n"),
    ('{{ coll.Slice "foo" "bar" }}', "[foo bar]"),
    ('{{ coll.Has (coll.Dict "foo" 1) "foo" }} {{ coll.Has (coll.Slice 1 2) 3 }}', "true false"),
    ('{{ coll.Keys (coll.Dict "foo" 1 "bar" 2) }}', "[bar foo]"),
    ('{{ coll.Values (coll.Dict "foo" 1 "bar" 2) }}', "[2 1]"),
    ("{{ coll.Slice 1 1 2 | coll.Uniq }}", "[1 2]"),
    ("{{ coll.Slice 4 3 2 | coll.Reverse }}", "[2 3 4]"),
    ("{{ coll.Slice 1 2 | coll.Append 3 }}", "[1 2 3]"),
    ("{{ coll.Slice 1 2 | coll.Prepend 0 }}", "[0 1 2]"),
    ('{{ coll.Sort (coll.Slice "b" "c" "a") }}', "[a b c]"),
    ("{{ coll.Flatten (coll.Slice 1 (coll.Slice 2 (coll.Slice 3))) }}", "[1 2 3]"),
    ("{{ coll.Flatten 1 (coll.Slice 1 (coll.Slice 2 (coll.Slice 3))) }}", "[1 2 [3]]"),
    ('{{ coll.Dict "a" 1 "b" 2 | coll.Pick "a" }}', "map[a:1]"),
    ('{{ coll.Dict "a" 1 "b" 2 | coll.Omit "a" }}', "map[b:2]"),
    ('{{ coll.Merge (coll.Dict "a" 1) (coll.Dict "a" 2 "b" 3) }}', "map[a:1 b:3]"),
    ("{{ math.Add 1 2 3 4 }}", "10"),
    ("{{ math.Add 1 2.5 }}", "3.5"),
    ("{{ math.Sub 3 1 }}", "2"),
    ("{{ math.Mul 8 8 }}", "64"),
    ("{{ math.Div 8 2 }}", "4"),
    ("{{ math.Div 3 2 }}", "1.5"),
    ("{{ math.Rem 5 3 }}", "2"),
    ("{{ math.Rem -5 3 }}", "-2"),
    ("{{ math.Pow 10 2 }}", "100"),
    ("{{ math.Pow 2 32 }}", "4294967296"),
    ("{{ math.Pow 1.5 2 }}", "2.25"),
    ("{{ math.Seq 5 }}", "[1 2 3 4 5]"),
    ("{{ math.Seq 10 -3 }}", "[10 9 8 7 6 5 4 3 2 1 0 -1 -2 -3]"),
    ("{{ math.Seq 0 10 2 }}", "[0 2 4 6 8 10]"),
    ("{{ math.Max 0 8.0 4.5 }}", "8"),
    ("{{ math.Min 0 8 4.5 }}", "0"),
    ("{{ math.Ceil 5.1 }} {{ math.Floor 5.9 }} {{ math.Round 5.5 }} {{ math.Round -5.5 }}", "6 5 6 -6"),
    ("{{ math.Abs -3.5 }} {{ math.Abs -3 }}", "3.5 3"),
    (
        '{{ math.IsInt 42 }} {{ math.IsInt "3.4" }} {{ math.IsFloat 3.4 }} {{ math.IsNum "foo" }}',
        "true false true false",
    ),
    ('{{ (data.JSON "{\\"hello\\": \\"world\\"}").hello }}', "world"),
    ('{{ (data.JSON "{\\"n\\": 3}").n | printf "%T" }}', "int"),
    ('{{ data.JSONArray "[1, 2]" }}', "[1 2]"),
    ('{{ (data.YAML "hello: world\\nlist: [1, 2]").list }}', "[1 2]"),
    ('{{ data.YAMLArray "- a\\n- b" }}', "[a b]"),
    ('{{ coll.Dict "a" "<b>" | data.ToJSON }}', '{"a":"<b>"}'),
    ('{{ coll.Dict "a" (coll.Slice 1 2) | data.ToJSONPretty "  " }}', '{\n  "a": [\n    1,\n    2\n  ]\n}'),
    (
        '{{ coll.Dict "a" (coll.Slice 1 2) "b" (coll.Dict "c" true) | data.ToYAML }}',
        "a:\n  - 1\n  - 2\nb:\n  c: true\n",
    ),
    ('{{ "foo" | base64.Encode }} {{ "Zm9v" | base64.Decode }}', "Zm9v foo"),
    ('{{ crypto.SHA256 "foo" }}', "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"),
    ('{{ "hello world" | regexp.Match "o w" }}', "true"),
    ('{{ "hello world" | regexp.Replace "(o) (w)" "$2 $1" }}', "hellw oorld"),
    (
        '{{ path.Base "/tmp/foo" }} {{ path.Dir "/tmp/foo" }} '
        '{{ path.Ext "x.yaml" }} {{ path.Join "a" "b" "../c" }}',
        "foo /tmp .yaml a/c",
    ),
    ('{{ toUpper "x" }} {{ toLower "X" }} {{ trimSpace " y " }} {{ replaceAll "a" "b" "aaa" }}', "X x y bbb"),
    ('{{ toJSON (coll.Dict "a" 1) }} {{ toYAML (coll.Dict "a" 1) }}', '{"a":1} a: 1\n'),
    ('{{ (json "{\\"a\\": 1}").a }} {{ (yaml "a: 2").a }}', "1 2"),
    ("{{ rem 7 4 }} {{ pow 2 3 }}", "3 8"),
    ('{{ bool "true" }}', "true"),
    ('{{ test.Ternary "yes" "no" true }} {{ test.Kind 1 }} {{ test.IsKind "number" 1.5 }}', "yes int true"),
]


@pytest.mark.parametrize(("text", "expected"), GOMPLATE_DOCS)
def test_gomplate_documented_examples(text: str, expected: str) -> None:
    assert render(text, {}) == expected


def test_env_namespace_reads_the_given_environment() -> None:
    env = {"USER": "me"}
    assert (
        render('{{ env.Getenv "USER" }} {{ env.Getenv "NOPE" "dflt" }} {{ getenv "USER" }}', {}, env=env)
        == "me dflt me"
    )
    assert render('{{ env.ExpandEnv "hi $USER" }}', {}, env=env) == "hi me"


def test_unknown_method_of_a_namespace() -> None:
    with pytest.raises(TemplateError) as caught:
        render("{{ strings.Foo }}", {}, name="t")
    assert "can't evaluate field Foo in type *funcs.StringFuncs" in str(caught.value)


def test_gomplate_errors_are_template_errors() -> None:
    with pytest.raises(TemplateError, match="error calling Div: error: division by 0"):
        render("{{ math.Div 1 0 }}", {})
    with pytest.raises(TemplateError, match="error calling Assert: assertion failed: must be set"):
        render('{{ test.Assert "must be set" .x }}', {})
    with pytest.raises(TemplateError, match="error calling JSON"):
        render('{{ data.JSON "[1]" }}', {})


def test_sprig_wins_over_gomplate_aliases() -> None:
    # Atmos assigns gomplate's functions first and Sprig's after: `contains` is Sprig's
    # (substring first), `default` is Sprig's (empty values fall back), `seq` is Sprig's (a string).
    assert render('{{ contains "cat" "catch" }}', {}) == "true"
    assert render('{{ default "x" 0 }}', {}) == "x"
    assert render("{{ seq 3 }}", {}) == "1 2 3"
    assert render("{{ seq 3 }}", {}, library="atmos") == "1 2 3"


def test_go_library_has_only_builtins() -> None:
    with pytest.raises(TemplateError, match='function "upper" not defined'):
        render('{{ upper "x" }}', {}, library="go")
    assert render("{{ slice . 1 3 }}", "hello", library="go") == "el"


def test_user_functions_override_and_extend() -> None:
    funcs = {"greet": lambda name: f"hi {name}", "upper": lambda value: f"<{value}>"}
    assert render('{{ greet "bob" }} {{ upper "x" }}', {}, funcs=funcs) == "hi bob <x>"
    with pytest.raises(TemplateError, match="wrong number of args for greet: want 1 got 0"):
        render("{{ greet }}", {}, funcs=funcs)

    def broken(value: object) -> str:
        raise RuntimeError("no such component")

    with pytest.raises(TemplateError, match="error calling broken: no such component"):
        render('{{ broken "x" }}', {}, funcs={"broken": broken})
