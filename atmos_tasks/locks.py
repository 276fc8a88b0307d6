"""Locks that serialise runs on one component across machines, held in the remote itself (SPEC §10).

A lock is a ref `refs/atmos/locks/<dep>/<target>/<leaf>` on the remote, pointing at a commit whose
message says who holds it (a JSON document: holder id, who, host, pid, CI run, commit, since,
expires). A run takes every lock it needs in one atomic push whose leases say "absent" (or, for an
expired lock, "still that expired holder"): two runs can never both win, because each holder's
commit is unique and Git checks a lease against a different value. The holder renews its locks
while it runs and deletes them, with a lease on its own commit, when it is done.

A lock whose holder died expires (`expires`); `atmos-tasks unlock` breaks a live one and records
why in an annotated tag `atmos/unlocks/<dep>/<target>/<stamp>` on the remote.

Pure parts (`Holder`, `conflicts`) are separate from the Git calls (`RemoteLocks`); all Git access
goes through `gitrepo`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from atmos_tasks import cancel
from atmos_tasks.errors import EXIT_REFUSED, EXIT_TASK_FAILED, AtmosError, Problem
from atmos_tasks.gitrepo import ZERO_SHA, GitRepo, RefRaceError, RefUpdate
from atmos_tasks.tracking import leaf, rfc3339, tag_stamp, unleaf

if TYPE_CHECKING:
    from atmos_tasks.manifest import Manifest

LOCK_ROOT = "refs/atmos/locks"
UNLOCK_ROOT = "atmos/unlocks"
# How long a lock outlives its holder's last renewal, and how long a run waits for one by default.
DEFAULT_TTL = 600.0
DEFAULT_WAIT = 900.0
MIN_TTL = 6.0


def lock_ref(deployment: str, target: str, component: str) -> str:
    return f"{LOCK_ROOT}/{deployment}/{target}/{leaf(component)}"


def seconds_from_env(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value >= 0 else default


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: what the lock commit's message says."""

    id: str
    who: str
    host: str
    pid: int
    git_sha: str
    since: str
    expires: str
    ci_run: str | None = None
    components: tuple[str, ...] = ()

    def to_message(self) -> str:
        body = {k: v for k, v in asdict(self).items() if v not in (None, ())}
        body["components"] = list(self.components)
        return "atmos-tasks lock\n\n" + json.dumps(body, sort_keys=True) + "\n"

    @staticmethod
    def parse(text: str) -> Holder | None:
        _, _, body = text.partition("\n\n")
        try:
            found = json.loads(body)
            return Holder(
                id=str(found["id"]),
                who=str(found.get("who", "?")),
                host=str(found.get("host", "?")),
                pid=int(found.get("pid", 0)),
                git_sha=str(found.get("git_sha", "")),
                since=str(found.get("since", "")),
                expires=str(found.get("expires", "")),
                ci_run=found.get("ci_run"),
                components=tuple(found.get("components", ())),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def expired(self, now: datetime) -> bool:
        try:
            return datetime.fromisoformat(self.expires.replace("Z", "+00:00")) <= now
        except ValueError:
            return True  # an unreadable lock protects nothing

    def describe(self) -> str:
        run = f", CI run {self.ci_run}" if self.ci_run else ""
        return (
            f"{self.who} on {self.host} (pid {self.pid}{run}) deploying {self.git_sha[:7]} "
            f"since {self.since}, expires {self.expires} unless renewed"
        )


@dataclass(frozen=True)
class Held:
    ref: str
    sha: str
    holder: Holder | None  # None: unreadable, treated as expired


def read_locks(repo: GitRepo, remote: str | None, deployment: str, target: str) -> dict[str, Held]:
    """A target's locks as the remote has them (fetched into the same local names), by ref."""
    scope = f"{LOCK_ROOT}/{deployment}/{target}/"
    if remote:
        repo.fetch(remote, [f"+{scope}*:{scope}*"])
    rows = repo.for_each_ref([scope], ["refname", "objectname", "contents"])
    return {
        row[0]: Held(row[0], row[1], Holder.parse(row[2]))
        for row in rows
        if len(row) >= 3 and row[0].startswith(scope)
    }


def conflicts(wanted: Sequence[str], held: dict[str, Held], me: str, now: datetime) -> dict[str, Held]:
    """Pure: the wanted lock refs someone else holds and has not let expire."""
    return {
        ref: found
        for ref in wanted
        if (found := held.get(ref)) is not None
        and found.holder is not None
        and found.holder.id != me
        and not found.holder.expired(now)
    }


class LockRefused(AtmosError):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__([Problem(message, None, hint)], EXIT_REFUSED)


class RemoteLocks:
    """The locks of one (deployment, target)'s components on one remote, for one run."""

    def __init__(
        self,
        repo: GitRepo,
        remote: str,
        deployment: str,
        target: str,
        components: Sequence[str],
        git_sha: str,
        who: str,
        ttl: float | None = None,
    ) -> None:
        self.repo = repo
        self.remote = remote
        self.deployment = deployment
        self.target = target
        self.components = tuple(components)
        self.refs = [lock_ref(deployment, target, c) for c in self.components]
        self.git_sha = git_sha
        self.who = who
        found = ttl if ttl is not None else seconds_from_env("ATMOS_TASKS_LOCK_TTL", DEFAULT_TTL)
        # Renewed every third of it: shorter than a few seconds, a lock could lapse between renewals.
        self.ttl = max(found, MIN_TTL)
        self.id = uuid.uuid4().hex
        self.sha: str | None = None  # the lock commit this run holds
        self.waited = False
        self.lost: str | None = None
        self._last_ok = time.monotonic()
        self._stop = threading.Event()
        self._mutex = threading.Lock()

    def holder(self, now: datetime) -> Holder:
        return Holder(
            id=self.id,
            who=self.who,
            host=socket.gethostname(),
            pid=os.getpid(),
            git_sha=self.git_sha,
            since=rfc3339(now),
            expires=rfc3339(now + timedelta(seconds=self.ttl)),
            ci_run=os.environ.get("GITHUB_RUN_ID") or os.environ.get("CI_PIPELINE_ID") or None,
            components=self.components,
        )

    def read(self) -> dict[str, Held]:
        return read_locks(self.repo, self.remote, self.deployment, self.target)

    def _commit(self, holder: Holder) -> str:
        return self.repo.commit_object(holder.to_message())

    def try_take(self, now: datetime) -> dict[str, Held]:
        """One attempt: the conflicting locks, or {} when this run now holds every lock."""
        held = self.read()
        blocking = conflicts(self.refs, held, self.id, now)
        if blocking:
            return blocking
        sha = self._commit(self.holder(now))
        updates = [RefUpdate(ref, sha, held[ref].sha if ref in held else None) for ref in self.refs]
        try:
            self.repo.push_atomic(self.remote, updates)
        except RefRaceError:
            return self.try_take_again_later()
        self.sha = sha
        return {}

    def try_take_again_later(self) -> dict[str, Held]:
        """Lost a race to another taker: report what holds the locks now."""
        held = self.read()
        found = conflicts(self.refs, held, self.id, datetime.now(UTC))
        # The winner may already have released: an empty answer would read as success.
        return found or {self.refs[0]: Held(self.refs[0], ZERO_SHA, None)}

    def take(
        self,
        wait: float | None = None,
        progress: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Every lock, or LockRefused naming the holder after waiting up to `wait` seconds."""
        wait = wait if wait is not None else seconds_from_env("ATMOS_TASKS_LOCK_WAIT", DEFAULT_WAIT)
        say = progress or (lambda text: sys.stderr.write(text + "\n"))
        start = clock()
        last_said = -1e9
        delay = 0.2
        while True:
            if cancel.requested():
                raise AtmosError(
                    [
                        Problem(
                            f"cancelled ({cancel.requested()}) while waiting for the locks of "
                            f"{self.deployment}/{self.target}; nothing ran",
                            None,
                            "run it again when you want it deployed",
                        )
                    ],
                    EXIT_TASK_FAILED,
                )
            blocking = self.try_take(datetime.now(UTC))
            if not blocking:
                self._start_renewing()
                return
            self.waited = True
            described = _describe(blocking)
            elapsed = clock() - start
            if elapsed >= wait:
                raise LockRefused(
                    f"{self.deployment}/{self.target}: {described}",
                    "wait for that run to finish and run again (or raise ATMOS_TASKS_LOCK_WAIT, now "
                    f"{wait:g}s); if its runner died, the lock expires, or break it: atmos-tasks unlock "
                    f"{self.deployment} --target {self.target} --reason '…'",
                )
            if clock() - last_said >= 10 or last_said < 0:
                say(f"waiting for {self.deployment}/{self.target} ({elapsed:.0f}s of {wait:g}s): {described}")
                last_said = clock()
            time.sleep(min(delay, max(0.0, wait - elapsed)))
            delay = min(delay * 1.5, 2.0)

    def _start_renewing(self) -> None:
        self._last_ok = time.monotonic()
        for target in (self._renew_loop, self._watch):
            thread = threading.Thread(target=target, name="atmos-lock-renew", daemon=True)
            thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
                self._last_ok = time.monotonic()
            except RefRaceError:
                # Moved: by this run's own record (which renews them with its push), or taken over.
                owned = self._owned_or_none()
                if owned is None:
                    continue
                moved = set(owned.values())
                if set(owned) == set(self.refs) and len(moved) == 1 and moved != {self.sha}:
                    with self._mutex:
                        if self.sha is not None:
                            self.sha = moved.pop()
                    self._last_ok = time.monotonic()
                elif set(owned) != set(self.refs):
                    self._lost("were taken by another run")
                    cancel.stop_now()  # someone else may be applying already
                    return
            except Exception:
                continue  # the remote did not answer: retried; the watch decides when it is too late

    def _watch(self) -> None:
        """A run whose locks could not be renewed stops before they can expire: asked to stop at
        two thirds of the lock's life, its tools killed just before the end of it."""
        while not self._stop.wait(0.5):
            idle = time.monotonic() - self._last_ok
            if idle > self.ttl * 2 / 3 and self.lost is None:
                self._lost("could not be renewed and may expire")
            if idle > self.ttl - 1.5 and self.lost is not None:
                cancel.stop_now()
                return

    def _owned_or_none(self) -> dict[str, str] | None:
        """This run's locks as the remote has them now (ref → sha); None when it cannot be read."""
        try:
            held = self.read()
        except Exception:
            return None
        return {
            ref: found.sha
            for ref, found in held.items()
            if ref in self.refs and found.holder is not None and found.holder.id == self.id
        }

    def _lost(self, why: str) -> None:
        """Whoever holds the locks now may apply: this run stops applying, like a cancelled one."""
        self.lost = why
        # Straight to the terminal: while a task runs, doit holds sys.stderr.
        message = (
            f"error: the locks of {self.deployment}/{self.target} on {self.remote} {why}: this run stops "
            "and applies nothing more\n"
        )
        with contextlib.suppress(OSError):
            os.write(2, message.encode())
        cancel.request("lock lost")

    def renew(self) -> None:
        with self._mutex:
            if self.sha is None:
                return
            sha = self._commit(self.holder(datetime.now(UTC)))
            self.repo.push_atomic(self.remote, [RefUpdate(ref, sha, self.sha) for ref in self.refs])
            self.sha = sha

    def release(self) -> str | None:
        """Delete this run's locks (only those still its own); a warning when that was not possible."""
        self._stop.set()
        with self._mutex:
            if self.sha is None:
                return None
            self.sha = None
        owned = self._owned_or_none()
        if owned is None:
            where = f"{self.deployment}/{self.target} on {self.remote}"
            return f"could not read the locks of {where} to release them"
        try:
            self.repo.push_atomic(self.remote, [RefUpdate(ref, ZERO_SHA, sha) for ref, sha in owned.items()])
        except (RefRaceError, AtmosError) as err:
            return f"could not release the locks of {self.deployment}/{self.target} on {self.remote}: {err}"
        return None


def record_lease(
    repo: GitRepo, remote: str, deployment: str, target: str, holder_id: str, components: Sequence[str]
) -> list[RefUpdate]:
    """The lock refs a record pushes with its refs and tags: each renewed, leased on the value that
    says this run holds it. A run whose locks another run took over records nothing (LockRefused)."""
    held = read_locks(repo, remote, deployment, target)
    wanted = [lock_ref(deployment, target, c) for c in components]
    lost = [
        ref for ref in wanted if (h := held.get(ref)) is None or h.holder is None or h.holder.id != holder_id
    ]
    if lost:
        names = ", ".join(unleaf(ref.rsplit("/", 1)[-1]) for ref in lost)
        raise LockRefused(
            f"{deployment}/{target}: this run no longer holds the locks of {names} (they expired and another "
            "run took them); nothing was recorded",
            f"check `atmos-tasks status {deployment} --target {target}`, then run the rollout again",
        )
    now = datetime.now(UTC)
    mine = sorted(ref for ref, h in held.items() if h.holder is not None and h.holder.id == holder_id)
    first = held[mine[0]].holder if mine else None
    if first is None:
        return []
    ttl = max(seconds_from_env("ATMOS_TASKS_LOCK_TTL", DEFAULT_TTL), MIN_TTL)
    renewed = repo.commit_object(replace(first, expires=rfc3339(now + timedelta(seconds=ttl))).to_message())
    # Every lock of the run moves to the one renewed commit, as the run's own renewals do.
    return [RefUpdate(ref, renewed, held[ref].sha) for ref in mine]


def _describe(blocking: dict[str, Held]) -> str:
    by_holder: dict[str, list[str]] = {}
    texts: dict[str, str] = {}
    for ref, found in blocking.items():
        key = found.holder.id if found.holder else found.sha
        by_holder.setdefault(key, []).append(unleaf(ref.rsplit("/", 1)[-1]))
        texts[key] = found.holder.describe() if found.holder else "another run (just released; retrying)"
    return "; ".join(f"{', '.join(sorted(names))} locked by {texts[key]}" for key, names in by_holder.items())


def unlock(
    repo: GitRepo,
    remote: str | None,
    deployment: str,
    target: str,
    components: Sequence[str],
    reason: str,
    who: str,
    ident: Any,
    now: datetime,
) -> dict[str, Any]:
    """Break the locks of a target (or of some components), recording who did it and why."""
    held = read_locks(repo, remote, deployment, target)
    wanted = {lock_ref(deployment, target, c) for c in components} if components else set(held)
    broken = {ref: found for ref, found in held.items() if ref in wanted}
    if not broken:
        return {"deployment": deployment, "target": target, "broken": [], "tag": None}
    body = {
        "deployment": deployment,
        "target": target,
        "reason": reason,
        "by": who,
        "at": rfc3339(now),
        "locks": {
            unleaf(ref.rsplit("/", 1)[-1]): (asdict(found.holder) if found.holder else {"sha": found.sha})
            for ref, found in sorted(broken.items())
        },
    }
    tag = f"{UNLOCK_ROOT}/{deployment}/{target}/{tag_stamp(now)}"
    target_sha = next(iter(broken.values())).sha
    message = f"atmos-tasks unlock\n\n{json.dumps(body, sort_keys=True, default=list)}\n"
    tag_sha = repo.write_objects(
        "tag",
        [
            f"object {target_sha}\ntype commit\ntag {tag}\n"
            f"tagger {ident.name} <{ident.email}> {int(now.timestamp())} +0000\n\n{message}"
        ],
    )[0]
    updates = [RefUpdate(f"refs/tags/{tag}", tag_sha, None)]
    updates += [RefUpdate(ref, ZERO_SHA, found.sha) for ref, found in broken.items()]
    if remote:
        repo.push_atomic(remote, updates)
    repo.update_refs(updates)
    return {
        "deployment": deployment,
        "target": target,
        "broken": sorted(body["locks"]),
        "reason": reason,
        "tag": tag,
    }


def unlock_target(
    repo: GitRepo,
    manifest: Manifest,
    target: str,
    components: Sequence[str],
    reason: str,
    remote: str | None,
) -> dict[str, Any]:
    """`atmos-tasks unlock`: break the locks a dead run left on a target of the remote, recorded
    as the invoker (the CI actor in CI, else Git's user.email) with their reason."""
    if target not in manifest.model.targets:
        raise AtmosError.single(
            f"deployment {manifest.name!r} has no target {target!r}",
            manifest.locate(["targets"], at_key=True),
            f"targets: {', '.join(manifest.promotion_order())}",
        )
    if not reason.strip():
        raise AtmosError.single("--reason is empty", None, "say why the lock is broken: it is recorded")
    if remote is None:
        raise AtmosError.single(
            "unlock needs the remote that holds the locks",
            None,
            "pass --remote origin (or set ATMOS_TASKS_REMOTE)",
        )
    # Who breaks the locks is who would deploy (record.actor); record uses this module, so this
    # one imports it only here.
    from atmos_tasks.record import actor

    ident = repo.ident()
    found = unlock(
        repo,
        remote,
        manifest.name,
        target,
        components,
        reason,
        actor(ident),
        ident,
        datetime.now(UTC).replace(microsecond=0),
    )
    # Each broken lock's component kind, for its display name (`terraform/ecr/api`).
    refs = {name: manifest.find_component(name) for name in found["broken"]}
    found["kinds"] = {name: ref.type for name, ref in refs.items() if ref is not None}
    return found
