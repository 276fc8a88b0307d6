"""`atmos-tasks drift <deployment> --target T`: does what a target runs still match the
configuration of the commit it was deployed from? (SPEC §12, issue 14)

- What runs is what the component refs say (`tracking.read_records`): each component's deployed
  commit. That commit's configuration is compiled as a promotion or a rollback compiles it: a
  worktree of the commit (`workspace_at`), the target's context, working data here. Components that
  run different commits are compiled at each.
- Each deploying component's kind plans it against the real state (`Kind.drift`; Terraform: the
  executor's `plan -detailed-exitcode`, then `show -json`), dependencies first, in a workdir of
  the check's own (`.atmos/drift/<dep>/<target>/workdir/<component>`), with the outputs its
  dependencies' states hold and the images the target runs. Nothing is applied. The rollout's
  workdirs, saved plans and vendored workspaces and doit's database are never touched, so the next
  rollout finds what it found before; a vendored module is materialised from the store for the
  check (`.atmos/drift/<dep>/<target>/modules/<component>`).
- Image components (nothing of theirs runs that could drift) and kinds without a check are listed
  as not checked.
- The result goes into the `drift` note of each deployed commit (`refs/notes/atmos/<dep>/drift`:
  `{target: {component: entry}}`) through `notes.update_note`, pushed with a remote. `status
  --drift` and the report read it back (`recorded`, `current`).
- Exit code: 0 nothing drifted, 4 drift found, 1 a check failed (it wins: the answer is incomplete).

The pure parts: `exit_code`, `note_entry`, `note_changes`, `current`, `check_order`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmos_tasks import cancel, secrets
from atmos_tasks.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_TASK_FAILED, AtmosError, render_error
from atmos_tasks.gitrepo import GitError, GitRepo
from atmos_tasks.tracking import ComponentState, leaf, rfc3339

if TYPE_CHECKING:
    from atmos_tasks.engine import TargetPlan
    from atmos_tasks.manifest import ComponentRef
    from atmos_tasks.workspace import Workspace

DRIFT = "drift"  # the notes namespace
IN_SYNC, DRIFTED, FAILED, NOT_CHECKED = "in-sync", "drifted", "failed", "not-checked"
EXIT_DRIFT = 4


def exit_code(states: Iterable[str]) -> int:
    """1 when a check failed (whatever else was found: the answer is incomplete), else 4 when a
    component drifted, else 0."""
    found = set(states)
    if FAILED in found:
        return EXIT_TASK_FAILED
    if DRIFTED in found:
        return EXIT_DRIFT
    return EXIT_OK


@dataclass
class Checked:
    """One component's check."""

    name: str
    kind: str
    git_sha: str
    state: str
    # The record that put `git_sha` in place: a check speaks for that deployment only.
    deployed_at: str | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] | None = None
    reason: str | None = None  # not checked: why
    error: str | None = None
    workdir: str | None = None
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"kind": self.kind, "git_sha": self.git_sha, "state": self.state}
        if self.state == DRIFTED:
            found["changes"] = self.changes
            if self.counts is not None:
                found["counts"] = self.counts
        if self.reason:
            found["reason"] = self.reason
        if self.error:
            found["error"] = self.error
        if self.workdir:
            found["workdir"] = self.workdir
        return secrets.RUN.mask_tree(found)  # type: ignore[no-any-return]


def note_entry(checked: Checked, checked_at: str, checked_by: str) -> dict[str, Any] | None:
    """What the note keeps of a check: its state, when, by whom, which deployment it checked, and
    for a drifted component what would change (addresses, actions, counts). Never a value or an
    error text (the note is shared; the error was shown). None for a component not checked."""
    if checked.state not in (IN_SYNC, DRIFTED, FAILED):
        return None
    entry: dict[str, Any] = {
        "state": checked.state,
        "checked_at": checked_at,
        "checked_by": checked_by,
        "deployed_at": checked.deployed_at,
    }
    if checked.state == DRIFTED:
        entry["changes"] = checked.changes
        if checked.counts is not None:
            entry["counts"] = checked.counts
    return entry


def current(entry: Any, deployed_at: str | None) -> dict[str, Any] | None:
    """A recorded check, when it checked the deployment that runs now: after a later rollout of the
    component (even of the same commit, which may have repaired it) it speaks of something else."""
    if not isinstance(entry, dict) or "state" not in entry:
        return None
    return entry if entry.get("deployed_at") == deployed_at else None


def check_order(depends_on: Mapping[str, Collection[str]]) -> list[str]:
    """The components, each after the ones it depends on (of those listed), else in the order they
    are listed; what a cycle holds (commits of one target that order them differently) comes last,
    as listed."""
    waiting = {name: {d for d in deps if d in depends_on and d != name} for name, deps in depends_on.items()}
    done: list[str] = []
    while True:
        ready = next((name for name, deps in waiting.items() if not deps), None)
        if ready is None:
            break
        done.append(ready)
        del waiting[ready]
        for deps in waiting.values():
            deps.discard(ready)
    return done + list(waiting)


@dataclass
class DriftReport:
    deployment: str
    target: str
    checked_at: str
    checked_by: str
    components: list[Checked] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return exit_code(c.state for c in self.components)

    def named(self, state: str) -> list[str]:
        return [c.name for c in self.components if c.state == state]

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "target": self.target,
            "checked_at": self.checked_at,
            "checked_by": self.checked_by,
            "drifted": self.named(DRIFTED),
            "failed": self.named(FAILED),
            "components": {c.name: c.to_json() for c in self.components},
        }


def note_changes(report: DriftReport) -> dict[str, dict[str, Any]]:
    """Deployed commit → the change to its `drift` note: `{target: {component: entry}}`."""
    changes: dict[str, dict[str, Any]] = {}
    for checked in report.components:
        entry = note_entry(checked, report.checked_at, report.checked_by)
        if entry is not None:
            changes.setdefault(checked.git_sha, {}).setdefault(report.target, {})[checked.name] = entry
    return changes


def recorded(repo: GitRepo, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(deployment, commit) → its `drift` note, for those that have one: one `for-each-ref`, an
    `ls-tree` per deployment with a note, one `cat-file --batch` for all."""
    import json

    from atmos_tasks.notes import notes_ref

    by_deployment: dict[str, set[str]] = {}
    for deployment, commit in wanted:
        by_deployment.setdefault(deployment, set()).add(commit)
    if not by_deployment:
        return {}
    refs = {notes_ref(dep, DRIFT): dep for dep in sorted(by_deployment)}
    blobs: dict[tuple[str, str], str] = {}
    for name, tip in repo.for_each_ref(list(refs), ["refname", "objectname"]):
        if name in refs:
            notes = repo.notes_in(tip)
            dep = refs[name]
            blobs.update({(dep, c): notes[c] for c in by_deployment[dep] if c in notes})
    objects = repo.read_objects(sorted(set(blobs.values())))
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for key, blob in blobs.items():
        read = objects.get(blob)
        try:
            document = json.loads(read[1]) if read else None
        except ValueError:
            document = None
        if isinstance(document, dict):
            found[key] = document
    return found


@contextlib.contextmanager
def _target_lock(
    folder: Path, deployment: str, target: str, waiting: Callable[[str], None]
) -> Iterator[None]:
    """The lock rollouts of the target hold (`.atmos/locks/<dep>--<target>.lock`): a check waits for a
    rollout to finish, and a rollout for the check, rather than plan against a state being changed."""
    from filelock import FileLock, Timeout

    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / f"{deployment}--{target}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        waiting(f"waiting for another rollout of {deployment} to {target} to finish…")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@dataclass
class _Compiled:
    """One deployed commit's configuration of the target, or why it could not be compiled."""

    commit: str
    plan: TargetPlan | None = None
    refs: dict[str, ComponentRef] = field(default_factory=dict)
    failed: str | None = None
    missing: str | None = None  # the commit's manifest has no such target


def _compile_at(workspace: Workspace, deployment: str, target: str, commit: str) -> _Compiled:
    from atmos_tasks.engine import compile_target
    from atmos_tasks.invocation import RolloutOptions
    from atmos_tasks.manifest import load_deployment
    from atmos_tasks.resolve import GitInfo
    from atmos_tasks.stacks import StackLoader
    from atmos_tasks.workspace import workspace_at

    try:
        at_commit = workspace_at(workspace, commit)
        manifest = load_deployment(at_commit.config, deployment)
        if target not in manifest.model.targets:
            return _Compiled(commit, missing=f"{commit[:7]}'s manifest has no target {target}")
        plan = compile_target(
            at_commit,
            manifest,
            target,
            GitInfo(commit, ""),
            [],
            RolloutOptions(),
            StackLoader(at_commit.config),
        )
        at_commit.save_caches()
    except AtmosError as err:
        if err.exit_code != EXIT_BAD_INPUT:
            raise
        return _Compiled(
            commit, failed=f"its configuration at {commit[:7]} does not compile: {render_error(err)}"
        )
    except GitError as err:
        return _Compiled(commit, failed=f"{commit[:7]} cannot be checked out: {err}")
    return _Compiled(commit, plan, {ref.name: ref for ref in plan.resolved.components})


def _vendored(job: Any, spec: Any, dest: Path) -> Any:
    """The job with its vendored module (the object the deployed commit's entry names, from the
    store) materialised at `dest`, not in the rollout's workspace, which the next rollout checks."""
    from vendor_cache import Store

    with Store(spec.store) as store:
        found = store.fetch(spec.entry, max_age=spec.max_age)
        store.materialize(found.digest, dest)
    # A vendored module's folder, as the jobs of kinds that vendor modules name it.
    return dataclasses.replace(job, module_dir=str(dest), module_digest=found.digest)


class _Checker:
    def __init__(
        self,
        workspace: Workspace,
        deployment: str,
        target: str,
        states: dict[tuple[str, str, str], ComponentState],
    ) -> None:
        self.deployment = deployment
        self.target = target
        self.states = states
        self.home = workspace.config.work_dir / "drift" / deployment / target
        # What each dependency's state outputs, as its own check read it.
        self.outputs: dict[str, dict[str, Any]] = {}

    def state(self, name: str) -> ComponentState | None:
        return self.states.get((self.deployment, self.target, name))

    def check(self, name: str, compiled: _Compiled) -> Checked:
        from atmos_tasks import kinds

        state = self.state(name)
        current = state.current if state else None
        commit = compiled.commit
        kind_name = (current.type if current else None) or "?"
        ref = compiled.refs.get(name)
        if ref is not None:
            kind_name = ref.type
        checked = Checked(name, kind_name, commit, NOT_CHECKED, current.timestamp if current else None)
        if compiled.failed is not None:
            checked.state, checked.error = FAILED, compiled.failed
            return checked
        if compiled.missing is not None or ref is None or compiled.plan is None:
            checked.reason = compiled.missing or f"not a component of {self.target} at {commit[:7]}"
            return checked
        kind = kinds.of(ref)
        if kind.role == "image":
            checked.reason = "an image: nothing of it runs that could drift"
            return checked
        if type(kind).drift is kinds.Kind.drift:
            checked.reason = f"the {kind.name} kind has no drift check"
            return checked
        if cancel.requested():
            checked.reason = f"cancelled ({cancel.requested()})"
            return checked
        plan = compiled.plan
        job = plan.jobs[ref]
        started = time.monotonic()
        try:
            if ref in plan.vendors:
                job = _vendored(job, plan.vendors[ref], self.home / "modules" / leaf(name))
            outputs, images = self._dependencies(plan, ref)
            workdir = self.home / "workdir" / leaf(name)
            values = kind.drift(job, outputs, images, str(workdir))
        except Exception as err:  # a failure is a value: the other components are still checked
            values = {"status": FAILED, "error": f"{type(err).__name__}: {err}"}
        checked.seconds = time.monotonic() - started
        status = values.get("status")
        if isinstance(values.get("outputs"), dict):
            self.outputs[name] = values["outputs"]
        if status in (IN_SYNC, DRIFTED):
            checked.state = str(status)
            checked.changes = list(values.get("changes") or [])
            checked.counts = values.get("counts")
        else:
            checked.state = FAILED
            checked.error = secrets.mask(str(values.get("error") or f"the check said {status!r}"))
            checked.workdir = values.get("workdir")
        return checked

    def _dependencies(
        self, plan: TargetPlan, ref: ComponentRef
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """What its templates read, as deployed now: its dependencies' outputs (as their checks
        read them, else from their state), the images the target runs."""
        from atmos_tasks import kinds

        outputs: dict[str, dict[str, Any]] = {}
        images: dict[str, dict[str, Any]] = {}
        for dep in plan.resolved.components[ref].depends_on:
            if dep in plan.jobs:
                found = self.outputs.get(dep.name)
                if found is None:
                    found = kinds.of(dep).deployed_outputs(plan.jobs[dep]) or {}
                outputs[dep.name] = found
            else:
                state = self.state(dep.name)
                image = state.current.image if state and state.current else None
                if image:
                    images[dep.name] = {"image": image}
        return outputs, images


def check_drift(
    workspace: Workspace,
    deployment: str,
    target: str,
    remote: str | None = None,
    on_checked: Callable[[Checked], None] | None = None,
    waiting: Callable[[str], None] | None = None,
    jobs: int = 1,
) -> DriftReport:
    """Check every component the target runs (`jobs` at a time, each after its dependencies), and
    record the result in the deployed commits' notes. `on_checked` hears of each as it finishes."""
    from atmos_tasks.engine import fetch_records
    from atmos_tasks.notes import merge_nested, update_note
    from atmos_tasks.queries import check_scope
    from atmos_tasks.record import actor
    from atmos_tasks.tracking import read_records

    repo = workspace.repo
    remote = remote or os.environ.get("ATMOS_TASKS_REMOTE") or None
    if remote:
        fetch_records(repo, remote)
    report = DriftReport(deployment, target, rfc3339(datetime.now(UTC)), actor(repo.ident()))
    check_scope(repo, read_records(repo, deployment, target), deployment, target)
    locks = workspace.config.work_dir / "locks"
    with _target_lock(locks, deployment, target, waiting or (lambda _text: None)):
        # Read again under the lock: a rollout that held it may have recorded since.
        states = read_records(repo, deployment, target)
        running = {
            name: state.git_sha
            for (_dep, _tgt, name), state in sorted(states.items())
            if state.git_sha is not None and state.current is not None
        }
        compiled = {
            commit: _compile_at(workspace, deployment, target, commit)
            for commit in sorted(set(running.values()), key=list(running.values()).index)
        }
        depends_on: dict[str, list[str]] = {}
        for name, commit in running.items():
            found = compiled[commit]
            ref = found.refs.get(name)
            if found.plan is not None and ref is not None:
                depends_on[name] = [d.name for d in found.plan.resolved.components[ref].depends_on]
            else:
                depends_on[name] = []
        checker = _Checker(workspace, deployment, target, states)
        order = check_order(_in_plan_order(depends_on, compiled, running))
        cancel.install()
        report.components = _run_checks(
            order,
            depends_on,
            lambda name: checker.check(name, compiled[running[name]]),
            jobs,
            on_checked or (lambda _checked: None),
        )
        workspace.save_caches()
        for commit, change in note_changes(report).items():
            update_note(repo, deployment, DRIFT, commit, change, merge_nested, remote)
    return report


def _run_checks(
    order: list[str],
    depends_on: Mapping[str, Collection[str]],
    check: Callable[[str], Checked],
    jobs: int,
    on_checked: Callable[[Checked], None],
) -> list[Checked]:
    """Each component checked once its dependencies were (their outputs are what it reads), up to
    `jobs` at once; in `order`."""
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    results: dict[str, Checked] = {}
    pending = list(order)
    running: dict[Future[Checked], str] = {}
    with ThreadPoolExecutor(max(jobs, 1)) as pool:
        while pending or running:
            for name in list(pending):
                if len(running) >= max(jobs, 1):
                    break
                # A dependency still pending waits; one in a cycle is taken when nothing else runs.
                blocked = [d for d in depends_on.get(name, ()) if d in depends_on and d not in results]
                if not blocked or not running:
                    pending.remove(name)
                    running[pool.submit(check, name)] = name
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                results[name] = future.result()
                on_checked(results[name])
    return [results[name] for name in order]


def _in_plan_order(
    depends_on: dict[str, list[str]], compiled: dict[str, _Compiled], running: dict[str, str]
) -> dict[str, list[str]]:
    """`depends_on` listed in the rollout's order of the commit most components run (then by name)."""
    order: dict[str, int] = {}
    for found in compiled.values():
        if found.plan is not None:
            for ref in found.plan.order:
                order.setdefault(ref.name, len(order))
    names = sorted(depends_on, key=lambda n: (order.get(n, len(order)), n))
    return {name: depends_on[name] for name in names}
