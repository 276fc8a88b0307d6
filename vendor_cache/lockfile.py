"""`.vendor-lock.yaml`: what vendoring resolved for one deployment target (SPEC §7).

The manifest says what the user asked for; the lock says what that resolved to (digest, Git commit).
Under `--frozen` the lock is the only truth and a manifest that no longer matches it is an error.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vendor_cache.digest import DIGEST
from vendor_cache.entries import VendorEntry
from vendor_cache.errors import LockError, VendorError
from vendor_cache.fsops import temp_name
from vendor_cache.sources import subdir_of

LOCK_SCHEMA = 1
HEADER = (
    "Written by vendor_cache (vendor pull): what each component's source resolved to.\n"
    "With --frozen, vendoring uses exactly these digests and never touches the network."
)


@dataclass(frozen=True)
class LockedComponent:
    """`digest` is the object (a source's whole tree); `subdir` the module's folder in it ("" for the
    tree itself), a `//` glob resolved."""

    source: str
    version: str | None
    digest: str
    commit: str | None = None
    included_paths: tuple[str, ...] = ()
    excluded_paths: tuple[str, ...] = ()
    subdir: str = ""

    @classmethod
    def from_entry(
        cls, entry: VendorEntry, digest: str, commit: str | None, subdir: str = ""
    ) -> LockedComponent:
        return cls(
            entry.source,
            entry.version,
            digest,
            commit,
            tuple(entry.included_paths),
            tuple(entry.excluded_paths),
            subdir,
        )

    def differences(self, entry: VendorEntry) -> list[str]:
        """How `entry` differs from what was locked, one phrase per field; empty when it matches."""
        pairs = [
            ("source", self.source, entry.source),
            ("version", self.version, entry.version),
            ("included_paths", list(self.included_paths), list(entry.included_paths)),
            ("excluded_paths", list(self.excluded_paths), list(entry.excluded_paths)),
        ]
        found = [
            f"{name}: lock has {locked!r}, manifest has {wanted!r}"
            for name, locked, wanted in pairs
            if locked != wanted
        ]
        # A lock written when objects held only the subdirectory names such an object: not this one.
        wanted_subdir = subdir_of(_rendered(entry))
        if wanted_subdir and not self.subdir:
            found.append(
                f"subdir: lock has none (it predates objects holding the whole source tree), "
                f"manifest has {wanted_subdir!r}"
            )
        return found

    def matches(self, entry: VendorEntry) -> bool:
        return not self.differences(entry)


@dataclass(frozen=True)
class VendorLock:
    components: Mapping[str, LockedComponent] = field(default_factory=dict)


# The text each path held when this process last read or wrote it, and that text's lock: a target's
# components are vendored one task after another in one process, each reading the lock the one
# before wrote. The file is read every time and compared (a few kilobytes); only parsing it again
# is saved. (A file's identity would not do: renamed-over files reuse two inodes in turn, and a
# lock of the same size written within one timestamp tick would look unchanged.)
_known: dict[Path, tuple[str, VendorLock]] = {}


def read_lock(path: Path) -> VendorLock:
    """The lock at `path`; an empty lock when there is no file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return VendorLock()
    known = _known.get(path)
    if known is not None and known[0] == text:
        return known[1]
    lock = parse_lock(text, path)
    _known[path] = (text, lock)
    return lock


def parse_lock(text: str, path: Path) -> VendorLock:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from vendor_cache.yamllimits import check_yaml_limits

    try:
        exceeded = check_yaml_limits(text)
        if exceeded is not None:
            raise _unusable(path, f"goes past a YAML limit at line {exceeded.line}: {exceeded.message}")
        document = YAML(typ="safe").load(text)
    except YAMLError as error:
        raise _unusable(path, f"is not valid YAML: {error}") from None
    if not isinstance(document, dict) or document.get("schema") != LOCK_SCHEMA:
        raise _unusable(path, f"is not a schema {LOCK_SCHEMA} vendor lock")
    raw = document.get("components") or {}
    if not isinstance(raw, dict):
        raise _unusable(path, "has a `components` that is not a mapping")
    return VendorLock({str(name): _component(path, str(name), item) for name, item in raw.items()})


def dump_lock(lock: VendorLock) -> str:
    """The lock as YAML, its header as comments. Written by ruamel's C emitter (about 5× faster than
    its round-trip dumper: each vendor task writes its target's lock)."""
    from ruamel.yaml import YAML

    document: dict[str, Any] = {"schema": LOCK_SCHEMA, "components": {}}
    for name in sorted(lock.components):
        locked = lock.components[name]
        item: dict[str, Any] = {"source": locked.source}
        if locked.version is not None:
            item["version"] = locked.version
        if locked.subdir:
            item["subdir"] = locked.subdir
        item["digest"] = locked.digest
        if locked.commit:
            item["commit"] = locked.commit
        if locked.included_paths:
            item["included_paths"] = list(locked.included_paths)
        if locked.excluded_paths:
            item["excluded_paths"] = list(locked.excluded_paths)
        document["components"][name] = item
    out = io.StringIO()
    out.write("".join(f"# {line}\n" for line in HEADER.splitlines()))
    yaml = YAML(typ="safe", pure=False)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    yaml.dump(document, out)
    return out.getvalue()


def write_lock(path: Path, lock: VendorLock) -> None:
    """Replace the lock atomically: readers see the old file or the new one, never a torn write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / temp_name()
    try:
        text = dump_lock(lock)
        tmp.write_text(text)
        os.replace(tmp, path)
        _known[path] = (text, lock)
    finally:
        tmp.unlink(missing_ok=True)


def _component(path: Path, name: str, item: Any) -> LockedComponent:
    if not isinstance(item, dict):
        raise _unusable(path, f"has a component {name!r} that is not a mapping")
    digest, source, version = item.get("digest"), item.get("source"), item.get("version")
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise _unusable(path, f"has no valid digest for component {name!r}")
    if not isinstance(source, str) or not (version is None or isinstance(version, str)):
        raise _unusable(path, f"has no valid source/version for component {name!r}")
    commit = item.get("commit")
    subdir = item.get("subdir") or ""
    if not isinstance(subdir, str):
        raise _unusable(path, f"has a subdir for component {name!r} that is not text")
    return LockedComponent(
        source=source,
        version=version,
        digest=digest,
        commit=str(commit) if commit else None,
        included_paths=tuple(str(p) for p in item.get("included_paths") or ()),
        excluded_paths=tuple(str(p) for p in item.get("excluded_paths") or ()),
        subdir=subdir,
    )


def _rendered(entry: VendorEntry) -> str:
    try:
        return entry.rendered_source
    except VendorError:  # a placeholder without a version: vendoring the entry says so
        return entry.source


def _unusable(path: Path, problem: str) -> LockError:
    return LockError(
        f"the vendor lock {path} {problem}",
        hint="delete it and run vendor pull (without --frozen) to write a new one",
    )
