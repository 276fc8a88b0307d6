"""`atmos-tasks rollout | plan | build`: doit's `run` of one target's tasks, through the loader
plugin (`doit_loader.AtmosTaskLoader`), exactly as `doit <kind>:<deployment>:<target>` runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from doit.doit_cmd import DoitMain

from atmos_tasks.config import load_config
from atmos_tasks.discovery import default_target
from atmos_tasks.doit_loader import AtmosTaskLoader


def run_tasks(
    root: Path, kind: str, deployment: str, target: str | None, jobs: int, options: Sequence[str]
) -> int:
    """Run `<kind>:<deployment>:<target>` (default: the manifest's `context.default_target`) with
    `jobs` tasks in parallel and these task options (`--promote-from dev`, `--allow-dirty`, …);
    doit's exit code."""
    target = target or default_target(load_config(root), deployment)
    run: list[str] = ["run"]
    if jobs and jobs > 1:
        run += ["-n", str(jobs)]
    run += [f"{kind}:{deployment}:{target}", *options]
    return int(DoitMain(AtmosTaskLoader(root)).run(run) or 0)
