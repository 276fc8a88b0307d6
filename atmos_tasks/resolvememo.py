"""What each component resolved to, kept per target between compilations: a commit that changes one
component's module resolves that component again, not the other 299.

The graph cache (`graphcache.py`) reuses a whole task graph while nothing it read changed; a new
commit is a new graph. Within that compilation, a component's resolution is reused when

  - everything read before any component was resolved is as it was (the manifest, the stacks and
    what they import, vendor files, `atmos.yaml`, the target's context, this package's code), and
  - everything the component's own resolution read is as it was: its module folder (by digest), the
    files its YAML functions included, the environment variables they read;

and never when that resolution read the commit's id or branch (a template's `git.*`), the clock, a
command's output (`!exec`) or Git's records, nor for a component whose values wait on another's
outputs or image, nor one that is vendored. Kinds opt in (`Kind.memoizable`).

With `ATMOS_TASKS_GRAPH_CACHE=verify` (the test suite), every component served from here is also
resolved again and compared; a difference stops the run, naming the component.

The file is its owner's only: resolved values hold the components' variables, sensitive ones too.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atmos_tasks import inputs
from atmos_tasks.atomic import read_private, write_atomic

FORMAT = 1
# This process's counts, for the rollout's summary line: components served from a memo, and
# components a memo was asked for.
COUNTS = [0, 0]


@dataclass
class Memo:
    """One component's resolution and what it read."""

    component: Any  # resolve.ResolvedComponent
    trees: dict[str, str | None] = field(default_factory=dict)
    files: dict[str, str | None] = field(default_factory=dict)
    env: dict[str, str | None] = field(default_factory=dict)  # name → digest of the value


def _code_stamp() -> list[Any]:
    """The code that resolves: what is installed (as the graph cache keys it), this package's and
    vendor_cache's source files, and the modules of the kind plugins loaded (by size and mtime).
    Not which modules happen to be loaded: that differs from one command to another."""
    import atmos_tasks
    import vendor_cache
    from atmos_tasks import kinds
    from atmos_tasks.graphcache import _installation

    files: list[str] = []
    for package in (atmos_tasks, vendor_cache):
        for folder in package.__path__:
            for current, _dirs, names in os.walk(folder):
                files += [os.path.join(current, n) for n in names if n.endswith(".py")]
    for entry in kinds._entry_points().values():
        module = sys.modules.get(entry.module)
        if module is not None and getattr(module, "__file__", None):
            files.append(str(module.__file__))
    stamp: list[Any] = [_installation(script_folder=False)]
    for path in sorted(files):
        try:
            info = os.stat(path)
        except OSError:
            continue
        stamp.append((path, info.st_size, info.st_mtime_ns))
    return stamp


def global_key(
    observed: inputs.Observed, config: Any, target: str, context: dict[str, Any], vendors: str = ""
) -> str:
    """What every component's resolution shares, as read so far by the compilation, the vendor
    entries the target could take, and the time zone (the templates' dates read it below
    `os.environ`)."""
    from atmos_tasks.hashing import hash_json

    shared = {name: value for name, value in context.items() if name != "git"}
    return hash_json(
        [
            FORMAT,
            sys.version,
            _code_stamp(),
            repr(config),
            target,
            vendors,
            os.environ.get("TZ"),
            sorted(observed.files.items()),
            sorted(observed.trees.items()),
            sorted(observed.globs.items()),
            sorted((name, os.environ.get(name)) for name in observed.env),
            shared,
        ]
    )


def _env_digest(value: str | None) -> str | None:
    """An environment variable's value as kept: its digest (a variable may hold a secret)."""
    import hashlib

    return None if value is None else hashlib.blake2b(value.encode(), digest_size=20).hexdigest()


class ResolveMemo:
    """The memo of one (deployment, target): loaded once, validated per component, saved once."""

    def __init__(
        self,
        folder: Path,
        deployment: str,
        target: str,
        key: str,
        digest_tree: Callable[[str], str],
        digest_file: Callable[[str], str],
        verifying: bool = False,
    ) -> None:
        self.path = folder / f"{deployment}--{target}.pickle"
        self.key = key
        self.digest_tree, self.digest_file = digest_tree, digest_file
        self.verifying = verifying
        self.kept: dict[str, Memo] = {}
        self.hits = 0
        self.dirty = False
        try:
            stored = pickle.loads(read_private(self.path))
        except Exception:  # missing, damaged or foreign: resolve everything
            stored = None
        self.entries: dict[str, Memo] = (
            stored[1] if isinstance(stored, tuple) and len(stored) == 2 and stored[0] == key else {}
        )

    def get(self, name: str) -> Any | None:
        """The component's resolution if what it read is unchanged; what it read is observed again."""
        COUNTS[1] += 1
        memo = self.entries.get(name)
        if memo is None:
            return None
        if any(_env_digest(os.environ.get(k)) != v for k, v in memo.env.items()):
            return None
        if any(self.digest_file(path) != digest for path, digest in memo.files.items()):
            return None
        if any(self.digest_tree(path) != digest for path, digest in memo.trees.items()):
            return None
        for path in memo.files:
            inputs.file(path)
        for path, digest in memo.trees.items():
            inputs.tree(path, digest)
        for variable in memo.env:
            inputs.env(variable)
        self.kept[name] = memo
        self.hits += 1
        COUNTS[0] += 1
        return memo.component

    def verify(self, name: str, kept: Any, fresh: Any) -> None:
        """`verify` mode: the component served from the memo must be the one resolved now."""
        from atmos_tasks.graphcache import _canonical

        if _canonical(kept) == _canonical(fresh):
            return
        sys.stderr.write(
            f"error: the resolve memo holds {name} as it differs from what resolves now: an input of "
            "its resolution is not checked\n"
        )
        raise SystemExit(1)

    def put(self, name: str, component: Any, observed: inputs.Observed) -> None:
        """Keep a resolution, unless it read what cannot be checked again."""
        if observed.git or observed.volatile or observed.refs or observed.globs:
            return
        if None in observed.files.values() or None in observed.trees.values():
            return
        self.dirty = True
        self.kept[name] = Memo(
            component,
            dict(observed.trees),
            dict(observed.files),
            {k: _env_digest(os.environ.get(k)) for k in sorted(observed.env)},
        )

    def save(self) -> None:
        if not self.dirty and self.kept.keys() == self.entries.keys():
            return
        try:
            data = pickle.dumps((self.key, self.kept), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an unpicklable plugin value: a memo is a hint
            return
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomic(self.path, data, private=True)
        except OSError:  # a read-only checkout, a full disk: nothing half-written is left
            return
