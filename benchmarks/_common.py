"""What every benchmark does first: measure the package as an installation would have it."""

from __future__ import annotations

import compileall
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compile_package() -> None:
    """Bytecode for atmos_tasks and vendor_cache, as `pip install` writes it.

    A checkout run with PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module in every
    process and measure that instead of the tool.
    """
    for package in ("atmos_tasks", "vendor_cache"):
        compileall.compile_dir(str(ROOT / package), quiet=1)


def calibration_seconds() -> float:
    """A fixed pure-Python workload (median of three): how fast this machine is right now.

    Printed beside absolute timings so a reader can tell a slow machine from a slow command; on
    the 2-core CI VM it has measured 0.15–0.23 s from one hour to the next.
    """
    import statistics
    import time

    def once() -> float:
        start = time.perf_counter()
        sum(i * i for i in range(2_000_000))
        return time.perf_counter() - start

    return statistics.median(once() for _ in range(3))


# The environment a benchmark's Git commits and commands run in: a fixed author, no colours.
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "NO_COLOR": "1",
}
