"""Vendoring errors: each names the source or file at fault and says how to fix it.

`exit_code` follows SPEC §13 so the CLI edge can map any `VendorError` without knowing its class:
2 for bad input (a source string, an archive, a lock file that cannot be used as it is), 1 for a fetch
that failed (network, Git, a server that answered with an error).
"""

from __future__ import annotations

EXIT_FETCH_FAILED = 1
EXIT_BAD_INPUT = 2


class VendorError(Exception):
    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


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
