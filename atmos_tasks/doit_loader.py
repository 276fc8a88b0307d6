"""doit integration: the task creator behind `from atmos_tasks.dodo import *` and a loader plugin.

Both compile only what the command line selects, hold a lock per (deployment, target) while a
rollout (or a preview) runs (a second run on the same target waits, then finds its work up to date; other
targets never wait), and turn bad input into a message and exit code instead of a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doit.cmd_base import TaskLoader2

from atmos_tasks.config import find_root
from atmos_tasks.errors import EXIT_BAD_INPUT, AtmosError, raise_if_any, render_error
from atmos_tasks.gitrepo import GitError
from atmos_tasks.invocation import Invocation, from_loader

# Held for the life of the process: released when the run ends.
_HELD_LOCKS: list[Any] = []


def doit_config(root: Path) -> dict[str, Any]:
    from atmos_tasks.reporter import RolloutReporter

    work = find_root(root) / ".atmos"
    work.mkdir(exist_ok=True)
    dep_file = work / "doit.sqlite"
    _private_database(dep_file)
    return {
        "dep_file": str(dep_file),
        "backend": "sqlite3",
        "reporter": RolloutReporter,
        "default_tasks": ["_atmos"],
    }


def _private_database(path: Path) -> None:
    """doit's saved values hold Terraform outputs, sensitive ones included: the database (and the
    journal SQLite gives the same mode) is its owner's only."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError:
        return
    from atmos_tasks.secrets import private_file

    private_file(path)


def _hint() -> None:
    print("atmos-tasks: nothing selected. Try `doit list`, then e.g. `doit rollout:<deployment>:<target>`.")


def _lock_targets(root: Path, pairs: list[tuple[str, str]]) -> None:
    from filelock import FileLock, Timeout

    folder = root / ".atmos" / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    for deployment, target in sorted(set(pairs)):
        lock = FileLock(str(folder / f"{deployment}--{target}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            sys.stderr.write(f"waiting for another rollout of {deployment} to {target} to finish…\n")
            lock.acquire()
        _HELD_LOCKS.append(lock)


def create_tasks(start: Path, invocation: Invocation) -> Iterator[dict[str, Any]]:
    from atmos_tasks.engine import Workspace, compile_plans
    from atmos_tasks.graph import build_tasks

    try:
        raise_if_any(invocation.problems)
        workspace = Workspace(find_root(start))
        plans = compile_plans(workspace, invocation)
    except AtmosError as err:
        sys.stderr.write(render_error(err) + "\n")
        sys.stdout.flush()
        raise SystemExit(err.exit_code) from None
    except GitError as err:
        sys.stderr.write(f"error: {err}\n")
        raise SystemExit(EXIT_BAD_INPUT) from None
    if invocation.executes:
        _lock_targets(
            workspace.root,
            [(p.deployment, p.target) for p in plans if invocation.locks(p.deployment, p.target)],
        )
    yield {"basename": "_atmos", "actions": [_hint], "uptodate": [False], "verbosity": 2}
    yield from build_tasks(plans)


class AtmosTaskLoader(TaskLoader2):
    """`doit` with no dodo.py: `[GLOBAL] loader = atmos` in doit.cfg (or pyproject's [tool.doit])."""

    def __init__(self, root: Path | None = None) -> None:
        super().__init__()
        self.root = root

    def setup(self, opt_values: dict[str, Any]) -> None:
        if self.root is None:
            self.root = Path.cwd()

    def load_doit_config(self) -> dict[str, Any]:
        return doit_config(self.root or Path.cwd())

    def load_tasks(self, cmd: Any, pos_args: list[str]) -> list[Any]:
        from doit.loader import generate_tasks

        invocation = from_loader(cmd.get_name(), pos_args)
        return list(generate_tasks("atmos", create_tasks(self.root or Path.cwd(), invocation)))
