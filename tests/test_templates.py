"""Jinja2 templates in values: native types, strict undefined names, output references, sandbox."""

from __future__ import annotations

import subprocess
import sys

import pytest

from atmos_tasks.templates import PendingOutputs, TemplateError, output_references, render_tree

CONTEXT = {
    "context": {"cpu": 256, "subnets": ["a", "b"]},
    "target": {"name": "dev"},
    "git": {"short_sha": "abc1234"},
}


def test_single_expressions_keep_their_type() -> None:
    rendered = render_tree(
        {
            "cpu": "{{ context.cpu }}",
            "subnets": "{{ context.subnets }}",
            "name": "api-{{ target.name }}",
            "plain": "no template",
        },
        CONTEXT,
    )
    assert rendered == {"cpu": 256, "subnets": ["a", "b"], "name": "api-dev", "plain": "no template"}


def test_undefined_names_fail_with_the_key_path() -> None:
    with pytest.raises(TemplateError) as err:
        render_tree({"a": [{"b": "{{ context.memory }}"}]}, CONTEXT)
    assert err.value.keypath == ("a", 0, "b")
    assert "memory" in err.value.message
    with pytest.raises(TemplateError):
        render_tree({"a": "x-{{ nope }}"}, CONTEXT)


def test_output_references_are_found_in_the_syntax_tree() -> None:
    assert output_references(
        "{{ component['ecr/api'].outputs.url }}:{{ component[\"db\"].outputs.host }}"
    ) == {"ecr/api", "db"}
    assert output_references("{{ context.cpu }}") == set()


def test_pending_outputs_render_a_marker_until_applied() -> None:
    context = {**CONTEXT, "component": {"ecr/api": {"outputs": PendingOutputs("ecr/api")}}}
    assert (
        render_tree("{{ component['ecr/api'].outputs.url }}:latest", context)
        == "(outputs of ecr/api: url):latest"
    )


def test_sandbox_blocks_attribute_escapes() -> None:
    with pytest.raises(TemplateError) as err:
        render_tree("{{ context.__class__.__mro__ }}", CONTEXT)
    assert "not allowed" in err.value.message or "undefined" in err.value.message


def test_jinja2_is_loaded_only_when_a_value_is_a_template() -> None:
    code = (
        "import sys\n"
        "from atmos_tasks.templates import render_tree, references_in\n"
        "plain = {'a': ['x', 1, {'b': 'y'}]}\n"
        "assert render_tree(plain, {}) == plain and references_in(plain) == set()\n"
        "print('jinja2' in sys.modules)\n"
        "assert render_tree({'a': '{{ n + 1 }}'}, {'n': 1}) == {'a': 2}\n"
        "print('jinja2' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]
