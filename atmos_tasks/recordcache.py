"""Deployment records as parsed, kept by tag: a read of the records lists the tags' names and ids,
and asks Git for the messages of the tags it has not parsed before only.

A tag object never changes: what its message parses to is a function of the object's id, the
tag's name (a record knows the tag it was read from) and the code that parses. The record task
reads hundreds of messages of its target: Git opening and inflating each tag object took most of
its read at 300 components. Kept here instead, per target read (`.atmos/cache/records/
<digest>.pickle`, its owner's only, like every pickle this package reads), are

- every deployment tag the last read listed, with its record (or None: not a record), and
- the target rollout records a record task parsed (it stops at the newest ones it needs). A full
  read (`history`, `status` of a target) parses the older ones from their messages each time:
  each lists every unchanged component, and kept, they grew the file by the whole target with
  every rollout (12 MB after a few hundred rollouts of 300 components, loaded by the next record
  task).

A read keeps what it used and drops the rest (a tag pruned, or moved by `git tag -f` to another
object, is simply another key). With `ATMOS_TASKS_GRAPH_CACHE=off` nothing is kept; with `verify`
(the test suite) every read is also done without the cache and a difference stops the run.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from atmos_tasks.gitrepo import GitRepo

FORMAT = 1
FOLDER = Path(".atmos") / "cache" / "records"
MISSING: Any = object()
# Tags named per `for-each-ref` when asking for messages by name: the argument list stays short.
BATCH = 200
# More tags than this to read and their messages are read by pattern, every one (the first read).
FETCH_LIMIT = 1000


@cache
def _parsing_code() -> tuple[Any, ...]:
    """The code that parses records, once per process: the format, the package's version and
    `tracking.py`'s source by size and time."""
    from atmos_tasks import __version__, tracking
    from atmos_tasks.atomic import source_stamp

    return (FORMAT, __version__, *source_stamp(tracking.__file__))


class KeptRecords:
    """The parsed tags kept for one set of patterns: loaded once, used, saved once."""

    def __init__(self, path: Path, verifying: bool = False) -> None:
        from atmos_tasks.atomic import read_private

        self.path = path
        self.verifying = verifying
        self.used: dict[tuple[str, str], Any] = {}
        self.changed = False
        try:
            stored = pickle.loads(read_private(path))
        except Exception:  # missing, damaged, foreign or another owner's: parse everything
            stored = None
        ok = isinstance(stored, tuple) and len(stored) == 2 and stored[0] == _parsing_code()
        self.entries: dict[tuple[str, str], Any] = stored[1] if ok and isinstance(stored[1], dict) else {}

    def has(self, refname: str, objectname: str) -> bool:
        return (refname, objectname) in self.entries or (refname, objectname) in self.used

    def get(self, refname: str, objectname: str) -> Any:
        """What the tag parsed to (MISSING when it was not kept); kept again by `save`."""
        key = (refname, objectname)
        found = self.used.get(key, MISSING)
        if found is MISSING:
            found = self.entries.get(key, MISSING)
            if found is not MISSING:
                self.used[key] = found
        return found

    def put(self, refname: str, objectname: str, parsed: Any) -> None:
        self.used[(refname, objectname)] = parsed
        self.changed = True

    def save(self) -> None:
        """Keep what this read used, when that is not what was kept. A hint: a read-only checkout
        or a full disk keeps nothing, and nothing half-written is left."""
        if not self.changed and self.used.keys() == self.entries.keys():
            return
        from atmos_tasks.atomic import write_atomic

        try:
            data = pickle.dumps((_parsing_code(), self.used), protocol=pickle.HIGHEST_PROTOCOL)
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomic(self.path, data, private=True)
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            return


def kept_records(repo: GitRepo, patterns: list[str]) -> KeptRecords | None:
    """The records kept for a read of `patterns`; None while the graph cache is off, or where no
    run of atmos-tasks keeps its work (a directory without `.atmos`: another commit's worktree)."""
    from atmos_tasks import graphcache

    mode = graphcache.mode()
    if mode == "off" or not (Path(repo.root) / ".atmos").is_dir():
        return None
    name = hashlib.blake2b(json.dumps(sorted(patterns)).encode(), digest_size=12).hexdigest()
    return KeptRecords(Path(repo.root) / FOLDER / f"{name}.pickle", verifying=mode == "verify")


def messages(repo: GitRepo, refnames: list[str], patterns: list[str]) -> Iterator[list[tuple[str, str, str]]]:
    """(refname, objectname, message) of the named tags, a batch at a time: by their names, a few
    hundred per `for-each-ref`, or with many, every tag of `patterns` (a tag deleted since it was
    listed is not among them)."""
    from atmos_tasks.tracking import RECORD_FIELDS

    wanted = set(refnames)
    if len(refnames) > FETCH_LIMIT:
        groups = [patterns]
    else:
        groups = [refnames[i : i + BATCH] for i in range(0, len(refnames), BATCH)]
    for group in groups:
        # Not observed again for a compilation: the listing by pattern that named them was.
        for rows in repo.for_each_ref_rows(group, RECORD_FIELDS, observe=group is patterns):
            found = []
            for row in rows:
                refname, sep, rest = row.partition("\x00")
                objectname, sep2, contents = rest.partition("\x00")
                if sep and sep2 and refname in wanted:
                    found.append((refname, objectname, contents))
            yield found


def differs(kept: dict[Any, Any], fresh: dict[Any, Any]) -> str | None:
    """`verify`: the first component whose state read through the cache is not the one read
    without it (None: the same)."""
    for key in sorted(set(kept) | set(fresh)):
        a, b = kept.get(key), fresh.get(key)
        if a is None or b is None or a.git_sha != b.git_sha or a.history != b.history:
            return "/".join(key)
    return None


def verify_failed(component: str) -> None:
    sys.stderr.write(
        f"error: the kept deployment records of {component} differ from what Git holds: a tag's "
        "record is kept under the wrong key\n"
    )
    raise SystemExit(1)
