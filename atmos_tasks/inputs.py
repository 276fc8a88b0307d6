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


_CURRENT: contextvars.ContextVar[Observed | None] = contextvars.ContextVar("atmos_inputs", default=None)


@contextmanager
def observing() -> Iterator[Observed]:
    observed = Observed()
    token = _CURRENT.set(observed)
    try:
        yield observed
    finally:
        _CURRENT.reset(token)


def file(path: Path | str) -> None:
    """A file whose content the compilation used."""
    observed = _CURRENT.get()
    if observed is not None:
        name = str(Path(path).absolute())
        if name not in observed.files:
            observed.files[name] = observed.digest(name) if observed.digest else None


def tree(path: Path | str, digest: str | None = None) -> None:
    """A folder whose whole content (`digest`, as the compilation read it) the compilation used."""
    observed = _CURRENT.get()
    if observed is not None:
        observed.trees.setdefault(str(Path(path).absolute()), digest)


def matched(pattern: str, found: list[str]) -> None:
    """A glob the compilation expanded, and what it matched."""
    observed = _CURRENT.get()
    if observed is not None:
        observed.globs[pattern] = sorted(found)


def refs(patterns: list[str]) -> None:
    """Refs the compilation read (records, notes): their ids are part of the key."""
    observed = _CURRENT.get()
    if observed is not None:
        key = "\0".join(patterns)
        if key not in observed.refs:
            observed.refs[key] = observed.snapshot(list(patterns)) if observed.snapshot else None


def env(name: str) -> None:
    """An environment variable the compilation read (the graph cache also watches os.environ)."""
    observed = _CURRENT.get()
    if observed is not None:
        observed.env.add(name)


def volatile(reason: str) -> None:
    """Something read that no key can capture: the graph compiled now is never reused."""
    observed = _CURRENT.get()
    if observed is not None:
        observed.volatile.add(reason)
