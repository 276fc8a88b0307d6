"""Progress reporting: the library reports events, the caller decides how (or whether) to show them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    """`phase` is one of fetch, checkout, download, extract, insert, materialize, verify.

    `subject` names what the phase works on (a component, a source or a digest); `done`/`total` count
    bytes for download and files for insert and extract, and are None when a phase has no measure.
    """

    phase: str
    subject: str
    done: int | None = None
    total: int | None = None


Progress = Callable[[ProgressEvent], None]


def report(
    progress: Progress | None, phase: str, subject: str, done: int | None = None, total: int | None = None
) -> None:
    if progress is not None:
        progress(ProgressEvent(phase, subject, done, total))
