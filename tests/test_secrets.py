"""The mask: what counts as a sensitive value, and how each is found in text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from atmos_tasks.secrets import MASK, Secrets, hide, marked, sensitive_values, sensitive_variables


def test_nothing_known_changes_nothing() -> None:
    found = Secrets()
    assert not found
    assert found.mask("a password: hunter22") == "a password: hunter22"
    assert found.found_in("anything") == []


def test_a_value_is_masked_also_where_terraform_wrapped_it_and_as_json_writes_it() -> None:
    found = Secrets()
    found.add({"nested": ["correct horse battery", 'quo"te\\slash']})
    assert found.mask("with correct horse\n  battery staple") == "with *** staple"
    assert found.mask(json.dumps({"p": 'quo"te\\slash'})) == '{"p": "***"}'
    assert found.mask('plain quo"te\\slash here') == "plain *** here"


def test_every_line_of_a_multi_line_value_is_masked() -> None:
    found = Secrets()
    found.add("-----BEGIN KEY-----\nMIIBOgIBAAJBAK\n-----END KEY-----\n")
    assert MASK in found.mask("line: MIIBOgIBAAJBAK")
    assert "MIIBOgIBAAJBAK" not in found.mask("log -----BEGIN KEY----- MIIBOgIBAAJBAK")


def test_short_values_booleans_and_nulls_are_not_masked() -> None:
    found = Secrets()
    found.add(["abc", True, None, 7, 1234])
    assert found.values == {"1234"}
    assert found.mask("1 to add, 7 to change, true") == "1 to add, 7 to change, true"
    assert found.mask_tree({"pin": 1234, "count": 7, "flag": True}) == {"pin": MASK, "count": 7, "flag": True}


def test_longer_values_win_over_their_prefixes() -> None:
    found = Secrets()
    found.add(["secret", "secret-and-more"])
    assert found.mask("x secret-and-more y") == "x *** y"


def test_names_marked_by_the_user_and_their_values() -> None:
    assert marked({"sensitive": ["token", "env.API_KEY"]}) == ("token", "env.API_KEY")
    assert marked({}) == () and marked(None) == ()
    names = marked({"sensitive": ["token", "env.API_KEY", "missing"]})
    assert sensitive_values(names, {"token": "t0k3n!"}, {"API_KEY": "k3y-value"}) == ["t0k3n!", "k3y-value"]
    assert hide(names, {"token": "t0k3n!", "name": "api"}) == {"token": MASK, "name": "api"}


def test_variables_a_module_declares_sensitive(tmp_path: Path) -> None:
    (tmp_path / "variables.tf").write_text(
        'variable "password" {\n  type      = string\n  sensitive = true\n}\n'
        'variable "name" { type = string }\n'
        'variable "legacy" {\n  sensitive = "true"\n}\n'
    )
    (tmp_path / "extra.tf.json").write_text(json.dumps({"variable": {"token": {"sensitive": True}}}))
    (tmp_path / "main.tf").write_text('output "x" { value = 1 }\n')
    assert sensitive_variables(tmp_path) == {"password", "legacy", "token"}


def test_github_is_told_each_new_value_once_and_only_in_actions() -> None:
    probe = (
        "from atmos_tasks.secrets import Secrets\n"
        "found = Secrets(announce=True)\n"
        "found.add('first-secret'); found.add('first-secret'); found.add('two\\nlines-here')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env={"GITHUB_ACTIONS": "true"}, capture_output=True, text=True
    ).stdout
    # A line shorter than the minimum is not announced; the JSON-escaped form of the value is.
    assert out.splitlines() == [
        "::add-mask::first-secret",
        "::add-mask::lines-here",
        "::add-mask::two\\nlines-here",
    ]
    quiet = subprocess.run([sys.executable, "-c", probe], env={}, capture_output=True, text=True)
    assert quiet.stdout == ""
