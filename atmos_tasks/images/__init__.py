"""The build stage of nixpack components (SPEC §8): plans, Dockerfiles, OCI images and SBOMs.

`planner` is the pure core; `dockerfile` and `oci` turn a plan into something an engine or a
registry takes; `sbom` describes what went in. See docs/build.md.

The names below are loaded when first asked for: a rollout that only records an SBOM
(`images.sbom`) does not load the planner (pydantic dataclasses, tarfile, tomllib).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atmos_tasks.images.errors import BuildError
    from atmos_tasks.images.planner import BuildPlan, detect_provider, make_plan, needs_daemon, source_hash

__all__ = ["BuildError", "BuildPlan", "detect_provider", "make_plan", "needs_daemon", "source_hash"]

_HOMES = {"BuildError": "errors"} | {name: "planner" for name in __all__ if name != "BuildError"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
