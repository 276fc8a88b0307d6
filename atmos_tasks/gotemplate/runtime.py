"""What functions read from the render that calls them: its clock and its environment."""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Mapping
from datetime import datetime

NOW: contextvars.ContextVar[datetime | None] = contextvars.ContextVar("gotemplate_now", default=None)
ENV: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("gotemplate_env", default=None)
# Told "now" when a render reads the local clock: a caller that reuses rendered results (a cache)
# learns which of them depended on the time they were made.
OBSERVE: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "gotemplate_observe", default=None
)


def current_now() -> datetime:
    """The `now` a render was given, else the local time."""
    value = NOW.get()
    if value is not None:
        return value
    observe = OBSERVE.get()
    if observe is not None:
        observe("now")
    return datetime.now().astimezone()


def current_env() -> Mapping[str, str]:
    """The `env` a render was given, else the process environment."""
    value = ENV.get()
    return value if value is not None else os.environ
