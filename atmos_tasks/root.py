"""Where a repository starts: a module of its own, so that finding it imports nothing else."""

from __future__ import annotations

from pathlib import Path


def find_root(start: Path) -> Path:
    """The nearest directory holding `atmos.yaml` or `deployments/`; else `start` itself."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / "atmos.yaml").is_file() or (candidate / "deployments").is_dir():
            return candidate
    return start
