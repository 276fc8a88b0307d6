"""A content-addressable store for vendored Terraform modules (SPEC §7), usable on its own.

`import vendor_cache` stays cheap: Git, HTTP, archives, YAML and the index are imported when used.
"""

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
from vendor_cache.lockfile import LockedComponent, VendorLock, read_lock, write_lock
from vendor_cache.progress import Progress, ProgressEvent
from vendor_cache.sources import parse_source, render_source
from vendor_cache.store import (
    CleanReport,
    ComponentStatus,
    FetchResult,
    Materialized,
    ObjectInfo,
    Store,
    StoreStats,
    VendoredComponent,
    is_intact,
)

__all__ = [
    "CleanReport",
    "ComponentStatus",
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
