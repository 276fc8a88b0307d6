"""Limits on what a YAML file may ask of its reader: nesting depth and alias expansion.

A YAML parser composes nested collections recursively: a file nested thousands of levels deep
overflows the Python stack (a `RecursionError`) or, in the C composer, the process stack (a
crash). A few aliases of aliases (`&a [*b, *b, …]`, the "billion laughs") load quickly as shared
objects but expand to billions of nodes as soon as anything walks them (merging, rendering,
hashing). Both are refused here, from the text, before any loader runs:

- at most `MAX_DEPTH` nested lists and mappings, counting what an alias brings in where it is used;
- at most `MAX_ALIAS_NODES` nodes added by aliases in one file (an alias of a mapping with 3 keys
  adds 7 nodes: the mapping, its keys and values);
- no alias inside the node it names (a recursive structure).

The check is cheap on the normal path: two character counts and a regular-expression scan give
an upper bound on the nesting depth, and aliases need both an `&` and a `*`. Only a file that
might exceed a limit is parsed into events (iteratively, with an explicit stack) to find the exact
place. Usable on its own: it imports nothing from outside the standard library and ruamel.yaml.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

# The round-trip loader spends about four Python frames per level: under the default recursion
# limit it reads about 246 levels, and merging, rendering and hashing recurse per level after it.
MAX_DEPTH = 128
MAX_ALIAS_NODES = 100_000

# Characters that may lead a line before the first block collection on it begins: indentation,
# the indicators of compact block notation (`- - x`, `? - x`, `: - x`, `--- `), and the byte order
# mark libyaml skips at the start of a line.
_PREFIX = "[ \t?:\\-\ufeff]"
# Every line break libyaml counts (YAML 1.1 included), so a column is never under-estimated.
_BREAK = "[\n\r\x85\u2028\u2029]"


@dataclass(frozen=True)
class LimitExceeded:
    """Where a file goes past a limit (1-based line and column), what it did, and how to fix it."""

    message: str
    line: int
    column: int
    hint: str


DEPTH_HINT = (
    f"flatten this structure: at most {MAX_DEPTH} levels of nested lists and mappings are read "
    "(aliases count with what they bring in)"
)
ALIAS_HINT = (
    f"write the values out, or use fewer and smaller anchors: aliases may add at most "
    f"{MAX_ALIAS_NODES:,} nodes to a file"
)
RECURSIVE_HINT = "an alias cannot be used inside the node its anchor names; copy the values instead"


def check_yaml_limits(text: str) -> LimitExceeded | None:
    """The first limit `text` goes past, or None.

    Raises ruamel.yaml's YAMLError when the text had to be parsed and is not valid YAML: the
    same error, at the same place, as loading it would raise.
    """
    if not _may_nest_too_deep(text) and not ("&" in text and "*" in text):
        return None
    return _walk(text)


def _may_nest_too_deep(text: str) -> bool:
    """False when the nesting depth of `text` is certainly at most MAX_DEPTH.

    Block collections cannot appear inside flow ones, so a path from the root nests some block
    collections, then some flow ones. Every flow collection opens with its own `[` or `{`. Block
    collections that are open together start at strictly increasing columns, except a sequence
    written as a mapping's value at the mapping's column, whose items then start further right:
    at most 2 × (P + 1) block levels when no block collection starts after column P. A block
    collection starts either at the indentation of its line or after compact indicators
    (`- - a: 1`), so P is at most the longest run of indentation and indicators that leads a line.
    """
    flow = text.count("[") + text.count("{")
    room = MAX_DEPTH - flow  # block levels still allowed
    if room < 2:
        return True
    prefix = room // 2  # 2 × (P + 1) ≤ room  ⇔  P < room // 2
    first_line, other_lines = _leading_runs(prefix)
    return first_line.match(text) is not None or other_lines.search(text) is not None


@cache
def _leading_runs(length: int) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Runs of `length` or more indentation and indicator characters: on the first line, on any other."""
    # Two patterns rather than one with `(?:\A|…)`: a pattern that starts with a character class is
    # searched for faster.
    run = f"{_PREFIX}{{{length},}}"
    return re.compile(run), re.compile(_BREAK + run)


@dataclass
class _Open:
    anchor: str | None
    nodes: int = 1  # the collection itself, then its content as aliases expand it
    height: int = 1  # levels of collections, this one included


def _events(text: str) -> Iterator[Any]:
    """Parsing events, from libyaml when ruamel.yaml has it (ten times faster than `YAML.parse`)."""
    from ruamel.yaml.main import CParser

    if CParser is None:
        from ruamel.yaml import YAML

        yield from YAML(typ="safe", pure=True).parse(text)
        return
    parser = CParser(text)
    try:
        while parser.check_event():
            yield parser.get_event()
    finally:
        parser.dispose()


def _walk(text: str) -> LimitExceeded | None:
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        CollectionStartEvent,
        DocumentStartEvent,
        ScalarEvent,
    )

    stack: list[_Open] = []
    anchors: dict[str, tuple[int, int]] = {}  # name → (nodes, height) of the complete node
    added = 0
    for event in _events(text):
        nodes, height = 1, 0
        if isinstance(event, CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                return _exceeded(event, f"YAML nested deeper than {MAX_DEPTH} levels", DEPTH_HINT)
            stack.append(_Open(event.anchor))
            continue
        if isinstance(event, CollectionEndEvent):
            done = stack.pop()
            nodes, height = done.nodes, done.height
            if done.anchor is not None:
                anchors[done.anchor] = (nodes, height)
        elif isinstance(event, AliasEvent):
            name = event.anchor
            if any(o.anchor == name for o in stack):
                return _exceeded(event, f"YAML alias *{name} is used inside &{name}", RECURSIVE_HINT)
            if name not in anchors:
                continue  # undefined: the loader says so
            nodes, height = anchors[name]
            added += nodes
            if added > MAX_ALIAS_NODES:
                return _exceeded(
                    event, f"YAML aliases expand to more than {MAX_ALIAS_NODES:,} nodes", ALIAS_HINT
                )
            if len(stack) + height > MAX_DEPTH:
                return _exceeded(
                    event, f"YAML nested deeper than {MAX_DEPTH} levels through alias *{name}", DEPTH_HINT
                )
        elif isinstance(event, ScalarEvent):
            if event.anchor is not None:
                anchors[event.anchor] = (1, 0)
        elif isinstance(event, DocumentStartEvent):
            anchors.clear()  # anchors are local to their document
            continue
        else:
            continue
        if stack:
            parent = stack[-1]
            parent.nodes += nodes
            parent.height = max(parent.height, height + 1)
    return None


def _exceeded(event: Any, message: str, hint: str) -> LimitExceeded:
    mark = event.start_mark
    return LimitExceeded(message, mark.line + 1, mark.column + 1, hint)
