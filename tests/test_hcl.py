"""The fast reader of Terraform files' top-level blocks: what it returns is what python-hcl2 gives."""

from __future__ import annotations

import hcl2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atmos_tasks import hcl
from atmos_tasks.hcl import EXPRESSION


def test_variables_with_their_literal_attributes_and_expressions_marked() -> None:
    text = """
variable "region" {
  type        = string
  default     = "eu-west-1"
  sensitive   = true
  description = "say \\"hi\\""
  validation {
    condition     = length(var.region) > 0
    error_message = "empty"
  }
}
variable count_of { default = 3 }
variable "ratio" { default = 2.5 }
variable "tags" { default = ["a", "b"] }
variable "nothing" { default = null }
variable "templated" { default = "${var.region}-x" }
"""
    assert hcl.load(text, ("variable",)) == {
        "variable": [
            {
                "region": {
                    "type": EXPRESSION,
                    "default": "eu-west-1",
                    "sensitive": True,
                    "description": EXPRESSION,
                }
            },
            {"count_of": {"default": 3}},
            {"ratio": {"default": 2.5}},
            {"tags": {"default": ["a", "b"]}},
            {"nothing": {"default": None}},
            {"templated": {"default": EXPRESSION}},
        ]
    }


def test_what_only_looks_like_a_variable_is_not_one() -> None:
    text = """
# variable "commented" {}
/* variable "block_commented" {} */
locals {
  doc = <<EOT
variable "in_a_heredoc" {
}
EOT
  text = "variable \\"in_a_string\\" {}"
}
resource "null_resource" "variable" {}
variable "real" {}
"""
    assert hcl.load(text, ("variable",)) == {"variable": [{"real": {}}]}


def test_a_lock_file_gives_its_providers() -> None:
    text = """
# This file is maintained automatically by "terraform init".
provider "registry.terraform.io/hashicorp/null" {
  version     = "3.2.1"
  constraints = "~> 3.0"
  hashes = [
    "h1:CFnENdqQu4g3LJNevA32aDxcUz2qGkRGQpFfkI8TCdE=",
    "zh:0123",
  ]
}
"""
    assert hcl.load(text, ("provider",)) == {
        "provider": [
            {
                "registry.terraform.io/hashicorp/null": {
                    "version": "3.2.1",
                    "constraints": "~> 3.0",
                    "hashes": ["h1:CFnENdqQu4g3LJNevA32aDxcUz2qGkRGQpFfkI8TCdE=", "zh:0123"],
                }
            }
        ]
    }


def test_a_file_that_is_not_hcl_raises_what_python_hcl2_raises() -> None:
    text = 'variable "a" {\n  default = \n}\n'
    with pytest.raises(Exception) as ours:
        hcl.load(text, ("variable",))
    with pytest.raises(Exception) as theirs:
        hcl2.loads(text)
    assert type(ours.value) is type(theirs.value)


def test_a_label_with_an_escape_is_read_by_python_hcl2() -> None:
    text = 'variable "a\\u0062" {\n  sensitive = true\n}\n'
    found = hcl.load(text, ("variable",))
    assert list(found["variable"][0]) == [hcl._unquoted(next(iter(hcl2.loads(text)["variable"][0])))]
    assert found["variable"][0][next(iter(found["variable"][0]))]["sensitive"] is True


NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
DEFAULTS = st.sampled_from(
    ['"x"', "1", "2.5", "true", "null", '["a", "b"]', "{ a = 1 }", "var.other", '"${var.other}"', '"a\\"b"']
)
NOISE = st.sampled_from(
    [
        "",
        '# variable "commented" {}\n',
        'locals {\n  doc = <<EOT\nvariable "heredoc" {\nEOT\n}\n',
        'resource "null_resource" "variable" {\n  triggers = { a = "variable" }\n}\n',
        'output "o" {\n  value = "variable \\"x\\" {}"\n}\n',
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(NAMES, DEFAULTS, st.sampled_from(["true", "false", None]), NOISE), min_size=0, max_size=5
    )
)
def test_variable_names_and_sensitivity_are_python_hcl2s(
    blocks: list[tuple[str, str, str | None, str]],
) -> None:
    text = ""
    for name, default, sensitive, noise in blocks:
        text += noise + f'variable "{name}" {{\n  type = any\n  default = {default}\n'
        text += f"  sensitive = {sensitive}\n" if sensitive else ""
        text += "}\n"
    ours = hcl.load(text, ("variable",)).get("variable", [])
    theirs = hcl2.loads(text).get("variable", [])
    assert [list(block) for block in ours] == [[hcl._unquoted(k) for k in block] for block in theirs]
    for mine, other in zip(ours, theirs, strict=True):
        (body,) = mine.values()
        (expected,) = other.values()
        assert body.get("sensitive") == expected.get("sensitive")
        if body["default"] is not EXPRESSION:
            assert body["default"] == _as_read(expected["default"])


def _as_read(value: object) -> object:
    """python-hcl2's literal as its readers here take it: strings without their quotes."""
    if isinstance(value, list):
        return [_as_read(item) for item in value]
    return hcl._unquoted(value) if isinstance(value, str) else value
