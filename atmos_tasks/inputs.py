"""What a compilation read beyond the commit: the observer the graph cache keys on.

Compiling reads the repository (covered by the commit and `git status`), and a few things Git does
not see: files Git ignores (a stack, an `!include`d file, a module folder), environment variables,
the clock, the output of a command. Code that reads one of those says so here; while no compilation
is observed, each call is a no-op costing one context-variable lookup.

`Observed` is plain data: paths, names and reasons, checked again by `graphcache` before a cached
graph is used.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Observed:
    # Path → its digest when it was read (so a change during the compilation is a mismatch later).
    files: dict[str, str | None] = field(default_factory=dict)
    trees: dict[str, str | None] = field(default_factory=dict)
    # How a file's digest is taken while observing (the graph cache's stat cache); None: not taken.
    digest: Callable[[str], str] | None = None
    globs: dict[str, list[str]] = field(default_factory=dict)
    env: set[str] = field(default_factory=set)
    # `git for-each-ref` patterns (and exact ref names) whose refs the compilation read, joined by
    # NUL per read, with the state of those refs just before the read (None: not taken).
    refs: dict[str, str | None] = field(default_factory=dict)
    # How that state is taken while observing (the graph cache's); None: not taken.
    snapshot: Callable[[list[str]], str] | None = None
    # Why the graph must not be reused (the clock, a command's output): never cached.
    volatile: set[str] = field(default_factory=set)
    # Whether the commit's id or branch (the templates' `git.*`) was read.
    git: bool = False
    # The observation this one is part of (`scoped`): everything observed here is observed there too.
    parent: Observed | None = None


_CURRENT: contextvars.ContextVar[Observed | None] = contextvars.ContextVar("atmos_inputs", default=None)


@contextmanager
def observing() -> Iterator[Observed]:
    observed = Observed()
    token = _CURRENT.set(observed)
    try:
        yield observed
    finally:
        _CURRENT.reset(token)


@contextmanager
def scoped() -> Iterator[Observed]:
    """Observe a part of the compilation (one component's resolution) on its own, while what it
    reads is observed by the enclosing observation as well. Without one, a throwaway observation."""
    parent = _CURRENT.get()
    observed = Observed(parent=parent)
    if parent is not None:
        observed.digest, observed.snapshot = parent.digest, parent.snapshot
    token = _CURRENT.set(observed)
    try:
        yield observed
    finally:
        _CURRENT.reset(token)


def current() -> Observed | None:
    """The observation in progress, if any."""
    return _CURRENT.get()


def _chain() -> Iterator[Observed]:
    observed = _CURRENT.get()
    while observed is not None:
        yield observed
        observed = observed.parent


def _absolute(path: Path | str) -> str:
    """The path as a key: absolute, as `Path.absolute` writes it. A string already written so is
    taken as it is (a compilation of 300 components names 1,500 paths), as is a `Path`'s text
    (`str` of a `Path` is kept by it; a `Path` made again from it is parsed again)."""
    text = path if isinstance(path, str) else str(path)
    if text.startswith("/") and not text.endswith(("/", "/.")) and "//" not in text and "/./" not in text:
        return text
    return str(Path(text).absolute())


def file(path: Path | str) -> None:
    """A file whose content the compilation used."""
    name = None
    taken: list[str | None] = []  # the digest, taken once and only if a level lacks the file
    for observed in _chain():
        if name is None:
            name = _absolute(path)
        if name not in observed.files:
            if not taken:
                taken.append(observed.digest(name) if observed.digest else None)
            observed.files[name] = taken[0]


def tree(path: Path | str, digest: str | None = None) -> None:
    """A folder whose whole content (`digest`, as the compilation read it) the compilation used."""
    name = None
    for observed in _chain():
        if name is None:
            name = _absolute(path)
        observed.trees.setdefault(name, digest)


def matched(pattern: str, found: list[str]) -> None:
    """A glob the compilation expanded, and what it matched."""
    for observed in _chain():
        observed.globs[pattern] = sorted(found)


def refs(patterns: list[str]) -> None:
    """Refs the compilation read (records, notes): their ids are part of the key."""
    key = "\0".join(patterns)
    taken: list[str | None] = []
    for observed in _chain():
        if key not in observed.refs:
            if not taken:
                taken.append(observed.snapshot(list(patterns)) if observed.snapshot else None)
            observed.refs[key] = taken[0]


def env(name: str) -> None:
    """An environment variable the compilation read (the graph cache also watches os.environ)."""
    for observed in _chain():
        observed.env.add(name)


def volatile(reason: str) -> None:
    """Something read that no key can capture: the graph compiled now is never reused."""
    for observed in _chain():
        observed.volatile.add(reason)


def git() -> None:
    """The commit's id or branch was read (a template's `git.*`)."""
    for observed in _chain():
        observed.git = True
