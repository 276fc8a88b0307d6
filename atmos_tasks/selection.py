"""Which (deployment, target) pairs an invocation selects: task names, globs, the default target."""

from __future__ import annotations

import fnmatch

from atmos_tasks.errors import AtmosError, Problem
from atmos_tasks.invocation import Invocation
from atmos_tasks.manifest import Manifest, load_deployment
from atmos_tasks.workspace import Workspace


def _has_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def selected_pairs(
    workspace: Workspace, invocation: Invocation
) -> tuple[list[tuple[str, str]], dict[str, Manifest]]:
    """(deployment, target) pairs the invocation needs compiled, and their manifests."""
    pairs: list[tuple[str, str]] = []
    manifests: dict[str, Manifest] = {}
    problems: list[Problem] = []

    def manifest(name: str) -> Manifest | None:
        if name not in manifests:
            try:
                manifests[name] = load_deployment(workspace.config, name)
            except AtmosError as err:
                problems.extend(err.problems)
                return None
        return manifests[name]

    wanted: list[tuple[str, str, bool]] = []
    if invocation.selects_everything:
        wanted = [(name, "*", False) for name in workspace.deployment_names()]
    for item in invocation.selected:
        if _has_glob(item.deployment):
            names = [n for n in workspace.deployment_names() if item.matches(n, "*")]
        else:
            names = [item.deployment]
        wanted += [(name, item.target, not _has_glob(item.target)) for name in names]
    for name, target_pattern, literal in wanted:
        found = manifest(name)
        if found is None:
            continue
        targets = [t for t in found.target_names() if fnmatch.fnmatchcase(t, target_pattern)]
        if literal and not targets:
            problems.append(
                Problem(
                    f"deployment {name!r} has no target {target_pattern!r}",
                    found.locate(["targets"], at_key=True),
                    f"targets: {', '.join(found.promotion_order())}",
                )
            )
        pairs += [(name, t) for t in targets if (name, t) not in pairs]
    if problems:
        raise AtmosError(problems)
    return pairs, manifests


# Records mirror the remote (it is the truth about what is deployed). Notes are not in this list:
# they are merged into the local ones (`fetch_records`), since they may hold entries not pushed yet.
