"""`included_paths` / `excluded_paths`: doublestar globs as Atmos vendoring writes them.

Patterns match a file's path relative to the component root (posix separators). `*`, `?` and
`[…]` stay within one path segment, `**` as a whole segment spans any number of segments (also none,
so `**/*.tf` matches `main.tf`), `{a,b}` is alternation. A pattern that matches a directory covers
everything beneath it, so `excluded_paths: ["**/examples"]` drops whole example trees the way Atmos
skips a matching directory while copying.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(_translate(pattern.removeprefix("./")))


@dataclass(frozen=True)
class PathFilter:
    """Selects relative file paths: inside some `included` pattern (if any), outside every `excluded`."""

    included: tuple[re.Pattern[str], ...]
    excluded: tuple[re.Pattern[str], ...]

    def __call__(self, rel: str) -> bool:
        candidates = _self_and_ancestors(rel)
        if self.included and not any(r.fullmatch(c) for r in self.included for c in candidates):
            return False
        return not self.excludes(rel)

    def excludes(self, rel: str) -> bool:
        return any(r.fullmatch(c) for r in self.excluded for c in _self_and_ancestors(rel))


def path_filter(included: Iterable[str] = (), excluded: Iterable[str] = ()) -> PathFilter:
    return PathFilter(tuple(glob_to_regex(p) for p in included), tuple(glob_to_regex(p) for p in excluded))


def _self_and_ancestors(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if pattern.startswith("**", i):
            end = i + 2
            whole_segment = (i == 0 or pattern[i - 1] == "/") and (end == n or pattern[end] == "/")
            if whole_segment and end == n:
                out.append(".*")
            elif whole_segment:
                out.append("(?:.*/)?")
                end += 1
            else:
                # Like doublestar: `**` inside a segment is just a star.
                out.append("[^/]*")
            i = end
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            i = _translate_class(pattern, i, out)
        elif char == "{":
            i = _translate_braces(pattern, i, out)
        elif char == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _translate_class(pattern: str, start: int, out: list[str]) -> int:
    i = start + 1
    negate = i < len(pattern) and pattern[i] in "!^"
    if negate:
        i += 1
    # A `]` right after the opening bracket is a member, not the end.
    close = pattern.find("]", i + 1)
    if close < 0:
        out.append(re.escape("["))
        return start + 1
    body = pattern[i:close].replace("\\", "\\\\")
    out.append(f"(?!/)[{'^' if negate else ''}{body}]")
    return close + 1


def _translate_braces(pattern: str, start: int, out: list[str]) -> int:
    depth, i = 0, start
    pieces: list[str] = []
    piece_start = start + 1
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                pieces.append(pattern[piece_start:i])
                out.append("(?:" + "|".join(_translate(p) for p in pieces) + ")")
                return i + 1
        elif char == "," and depth == 1:
            pieces.append(pattern[piece_start:i])
            piece_start = i + 1
        i += 1
    out.append(re.escape("{"))
    return start + 1
