#!/usr/bin/env python3
"""A GitLab CI child pipeline from `atmos-tasks matrix <dep> --target <t> --waves --format json`.

GitLab's `parallel: matrix:` is fixed when the pipeline is created, so the matrix becomes a child
pipeline instead: one stage per wave, one job per component (`doit <task> --remote origin`, its
`needs:` the jobs of the components it depends on), and a last `record` job that runs the target's
rollout, which records what the target then runs (every component up to date by then).

    atmos-tasks matrix api --target dev --waves --format json \\
      | python scripts/gitlab-child-pipeline.py --include .gitlab/atmos.yml --extends .atmos > child.yml

A child pipeline does not see its parent's hidden jobs: `--include` names the repository file that
defines the one every job `--extends` (its image, `before_script`, variables).

Reads the matrix on standard input, writes the pipeline on standard output.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any


def job_name(entry: dict[str, Any]) -> str:
    """A GitLab job name for a component (`terraform/ecs/service-api`)."""
    return f"{entry['type']}/{entry['component']}"


def pipeline(matrix: dict[str, Any], extends: str | None, include: str | None = None) -> dict[str, Any]:
    waves: list[list[dict[str, Any]]] = matrix["waves"]
    entries = [entry for wave in waves for entry in wave]
    if not entries:
        raise SystemExit("the matrix has no components")
    deployment, target = entries[0]["deployment"], entries[0]["target"]
    stages = [f"wave-{index}" for index in range(len(waves))] + ["record"]
    out: dict[str, Any] = {"include": [{"local": include}]} if include else {}
    out["stages"] = stages
    base = {"extends": extends} if extends else {}
    for index, wave in enumerate(waves):
        for entry in wave:
            out[job_name(entry)] = {
                **base,
                "stage": f"wave-{index}",
                "needs": sorted(entry["depends_on"]),
                "script": [f"doit {entry['task']} --remote origin"],
            }
    out["record"] = {
        **base,
        "stage": "record",
        "needs": sorted(job_name(entry) for entry in entries),
        "script": [f"doit rollout:{deployment}:{target} --remote origin"],
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extends", help="a hidden job every job extends (image, before_script, variables)")
    parser.add_argument("--include", help="the repository file that defines it (a child sees no parent job)")
    args = parser.parse_args()
    matrix = json.load(sys.stdin)
    if not isinstance(matrix, dict) or not isinstance(matrix.get("waves"), list):
        raise SystemExit("expected `atmos-tasks matrix … --waves --format json` on standard input")
    if args.extends and not re.fullmatch(r"\.[A-Za-z0-9_.-]+", args.extends):
        raise SystemExit("--extends names a hidden job: .atmos")
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    yaml.dump(pipeline(matrix, args.extends, args.include), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
