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


def module_sources(versions: Path, bare: Path) -> None:
    """The Git repository the example vendors its modules from: one tag per module version.

    `<versions>/<module>/<version>/` becomes folder `<module>/` at tag `v<version>`, versions in
    order, so `git::./.sources/modules.git//alarms?ref=v1.3.0` picks one.
    """
    work = bare.parent / "modules-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    _git(work, "init", "-q", "-b", "main")
    _git(work, "config", "user.email", "modules@example.com")
    _git(work, "config", "user.name", "example modules")
    releases = sorted(
        (tuple(int(p) for p in version.name.split(".")), module.name, version)
        for module in versions.iterdir()
        if module.is_dir()
        for version in module.iterdir()
        if version.is_dir()
    )
    for number, name, folder in releases:
        shutil.rmtree(work / name, ignore_errors=True)
        shutil.copytree(folder, work / name)
        _git(work, "add", "-A")
        label = ".".join(map(str, number))
        _git(work, "commit", "-q", "-m", f"{name} {label}")
        _git(work, "tag", f"v{label}")
    _git(bare.parent, "clone", "-q", "--bare", str(work), str(bare))
    shutil.rmtree(work)


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
        ignore=shutil.ignore_patterns(
            ".atmos", ".doit.db*", "__pycache__", ".terraform", "*.tfstate*", ".module-sources", ".sources"
        ),
    )
    module_sources(source / ".module-sources", path / ".sources" / "modules.git")
    _git(path, "init", "-q", "-b", "main")
    # A fresh machine may have no Git identity; the example still gets its first commit.
    if not subprocess.run(["git", "config", "user.email"], cwd=path, capture_output=True).stdout.strip():
        _git(path, "config", "user.email", "you@example.com")
        _git(path, "config", "user.name", "atmos-tasks example")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "Example repository: the api deployment (dev, staging, prod)")
    return path
