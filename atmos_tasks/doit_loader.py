"""doit integration: the task creator behind `from atmos_tasks.dodo import *` and a loader plugin.

Both compile only what the command line selects, hold a lock per (deployment, target) while a
rollout (or a preview) runs (a second run on the same target waits, then finds its work up to date; other
targets never wait), and turn bad input into a message and exit code instead of a traceback.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doit.cmd_base import TaskLoader2

from atmos_tasks import cancel, process
from atmos_tasks.errors import EXIT_BAD_INPUT, EXIT_TASK_FAILED, AtmosError, raise_if_any, render_error
from atmos_tasks.gitrepo import GitError
from atmos_tasks.invocation import Invocation, from_loader
from atmos_tasks.root import find_root

process.exit_quickly()

# Held for the life of the process: released when the run ends.
_HELD_LOCKS: list[Any] = []
# Locks held on a remote (`locks.RemoteLocks`): released when the run ends, by the process that took them.
_REMOTE_LOCKS: list[Any] = []
_REMOTE_LOCKS_OWNER = os.getpid()


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


def _lock_targets(root: Path, pairs: list[tuple[str, str]]) -> bool:
    """Take each target's lock; True when another run held one (it may have recorded since)."""
    from filelock import FileLock, Timeout

    folder = root / ".atmos" / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    waited = False
    for deployment, target in sorted(set(pairs)):
        lock = FileLock(str(folder / f"{deployment}--{target}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            waited = True
            sys.stderr.write(f"waiting for another rollout of {deployment} to {target} to finish…\n")
            while True:
                if cancel.requested():
                    raise AtmosError.single(
                        f"cancelled ({cancel.requested()}) while waiting for another rollout of "
                        f"{deployment} to {target}; nothing ran",
                        None,
                        "run it again when you want it deployed",
                        exit_code=EXIT_TASK_FAILED,
                    ) from None
                try:
                    lock.acquire(timeout=0.5)
                    break
                except Timeout:
                    continue
        _HELD_LOCKS.append(lock)
    return waited


def _lock_remotes(workspace: Any, invocation: Invocation, plans: list[Any]) -> bool:
    """Take, on the remote, the lock of every component each deploying plan may apply; True when
    the remote's records of those targets moved since they were compiled."""
    remote_plans = [
        p for p in plans if p.remote and not p.preview and invocation.deploys(p.deployment, p.target)
    ]
    if not remote_plans:
        return False  # nothing to lock: no lock machinery loaded
    from atmos_tasks.engine import fetch_records
    from atmos_tasks.locks import RemoteLocks
    from atmos_tasks.record import actor
    from atmos_tasks.tracking import REF_ROOT

    repo = workspace.repo
    scopes = sorted({f"{REF_ROOT}/{p.deployment}/{p.target}/" for p in remote_plans})

    def snapshot() -> list[list[str]]:
        return repo.for_each_ref(scopes, ["refname", "objectname"])

    before = snapshot()
    who = actor(repo.ident())
    if not _REMOTE_LOCKS:
        atexit.register(_release_remote_locks)
    # Always in the same order, so two runs that need several targets cannot wait for each other.
    for plan in sorted(remote_plans, key=lambda p: (p.deployment, p.target)):
        components = locked_components(plan, invocation)
        locks = RemoteLocks(repo, plan.remote, plan.deployment, plan.target, components, plan.git.sha, who)
        locks.take()
        _REMOTE_LOCKS.append(locks)
    for remote in sorted({p.remote for p in remote_plans}):
        fetch_records(repo, remote)
    # After a wait, everything the gates read (records, approvals, rejections) may have moved.
    return any(locks.waited for locks in _REMOTE_LOCKS) or snapshot() != before


def locked_components(plan: Any, invocation: Invocation) -> list[str]:
    """The components a run may apply on the plan's target: every one for a rollout; for tasks of
    single components (a CI matrix job's `apply:<dep>:<target>:<c>`), those and what they need."""
    from atmos_tasks.invocation import DEPLOYING_KINDS, IMAGE_KINDS

    selected = [
        s
        for s in invocation.selected
        if s.kind in (*DEPLOYING_KINDS, *IMAGE_KINDS) and s.matches(plan.deployment, plan.target)
    ]
    if not selected or any(not s.component or s.kind in ("rollout", "record") for s in selected):
        return [ref.name for ref in plan.order]
    keep = plan.resolved.needed_by({s.component for s in selected})
    return [ref.name for ref in plan.order if ref in keep]


def _release_remote_locks() -> None:
    if os.getpid() != _REMOTE_LOCKS_OWNER:
        return  # a worker process forked by `doit -n`: the locks are its parent's
    while _REMOTE_LOCKS:
        warning = _REMOTE_LOCKS.pop().release()
        if warning:
            sys.stderr.write(f"warning: {warning}\n")


# How this run's task graph was obtained (the rollout's summary line shows it).
GRAPH: Any = None


def create_tasks(start: Path, invocation: Invocation) -> Iterator[dict[str, Any]]:
    """The tasks of the invocation (`_tasks`), made with the garbage collector paused."""
    with process.collector_paused():
        yield from _tasks(start, invocation)


def _tasks(start: Path, invocation: Invocation) -> Iterator[dict[str, Any]]:
    global GRAPH
    from atmos_tasks import graphcache

    outcome = GRAPH = graphcache.Outcome()
    try:
        raise_if_any(invocation.problems)
        root = outcome.root = find_root(start)
        cache = graphcache.GraphCache(root) if graphcache.mode() != "off" else None
        key = tree = found = None
        if cache is not None:
            tree = cache.repo.working_tree()
            key = cache.key(invocation, tree)
            found = cache.load(key)
            if found is not None and graphcache.mode() == "on":
                pairs = found.pairs
                if invocation.executes:
                    cancel.install()
                    _lock_targets(root, [p for p in pairs if invocation.locks(*p)])
                outcome.cached = True
                yield from _ordered(
                    root, _settled_cached(root, key, found, invocation, outcome), outcome, invocation
                )
                return
        plans, tasks, observed = _compile(root, invocation, tree)
        memo = sys.modules.get("atmos_tasks.resolvememo")
        if memo is not None:
            outcome.reused = (memo.COUNTS[0], memo.COUNTS[1])
    except AtmosError as err:
        _release_remote_locks()
        sys.stderr.write(render_error(err) + "\n")
        sys.stdout.flush()
        raise SystemExit(err.exit_code) from None
    except GitError as err:
        sys.stderr.write(f"error: {err}\n")
        raise SystemExit(EXIT_BAD_INPUT) from None
    if cache is not None and key is not None:
        reason = _uncacheable(plans, observed)
        if reason is None:
            pairs = [(p.deployment, p.target) for p in plans]
            if found is not None:
                graphcache.verify(found, pairs, tasks)
            try:
                cache.store(key, observed, pairs, tasks)
            except Exception as err:  # a cache is a hint: a read-only checkout, a plugin's unpicklable job
                reason = f"not stored: {type(err).__name__}"
            else:
                _settled(key, pairs, tasks, invocation, outcome)
        outcome.reason = reason or ""
    yield from _ordered(root, tasks, outcome, invocation)


def _settled_cached(
    root: Path, key: str, found: Any, invocation: Invocation, outcome: Any
) -> list[dict[str, Any]]:
    """The graph to run from the cache: a settled rollout's recorded answer when its mark holds
    (`settled.py`), from the few tasks kept for it; else the whole graph. Read under the targets'
    locks (taken before): a run that just finished has left its mark."""
    from atmos_tasks import settled

    if not settled.eligible_run(invocation, root):
        return found.tasks
    skeleton = found.skeleton()
    if skeleton is None:
        return found.tasks
    outcome.key, outcome.pairs = key, found.pairs
    mark = settled.load(root, key, found.pairs)
    kept = None if mark is None else settled.shortcut(skeleton, mark)
    if kept is None:
        return found.tasks
    outcome.settled = mark
    return kept


def _settled(
    key: str,
    pairs: list[tuple[str, str]],
    tasks: list[dict[str, Any]],
    invocation: Invocation,
    outcome: Any,
) -> None:
    """A graph just compiled and stored: the reporter may leave a settled mark for it."""
    from atmos_tasks import graphcache, settled

    if (
        graphcache.mode() == "on"
        and outcome.root is not None
        and settled.eligible(tasks, invocation, outcome.root)
    ):
        outcome.key, outcome.pairs = key, pairs


def _ordered(
    root: Path, tasks: list[dict[str, Any]], outcome: Any, invocation: Invocation
) -> list[dict[str, Any]]:
    """The tasks less the components known to be up to date (`answered.py`), ready ones to be
    started critical path first, a started chain continued first (`durations.py`). Called with
    the targets' locks held: what doit saved for them stays as read until the run ends."""
    from atmos_tasks import answered, durations, graphcache, settled

    if graphcache.mode() != "off" and settled.whole_rollouts(invocation, root):
        outcome.answers = answered.answer(root, tasks)
        if graphcache.mode() == "on":
            tasks = answered.without(tasks, outcome.answers)
        else:
            outcome.verify_answers = True
    durations.critical_first(tasks, durations.load(root))
    durations.continue_chains_first()
    outcome.seconds = time.perf_counter() - outcome.started
    return tasks


def _compile(root: Path, invocation: Invocation, tree: Any) -> tuple[list[Any], list[dict[str, Any]], Any]:
    """Compile the selection (observed: what it read), lock what runs, and make the tasks."""
    from atmos_tasks import graphcache
    from atmos_tasks.engine import compile_plans
    from atmos_tasks.graph import build_tasks
    from atmos_tasks.workspace import Workspace

    with graphcache.observing(root) as observed:
        workspace = Workspace(root)
        if tree is not None:
            workspace.seed_working_tree(tree)
        plans = compile_plans(workspace, invocation)
    if invocation.executes:
        # SIGTERM/SIGINT (a cancelled CI job) stop the tools gracefully and let `record` run.
        cancel.install()
        if _lock_targets(
            workspace.root,
            [(p.deployment, p.target) for p in plans if invocation.locks(p.deployment, p.target)],
        ):
            # The graph was compiled before another run of a target finished: what it read of
            # that run's records may have moved since. Run as compiled, keep nothing.
            observed.volatile.add("compiled while another run of the target was recording")
        if _lock_remotes(workspace, invocation, plans):
            # Another run recorded while this one waited: compile against what it left.
            plans = compile_plans(Workspace(workspace.root), invocation)
            observed.volatile.add("recompiled after waiting for the remote's locks")
        holders = {(locks.deployment, locks.target): locks.id for locks in _REMOTE_LOCKS}
        for plan in plans:
            plan.lock_holder = holders.get((plan.deployment, plan.target))
    tasks = [{"basename": "_atmos", "actions": [_hint], "uptodate": [False], "verbosity": 2}]
    tasks += build_tasks(plans)
    return plans, tasks, observed


def _uncacheable(plans: list[Any], observed: Any) -> str | None:
    """Why this graph must be compiled again next time (None: it may be reused)."""
    if observed.volatile:
        return ", ".join(sorted(observed.volatile))
    for plan in plans:
        what = f"{plan.deployment}/{plan.target}"
        rule = plan.manifest.model.targets[plan.target].promotion
        if rule is not None:
            return f"{what} has a promotion rule (its gates read the clock and who runs)"
        if plan.source is not None or plan.remote or plan.approvals:
            return f"{what} is a promotion, a rollback, approved or shared through a remote"
        if plan.preview or plan.record_sign == "always":
            return f"{what} is a preview or signs its records"
    return None


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
