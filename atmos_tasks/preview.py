"""A preview (`plan:<dep>:<target>`): what a rollout would change, planned against what is deployed.

A rollout's plan reads its dependencies' outputs from their applies and its images from their
builds. A preview runs neither: a dependency's outputs are read from its current state (the
executor's `deployed_outputs`), an image is the one recorded for the current source, else the one
the target runs now: then a rollout would build it again, and the components bound to it would
change with it (`rebuilt_images`). Everything here is pure: the engine reads Git, the executor
reads state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atmos_tasks.images.stage import BuildJob

BUILT_FOR_SOURCE = "built for this source"


def running_phrase(target: str) -> str:
    return f"{target} runs now (its source changed: a rollout builds a new one)"


def split_image(image: str, repository: str) -> tuple[str, str, str]:
    """(registry, repository, digest) of `registry/repository@digest`; the registry may be empty."""
    name, _, digest = image.partition("@")
    if name == repository or not name.endswith("/" + repository):
        return "", name, digest
    return name[: -len(repository) - 1], repository, digest


def choose_image(
    name: str, target: str, job: BuildJob, recorded: Iterable[Any], running: str | None
) -> dict[str, Any]:
    """The image a preview binds for nixpack component `name`.

    `recorded`: build-note entries of the component (the current commit's, then the deployed
    commit's); the first built from the same source and plan wins. Else `running`, the image the
    target's current record names. Else the dependants cannot be planned: `status: skipped`.
    """
    for entry in recorded:
        if (
            isinstance(entry, dict)
            and entry.get("image")
            and entry.get("digest")
            and entry.get("source_hash") == job.source_hash
            and entry.get("plan_hash") == job.plan_hash
            and entry.get("repository") == job.repository
        ):
            return {
                "status": "built",
                "image": entry["image"],
                "digest": entry["digest"],
                "registry": entry.get("registry") or "",
                "repository": job.repository,
                "from": BUILT_FOR_SOURCE,
            }
    if running:
        registry, repository, digest = split_image(running, job.repository)
        return {
            "status": "built",
            "image": running,
            "digest": digest,
            "registry": registry,
            "repository": repository,
            "from": running_phrase(target),
        }
    return {
        "status": "skipped",
        "reason": f"no image of {name} is recorded for this source and {target} runs none",
    }


def never_applied_reason(never_applied: list[str], image_reasons: list[str]) -> str | None:
    """Why a preview cannot plan a component whose inputs are not deployed anywhere yet."""
    reasons = [f"{name} has never been applied" for name in sorted(never_applied)] + image_reasons
    return "; ".join(reasons) + ": roll out first" if reasons else None


def rebuilds(image: Mapping[str, Any]) -> bool:
    """Whether a rollout would build this image again: the preview stands in the one the target
    runs because none is recorded for the current source (`choose_image`)."""
    return image.get("status") == "built" and image.get("from") != BUILT_FOR_SOURCE


def rebuilt_images(image_from: Mapping[str, str]) -> list[str]:
    """Of the images a component's preview plan was made with (`{name: from}`), those a rollout
    would build again: the component then changes, whatever its plan against the old one says."""
    return sorted(name for name, origin in image_from.items() if origin != BUILT_FOR_SOURCE)
