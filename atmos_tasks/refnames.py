"""Which names Git can hold in a ref: `git check-ref-format`'s rules as a pure function.

Deployment, target and component names become parts of refs and tags
(`refs/atmos/deployments/<dep>/<target>/<leaf>`, SPEC §10), so a name Git refuses must be refused
when the manifest is validated, not when a rollout records. The rules mirror Git's
`check_refname_format` (see `git help check-ref-format`):

1. no slash-separated part starts with `.` or ends with `.lock`;
2. no `..` anywhere;
3. no ASCII control character (below 0x20, or DEL), space, `~`, `^`, `:`, `?`, `*`, `[` or `\\`;
4. no empty part: no leading, trailing or doubled `/`;
5. not ending with `.`;
6. no `@{`;
7. not `@` alone;
8. at least two parts, unless one level is allowed (`--allow-onelevel`).
"""

from __future__ import annotations

FORBIDDEN = frozenset(" ~^:?*[\\")


def refname_problem(name: str, *, allow_onelevel: bool = False) -> str | None:
    """Why Git refuses `name` as a ref name, as `git check-ref-format [--allow-onelevel]` decides
    (a predicate: "ends with '.lock'"); None when Git accepts it."""
    if name == "":
        return "is empty"
    if name == "@":
        return "is '@' alone"
    for char in name:
        if ord(char) < 0x20 or ord(char) == 0x7F:
            return f"contains the control character {char!r}"
        if 0xD800 <= ord(char) <= 0xDFFF:
            # A YAML escape like "\ud800" makes one; no file name or ref can hold it.
            return f"contains {char!r}, half of a UTF-16 pair, which is not a character"
        if char in FORBIDDEN:
            return f"contains {char!r}"
    if ".." in name:
        return "contains '..'"
    if "@{" in name:
        return "contains '@{'"
    parts = name.split("/")
    for part in parts:
        problem = _part_problem(part)
        if problem:
            return problem if len(parts) == 1 else f"has a part that {problem} ({part!r})"
    if name.endswith("."):
        return "ends with '.'"
    if len(parts) < 2 and not allow_onelevel:
        return "has one level only (no '/')"
    return None


def _part_problem(part: str) -> str | None:
    if part == "":
        return "is empty (a leading, trailing or doubled '/')"
    if part.startswith("."):
        return "starts with '.'"
    if part.endswith(".lock"):
        return "ends with '.lock'"
    return None


def segment_problem(segment: str) -> str | None:
    """Why `segment` cannot be a `/`-separated part of a ref, wherever in it (also last); None
    when it can. These are the rules of a one-level ref name, without `/`."""
    if "/" in segment:
        return "contains '/'"
    return refname_problem(segment, allow_onelevel=True)
