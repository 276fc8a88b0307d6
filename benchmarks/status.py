"""`status` and `history` on a large record set, side by side with a bare `git for-each-ref`.

Builds a repository holding the refs and tags that 500 deployments × 3 targets × 10 components
leave behind (one rollout each, plus 50 rollouts of history on one target), packs its refs as
`git gc` would, then measures in one run:

  - `git for-each-ref` over the same refs with the same fields (the floor: Git's own cost);
  - `atmos-tasks status --format json` for every deployment;
  - `atmos-tasks history app42 --target prod --format json`.

Goal: status and history each under 1 s. Usage: python benchmarks/status.py [--loose]
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


def seconds(args: list[str], cwd: Path, runs: int = 5) -> float:
    def once() -> float:
        begin = time.perf_counter()
        subprocess.run(args, cwd=cwd, check=True, capture_output=True)
        return time.perf_counter() - begin

    once()
    return statistics.median(once() for _ in range(runs))


def main() -> None:
    compile_package()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--loose", action="store_true", help="do not pack refs and objects (fresh repository)"
    )
    parser.add_argument("--keep", help="build the repository here and keep it")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="status-bench-"))
    try:
        count = build(root)
        if not args.loose:
            # What `git gc` does to any repository in time: packed refs and packed objects.
            subprocess.run(["git", "pack-refs", "--all"], cwd=root, check=True)
            subprocess.run(["git", "repack", "-adq"], cwd=root, check=True)
        fields = "%(refname)%00%(objectname)%00%(*objectname)%00%(contents)%1e"
        bare = seconds(
            [
                "git",
                "for-each-ref",
                f"--format={fields}",
                "refs/atmos/deployments",
                "refs/tags/atmos/deployments",
            ],
            root,
        )
        cli = [sys.executable, "-m", "atmos_tasks.cli"]
        status_s = seconds([*cli, "status", "--format", "json"], root)
        history_s = seconds([*cli, "history", "app42", "--target", "prod", "--format", "json"], root)
        start_s = seconds([sys.executable, "-c", "import atmos_tasks.queries"], root)
        check = json.loads(
            subprocess.run(
                [*cli, "status", "--format", "json"], cwd=root, capture_output=True, text=True, check=True
            ).stdout
        )
        entries = sum(len(c) for targets in check.values() for c in targets.values())
        rows = [
            ("git for-each-ref (same refs, same fields)", bare, 1.0),
            ("atmos-tasks status --format json (all)", status_s, status_s / bare),
            ("atmos-tasks history app42 --target prod", history_s, history_s / bare),
            ("  python start + import atmos_tasks.queries", start_s, start_s / bare),
        ]
        print(
            f"Records: {count} refs and tags ({DEPLOYMENTS} deployments × {len(TARGETS)} targets × "
            f"{COMPONENTS} components, {HISTORY} rollouts of history on app42/prod), "
            f"{'loose' if args.loose else 'packed'} refs; status lists {entries} components\n"
        )
        print(f"{'measurement':<46} {'seconds':>8} {'× git':>7}")
        for label, value, ratio in rows:
            print(f"{label:<46} {value:>8.3f} {ratio:>7.1f}")
        goal = status_s < 1.0 and history_s < 1.0
        calibration_s = calibration_seconds()
        print(f"\nstatus {status_s:.2f} s, history {history_s:.2f} s (goal: each under 1 s)")
        print(f"machine: a fixed 2M-step Python loop took {calibration_s:.3f} s")
        print(
            json.dumps(
                {
                    "benchmark": "status",
                    "refs_and_tags": count,
                    "packed": not args.loose,
                    "for_each_ref_s": round(bare, 4),
                    "status_s": round(status_s, 4),
                    "history_s": round(history_s, 4),
                    "status_ratio": round(status_s / bare, 2),
                    "history_ratio": round(history_s / bare, 2),
                    "calibration_loop_s": round(calibration_s, 3),
                    "goal_s": 1.0,
                    "goal_met": goal,
                }
            )
        )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
