"""`from atmos_tasks.dodo import *` in a repository's dodo.py: every deployment becomes doit tasks.

doit list                     the tasks of every deployment and target
doit rollout:api:dev          plan and apply every component of api on dev, then record
doit -n 2 rollout:api:dev     the same, independent components in parallel
doit plan:api:dev             what that rollout would change: plans only, applies and records nothing
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from atmos_tasks.doit_loader import create_tasks, doit_config
from atmos_tasks.invocation import from_argv

DOIT_CONFIG = doit_config(Path.cwd())


def task_atmos() -> Iterator[dict[str, Any]]:
    """atmos-tasks deployments"""
    # A dodo file sees no parsed arguments; doit's own command line is sys.argv.
    yield from create_tasks(Path.cwd(), from_argv(sys.argv[1:]))


__all__ = ["DOIT_CONFIG", "task_atmos"]
