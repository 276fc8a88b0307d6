"""gomplate functions (placeholder)."""

from .funcs import GoFunc

GOMPLATE: dict[str, GoFunc] = {}
