"""Vendoring errors: each names the source or file at fault and says how to fix it.

`exit_code` follows SPEC §13 so the CLI edge can map any `VendorError` without knowing its class:
2 for bad input (a source string, an archive, a lock file that cannot be used as it is), 1 for a fetch
that failed (network, Git, a server that answered with an error).
"""

from __future__ import annotations

EXIT_FETCH_FAILED = 1
EXIT_BAD_INPUT = 2


class VendorError(Exception):
    """`origin` is where the entry at fault is written (`file:line`), when known."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None, origin: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.origin = origin

    def __str__(self) -> str:
        head = f"{self.origin}: {self.message}" if self.origin else self.message
        return f"{head}\n  hint: {self.hint}" if self.hint else head


class SourceError(VendorError):
    """A source string, local path, Git ref or subdirectory that cannot be vendored as written."""


class ManifestError(VendorError):
    """A vendor entry or `vendor.yaml` that is not valid."""


class UnsafeArchiveError(VendorError):
    """An archive member that would land outside the extraction directory."""


class LockError(VendorError):
    """The lock file cannot serve this request (missing, unreadable, or out of date under --frozen)."""


class LockMismatchError(LockError):
    """Under --frozen, the manifest entry no longer matches what the lock recorded."""


class MissingObjectError(LockError):
    """The object a lock (or a caller) names is not in the store."""


class FetchError(VendorError):
    """Fetching failed: network, Git, or the server refused."""

    exit_code = EXIT_FETCH_FAILED
