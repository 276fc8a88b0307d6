"""The build stage of nixpack components (SPEC §8): plans, Dockerfiles, OCI images and SBOMs.

`planner` is the pure core; `dockerfile` and `oci` turn a plan into something an engine or a
registry takes; `sbom` describes what went in. See docs/build.md.
"""

from atmos_tasks.images.errors import BuildError
from atmos_tasks.images.planner import BuildPlan, detect_provider, make_plan, needs_daemon, source_hash

__all__ = ["BuildError", "BuildPlan", "detect_provider", "make_plan", "needs_daemon", "source_hash"]
