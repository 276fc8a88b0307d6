"""Atmos's `generate:` files as text: pure functions, checked against python-hcl2's reader (what
is written reads back as written) and, for HCL, against the shapes Atmos documents."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from pathlib import Path

import hcl2
import lark
import pytest
from hypothesis import given
from hypothesis import strategies as st

from atmos_tasks.kinds._tfgenerate import GenerateError, render_files
from atmos_tasks.kinds.terraform import terraform_binary


def test_strings_are_written_as_they_are_and_mappings_by_extension() -> None:
    files = render_files(
        {
            "README.md": "# demo\n",
            "config.json": {"app": "x", "n": 1},
            "values.yaml": {"a": [1, 2]},
            "terraform.tfvars": {"app_name": "myapp", "tags": {"team": "net"}, "on": True},
        }
    )
    assert files["README.md"] == "# demo\n"
    assert json.loads(files["config.json"]) == {"app": "x", "n": 1}
    assert files["values.yaml"] == "a:\n- 1\n- 2\n"
    assert hcl2.loads(files["terraform.tfvars"]) == {
        "app_name": '"myapp"',
        "tags": {"team": '"net"'},
        "on": True,
    }


def test_tf_mappings_are_blocks_labelled_as_atmos_labels_them() -> None:
    text = render_files(
        {
            "main.tf": {
                "terraform": {"required_version": ">= 1.0.0"},
                "locals": {"environment": "dev"},
                "variable": {"app_name": {"type": "string"}},
                "resource": {"null_resource": {"a": {"triggers": {"id": "1"}}, "b": {}}},
                "data": {"external": {"info": {"program": ["echo"]}}},
            }
        }
    )["main.tf"]
    assert 'terraform {\n  required_version = ">= 1.0.0"\n}' in text
    assert 'variable "app_name" {' in text
    assert 'resource "null_resource" "a" {' in text and 'resource "null_resource" "b" {' in text
    assert 'data "external" "info" {' in text
    read = hcl2.loads(text)
    assert read["locals"][0]["environment"] == '"dev"'
    assert [list(block) for block in read["resource"]] == [['"null_resource"'], ['"null_resource"']]


def terraform_reads(text: str) -> str:
    """The value of `local.v` in `text`, as Terraform itself reads it (`terraform console`, which
    needs no `init` for locals)."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "locals.tf").write_text(text)
        proc = subprocess.run(
            [terraform_binary("terraform"), "console"],
            input="base64encode(local.v)\n",
            cwd=folder,
            env={**os.environ, "TF_FORK": "0", "CHECKPOINT_DISABLE": "1"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    return base64.b64decode(proc.stdout.strip().strip('"')).decode()


@given(st.text(max_size=40))
def test_any_string_value_reads_back_as_written_never_as_a_template(value: str) -> None:
    text = render_files({"locals.tf": {"locals": {"v": value}}})["locals.tf"]
    try:
        read = hcl2.loads(text)["locals"][0]["v"]
    except lark.exceptions.UnexpectedInput:
        # python-hcl2 8 reads an escaped `$${` or `%%{` only when a `}` closes it; HCL asks for
        # none. Terraform is the judge of those.
        assert terraform_reads(text) == value
        return
    # The reader keeps the literal's quotes and escapes: undo them the way HCL reads them.
    assert read.startswith('"') and read.endswith('"')
    assert "${" not in read.replace("$${", "") and "%{" not in read.replace("%%{", "")


@pytest.mark.parametrize(
    "value", ["${", "%{", "a${b}c", "%{ if x }y%{ endif }", "$${", "%%{", '"', "\\n", "tab\there", "ü€"]
)
def test_template_marks_and_escapes_read_back_in_terraform_exactly_as_written(value: str) -> None:
    text = render_files({"locals.tf": {"locals": {"v": value}}})["locals.tf"]
    assert terraform_reads(text) == value


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"notes.txt": {"a": 1}}, "a mapping is written as .json, .yaml, .tf, .hcl or .tfvars"),
        ({"../outside.tf": "x"}, "a generated file stays in the component's folder"),
        ({"main.tf": 3}, "must be the file's text or a mapping"),
        ({"main.tf": {"variable": {"x": "string"}}}, "variable 'x' must be a mapping"),
        ({".terraform/providers/x/pwned": "x"}, "a generated file stays in the component's folder"),
        ({".": "x"}, "a generated file stays in the component's folder"),
    ],
)
def test_what_cannot_be_written_is_refused_with_the_file_and_a_hint(section: dict, message: str) -> None:
    with pytest.raises(GenerateError) as err:
        render_files(section)
    assert message in err.value.message and err.value.hint


def test_object_keys_that_are_not_identifiers_are_quoted() -> None:
    """`kubernetes.io/role` written bare would be read as an expression (a reference)."""
    text = render_files({"terraform.tfvars": {"tags": {"kubernetes.io/role": "x", "team": "y"}}})[
        "terraform.tfvars"
    ]
    assert '"kubernetes.io/role" = "x"' in text and "team" in text and '"team"' not in text
    assert hcl2.loads(text)["tags"] == {'"kubernetes.io/role"': '"x"', "team": '"y"'}
