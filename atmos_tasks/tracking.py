"""Deployment records in Git (SPEC §10): the ref and tag layout and the tag message format.

Current state is a lightweight ref per component pointing at the deployed commit; history is an
annotated tag per component per rollout whose message is a small YAML document. Everything here
is pure except `read_records`, which reads refs and tags with a single `git for-each-ref`.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Collection, Generator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from atmos_tasks.gitrepo import GitRepo
from atmos_tasks.process import collector_paused

T = TypeVar("T")

REF_ROOT = "refs/atmos/deployments"
TAG_ROOT = "atmos/deployments"
# One tag per target rollout that lists the components whose inputs did not change (`changes: none`).
ROLLOUT_ROOT = "atmos/rollouts"
API_VERSION = "atmos.tools/v1alpha1"
HEADER = f"apiVersion: {API_VERSION}\nkind: Deployment\n---\n"
ROLLOUT_HEADER = f"apiVersion: {API_VERSION}\nkind: Rollout\n---\n"
# Field order of a target rollout record's body; `unchanged` maps each listed component to
# {type, inputs_hash[, image][, rollback_of]} as one JSON object.
ROLLOUT_FIELDS = (
    "deployment",
    "target",
    "git_sha",
    "deployed_by",
    "timestamp",
    "status",
    "promoted_from",
    "metadata",
    "unchanged",
)
# `destroyed`: `atmos-tasks destroy` removed what the component ran; its ref is gone with it.
STATUSES = ("success", "failed", "rollback", "destroyed")
# Field order of the message body, as SPEC §10 lists it.
FIELDS = (
    "deployment",
    "target",
    "component",
    "type",
    "git_sha",
    "deployed_by",
    "timestamp",
    "status",
    "promoted_from",
    "rollback_of",
    "image",
    "inputs_hash",
    "changes",
    "metadata",
)
# What a message must say to be a deployment record.
_REQUIRED = ("deployment", "target", "component", "git_sha", "status")
_LINE = re.compile(r"^([a-z_]+): *(.*?)\s*$", re.MULTILINE)
_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./@:+-]*$")
_NOT_PLAIN = re.compile(
    r"^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+"
    r"|true|false|yes|no|on|off|null|~|y|n)$",
    re.IGNORECASE,
)


def leaf(component: str) -> str:
    """A component name as one ref path segment: `/` becomes `%2F` (and `%` becomes `%25`)."""
    return component.replace("%", "%25").replace("/", "%2F")


def unleaf(segment: str) -> str:
    return segment.replace("%2F", "/").replace("%25", "%")


def ref_name(deployment: str, target: str, component: str) -> str:
    return f"{REF_ROOT}/{deployment}/{target}/{leaf(component)}"


def tag_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tag_name(deployment: str, target: str, component: str, stamp: str) -> str:
    return f"{TAG_ROOT}/{deployment}/{target}/{leaf(component)}/{stamp}"


def rollout_tag_name(deployment: str, target: str, stamp: str) -> str:
    return f"{ROLLOUT_ROOT}/{deployment}/{target}/{stamp}"


@dataclass(frozen=True)
class DeploymentRecord:
    """What one tag says about one component's rollout to one target."""

    deployment: str
    target: str
    component: str
    type: str
    git_sha: str
    deployed_by: str
    timestamp: str
    status: str
    inputs_hash: str
    changes: str
    promoted_from: str | None = None
    rollback_of: str | None = None
    image: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    tag: str | None = None
    # Not part of the message: the tag object's id, and whether a signature follows the message.
    tag_object: str | None = None
    signed: bool = False

    def to_message(self) -> str:
        lines = []
        for name in FIELDS:
            value = getattr(self, name)
            if value is None or (name == "metadata" and not value):
                continue
            lines.append(f"{name}: {_yaml_value(value)}")
        return HEADER + "\n".join(lines) + "\n"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in (*FIELDS, "tag"):
            value = getattr(self, name)
            if value is not None and not (name == "metadata" and not value):
                out[name] = value
        return out


def _yaml_value(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    text = str(value)
    if _PLAIN.match(text) and not _NOT_PLAIN.match(text):
        return text
    return json.dumps(text)


# Where a signed tag's signature starts (`git tag -s`, or the record task's own signing).
_SIGNATURE = re.compile(r"^-----BEGIN (?:SSH SIGNATURE|PGP SIGNATURE|SIGNED MESSAGE)-----$", re.MULTILINE)


def unsigned(text: str) -> tuple[str, bool]:
    """A tag message without the signature block Git appends to it, and whether there was one."""
    if "-----BEGIN " not in text:
        return text, False
    found = _SIGNATURE.search(text)
    return (text[: found.start()], True) if found else (text, False)


def _plain(name: str) -> str:
    return rf"(?:{name}: ([A-Za-z0-9_./@:+-]+)\n)"


# A message exactly as `to_message` writes it with plain values (no quotes, no signature): one
# match reads it. Anything else (quoted values, other field orders, foreign lines, a signature)
# falls through to the line parser, whose results this one equals wherever it matches.
_WRITTEN = re.compile(
    re.escape(HEADER)
    + "".join(_plain(name) + ("" if name in _REQUIRED else "?") for name in FIELDS[:-1])
    + r"(?:metadata: (\{[^\n]*\})\n)?"
)


def _record(values: dict[str, Any]) -> DeploymentRecord:
    """A record from all its field values, without the frozen dataclass's `__init__` (one
    `object.__setattr__` per field): status builds one per component, tens of thousands. Its
    attributes start as a copy of a blank record's, so they share its key table, as `__init__`'s do
    (half the memory of a dict of their own)."""
    record = object.__new__(DeploymentRecord)
    attributes = _BLANK.__dict__.copy()
    attributes.update(values)
    object.__setattr__(record, "__dict__", attributes)
    return record


def parse_message(
    text: str, tag: str | None = None, tag_object: str | None = None
) -> DeploymentRecord | None:
    """Read a tag message written by `to_message`; None when it is not a deployment record.

    Not a YAML parser: status and history read thousands of these per call. A message as
    `to_message` writes it is read with one regular expression; any other, by lines. A signature
    block after the message is not part of it.
    """
    written = _WRITTEN.fullmatch(text)
    if written is None:
        return _parse_lines(text, tag, tag_object)
    d, t, c, kind, sha, by, when, status, source, rollback, image, inputs, changes, meta = written.groups()
    metadata: Any = {}
    if meta is not None:
        with contextlib.suppress(ValueError):
            metadata = json.loads(meta)
    return _record(
        {
            "deployment": d,
            "target": t,
            "component": c,
            "type": kind or "terraform",
            "git_sha": sha,
            "deployed_by": by or "",
            "timestamp": when or "",
            "status": status,
            "inputs_hash": inputs or "",
            "changes": changes or "applied",
            "promoted_from": source,
            "rollback_of": rollback,
            "image": image,
            "metadata": metadata,
            "tag": tag,
            "tag_object": tag_object,
            "signed": False,
        }
    )


_BLANK = DeploymentRecord("", "", "", "", "", "", "", "", "", "")


def _parse_lines(text: str, tag: str | None, tag_object: str | None) -> DeploymentRecord | None:
    """`parse_message` of any message: each `name: value` line after the `---` line."""
    text, signed = unsigned(text)
    _, sep, body = text.partition("\n---\n")
    if not sep:
        return None
    values: dict[str, Any] = {}
    for name, raw in _LINE.findall(body):
        if name not in FIELDS:
            continue
        if name == "metadata":
            try:
                values[name] = json.loads(raw)
            except ValueError:
                values[name] = {}
        elif raw.startswith('"'):
            try:
                values[name] = json.loads(raw)
            except ValueError:
                values[name] = raw
        else:
            values[name] = raw
    if any(name not in values for name in _REQUIRED):
        return None
    return DeploymentRecord(
        deployment=values["deployment"],
        target=values["target"],
        component=values["component"],
        type=values.get("type", "terraform"),
        git_sha=values["git_sha"],
        deployed_by=values.get("deployed_by", ""),
        timestamp=values.get("timestamp", ""),
        status=values["status"],
        inputs_hash=values.get("inputs_hash", ""),
        changes=values.get("changes", "applied"),
        promoted_from=values.get("promoted_from"),
        rollback_of=values.get("rollback_of"),
        image=values.get("image"),
        metadata=values.get("metadata", {}),
        tag=tag,
        tag_object=tag_object,
        signed=signed,
    )


def rollout_message(records: list[DeploymentRecord]) -> str:
    """One target rollout's record of its unchanged components (all share commit, time and actor)."""
    first = records[0]
    status = "rollback" if any(r.status == "rollback" for r in records) else "success"
    unchanged: dict[str, dict[str, Any]] = {}
    for record in records:
        entry: dict[str, Any] = {"type": record.type, "inputs_hash": record.inputs_hash}
        if record.image:
            entry["image"] = record.image
        if record.rollback_of:
            entry["rollback_of"] = record.rollback_of
        unchanged[record.component] = entry
    values: dict[str, Any] = {
        "deployment": first.deployment,
        "target": first.target,
        "git_sha": first.git_sha,
        "deployed_by": first.deployed_by,
        "timestamp": first.timestamp,
        "status": status,
        "promoted_from": first.promoted_from,
        "metadata": first.metadata or None,
        "unchanged": unchanged,
    }
    lines = [f"{name}: {_yaml_value(values[name])}" for name in ROLLOUT_FIELDS if values[name] is not None]
    return ROLLOUT_HEADER + "\n".join(lines) + "\n"


def parse_rollout(text: str, tag: str | None = None, tag_object: str | None = None) -> list[DeploymentRecord]:
    """The per-component records a target rollout record stands for (`changes: none` each)."""
    if "\nkind: Rollout\n" not in text[:80]:
        return []
    text, signed = unsigned(text)
    _, sep, body = text.partition("\n---\n")
    if not sep:
        return []
    values: dict[str, Any] = {}
    for name, raw in _LINE.findall(body):
        if name not in ROLLOUT_FIELDS:
            continue
        if name in ("metadata", "unchanged") or raw.startswith('"'):
            try:
                values[name] = json.loads(raw)
            except ValueError:
                values[name] = {} if name in ("metadata", "unchanged") else raw
        else:
            values[name] = raw
    unchanged = values.get("unchanged")
    required = ("deployment", "target", "git_sha")
    if not isinstance(unchanged, dict) or any(name not in values for name in required):
        return []
    metadata = values.get("metadata") if isinstance(values.get("metadata"), dict) else {}
    records = []
    for component, entry in unchanged.items():
        entry = entry if isinstance(entry, dict) else {}
        records.append(
            DeploymentRecord(
                deployment=values["deployment"],
                target=values["target"],
                component=str(component),
                type=str(entry.get("type") or "terraform"),
                git_sha=values["git_sha"],
                deployed_by=values.get("deployed_by", ""),
                timestamp=values.get("timestamp", ""),
                status="rollback" if entry.get("rollback_of") else values.get("status", "success"),
                inputs_hash=str(entry.get("inputs_hash") or ""),
                changes="none",
                promoted_from=values.get("promoted_from"),
                rollback_of=entry.get("rollback_of"),
                image=entry.get("image"),
                metadata=dict(metadata or {}),
                tag=tag,
                tag_object=tag_object,
                signed=signed,
            )
        )
    return records


@dataclass
class ComponentState:
    """What Git says about one component on one target: its ref and its tags, newest first."""

    deployment: str
    target: str
    component: str
    git_sha: str | None = None
    history: list[DeploymentRecord] = field(default_factory=list)

    @property
    def latest(self) -> DeploymentRecord | None:
        return self.history[0] if self.history else None

    @property
    def current(self) -> DeploymentRecord | None:
        """The newest record that put the commit the ref points at in place."""
        for record in self.history:
            if record.git_sha == self.git_sha and record.status in ("success", "rollback"):
                return record
        return None


# What `read_records` asks `git for-each-ref` for: no more (a peeled `*objectname` would make Git
# read every tagged commit too).
RECORD_FIELDS = ("refname", "objectname", "contents")
REF_FIELDS = ("refname", "objectname")


def record_patterns(deployment: str | None = None, target: str | None = None) -> list[str]:
    """The ref patterns `read_records` lists for a scope: component refs, their tags, rollout tags."""
    scope = "/".join(p for p in (deployment, target) if p)
    roots = (REF_ROOT, f"refs/tags/{TAG_ROOT}", f"refs/tags/{ROLLOUT_ROOT}")
    return [f"{root}/{scope}" if scope else root for root in roots]


def read_records(
    repo: GitRepo,
    deployment: str | None = None,
    target: str | None = None,
    wanted: Collection[str] | None = None,
) -> dict[tuple[str, str, str], ComponentState]:
    """Every component state under a scope, from two `git for-each-ref` processes (the refs, then
    the tags with their messages), parsed a batch of rows at a time.

    With `wanted` (component names), only what recording needs of those: each one's `latest` and
    `current` record (without a ref, its newest successful one). Target rollout records, which
    list every unchanged component and accumulate with each rollout, are then parsed newest
    first, and no further once each wanted component has what it needs; `history` holds what was
    parsed, newest first, and is complete only for that."""
    with collector_paused():
        return _read_records(repo, deployment, target, wanted)


def _settled_order(state: ComponentState) -> tuple[str, int] | None:
    """The order of the newest record that makes `state.current` (or, without a ref, the newest
    successful one): records older than it change neither `latest` nor `current`."""
    found = None
    for record in state.history:
        if record.status in ("success", "rollback") and state.git_sha in (None, record.git_sha):
            order = tag_order(record)
            found = order if found is None or order > found else found
    return found


class ReadAhead(Generic[T]):
    """The batches of a `for_each_ref_rows`, pulled by a thread from the start, taken in order:
    Git runs while the caller does other work. At most a few batches wait to be taken (each a
    pipe's worth); `close` (or leaving a `with`) stops the thread, which closes the generator and
    so stops Git. A failure reading them is raised where the caller takes the next batch. The
    thread runs in a copy of the caller's context: a compilation observing what it reads
    (`inputs`) sees the refs read there. Without a thread to start, the batches are read when
    taken."""

    _DONE = object()

    def __init__(self, batches: Generator[T, None, None]) -> None:
        import contextvars
        import queue
        import threading

        self._batches = batches
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self._inline = False
        context = contextvars.copy_context()
        try:
            threading.Thread(
                target=context.run, args=(self._pull,), name="atmos-read-ahead", daemon=True
            ).start()
        except RuntimeError:  # no thread to be had
            self._inline = True

    def _put(self, item: Any) -> bool:
        import queue

        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _pull(self) -> None:
        try:
            for batch in self._batches:
                if not self._put(batch):
                    break
        except BaseException as err:  # given to the caller, whose thread raises it
            self._put(err)
        else:
            self._put(self._DONE)
        finally:
            self._batches.close()  # a generator left early kills its Git

    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        if self._inline:
            return next(self._batches)
        item = self._queue.get()
        if item is self._DONE:
            self._queue.put(item)  # taken again, it still ends the batches
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        if self._inline:
            self._batches.close()

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_records(
    repo: GitRepo, deployment: str | None, target: str | None, wanted: Collection[str] | None = None
) -> dict[tuple[str, str, str], ComponentState]:
    """`read_records`; for one target, through the records kept by tag (`recordcache`). (Kept
    for every target at once, the records of 15,000 components took longer to load from the disk
    than Git took to read their messages, and a new record would write them all again.)"""
    from atmos_tasks import recordcache

    refs, *tags = record_patterns(deployment, target)
    kept = recordcache.kept_records(repo, tags) if deployment and target else None
    if kept is None:
        return _read(repo, refs, tags, wanted, None)
    if not kept.verifying:
        states = _read(repo, refs, tags, wanted, kept)
        kept.save()
        return states
    # The test suite: read through the cache, then without it; the same, unless Git moved between.
    before = repo.for_each_ref([refs, *tags], REF_FIELDS)
    states = _read(repo, refs, tags, wanted, kept)
    fresh = _read(repo, refs, tags, wanted, None)
    where = recordcache.differs(states, fresh)
    if where is not None and repo.for_each_ref([refs, *tags], REF_FIELDS) == before:
        recordcache.verify_failed(where)
    kept.save()
    return fresh


def _read(
    repo: GitRepo,
    refs: str,
    tags: list[str],
    wanted: Collection[str] | None,
    kept: Any,
) -> dict[tuple[str, str, str], ComponentState]:
    """The records under the patterns; with `kept` (a `recordcache.KeptRecords`), Git lists the
    tags by name and id and is asked for the messages of tags not kept only."""
    from atmos_tasks.recordcache import MISSING, messages

    states: dict[tuple[str, str, str], ComponentState] = {}
    # Each component once by its ref path (`api/dev/ecr%2Fapi`): a ref and its tags find their
    # state by a slice of their name, split into (deployment, target, component) once.
    by_path: dict[str, ComponentState] = {}
    ref_prefix = REF_ROOT + "/"
    tag_prefix = f"refs/tags/{TAG_ROOT}/"
    rollout_prefix = f"refs/tags/{ROLLOUT_ROOT}/"
    skip_ref, skip_tag, skip_rollout = len(ref_prefix), len(tag_prefix), len(rollout_prefix)

    later: list[tuple[str, str, str | None, list[str]]] = []

    def rollout_records(
        refname: str, objectname: str, contents: str | None, parts: list[str]
    ) -> list[tuple[str, str, str]]:
        found = MISSING if kept is None else kept.get(refname, objectname)
        if found is MISSING:
            if contents is None and later:  # listed, not kept, and now needed (`wanted`)
                objectname, contents = fetch_later(refname, objectname)
            if contents is None:
                return []  # deleted since it was listed
            found = parse_rollout(contents, refname[10:], objectname)
            if kept is not None and wanted is not None:  # see `recordcache`: only the newest
                kept.put(refname, objectname, found)
        keys = []
        for record in found:
            if (record.deployment, record.target) != (parts[0], parts[1]):
                continue  # a record only speaks for the target its tag is filed under
            key = (parts[0], parts[1], record.component)
            states.setdefault(key, ComponentState(*key)).history.append(record)
            keys.append(key)
        return keys

    fetched_later: dict[str, tuple[str, str | None]] = {}
    window = [4]

    def fetch_later(refname: str, objectname: str) -> tuple[str, str | None]:
        """The message of a listed rollout record neither kept nor read yet, with those of the next
        few (newest first, as `later` is walked; four, then 16, 64…): a record task needs one or
        two, and reads no others. The tag's object as read then (`git tag -f` may have moved it
        since it was listed), and its message (None: deleted since)."""
        if refname not in fetched_later:
            listed: list[tuple[str, str]] = []
            for r, o, c, _p in later[[row[0] for row in later].index(refname) :]:
                if c is None and r not in fetched_later and not kept.has(r, o):
                    listed.append((r, o))
                    if len(listed) == window[0]:
                        break
            window[0] *= 4
            for batch in messages(repo, [r for r, _o in listed], tags):
                for name, read, contents in batch:
                    fetched_later[name] = (read, contents)
            for r, o in listed:  # deleted since they were listed: not asked for again
                fetched_later.setdefault(r, (o, None))
        return fetched_later.get(refname, (objectname, None))

    def state_at(path: str) -> ComponentState:
        dep, tgt, segment = path.split("/")
        key = (dep, tgt, unleaf(segment))
        state = states.get(key)
        if state is None:
            state = states[key] = ComponentState(*key)
        by_path[path] = state
        return state

    def ours(refname: str, rollouts: bool) -> bool:
        """A tag the loop below reads (the layout it files records by), and with `rollouts`, a
        target rollout record too."""
        if refname.startswith(tag_prefix):
            return refname[skip_tag:].rpartition("/")[0].count("/") == 2
        return rollouts and refname.startswith(rollout_prefix) and refname[skip_rollout:].count("/") == 2

    def tag_batches() -> Generator[list[tuple[str, str, str | None]], None, None]:
        """The tags as (refname, objectname, message): every message (without `kept`, or with
        nothing kept yet), or only the messages of tags not kept (None for the rest; rollout
        records for `wanted` are read when needed)."""
        if kept is None or not kept.entries:  # nothing kept (yet): every message, in one process
            for lines in repo.for_each_ref_rows(tags, RECORD_FIELDS):
                batch: list[tuple[str, str, str | None]] = []
                for row in lines:
                    refname, found, rest = row.partition("\x00")
                    objectname, found2, contents = rest.partition("\x00")
                    if found and found2:
                        batch.append((refname, objectname, contents))
                yield batch
            return
        listed = repo.for_each_ref([*tags], REF_FIELDS)
        missing = [
            refname
            for refname, objectname in listed
            if not kept.has(refname, objectname) and ours(refname, wanted is None)
        ]
        read: dict[str, tuple[str, str]] = {}
        for got in messages(repo, missing, tags):
            read.update((name, (objectname, contents)) for name, objectname, contents in got)
        listing: list[tuple[str, str, str | None]] = []
        for refname, objectname in listed:
            if refname in read:
                listing.append((refname, *read[refname]))
            elif (wanted is not None and refname.startswith(rollout_prefix)) or kept.has(refname, objectname):
                listing.append((refname, objectname, None))
        yield listing

    # The component refs (name and commit only: a commit's message is no record), then the tags
    # with their messages, by two `for-each-ref`s (reading 15,000 commit messages for nothing took
    # a third of Git's time). Refs first: a moved ref's tag is written by the same transaction, so
    # the tags read after the refs can only hold more of it, never less.
    # Git reads the tags' messages (all of them before it writes a row) while the refs are parsed.
    ref_batches = list(repo.for_each_ref_rows([refs], REF_FIELDS))
    with ReadAhead(tag_batches()) as batches:
        for rows in ref_batches:
            for row in rows:
                refname, found, objectname = row.partition("\x00")
                if found and refname.startswith(ref_prefix):
                    path = refname[skip_ref:]
                    if path.count("/") == 2:
                        (by_path.get(path) or state_at(path)).git_sha = objectname
        del ref_batches
        for batch in batches:
            for refname, objectname, contents in batch:
                if refname.startswith(tag_prefix):
                    path = refname[skip_tag:].rpartition("/")[0]
                    if path.count("/") != 2:
                        continue
                    record = MISSING if kept is None else kept.get(refname, objectname)
                    if record is MISSING:
                        if contents is None:
                            continue
                        record = parse_message(contents, refname[10:], objectname)  # 10: len("refs/tags/")
                        if kept is not None:
                            kept.put(refname, objectname, record)
                    if record is not None:
                        (by_path.get(path) or state_at(path)).history.append(record)
                elif refname.startswith(rollout_prefix):
                    parts = refname[skip_rollout:].split("/")
                    if len(parts) != 3:
                        continue
                    if wanted is not None:
                        later.append((refname, objectname, contents, parts))
                        continue
                    rollout_records(refname, objectname, contents, parts)
    if later:
        # Newest first (by the stamp in the tag's name, as `tag_order` sorts records); stop once
        # every wanted component's needed record is newer than the next rollout record.
        later.sort(key=lambda row: _stamp_order(row[0]), reverse=True)
        scopes = {(parts[0], parts[1]) for _r, _o, _c, parts in later}
        needed = {(dep, tgt, name) for dep, tgt in scopes for name in wanted or ()}
        settled = {key: _settled_order(states[key]) if key in states else None for key in needed}
        for refname, objectname, contents, parts in later:
            order = _stamp_order(refname)
            if all(found is not None and found >= order for found in settled.values()):
                break
            for key in rollout_records(refname, objectname, contents, parts):
                if key in settled:
                    settled[key] = _settled_order(states[key])
    for state in states.values():
        if len(state.history) > 1:
            state.history.sort(key=tag_order, reverse=True)
    return states


def tag_order(record: DeploymentRecord) -> tuple[str, int]:
    """Tags sort by time, then by clash suffix (`…Z`, `…Z-2`, …, `…Z-10`)."""
    return _stamp_order(record.tag or "")


def _stamp_order(tag: str) -> tuple[str, int]:
    stamp = tag.rsplit("/", 1)[-1]
    base, _, rest = stamp.partition("Z")
    suffix = rest.lstrip("-")
    return (base, int(suffix) if suffix.isdigit() else 1)


def with_tag(record: DeploymentRecord, tag: str) -> DeploymentRecord:
    return replace(record, tag=tag)
