"""Shared fixtures: real Git repositories made from the bundled example, driven as a user would.

Every command runs as a subprocess (`python -m doit`, `python -m atmos_tasks.cli`) with an
isolated HOME, so the real Git and the real Terraform of the `[terraform]` extra are exercised
exactly as on a user's machine, offline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# A real Docker engine, a real registry and locally made base images (docker_env.py); a throwaway
# PostgreSQL server for Terraform's pg backend (postgres_env.py); registries of a test's own, to
# stop, damage or put behind basic auth (registry_env.py).
pytest_plugins = ["tests.docker_env", "tests.postgres_env", "tests.registry_env"]

# Property tests: HYPOTHESIS_PROFILE=soak runs many more examples, also of the ones that drive real
# rollouts (tests/test_validate_property.py keeps those few in the default profile).
settings.register_profile(
    "soak", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parent.parent


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: one worker more than cores. The suite mostly waits on the real tools it drives
    (Terraform, Git, Docker, the probes' pauses), so a core that would idle takes another test."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own reading of it
    return (os.cpu_count() or 1) + 1


EXAMPLES = ROOT / "examples"


def isolated_env(home: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # Bytecode is written: hundreds of subprocesses would otherwise each recompile the package.
        if not key.startswith(("GIT_", "TF_", "GITHUB_", "GITLAB_", "ATMOS_TASKS_", "CI", "DOIT_"))
        and key != "PYTHONDONTWRITEBYTECODE"
    }
    env.update({"HOME": str(home), "NO_COLOR": "1", "GIT_CONFIG_NOSYSTEM": "1"})
    # Every run the suite makes compiles its task graph and checks that a graph the cache holds for
    # the same key is the same graph (tests/e2e/test_graph_cache.py covers serving it).
    env["ATMOS_TASKS_GRAPH_CACHE"] = os.environ.get("ATMOS_TASKS_GRAPH_CACHE", "verify")
    return env


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Ada Tester\n\temail = ada@example.com\n[init]\n\tdefaultBranch = main\n"
        "[advice]\n\tdetachedHead = false\n"
    )
    return home


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return isolated_env(home)


class Repo:
    """A user repository on disk, with helpers that run the real commands in it."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        self.env = env

    def run(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=cwd or self.path,
            env={**self.env, **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def doit(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "doit", *args, env=env)

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "atmos_tasks.cli", *args, env=env)

    def git(self, *args: str) -> str:
        proc = self.run("git", *args)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def write(self, rel: str, text: str) -> Path:
        path = self.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def replace(self, rel: str, old: str, new: str) -> None:
        path = self.path / rel
        text = path.read_text()
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new, 1))

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.head()

    def refs(self, prefix: str = "refs/atmos/") -> dict[str, str]:
        out = self.git("for-each-ref", "--format=%(refname) %(objectname)", prefix)
        return dict(line.split(" ", 1) for line in out.splitlines() if line)

    def tags(self, prefix: str = "atmos/") -> list[str]:
        return sorted(t for t in self.git("tag", "-l", f"{prefix}*").splitlines() if t)

    def tag_message(self, tag: str) -> str:
        """The annotated tag's message, byte for byte."""
        proc = self.run("git", "cat-file", "tag", f"refs/tags/{tag}")
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split("\n\n", 1)[1]


def make_repo(source: Path, dest: Path, env: dict[str, str]) -> Repo:
    shutil.copytree(source, dest, symlinks=True)
    return Repo(dest, env)


@pytest.fixture(scope="session")
def example_template(tmp_path_factory: pytest.TempPathFactory, home: Path) -> Path:
    """The example, initialised once per session by the real `atmos-tasks example init`."""
    path = tmp_path_factory.mktemp("template") / "example"
    proc = subprocess.run(
        [sys.executable, "-m", "atmos_tasks.cli", "example", "init", str(path)],
        env=isolated_env(home),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.fixture
def repo(example_template: Path, tmp_path: Path, env: dict[str, str]) -> Iterator[Repo]:
    yield make_repo(example_template, tmp_path / "repo", env)
