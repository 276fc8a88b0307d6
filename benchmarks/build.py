"""No-op overhead of a rollout whose images are all up to date, for 1 and for 20 nixpack components.

Generates two repositories (one deployment with 1, then 20, nixpack components: static sites of
25 files each, built by the daemonless `oci` backend on `scratch`), rolls each out once, then
measures, side by side in one run, `doit rollout:site:dev` when nothing changed: every build is
up to date, nothing is recorded. Also shown: the interpreter alone and `doit --version`.

Goal: flat (20 components cost about what 1 costs) and under 0.5 s.
Usage: python benchmarks/build.py
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import calibration_seconds, compile_package

FILES_PER_SITE = 25
RUNS = 7


def generate(root: Path, components: int) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    (root / "dodo.py").write_text("from atmos_tasks.dodo import *  # noqa: F403\n")
    (root / ".gitignore").write_text(".atmos/\n")
    (root / "stacks").mkdir()
    lines = ["deployment:", "  name: site", "  components:", "    nixpack:"]
    for index in range(components):
        site = root / "services" / f"site{index}"
        (site / "assets").mkdir(parents=True)
        (site / "index.html").write_text(f"<h1>site {index}</h1>\n")
        for page in range(FILES_PER_SITE - 1):
            (site / "assets" / f"page{page}.html").write_text(f"<p>{index}/{page}</p>\n" * 20)
        lines += [
            f"      site{index}:",
            f"        vars: {{source: ./services/site{index}}}",
            "        settings: {nixpack: {base_image: scratch, publish: false, builder: oci}}",
        ]
    lines += ["  targets:", "    dev: {}"]
    (root / "deployments").mkdir()
    (root / "deployments" / "site.yaml").write_text("\n".join(lines) + "\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@example.com",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@example.com",
    }
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "sites"], cwd=root, check=True, env=env)
    first = subprocess.run(
        [sys.executable, "-m", "doit", "rollout:site:dev"], cwd=root, capture_output=True, text=True, env=env
    )
    if first.returncode != 0:
        raise SystemExit(first.stdout + first.stderr)


def timed(args: list[str], cwd: Path, noop: bool) -> float:
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or (noop and "building" in proc.stdout):
        raise SystemExit(f"not a no-op: {proc.stdout}{proc.stderr}")
    return elapsed


def interleaved(commands: dict[str, tuple[list[str], Path]]) -> dict[str, float]:
    """Median seconds of each command over RUNS rounds, after one warm-up round; the commands
    alternate within a round, so a burst of load on a shared machine hits them alike."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(RUNS + 1):
        for name, (args, cwd) in commands.items():
            elapsed = timed(args, cwd, noop=name.startswith("noop"))
            if round_:
                samples[name].append(elapsed)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> int:
    compile_package()
    base = Path(tempfile.mkdtemp(prefix="build-bench-"))
    try:
        repos = {}
        for count in (1, 20):
            repos[count] = base / f"n{count}"
            generate(repos[count], count)
        rollout = [sys.executable, "-m", "doit", "rollout:site:dev"]
        medians = interleaved(
            {
                "noop1": (rollout, repos[1]),
                "noop20": (rollout, repos[20]),
                "bare": ([sys.executable, "-c", "pass"], base),
                "doit": ([sys.executable, "-m", "doit", "--version"], base),
            }
        )
        noop = {1: medians["noop1"], 20: medians["noop20"]}
        bare, doit_alone = medians["bare"], medians["doit"]
        ratio = noop[20] / noop[1]
        print(f"{'measurement':<52} {'seconds':>8}")
        print(f"{'python -c pass':<52} {bare:>8.3f}")
        print(f"{'python -m doit --version':<52} {doit_alone:>8.3f}")
        for count in (1, 20):
            label = f"no-op doit rollout:site:dev, {count} image(s) ({count * FILES_PER_SITE} files)"
            print(f"{label:<52} {noop[count]:>8.3f}")
        goal = noop[20] < 0.5 and ratio < 1.5
        calibration_s = calibration_seconds()
        print(f"\n20 images / 1 image: {ratio:.2f}×   (goal: flat, < 1.5×, and each under 0.5 s)")
        print(f"machine: a fixed 2M-step Python loop took {calibration_s:.3f} s")
        print(
            json.dumps(
                {
                    "benchmark": "build_noop",
                    "noop_1_s": round(noop[1], 4),
                    "noop_20_s": round(noop[20], 4),
                    "ratio_20_to_1": round(ratio, 3),
                    "python_start_s": round(bare, 4),
                    "doit_version_s": round(doit_alone, 4),
                    "calibration_loop_s": round(calibration_s, 3),
                    "goal_s": 0.5,
                    "goal_met": goal,
                }
            )
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if goal else 1


if __name__ == "__main__":
    sys.exit(main())
