"""Atmos's `dependencies.tools` constraints, read as Atmos (Masterminds semver) reads them, and
checked against the tools this runner really has."""

from __future__ import annotations

import shutil

import pytest
import semantic_version

from atmos_tasks.tools import ConstraintError, binary_for, problem, spec, version_of


@pytest.mark.parametrize(
    ("constraint", "inside", "outside"),
    [
        ("^1.10.0", ["1.10.0", "1.99.3"], ["1.9.9", "2.0.0"]),
        ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0", "1.1.9"]),
        ("~> 1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),  # Masterminds reads ~> as ~
        (">= 1.0, < 2", ["1.0.0", "1.9.9"], ["0.9.0", "2.0.0"]),
        (">= 1.0 < 2", ["1.5.0"], ["2.1.0"]),
        ("1.x", ["1.0.0", "1.4.2"], ["2.0.0"]),
        ("1.10.10", ["1.10.10"], ["1.10.11"]),
        ("v1.2.3", ["1.2.3"], ["1.2.4"]),
        ("^0.54.0 || ^0.60.0", ["0.54.3", "0.60.1"], ["0.55.0"]),
    ],
)
def test_constraints_read_as_atmos_reads_them(constraint: str, inside: list[str], outside: list[str]) -> None:
    wanted = spec(constraint)
    assert all(semantic_version.Version(v) in wanted for v in inside)
    assert not any(semantic_version.Version(v) in wanted for v in outside)


def test_latest_and_empty_allow_any_version_and_nonsense_is_refused() -> None:
    assert spec("latest") is None and spec("") is None and spec("*") is None
    with pytest.raises(ConstraintError, match="is not a version constraint"):
        spec("one point two")


def test_tool_names_map_to_binaries() -> None:
    assert binary_for("opentofu", "/opt/terraform") == "tofu"
    assert binary_for("hashicorp/terraform", "/opt/terraform") == "/opt/terraform"
    assert binary_for("terraform-linters/tflint", None) == "tflint"


def test_the_runners_tools_are_checked_for_real() -> None:
    git = version_of("git")
    assert git is not None and git.count(".") == 2  # git prints "git version 2.x.y"
    assert problem({"git": ">= 2"}, None) is None
    too_new = problem({"git": "^99.0.0"}, None)
    assert too_new is not None and f"this runner has git {git}" in too_new
    missing = problem({"no-such-tool-here": "latest"}, None)
    assert missing is not None and "no no-such-tool-here that prints its version" in missing
    assert shutil.which("no-such-tool-here") is None
