"""Atmos's `dependencies.tools`: the tools a component needs on the runner, with version constraints.

Atmos installs each declared tool (its toolchain, from the Aqua registry) and puts it on PATH for
the component's commands. atmos-tasks installs nothing (runners are provisioned by their CI image):
it checks, before a component plans, that each tool is there at a version the constraint allows,
and fails that component's task with one message naming the tool, the constraint, what was found
and where the constraint was written. Constraints follow Atmos's (Masterminds semver): `^1.10.0`,
`~1.2`, `~> 1.2`, `>= 1.0, < 2`, `1.x`, `1.2.3`, `latest` (any version), read with
`semantic_version`'s npm-style specs after the spelling differences are evened out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from typing import Any

# Atmos's tool names (Aqua package names, `owner/name` or a short name) whose binary is called
# something else.
BINARIES = {"opentofu": "tofu", "tofu": "tofu"}
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_OPERATOR_SPACE = re.compile(r"(>=|<=|>|<|=|~>|~|\^)\s+")


class ConstraintError(ValueError):
    pass


def spec(constraint: str) -> Any:
    """The `semantic_version.NpmSpec` of an Atmos constraint (None: any version)."""
    import semantic_version

    text = constraint.strip()
    if text in ("", "latest", "*"):
        return None
    text = _OPERATOR_SPACE.sub(r"\1", " ".join(text.replace(",", " ").split())).replace("~>", "~")
    text = re.sub(r"(?<![\w.])v(?=\d)", "", text)  # v1.2.3 is 1.2.3, as Atmos trims it
    try:
        return semantic_version.NpmSpec(text)
    except ValueError:
        raise ConstraintError(
            f"{constraint!r} is not a version constraint "
            "(write e.g. ^1.10.0, ~> 1.2, >= 1.0, < 2, 1.x or latest)"
        ) from None


def binary_for(tool: str, terraform: str | None) -> str:
    """The binary a tool name stands for: the last part of an Aqua `owner/name`, with Atmos's
    short names mapped (opentofu is `tofu`); Terraform is the binary this run uses for it."""
    name = tool.rsplit("/", 1)[-1]
    if name == "terraform" and terraform:
        return terraform
    return BINARIES.get(name, name)


@cache
def version_of(binary: str) -> str | None:
    """The first x.y[.z] a tool prints for `--version` (`version` when that says nothing)."""
    path = binary if "/" in binary else shutil.which(binary)
    if path is None:
        return None
    for args in (["--version"], ["version"]):
        try:
            proc = subprocess.run([path, *args], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        found = _VERSION.search(proc.stdout + "\n" + proc.stderr)
        if found:
            return ".".join(part or "0" for part in found.groups())
    return None


def problem(tools: dict[str, str], terraform: str | None) -> str | None:
    """Why the runner does not meet `tools` (None: it does)."""
    import semantic_version

    for tool, constraint in sorted(tools.items()):
        binary = binary_for(tool, terraform)
        found = version_of(binary)
        if found is None:
            return (
                f"dependencies.tools wants {tool} {constraint}, and no {binary} that prints its version "
                "is on this runner's PATH: install it in the runner's image (atmos-tasks installs no tools)"
            )
        wanted = spec(constraint)
        if wanted is not None and semantic_version.Version(found) not in wanted:
            return (
                f"dependencies.tools wants {tool} {constraint}, and this runner has {binary} {found}: "
                "install a version the constraint allows, or change the constraint"
            )
    return None
