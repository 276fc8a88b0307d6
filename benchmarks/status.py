"""`status` and `history` on a large record set, side by side with the `git for-each-ref` each runs.

Builds a repository holding the refs and tags that 500 deployments × 3 targets × 10 components
leave behind (one rollout each, plus 50 rollouts of history on one target), packs its refs as
`git gc` would, then measures, in interleaved rounds (each command once per round, the median
kept):

  - the floor of each query: `git for-each-ref` over the patterns with the fields that query asks
    Git for (`tracking.record_patterns` and `RECORD_FIELDS`, the code's own), output discarded:
    Git's cost alone, with nothing parsed or printed;
  - `atmos-tasks status --no-health` (the table) and `status --no-health --format json`, over all
    15,000 components, against the floor of every record;
  - `atmos-tasks history app42 --target prod --format json`, against the floor of app42/prod's
    records only (what history reads);
  - Python's start with `import atmos_tasks.queries`, the share no Git work can hide.

Goals: status (table and JSON) within 3× its floor, each ratio the median of the rounds' ratios
(a round's commands run back to back, so a busy machine slows both sides of a ratio alike);
status and history each under 1 s. Prints a table, then one JSON line with the figures and each
goal; exits 1 when a goal is missed.

Usage: python benchmarks/status.py [--loose] [--rounds N] [--keep DIR (reused when it exists)]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import calibration_seconds, compile_package

DEPLOYMENTS = 500
TARGETS = ("dev", "staging", "prod")
COMPONENTS = 10
HISTORY = 50


def build(root: Path) -> int:
    from atmos_tasks.gitrepo import GitRepo, Ident, RefUpdate
    from atmos_tasks.record import tag_object
    from atmos_tasks.tracking import DeploymentRecord, ref_name, tag_name, tag_stamp

    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    (root / "README.md").write_text("records only\n")
    env = {
        "GIT_AUTHOR_NAME": "ci",
        "GIT_AUTHOR_EMAIL": "ci@example.com",
        "GIT_COMMITTER_NAME": "ci",
        "GIT_COMMITTER_EMAIL": "ci@example.com",
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "base"], cwd=root, check=True, env=env)
    repo = GitRepo(root)
    head = repo.run("rev-parse", "HEAD").stdout.strip()
    ident = Ident("CI", "ci@example.com")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rollouts: list[tuple[str, str, str, datetime]] = []
    for d in range(DEPLOYMENTS):
        for t, target in enumerate(TARGETS):
            rollouts.append((f"app{d}", target, head, start + timedelta(minutes=d * 3 + t)))
    for n in range(HISTORY):
        rollouts.append(("app42", "prod", head, start + timedelta(days=30, hours=n)))
    bodies, names, refs = [], [], {}
    for deployment, target, sha, when in rollouts:
        stamp = tag_stamp(when)
        for c in range(COMPONENTS):
            component = f"svc/component-{c}"
            record = DeploymentRecord(
                deployment=deployment,
                target=target,
                component=component,
                type="terraform",
                git_sha=sha,
                deployed_by="ci@example.com",
                timestamp=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                status="success",
                inputs_hash="ab" * 32,
                changes="applied",
                promoted_from="staging" if target == "prod" else None,
            )
            name = tag_name(deployment, target, component, stamp)
            bodies.append(tag_object(sha, name, ident, when, record.to_message()))
            names.append(name)
            refs[ref_name(deployment, target, component)] = sha
    shas = repo.write_objects("tag", bodies)
    updates = [RefUpdate(f"refs/tags/{n}", s, None) for n, s in zip(names, shas, strict=True)]
    updates += [RefUpdate(ref, sha, None) for ref, sha in refs.items()]
    repo.update_refs(updates)
    return len(updates)


def timed(args: list[str], cwd: Path) -> float:
    begin = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - begin


def main() -> None:
    compile_package()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--loose", action="store_true", help="do not pack refs and objects (fresh repository)"
    )
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds (after one warm-up)")
    parser.add_argument("--keep", help="build the repository here and keep it (reused if it exists)")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="status-bench-"))
    try:
        sys.exit(run(root, args))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def run(root: Path, args: argparse.Namespace) -> int:
    from atmos_tasks.gitrepo import ref_format
    from atmos_tasks.tracking import RECORD_FIELDS, record_patterns

    if args.keep and (root / ".git").is_dir():
        print(f"reusing the records in {root}")
    else:
        build(root)
        if not args.loose:
            # What `git gc` does to any repository in time: packed refs and packed objects.
            subprocess.run(["git", "pack-refs", "--all"], cwd=root, check=True)
            subprocess.run(["git", "repack", "-adq"], cwd=root, check=True)
    fmt = f"--format={ref_format(RECORD_FIELDS)}"
    cli = [sys.executable, "-m", "atmos_tasks.cli"]
    commands = {
        "floor_status": ["git", "for-each-ref", fmt, *record_patterns()],
        "status_table": [*cli, "status", "--no-health"],
        "status_json": [*cli, "status", "--no-health", "--format", "json"],
        "floor_history": ["git", "for-each-ref", fmt, *record_patterns("app42", "prod")],
        "history_json": [*cli, "history", "app42", "--target", "prod", "--format", "json"],
        "python_start": [sys.executable, "-c", "import atmos_tasks.queries"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(args.rounds + 1):
        for name, command in commands.items():
            took = timed(command, root)
            if round_:  # the first round warms caches only
                times[name].append(took)

    def ratios(name: str, floor: str) -> float:
        return statistics.median(a / b for a, b in zip(times[name], times[floor], strict=True))

    median = {name: statistics.median(values) for name, values in times.items()}
    ratio = {
        "status_table": ratios("status_table", "floor_status"),
        "status_json": ratios("status_json", "floor_status"),
        "history_json": ratios("history_json", "floor_history"),
        "python_start": ratios("python_start", "floor_status"),
    }

    def refs(patterns: list[str]) -> int:
        listed = subprocess.run(
            ["git", "for-each-ref", "--format=%(refname)", *patterns],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
        return len(listed.stdout.split())

    count, history_refs = refs(record_patterns()), refs(record_patterns("app42", "prod"))
    check = json.loads(
        subprocess.run(commands["status_json"], cwd=root, capture_output=True, text=True, check=True).stdout
    )
    entries = sum(len(c) for targets in check.values() for c in targets.values())
    print(
        f"Records: {count} refs and tags ({DEPLOYMENTS} deployments × {len(TARGETS)} targets × "
        f"{COMPONENTS} components, {HISTORY} rollouts of history on app42/prod), "
        f"{'loose' if args.loose else 'packed'} refs; status lists {entries} components; "
        f"median of {args.rounds} interleaved rounds\n"
    )
    rows = [
        ("git for-each-ref: every record (status's floor)", "floor_status", None),
        ("atmos-tasks status --no-health (table)", "status_table", "floor_status"),
        ("atmos-tasks status --no-health --format json", "status_json", "floor_status"),
        (f"git for-each-ref: app42/prod ({history_refs} refs, history's floor)", "floor_history", None),
        ("atmos-tasks history app42 --target prod --format json", "history_json", "floor_history"),
        ("python start + import atmos_tasks.queries", "python_start", "floor_status"),
    ]
    print(f"{'measurement':<58} {'seconds':>8} {'× floor':>8}")
    for label, name, floor in rows:
        shown = f"{ratio[name]:>8.2f}" if floor else f"{'1':>8}"
        print(f"{label:<58} {median[name]:>8.3f} {shown}")
    goals = {
        "goal_status_table_3x_floor_met": ratio["status_table"] <= 3.0,
        "goal_status_json_3x_floor_met": ratio["status_json"] <= 3.0,
        "goal_status_under_1s_met": max(median["status_table"], median["status_json"]) < 1.0,
        "goal_history_under_1s_met": median["history_json"] < 1.0,
    }
    calibration_s = calibration_seconds()
    print(
        f"\ngoals: status ≤ 3× its for-each-ref (table {ratio['status_table']:.2f}×, JSON "
        f"{ratio['status_json']:.2f}×), status and history each under 1 s: "
        + ", ".join(f"{name[5:-4]} {'met' if met else 'MISSED'}" for name, met in goals.items())
    )
    print(f"machine: a fixed 2M-step Python loop took {calibration_s:.3f} s")
    print(
        json.dumps(
            {
                "benchmark": "status",
                "refs_and_tags": count,
                "history_refs_and_tags": history_refs,
                "packed": not args.loose,
                "rounds": args.rounds,
                **{f"{name}_s": round(value, 4) for name, value in median.items()},
                **{f"{name}_ratio": round(value, 2) for name, value in ratio.items()},
                "calibration_loop_s": round(calibration_s, 3),
                **goals,
                "goal_met": all(goals.values()),
            }
        )
    )
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    main()
