"""The compiled task graph, kept between runs: a no-op rollout loads it instead of compiling.

A graph is reused only when everything its compilation read is as it was:

- the lookup key, known before compiling: the cache format, the Python running, the command line,
  the repository root, HEAD and the branch, `git status` (each changed or untracked path with the
  digest of its content: everything Git sees is then covered by the commit), and the variables a
  Git process reads (`GIT_*`, HOME, XDG_CONFIG_HOME, PATH) and the installed packages (the mtime
  of each folder on `sys.path`: installing or removing a plugin moves it);
- the inputs the compilation was observed reading (`inputs.Observed`), checked before use: files by
  content digest (ignored ones included: stacks, `!include`d files, vendor files, and this
  package's and its plugins' own modules when they are not in site-packages), module folders by
  tree digest, stack import globs by what they match, environment variables by value (through a
  watched `os.environ`: `!env`, the templates' `env`, the tool's own switches), Git refs (records,
  notes) by id.

A graph that read the clock or a command's output (`inputs.volatile`) is never stored, nor one
whose targets meet a gate that depends on who runs and when (a promotion rule, approvals, a
remote, record signing that is required) or that previews. Such runs compile every time.

`ATMOS_TASKS_GRAPH_CACHE=off` disables the cache; `=verify` compiles anyway and fails loudly when a
graph the cache would have served differs from the compiled one (the tests and the soak run use it).
Entries are written atomically (a temporary file renamed into place); an unreadable entry is a
miss. The newest `KEEP` entries are kept.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pickle
import stat
import sys
import sysconfig
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atmos_tasks import inputs
from atmos_tasks.atomic import read_private, write_atomic
from atmos_tasks.gitrepo import GitRepo, WorkingTree
from atmos_tasks.hashing import StatCache

FORMAT = 2
SWITCH = "ATMOS_TASKS_GRAPH_CACHE"
KEEP = 32
# Read by every Git process the compilation starts (whose environment is a copy of this one), and
# TZ, which the templates' dates read below Python's os.environ.
GIT_ENV = ("HOME", "XDG_CONFIG_HOME", "PATH", "TZ")


def mode() -> str:
    # How the cache is used is not an input of what is compiled: read past the watched environment.
    environ = os.environ
    real = environ.real if isinstance(environ, _WatchedEnviron) else environ
    value = real.get(SWITCH, "").strip().lower()
    return value if value in ("off", "verify") else "on"


@dataclass
class Entry:
    """What a stored graph read besides the commit, and the graph (doit task dictionaries)."""

    files: dict[str, str]
    trees: dict[str, str]
    globs: dict[str, list[str]]
    env: dict[str, str | None]
    refs: tuple[list[str], str]
    pairs: list[tuple[str, str]]
    tasks: bytes
    # The few tasks a settled run of the graph needs (`settled.skeleton`), None when none can be.
    skeleton: bytes | None = None


class Found:
    """A stored graph whose inputs hold: its targets, and its tasks unpickled when asked for (a
    settled run needs only its skeleton's, a few tasks instead of every component's)."""

    def __init__(self, entry: Entry) -> None:
        self.pairs = entry.pairs
        self._entry = entry
        self._tasks: list[dict[str, Any]] | None = None

    @property
    def tasks(self) -> list[dict[str, Any]]:
        if self._tasks is None:
            self._tasks = pickle.loads(self._entry.tasks)
        return self._tasks

    def skeleton(self) -> list[dict[str, Any]] | None:
        data = self._entry.skeleton
        return None if data is None else pickle.loads(data)


@dataclass
class Outcome:
    """How the graph of this run was obtained, for the rollout's summary line."""

    root: Path | None = None
    seconds: float = 0.0
    cached: bool = False
    # Set when the graph is cached and may be settled (`settled.py`): its key and targets.
    key: str | None = None
    pairs: list[tuple[str, str]] = field(default_factory=list)
    # A settled rollout: the mark it was answered from.
    settled: dict[str, Any] | None = None
    reason: str = ""
    started: float = field(default_factory=time.perf_counter)
    # Compiled: how many components resolved as they had last time (`resolvememo`), of how many.
    reused: tuple[int, int] = (0, 0)
    # Components known to be up to date before doit ran (`answered.py`), and whether they were
    # left in the graph for doit to confirm (`verify`).
    answers: dict[Any, Any] = field(default_factory=dict)
    verify_answers: bool = False

    def shown(self) -> str:
        how = "cached" if self.cached else "compiled"
        if self.settled is not None:
            how += ", settled"
        if not self.cached and self.reused[0]:
            how += f", {self.reused[0]} of {self.reused[1]} components as resolved before"
        return f"task graph {self.seconds:.2f}s, {how}"


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


def _file_digest(cache: StatCache, path: str) -> str:
    try:
        info = os.stat(path)
    except OSError:
        return "missing"
    if stat.S_ISDIR(info.st_mode):
        return "tree:" + cache.tree(path)
    return cache.file(path, info)


def _tree_digest(cache: StatCache, path: str) -> str:
    try:
        return cache.tree(path)
    except OSError:
        if os.path.isdir(path):
            raise  # the folder is there: what is in it moved while it was read (a miss)
        return "missing"  # gone, or not a folder (now)


def _glob(patterns: str) -> list[str]:
    found = {p for pattern in patterns.split("\0") for p in glob.glob(pattern, recursive=True)}
    return sorted(p for p in found if os.path.isfile(p))


def refs_digest(repo: GitRepo, patterns: list[str]) -> str:
    if not patterns:
        return ""
    proc = repo.run("for-each-ref", "--format=%(refname) %(objectname)", *patterns)
    return _digest(proc.stdout)


def _installation(script_folder: bool = True) -> list[Any]:
    """The Python running and what is installed: a package added or removed moves its folder
    (the working directory, first on `sys.path` for `python -m`, is the repository: Git covers it);
    and the local time zone the templates' dates use. Without `script_folder`, not the first entry
    of `sys.path` either: the folder of the script that started Python (`atmos-tasks` and `doit`
    start from a bin folder, `python -m doit` from the working directory), which holds no package."""
    folders = []
    here = os.path.realpath(".")
    for entry in sys.path if script_folder else sys.path[1:]:
        if not entry or os.path.realpath(entry) == here:
            continue
        try:
            folders.append((entry, os.stat(entry).st_mtime_ns))
        except OSError:
            continue
    try:
        zone = os.stat("/etc/localtime")
        localtime = [os.path.realpath("/etc/localtime"), zone.st_mtime_ns, zone.st_size]
    except OSError:
        localtime = []
    return [sys.version, folders, localtime]


def lookup_key(root: Path, invocation: Any, tree: WorkingTree, cache: StatCache) -> str:
    dirty = [(path, _file_digest(cache, str(root / path))) for path in sorted(tree.dirty)]
    env = {name: value for name, value in os.environ.items() if name.startswith("GIT_") or name in GIT_ENV}
    parts = [FORMAT, str(root), repr(invocation), tree.head, tree.branch, dirty, sorted(env.items())]
    parts.append(_installation())
    return _digest(repr(parts))


class _WatchedEnviron(MutableMapping[str, str]):
    """`os.environ` while compiling: every variable read by name is noted (`inputs.env`)."""

    def __init__(self, real: MutableMapping[str, str]) -> None:
        self.real = real

    # Only names are noted: `os.get_exec_path()` (any subprocess started without `env=`) also asks
    # for b"PATH", which the real mapping refuses; noted, it broke the key that lists what was read.
    def __getitem__(self, name: str) -> str:
        if isinstance(name, str):
            inputs.env(name)
        return self.real[name]

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        if isinstance(name, str):
            inputs.env(name)
        return self.real.get(name, default)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            inputs.env(name)
        return name in self.real

    def __setitem__(self, name: str, value: str) -> None:
        self.real[name] = value

    def __delitem__(self, name: str) -> None:
        del self.real[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.real)

    def __len__(self) -> int:
        return len(self.real)

    def copy(self) -> dict[str, str]:
        """The environment of a child process (a Git process: its variables are in the lookup key)."""
        return dict(self.real)


@contextmanager
def observing(root: Path | None = None) -> Iterator[inputs.Observed]:
    """Observe a compilation: files, trees, globs, refs, the environment, the templates' clock.

    With `root`, each file's digest is taken as it is read (through the repository's stat cache),
    so one that changes while compiling no longer matches the graph stored."""
    from atmos_tasks.gotemplate import runtime

    real = os.environ
    with inputs.observing() as observed:
        if root is not None:
            cache = StatCache(root / ".atmos" / "cache" / "stat-cache.json")
            repo = GitRepo(root)
            observed.digest = lambda path: _file_digest(cache, path)
            observed.snapshot = lambda patterns: refs_digest(repo, patterns)
        watched = _WatchedEnviron(real)
        token = runtime.OBSERVE.set(lambda what: inputs.volatile(f"a stack template read the clock ({what})"))
        os.environ = watched  # type: ignore[assignment]  # noqa: B003 - replaced, then restored
        try:
            yield observed
        finally:
            os.environ = real  # noqa: B003
            runtime.OBSERVE.reset(token)


def _own_modules() -> list[str]:
    """Modules loaded from outside site-packages and the standard library (a checkout of this
    package, a plugin installed in development mode): their source is part of the key."""
    skip = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    found = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py"):
            continue
        if any(path.startswith(folder + os.sep) for folder in skip):
            continue
        found.append(path)
    return sorted(found)


class GraphCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / ".atmos" / "cache" / "graphs"
        self.stat_cache = StatCache(root / ".atmos" / "cache" / "stat-cache.json")
        self.repo = GitRepo(root)

    def key(self, invocation: Any, tree: WorkingTree) -> str:
        return lookup_key(self.root, invocation, tree, self.stat_cache)

    def load(self, key: str) -> Found | None:
        path = self.folder / f"{key}.pickle"
        try:
            entry = pickle.loads(read_private(path))
            if not isinstance(entry, Entry) or not self._holds(entry):
                return None
        except Exception:  # a damaged or foreign entry is a miss, never an error
            return None
        finally:
            self._keep_stat_cache()
        return Found(entry)

    def _keep_stat_cache(self) -> None:
        """Keep the digests the check took of files no longer too new to be kept (a module written
        seconds before the rollout that stored the graph): else every later run reading the graph
        from here would read and hash those files again, 300 of them for 300 components."""
        try:
            self.stat_cache.save()
        except OSError:  # a read-only checkout, a full disk: a cache is a hint
            return

    def _holds(self, entry: Entry) -> bool:
        environ = os.environ
        if any(environ.get(name) != value for name, value in entry.env.items()):
            return False
        if any(_file_digest(self.stat_cache, path) != digest for path, digest in entry.files.items()):
            return False
        if any(_tree_digest(self.stat_cache, path) != digest for path, digest in entry.trees.items()):
            return False
        if any(_glob(patterns) != found for patterns, found in entry.globs.items()):
            return False
        patterns, digest = entry.refs
        return refs_digest(self.repo, patterns) == digest

    def store(
        self,
        key: str,
        observed: inputs.Observed,
        pairs: list[tuple[str, str]],
        tasks: list[dict[str, Any]],
    ) -> None:
        # Files and folders with the digest taken when they were read; this package's modules now.
        files = {**{path: None for path in _own_modules()}, **observed.files}
        trees = observed.trees
        for read, then in observed.refs.items():
            if then is not None and refs_digest(self.repo, read.split("\0")) != then:
                return  # records moved while compiling (another target's rollout): not kept
        refs = sorted({pattern for read in observed.refs for pattern in read.split("\0")})
        cache = self.stat_cache
        from atmos_tasks.settled import skeleton as settled_skeleton

        skeleton = settled_skeleton(tasks)
        entry = Entry(
            files={path: found or _file_digest(cache, path) for path, found in sorted(files.items())},
            trees={path: found or _tree_digest(cache, path) for path, found in sorted(trees.items())},
            globs=dict(observed.globs),
            env={name: os.environ.get(name) for name in sorted(observed.env)},
            refs=(refs, refs_digest(self.repo, refs)),
            pairs=pairs,
            tasks=pickle.dumps(tasks, protocol=pickle.HIGHEST_PROTOCOL),
            skeleton=None if skeleton is None else pickle.dumps(skeleton, protocol=pickle.HIGHEST_PROTOCOL),
        )
        # The graph holds the components' variables, sensitive ones included: its owner's only.
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
        write_atomic(self.folder / f"{key}.pickle", data, private=True)
        self.stat_cache.save()
        self._trim()

    def _trim(self) -> None:
        entries = sorted(self.folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for stale in entries[KEEP:]:
            stale.unlink(missing_ok=True)


def verify(cached: Found, pairs: list[tuple[str, str]], tasks: list[dict[str, Any]]) -> None:
    """`ATMOS_TASKS_GRAPH_CACHE=verify`: the graph the cache holds must be the one just compiled
    (and its skeleton the one a settled run of it would load)."""
    from atmos_tasks.settled import skeleton

    if (
        cached.pairs == pairs
        and _canonical(cached.tasks) == _canonical(tasks)
        and _canonical(cached.skeleton()) == _canonical(skeleton(tasks))
    ):
        return
    sys.stderr.write(
        "error: the graph cache holds a graph that differs from the one compiled now "
        f"({', '.join(f'{d}/{t}' for d, t in pairs)}): an input of the compilation is not in its key\n"
    )
    raise SystemExit(1)


def _canonical(value: Any) -> Any:
    """A comparable form of a task graph: sets sorted (their order varies from process to
    process), objects by class and attributes, functions by name."""
    if isinstance(value, dict):
        return sorted(((repr(_canonical(k)), _canonical(v)) for k, v in value.items()), key=lambda kv: kv[0])
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(repr(_canonical(v)) for v in value)
    if isinstance(value, str | int | float | bool | bytes) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return ["path", os.fspath(value)]  # (a PurePath's __slots__ hold nothing of its value)
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    fields = getattr(value, "__dict__", None)
    if fields is None and hasattr(value, "__slots__"):
        fields = {name: getattr(value, name, None) for name in value.__slots__}
    return [type(value).__qualname__, _canonical(fields if fields is not None else repr(value))]
