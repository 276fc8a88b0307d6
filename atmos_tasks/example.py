"""`atmos-tasks example init DIR`: the bundled example as a fresh Git repository, one commit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from atmos_tasks.errors import AtmosError, Location, Problem


def example_source() -> Path:
    """The example tree: packaged in the wheel, or `examples/` of a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_example", here.parent / "examples"):
        if (candidate / "deployments").is_dir():
            return candidate
    raise AtmosError(
        [Problem("the bundled example is missing from this installation", None, "reinstall atmos-tasks")]
    )


def _git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AtmosError([Problem(f"git {' '.join(args)} failed: {proc.stderr.strip()}", Location(str(cwd)))])
    return proc.stdout.strip()


def init_example(path: Path) -> Path:
    path = path.resolve()
    if path.exists() and any(path.iterdir()):
        raise AtmosError(
            [Problem(f"{path} exists and is not empty", Location(str(path)), "choose a new directory")]
        )
    source = example_source()
    shutil.copytree(
        source,
        path,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(".atmos", ".doit.db*", "__pycache__", ".terraform", "*.tfstate*"),
    )
    _git(path, "init", "-q", "-b", "main")
    # A fresh machine may have no Git identity; the example still gets its first commit.
    if not subprocess.run(["git", "config", "user.email"], cwd=path, capture_output=True).stdout.strip():
        _git(path, "config", "user.email", "you@example.com")
        _git(path, "config", "user.name", "atmos-tasks example")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "Example repository: the api deployment (dev, staging, prod)")
    return path
