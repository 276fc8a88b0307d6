"""A rollout known to change nothing: answered without walking every component's tasks again.

A no-op rollout of N components still has doit check 2N tasks, about 0.1 ms each for doit alone,
so its cost grows with the repository. When a rollout ends with every plan and apply up to date
and nothing to record, the reporter writes a *settled* mark for its graph key
(`.atmos/cache/settled/<key>.json`) with what those decisions read:

- doit's database (size, modification time, inode) after the run: every up-to-date check of such
  a graph reads only saved values (`Settled`, `LastStatus`, doit's own result checks);
- each task's target file (the plan files: doit re-runs a task whose target is gone);
- the deployment's records in Git (refs, tags and notes of the target), which the record task reads.

The next run of the same graph (the graph cache's key held) whose mark still holds runs only the
record task's answer from that rollout, and the reporter says so. Anything else — a vendor, build
or test task (their checks read the disk or the clock), another task than `rollout:` selected, a
job summary to write, a mark that no longer holds — walks the whole graph as before. A run through
the shortcut refreshes the mark, since doit saves the record task's values again.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from atmos_tasks.atomic import write_atomic

FOLDER = Path(".atmos") / "cache" / "settled"
DB = Path(".atmos") / "doit.sqlite"


def _stat(path: Path | str) -> list[int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_size, info.st_mtime_ns, info.st_ino]


def records_patterns(pairs: list[tuple[str, str]]) -> list[str]:
    patterns = []
    for deployment, target in pairs:
        patterns += [
            f"refs/atmos/deployments/{deployment}/{target}/",
            f"refs/tags/atmos/deployments/{deployment}/{target}/",
            f"refs/tags/atmos/rollouts/{deployment}/{target}/",
            f"refs/notes/atmos/{deployment}/",
        ]
    return sorted(set(patterns))


def _records(root: Path, pairs: list[tuple[str, str]]) -> str:
    from atmos_tasks.gitrepo import GitRepo
    from atmos_tasks.graphcache import refs_digest

    return refs_digest(GitRepo(root), records_patterns(pairs))


def eligible(tasks: list[dict[str, Any]], invocation: Any, root: Path) -> bool:
    """A graph of plans, applies and records only, asked for as whole rollouts."""
    return eligible_run(invocation, root) and eligible_graph(tasks)


def eligible_run(invocation: Any, root: Path) -> bool:
    """Asked for as whole rollouts, on this package's database, nothing forced, no job summary."""
    return not os.environ.get("GITHUB_STEP_SUMMARY") and whole_rollouts(invocation, root)


def whole_rollouts(invocation: Any, root: Path) -> bool:
    """Asked for as whole rollouts, run by doit on this package's database, with doit's default
    file checker and this package's reporter, nothing forced: as doit resolved its options."""
    if not invocation.executes or not invocation.selected:
        return False
    if not own_run(doit_options(), root):
        return False
    return all(s.kind == "rollout" and s.component in ("", "*", None) for s in invocation.selected)


def own_run(options: Mapping[str, Any] | None, root: Path) -> bool:
    """doit's options name this package's database and reporter, doit's default file checker,
    and nothing forced (`-a`, `--always`, `always = true` in a configuration file)."""
    from doit.dependency import JSONCodec

    from atmos_tasks.reporter import RolloutReporter

    if options is None or options.get("always") or options.get("single"):
        return False
    if options.get("backend") != "sqlite3" or options.get("check_file_uptodate") != "md5":
        return False
    if options.get("codec_cls") not in ("json", JSONCodec):
        return False
    reporter = options.get("reporter")
    # The class (this package's configuration), or its `doit.REPORTER` entry point's name.
    if not (reporter == "atmos" or (isinstance(reporter, type) and issubclass(reporter, RolloutReporter))):
        return False
    dep_file = options.get("dep_file")
    try:
        return isinstance(dep_file, str) and Path(dep_file).resolve() == (root / DB).resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python before 3.13)
        return False


def doit_options() -> Mapping[str, Any] | None:
    """The options doit resolved for this run of its `run` command (its command line,
    abbreviations included, merged with doit.cfg, pyproject and DOIT_CONFIG), read from the frame
    of `DoitCmdBase.execute`, which loads the tasks: a dodo file's task creator is handed none of
    them. None outside doit's `run` (`list`, `info`, a plugin's command, no doit at all)."""
    from doit.cmd_base import DoitCmdBase

    code = DoitCmdBase.execute.__code__
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code is code:
            command, params = frame.f_locals.get("self"), frame.f_locals.get("params")
            name = getattr(command, "get_name", lambda: None)()
            return params if name == "run" and isinstance(params, Mapping) else None
        frame = frame.f_back
    return None


def eligible_graph(tasks: list[dict[str, Any]]) -> bool:
    """A graph of plans, applies and records only, whose up-to-date checks read saved values."""
    from atmos_tasks.uptodate import LastStatus, Settled

    for task in tasks:
        basename = task.get("basename")
        if task.get("file_dep"):
            return False
        if basename in ("plan", "apply"):
            if task.get("actions") and not all(isinstance(u, Settled | LastStatus) for u in task["uptodate"]):
                return False
        elif basename not in ("_atmos", "record", "rollout"):
            return False
    return True


def load(root: Path, key: str, pairs: list[tuple[str, str]]) -> dict[str, Any] | None:
    """The mark of `key`, when everything it names is as it was."""
    try:
        mark = json.loads((root / FOLDER / f"{key}.json").read_text())
        if mark.get("db") != _stat(root / DB):
            return None
        if any(_stat(path) != stamp for path, stamp in mark["targets"].items()):
            return None
        if mark.get("records") != _records(root, pairs):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return mark if isinstance(mark.get("summaries"), dict) else None


def refresh(root: Path, key: str, mark: dict[str, Any]) -> None:
    """After a run answered from `mark`: the same mark, with doit's database as that run left it.
    Nothing ran, nothing was recorded and the targets' locks were held: the plan files and the
    records it names are as `load` found them, and are not read again."""
    _store(root, key, {**mark, "db": _stat(root / DB)})


def write(
    root: Path,
    key: str,
    pairs: list[tuple[str, str]],
    targets: list[str],
    summaries: list[Any],
    since: str | None = None,
) -> None:
    """After a rollout in which nothing ran and nothing was recorded."""
    found: dict[str, Any] = {f"{s['deployment']}:{s['target']}": s for s in summaries}
    mark = {
        "db": _stat(root / DB),
        "targets": {path: _stat(path) for path in sorted(set(targets))},
        "records": _records(root, pairs),
        "summaries": found,
        # When every component was last checked one by one (a settled run keeps the time it read).
        "since": since or time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    _store(root, key, mark)


def _store(root: Path, key: str, mark: dict[str, Any]) -> None:
    folder = root / FOLDER
    try:
        # The record's answer carries the applies' outputs, sensitive ones too: its owner's only.
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(folder / f"{key}.json", json.dumps(mark, sort_keys=True), private=True)
    except OSError:
        return


def answered(summary: dict[str, Any]) -> dict[str, Any]:
    """The record task of a settled rollout: what that rollout's record said, nothing written."""
    return dict(summary)


def skeleton(tasks: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """What a settled run of this graph needs of it (None: no run of it can settle): the tasks
    `shortcut` keeps, a record without what it would have run. Kept beside the graph, so that a
    settled run loads a few tasks, not every component's."""
    if not eligible_graph(tasks):
        return None
    kept: list[dict[str, Any]] = []
    for task in tasks:
        basename = task.get("basename")
        if basename == "record":
            kept.append({**task, "actions": [], "getargs": {}, "task_dep": [], "setup": []})
        elif basename in ("_atmos", "rollout"):
            kept.append(task)
    return kept


def shortcut(tasks: list[dict[str, Any]], mark: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The graph a settled rollout runs: each rollout and its record's recorded answer (None when
    the mark lacks a record's answer)."""
    kept: list[dict[str, Any]] = []
    for task in tasks:
        basename = task.get("basename")
        if basename == "_atmos":
            kept.append(task)
        elif basename == "record":
            summary = mark["summaries"].get(task["name"])
            if summary is None:
                return None
            kept.append(
                {**task, "actions": [(answered, [summary])], "getargs": {}, "task_dep": [], "setup": []}
            )
        elif basename == "rollout":
            atmos = task["meta"]["atmos"]
            kept.append({**task, "meta": {"atmos": {**atmos, "settled": mark.get("since", "")}}})
    return kept
