"""A content-addressable store for vendored Terraform modules (SPEC §7), usable on its own.

`import vendor_cache` stays cheap: each public name is imported from its module on first use
(PEP 562), so a caller that only hashes trees (`vendor_cache.digest`) never loads the store, and
Git, HTTP, archives, YAML and the index are imported only when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vendor_cache.digest import file_digest, iter_tree, tree_digest
    from vendor_cache.entries import (
        VendorEntry,
        entries_from_manifest,
        read_vendor_yaml,
        resolve_entries,
        select_entries,
    )
    from vendor_cache.errors import (
        FetchError,
        LockError,
        LockMismatchError,
        ManifestError,
        MissingObjectError,
        SourceError,
        UnsafeArchiveError,
        VendorError,
    )
    from vendor_cache.integrity import Damage
    from vendor_cache.lockfile import LockedComponent, VendorLock, read_lock, write_lock
    from vendor_cache.progress import Progress, ProgressEvent
    from vendor_cache.sources import parse_source, render_source
    from vendor_cache.store import (
        CleanReport,
        ComponentStatus,
        FetchResult,
        Materialized,
        ObjectInfo,
        Repair,
        Store,
        StoreStats,
        VendoredComponent,
        is_intact,
    )

_MODULES = {
    "digest": ("file_digest", "iter_tree", "tree_digest"),
    "entries": (
        "VendorEntry",
        "entries_from_manifest",
        "read_vendor_yaml",
        "resolve_entries",
        "select_entries",
    ),
    "errors": (
        "FetchError",
        "LockError",
        "LockMismatchError",
        "ManifestError",
        "MissingObjectError",
        "SourceError",
        "UnsafeArchiveError",
        "VendorError",
    ),
    "integrity": ("Damage",),
    "lockfile": ("LockedComponent", "VendorLock", "read_lock", "write_lock"),
    "progress": ("Progress", "ProgressEvent"),
    "sources": ("parse_source", "render_source"),
    "store": (
        "CleanReport",
        "ComponentStatus",
        "FetchResult",
        "Materialized",
        "ObjectInfo",
        "Repair",
        "Store",
        "StoreStats",
        "VendoredComponent",
        "is_intact",
    ),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "CleanReport",
    "ComponentStatus",
    "Damage",
    "FetchError",
    "FetchResult",
    "LockError",
    "LockMismatchError",
    "LockedComponent",
    "ManifestError",
    "Materialized",
    "MissingObjectError",
    "ObjectInfo",
    "Progress",
    "ProgressEvent",
    "Repair",
    "SourceError",
    "Store",
    "StoreStats",
    "UnsafeArchiveError",
    "VendorEntry",
    "VendorError",
    "VendorLock",
    "VendoredComponent",
    "entries_from_manifest",
    "file_digest",
    "is_intact",
    "iter_tree",
    "parse_source",
    "read_lock",
    "read_vendor_yaml",
    "render_source",
    "resolve_entries",
    "select_entries",
    "tree_digest",
    "write_lock",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'vendor_cache' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"vendor_cache.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
