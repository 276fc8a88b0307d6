"""Reading YAML: a fast loader for data, a positioned loader for error locations.

Stack files are read with the C-accelerated safe loader (several times faster than the
round-trip loader); line and column numbers are only needed when something is wrong, so a file
is re-read with the round-trip loader to locate a key path on demand.

Before either loader sees a file, its nesting depth and alias expansion are held to the limits of
`vendor_cache.yamllimits`: a loader composes recursively, so a hostile file would otherwise crash
the process or expand to billions of nodes.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import ConstructorError, SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from atmos_tasks.errors import AtmosError, Location, Problem
from vendor_cache.yamllimits import check_yaml_limits

KeyPath = Sequence[str | int]

_TAG = re.compile(r"tag '(![^']*)'")
_DUPLICATE = re.compile(r'found duplicate key "([^"]*)"')
_PARSED_FORMAT = 1


class _PlainConstructor(SafeConstructor):
    """Timestamps stay strings: they are passed on to Terraform as written, as Atmos does."""

    def check_mapping_key(self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any) -> bool:
        try:
            hash(key)
        except TypeError:
            # `[a]: 1` or `{a: b}: 1`: YAML allows it, no stack or manifest means it.
            raise ConstructorError(
                "while reading a mapping",
                node.start_mark,
                "a key must be a name or a number, not a list or a mapping",
                key_node.start_mark,
            ) from None
        return bool(super().check_mapping_key(node, key_node, mapping, key, value))


_PlainConstructor.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)

# The file being loaded: YAML functions remember where they were written.
_LOADING = {"shown": ""}


def _yaml_function(constructor: SafeConstructor, node: Any) -> Any:
    from atmos_tasks.yamlfunctions import YamlFunction

    if not isinstance(node.value, str):
        raise ConstructorError(
            None, None, f"YAML function {node.tag} takes its arguments as one line of text", node.start_mark
        )
    mark = node.start_mark
    return YamlFunction(node.tag, node.value, _LOADING["shown"], mark.line + 1, mark.column + 1)


def _register_functions() -> None:
    from atmos_tasks.yamlfunctions import TAGS

    for tag in TAGS:
        _PlainConstructor.add_constructor(tag, _yaml_function)


_register_functions()


@cache
def _fast() -> YAML:
    yaml = YAML(typ="safe")
    yaml.Constructor = _PlainConstructor
    return yaml


@cache
def _positioned() -> YAML:
    return YAML(typ="rt")


def display_path(path: Path, root: Path | None = None) -> str:
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return str(path)


def _yaml_problem(err: YAMLError, shown: str) -> Problem:
    if isinstance(err, MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        location = Location(shown, mark.line + 1, mark.column + 1)
        text = err.problem or str(err)
        tag = _TAG.search(str(err))
        if tag:
            return Problem(
                f"YAML function {tag.group(1)} is not supported",
                location,
                "replace it with a plain value; YAML functions (!include, !env, !terraform.output, …) "
                "are out of scope",
            )
        duplicate = _DUPLICATE.search(text)
        if duplicate:
            return Problem(
                f"duplicate key {duplicate.group(1)!r}", location, "remove or merge one of the two entries"
            )
        return Problem(f"invalid YAML: {text}", location, "fix the YAML syntax at this position")
    return Problem(f"invalid YAML: {err}", Location(shown), "fix the YAML syntax")


def load_data(path: Path, shown: str, parsed: ParseCache | None = None) -> Any:
    """Plain Python data (dicts, lists, scalars); raises AtmosError with a location.

    With `parsed` (`RepoConfig.parse_cache`), what a file parsed to is kept in the repository's
    working data, one entry per file, and served again while the file's text is the same: a
    manifest of 300 components takes ~45 ms to check and parse, ~3 ms to load from there."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AtmosError([Problem("file not found", Location(shown))]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise AtmosError([Problem(f"cannot read file: {err}", Location(shown))]) from None
    entry = key = found = None
    if parsed is not None:
        entry, key = _parsed_entry(parsed.folder, text, shown)
        found = _parsed_get(entry, key)
        if found is not None and not parsed.verifying:
            return found[0]
    try:
        _check_limits(text, shown)
        _LOADING["shown"] = shown
        data = _fast().load(text)
    except YAMLError as err:
        raise AtmosError([_yaml_problem(err, shown)]) from None
    if found is not None:
        if pickle.dumps(found[0]) != pickle.dumps(data):  # `.nan` is not equal to itself
            raise AtmosError(
                [
                    Problem(
                        "the kept parse of this file differs from what it parses to now",
                        Location(shown),
                        "an input of the parse is not in its key: report it; "
                        "ATMOS_TASKS_GRAPH_CACHE=off parses every time",
                    )
                ]
            )
    elif entry is not None and key is not None:
        _parsed_put(entry, key, data)
    return data


@dataclass(frozen=True)
class ParseCache:
    """Where parsed files are kept; `verifying`: parse anyway and compare (the test suite)."""

    folder: Path
    verifying: bool = False


def _parsed_entry(folder: Path, text: str, shown: str) -> tuple[Path, str]:
    """Where a file's parse is kept (by the name it is shown as) and the key it must match: the
    text, the name (YAML functions remember where they were written) and the code that parses
    (the loader's version, this module's and the YAML functions' source by size and time)."""
    import hashlib

    digest = hashlib.blake2b(repr([*_parsing_code(), shown]).encode(), digest_size=20)
    digest.update(text.encode("utf-8", "surrogatepass"))
    name = hashlib.blake2b(shown.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()
    return folder / f"{name}.pickle", digest.hexdigest()


@cache
def _parsing_code() -> tuple[Any, ...]:
    """The code that parses, once per process: the format, ruamel's version, and this module's and
    the YAML functions' source by size and time."""
    import ruamel.yaml

    from atmos_tasks import yamlfunctions
    from atmos_tasks.atomic import source_stamp

    return (_PARSED_FORMAT, ruamel.yaml.__version__, *source_stamp(__file__, yamlfunctions.__file__))


def _parsed_get(entry: Path, key: str) -> tuple[Any] | None:
    """The kept parse when its key matches; a missing, damaged or foreign entry is no entry, and
    so is one this user did not write for itself (another owner, or readable by others: a file
    committed to the repository and checked out is never unpickled)."""
    from atmos_tasks.atomic import read_private

    try:
        stored = pickle.loads(read_private(entry))
    except Exception:
        return None
    if isinstance(stored, tuple) and len(stored) == 2 and stored[0] == key:
        return (stored[1],)
    return None


def _parsed_put(entry: Path, key: str, data: Any) -> None:
    """Keep a parse (readable by its owner only: a file may hold secrets). A hint: a read-only
    checkout or a full disk keeps nothing, and nothing half-written is left."""
    from atmos_tasks.atomic import write_atomic

    try:
        write_atomic(entry, pickle.dumps((key, data), protocol=pickle.HIGHEST_PROTOCOL), private=True)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        return


def load_positioned(path: Path, shown: str) -> Any:
    """Round-trip data (CommentedMap/CommentedSeq) that knows line and column of every key."""
    try:
        text = path.read_text(encoding="utf-8")
        _check_limits(text, shown)
        return _positioned().load(text)
    except YAMLError as err:
        raise AtmosError([_yaml_problem(err, shown)]) from None


def _check_limits(text: str, shown: str) -> None:
    """AtmosError at the place a file nests too deep or expands too far through aliases."""
    exceeded = check_yaml_limits(text)
    if exceeded is not None:
        location = Location(shown, exceeded.line, exceeded.column)
        raise AtmosError([Problem(exceeded.message, location, exceeded.hint)])


def locate(root: Any, keypath: KeyPath, *, at_key: bool = False) -> tuple[int, int] | None:
    """1-based (line, column) of the value at `keypath` (or of its key), as deep as it exists."""
    node = root
    best: tuple[int, int] | None = None
    if hasattr(node, "lc"):
        best = (node.lc.line + 1, node.lc.col + 1)
    for index, part in enumerate(keypath):
        last = index == len(keypath) - 1
        lc = getattr(node, "lc", None)
        if lc is None:
            break
        if isinstance(node, dict) and part in node:
            line, col = lc.key(part) if (at_key and last) else lc.value(part)
            best = (line + 1, col + 1)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            line, col = lc.item(part)
            best = (line + 1, col + 1)
            node = node[part]
        else:
            break
    return best


def locate_in_file(path: Path, shown: str, keypath: KeyPath, *, at_key: bool = False) -> Location:
    try:
        root = load_positioned(path, shown)
    except (AtmosError, OSError):
        return Location(shown)
    found = locate(root, keypath, at_key=at_key)
    return Location(shown, *found) if found else Location(shown)
