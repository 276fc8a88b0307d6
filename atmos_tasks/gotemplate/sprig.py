"""Sprig functions (placeholder, filled below)."""

from .funcs import GoFunc

SPRIG: dict[str, GoFunc] = {}
