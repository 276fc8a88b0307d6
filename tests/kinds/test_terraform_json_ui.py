"""Terraform's machine-readable UI (`apply -json`) read back: what the log shows, and the outputs
the apply reports (no `terraform output` after it). Pure functions, messages as Terraform 1.0 sends
them."""

from __future__ import annotations

import json

from atmos_tasks import secrets
from atmos_tasks.kinds.terraform import from_json_ui, read_outputs


def _line(**message: object) -> str:
    return json.dumps({"@level": "info", "@module": "terraform.ui", **message})


def test_messages_read_as_a_person_reads_them_with_a_diagnostics_place_and_detail() -> None:
    stdout = "\n".join(
        [
            _line(**{"@message": "Terraform 1.0.3", "type": "version"}),
            _line(**{"@message": "null_resource.a: Creating...", "type": "apply_start"}),
            _line(
                **{
                    "@level": "error",
                    "@message": "Error: local-exec provisioner error",
                    "type": "diagnostic",
                    "diagnostic": {
                        "severity": "error",
                        "summary": "local-exec provisioner error",
                        "detail": "Error running command 'exit 1': exit status 1.\nOutput: simulated failure",
                        "range": {"filename": "main.tf", "start": {"line": 4, "column": 3}},
                    },
                }
            ),
            "panic: a line that is no message",
        ]
    )
    text, outputs = from_json_ui(stdout)
    assert text.splitlines() == [
        "Terraform 1.0.3",
        "null_resource.a: Creating...",
        "Error: local-exec provisioner error",
        "  on main.tf line 4",
        "  Error running command 'exit 1': exit status 1.",
        "  Output: simulated failure",
        "panic: a line that is no message",
    ]
    assert outputs is None  # a failed apply reports none: nothing is taken as its outputs


def test_the_outputs_message_gives_every_value_and_which_are_sensitive() -> None:
    reported = {
        "url": {"sensitive": False, "type": "string", "value": "https://x"},
        "ids": {"sensitive": False, "type": ["list", "string"], "value": ["a", "b"]},
        "token": {"sensitive": True, "type": "string", "value": "hunter2-token"},
    }
    stdout = "\n".join(
        [
            _line(**{"@message": "Apply complete! Resources: 1 added, 0 changed, 0 destroyed.", "type": "x"}),
            _line(**{"@message": "Outputs: 3", "type": "outputs", "outputs": reported}),
        ]
    )
    text, outputs = from_json_ui(stdout)
    assert "hunter2-token" not in text and text.splitlines()[-1] == "Outputs: 3"
    assert outputs == reported
    values, sensitive = read_outputs(outputs)
    assert values == {"ids": ["a", "b"], "token": "hunter2-token", "url": "https://x"}
    assert sensitive == ["token"]
    assert secrets.mask("the token is hunter2-token") == "the token is ***"


def test_no_outputs_is_an_empty_mapping_not_a_missing_message() -> None:
    _text, outputs = from_json_ui(_line(**{"@message": "Outputs: 0", "type": "outputs", "outputs": {}}))
    assert outputs == {}


def test_an_outputs_message_of_another_shape_is_no_outputs() -> None:
    """The apply then asks `terraform output -json`, rather than failing or saving a wrong value."""
    for reported in ([1, 2], {"url": "https://x"}, None):
        _text, outputs = from_json_ui(
            _line(**{"@message": "Outputs: 1", "type": "outputs", "outputs": reported})
        )
        assert outputs is None
