"""What every benchmark does first: measure the package as an installation would have it."""

from __future__ import annotations

import compileall
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compile_package() -> None:
    """Bytecode for atmos_tasks and vendor_cache, as `pip install` writes it.

    A checkout run with PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module in every
    process and measure that instead of the tool.
    """
    for package in ("atmos_tasks", "vendor_cache"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
