"""Cost as the repository grows: no-op and one-change rollouts at 1, 20, 100 and 300 components,
with DVC and plain doit beside it on the same work; `status` over 30,500 refs; the critical path.

Each size is a repository of N Terraform components (each its own folder; in every ten, five form a
chain through `depends_on`), rolled out once to `dev` with real Terraform before measuring. Then,
in one run, rounds interleaved across sizes and tools (median of `--rounds`):

  - no-op rollout: `doit rollout:app:dev` when nothing changed;
  - peers on the same shape of work, nothing changed: `dvc repro` of N stages (same chains), and
    plain doit of N file tasks (`file_dep` → `targets`, same chains) — installed by the `bench` extra;
  - one-change rollout: one component's module changes (a commit); its overhead is the wall time
    minus that component's own Terraform time (plan + apply, as the rollout reports them), and the
    tags the rollout wrote are counted. The component changed is in no chain, as the only component
    of the 1-component repository is: a dependant would plan again (its module may read the
    changed outputs from state), Terraform work that is not overhead. Beside each, Git alone moves
    as many refs (N - 1, the unchanged components' refs that SPEC §6 has follow the commit) in one
    transaction, in a namespace no rollout reads: the part of the overhead's growth that is the
    disk's cost of a ref, whatever the tool does;
  - `status --no-health` over 500 deployments × 3 targets × 10 components (30,500 refs and tags,
    packed) beside a bare `git for-each-ref` printing the same refs and fields (`status.py`'s
    repository);
  - the critical path: eight components of about 2 s and one of about 10 s named last, rolled out
    with `doit -n 2` after an earlier rollout recorded their durations; the ideal is the best
    two-worker schedule of the durations this very rollout measured (exhaustive, 2^9 splits).

Goals: no-op at 300 ≤ 1.3× no-op at 1 and ≤ 3× plain doit at 300; one-change overhead at 300 ≤
1.5× at 1, with ≤ 2 tags written; status ≤ 3× for-each-ref; critical path within 10% of ideal.
The last line is one JSON object; the exit status is 1 when a goal is missed.

Usage: python benchmarks/scale.py [--sizes 1,20,100,300] [--rounds 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import GIT_ENV, calibration_seconds, compile_package

ENV = GIT_ENV
MODULE = """variable "label" {
  type = string
}
variable "stage" {
  type    = string
  default = ""
}
output "label" {
  value = "${var.label}-%s"
}
"""
SLEEPER = """variable "seconds" {
  type = number
}
variable "round" {
  type = string
}
resource "null_resource" "wait" {
  triggers = { round = var.round }
  provisioner "local-exec" {
    command = "sleep ${var.seconds}"
  }
}
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {cwd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def timed(args: list[str], cwd: Path) -> tuple[float, str]:
    begin = time.perf_counter()
    proc = run(args, cwd)
    return time.perf_counter() - begin, proc.stdout + proc.stderr


def chained(i: int) -> bool:
    """In every ten components, the 2nd to 5th depend on the one before: chains of five."""
    return i % 10 in (1, 2, 3, 4)


def name(i: int) -> str:
    return f"c{i:03d}"


def commit(root: Path, message: str) -> None:
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-q", "-m", message], root)


def scaffold(root: Path) -> None:
    """atmos.yaml, the dodo file and one `dev` stack: what every repository here starts from."""
    write(
        root / "atmos.yaml",
        "components:\n  terraform:\n    base_path: components/terraform\n"
        'stacks:\n  base_path: stacks\n  included_paths: ["deploy/*"]\n  name_pattern: "{stage}"\n',
    )
    write(root / "dodo.py", "from atmos_tasks.dodo import *  # noqa: F403\n")
    write(root / ".gitignore", ".atmos/\n")
    write(root / "stacks/deploy/dev.yaml", "vars:\n  stage: dev\n")


def atmos_repo(root: Path, n: int) -> None:
    scaffold(root)
    lines = ["deployment:", "  name: app", "  components:", "    terraform:"]
    for i in range(n):
        write(root / f"components/terraform/{name(i)}/main.tf", MODULE % "v0")
        lines.append(f"      {name(i)}:")
        if chained(i):
            lines += ["        metadata:", f'          depends_on: ["terraform/{name(i - 1)}"]']
        lines += ["        vars:", f'          label: "{name(i)}"']
    lines += ["  targets:", "    dev:", "      stacks: [deploy/dev]", ""]
    write(root / "deployments/app.yaml", "\n".join(lines))
    run(["git", "init", "-q", "-b", "main"], root)
    commit(root, "app")


def doit_peer(root: Path, n: int) -> None:
    tasks = []
    for i in range(n):
        write(root / f"in/{name(i)}.txt", f"{name(i)}\n")
        deps = [f"in/{name(i)}.txt"] + ([f"out/{name(i - 1)}.txt"] if chained(i) else [])
        tasks.append(
            f"    yield {{'name': '{name(i)}', 'file_dep': {deps!r}, 'targets': ['out/{name(i)}.txt'], "
            f"'actions': [(copy, ['in/{name(i)}.txt', 'out/{name(i)}.txt'])]}}\n"
        )
    write(
        root / "dodo.py",
        "import shutil\nfrom pathlib import Path\n\nDOIT_CONFIG = {'backend': 'sqlite3', 'verbosity': 0}\n\n\n"
        "def copy(source, dest):\n    Path(dest).parent.mkdir(exist_ok=True)\n    shutil.copy(source, dest)\n\n\n"
        "def task_copy():\n" + "".join(tasks),
    )


def dvc_peer(root: Path, n: int) -> bool:
    if shutil.which("dvc") is None:
        return False
    stages = ["stages:"]
    for i in range(n):
        write(root / f"in/{name(i)}.txt", f"{name(i)}\n")
        deps = [f"in/{name(i)}.txt"] + ([f"out/{name(i - 1)}.txt"] if chained(i) else [])
        stages += [
            f"  {name(i)}:",
            f"    cmd: mkdir -p out && cp in/{name(i)}.txt out/{name(i)}.txt",
            "    deps: [" + ", ".join(deps) + "]",
            f"    outs: [out/{name(i)}.txt]",
        ]
    write(root / "dvc.yaml", "\n".join(stages) + "\n")
    run(["git", "init", "-q", "-b", "main"], root)
    run(["dvc", "init", "-q"], root)
    run(["dvc", "config", "core.analytics", "false"], root)
    run(["dvc", "repro", "-q"], root)
    return True


def tags(root: Path) -> int:
    return len(run(["git", "for-each-ref", "refs/tags/"], root).stdout.splitlines())


_STEP = re.compile(r"terraform/(\S+): (planned|applied).*\((\d+(?:\.\d+)?)s\)$", re.MULTILINE)


def terraform_seconds(output: str, component: str) -> float:
    """Plan and apply time of one component, as the rollout's own progress lines report them."""
    return sum(float(m.group(3)) for m in _STEP.finditer(output) if m.group(1) == component)


def graph_line(output: str) -> str:
    found = re.search(r"Rollout complete in [^\n]*", output)
    return found.group(0) if found else ""


def changed_component(n: int) -> str:
    """The component a one-change rollout changes: in the middle of the repository, and like the
    only one of a 1-component repository, in no chain (nothing depends on it, it depends on
    nothing). A changed output re-plans the components that depend on it (they may read it from
    its state): Terraform work the change causes, which would not be the tool's overhead."""
    if n == 1:
        return name(0)
    i = n // 2 + 5 if n >= 10 else n - 1
    assert not chained(i) and not chained(i + 1), i
    return name(i)


def one_change(root: Path, n: int, round_: int) -> tuple[float, float, int, int]:
    """Wall time, overhead, tags written and components planned of a rollout changing one."""
    changed = changed_component(n)
    write(root / f"components/terraform/{changed}/main.tf", MODULE % f"v{round_ + 1}")
    commit(root, f"change {changed}")
    before = tags(root)
    wall, output = timed([sys.executable, "-m", "doit", "rollout:app:dev"], root)
    planned = len({m.group(1) for m in _STEP.finditer(output) if m.group(2) == "planned"})
    return wall, wall - terraform_seconds(output, changed), tags(root) - before, planned


def ref_transaction(root: Path, n: int) -> float:
    """Git alone moving as many refs as a one-change rollout moves for the unchanged components
    (SPEC §6: each follows the commit), at the same depth, in one `update-ref --stdin` transaction,
    in a namespace no rollout reads: the floor the record's ref moves cost on this disk."""
    target = run(["git", "rev-parse", "HEAD"], root).stdout.strip()  # each round's change is a new commit
    existing = set(run(["git", "for-each-ref", "--format=%(refname)", "refs/bench/"], root).stdout.split())
    lines = ["start"]
    for i in range(n - 1):
        ref = f"refs/bench/deployments/app/dev/{name(i)}"
        lines.append(f"{'update' if ref in existing else 'create'} {ref} {target}")
    lines += ["prepare", "commit", ""]
    args = ["git", "-c", "core.warnAmbiguousRefs=false", "update-ref", "--stdin"]
    begin = time.perf_counter()
    subprocess.run(
        args, cwd=root, env=ENV, input="\n".join(lines), capture_output=True, text=True, check=True
    )
    return time.perf_counter() - begin


def best_two_workers(durations: list[float]) -> float:
    total = sum(durations)
    best = total
    for picks in itertools.product((0, 1), repeat=len(durations)):
        one = sum(d for d, p in zip(durations, picks, strict=True) if p)
        best = min(best, max(one, total - one))
    return best


def critical_path(root: Path, rounds: int) -> dict[str, float]:
    """Eight ~2 s components and one ~10 s named last, `doit -n 2`, after durations were recorded."""
    components = [(f"a{i}", 2) for i in range(1, 9)] + [("zz-slow", 10)]
    scaffold(root)
    write(root / "components/terraform/sleeper/main.tf", SLEEPER)

    def manifest(round_: int) -> str:
        lines = ["deployment:", "  name: app", "  components:", "    terraform:"]
        for label, seconds in components:
            lines += [f"      {label}:", "        component: sleeper", "        vars:"]
            lines += [f"          seconds: {seconds}", f'          round: "{round_}"']
        return "\n".join([*lines, "  targets:", "    dev:", "      stacks: [deploy/dev]", ""])

    write(root / "deployments/app.yaml", manifest(0))
    run(["git", "init", "-q", "-b", "main"], root)
    commit(root, "sleepers")
    run([sys.executable, "-m", "doit", "-n", "2", "rollout:app:dev"], root)  # records the durations
    noop = statistics.median(
        timed([sys.executable, "-m", "doit", "rollout:app:dev"], root)[0] for _ in range(3)
    )
    ratios, actuals, ideals = [], [], []
    for round_ in range(1, rounds + 1):
        write(root / "deployments/app.yaml", manifest(round_))
        commit(root, f"round {round_}")
        wall, output = timed([sys.executable, "-m", "doit", "-n", "2", "rollout:app:dev"], root)
        durations = [terraform_seconds(output, label) for label, _ in components]
        ideal = best_two_workers(durations)
        actual = wall - noop  # the schedule: the rollout minus what a no-op costs (start, graph, record)
        ratios.append(actual / ideal)
        actuals.append(actual)
        ideals.append(ideal)
    return {
        "ideal_s": statistics.median(ideals),
        "actual_s": statistics.median(actuals),
        "ratio": statistics.median(ratios),
    }


def status_floor() -> dict[str, float | int]:
    import status as status_bench

    root = Path(tempfile.mkdtemp(prefix="scale-status-"))
    try:
        count = status_bench.build(root)
        subprocess.run(["git", "pack-refs", "--all"], cwd=root, check=True)
        subprocess.run(["git", "repack", "-adq"], cwd=root, check=True)
        fields = "%(refname)%00%(objectname)%00%(*objectname)%00%(contents)%1e"
        bare_args = [
            "git",
            "for-each-ref",
            f"--format={fields}",
            "refs/atmos/deployments",
            "refs/tags/atmos/deployments",
        ]
        cli = [sys.executable, "-m", "atmos_tasks.cli", "status", "--no-health", "--format", "json"]
        timed(cli, root)
        bare, ours = [], []
        for _ in range(5):
            bare.append(timed(bare_args, root)[0])
            ours.append(timed(cli, root)[0])
        return {"refs": count, "for_each_ref_s": statistics.median(bare), "status_s": statistics.median(ours)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    compile_package()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,20,100,300")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--critical-rounds", type=int, default=2)
    parser.add_argument("--keep", help="build the repositories here and keep them")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="scale-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        has_dvc = True
        for n in sizes:
            print(f"setting up {n} component(s)…", file=sys.stderr)
            atmos_repo(work / f"atmos-{n}", n)
            run([sys.executable, "-m", "doit", "-n", "2", "rollout:app:dev"], work / f"atmos-{n}")
            run([sys.executable, "-m", "doit", "rollout:app:dev"], work / f"atmos-{n}")  # the graph, cached
            doit_peer(work / f"doit-{n}", n)
            run([sys.executable, "-m", "doit"], work / f"doit-{n}")
            has_dvc = dvc_peer(work / f"dvc-{n}", n) and has_dvc
        noop: dict[int, list[float]] = {n: [] for n in sizes}
        plain: dict[int, list[float]] = {n: [] for n in sizes}
        dvc: dict[int, list[float]] = {n: [] for n in sizes}
        graph_lines: dict[int, str] = {}
        for _ in range(args.rounds):
            for n in sizes:
                seconds, output = timed(
                    [sys.executable, "-m", "doit", "rollout:app:dev"], work / f"atmos-{n}"
                )
                noop[n].append(seconds)
                graph_lines[n] = graph_line(output)
                plain[n].append(timed([sys.executable, "-m", "doit"], work / f"doit-{n}")[0])
                if has_dvc:
                    dvc[n].append(timed(["dvc", "repro", "-q"], work / f"dvc-{n}")[0])
        change: dict[int, list[tuple[float, float, int, int]]] = {n: [] for n in sizes}
        refs_moved: dict[int, list[float]] = {n: [] for n in sizes}
        for n in sizes:
            ref_transaction(work / f"atmos-{n}", n)  # the refs exist before they are moved
        for round_ in range(args.rounds):
            for n in sizes:
                change[n].append(one_change(work / f"atmos-{n}", n, round_))
                refs_moved[n].append(ref_transaction(work / f"atmos-{n}", n))
        print("measuring status…", file=sys.stderr)
        status = status_floor()
        print("measuring the critical path…", file=sys.stderr)
        critical = critical_path(work / "critical", args.critical_rounds)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def med(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    table = []
    for n in sizes:
        walls = [c[0] for c in change[n]]
        overheads = [c[1] for c in change[n]]
        table.append(
            (
                n,
                med(noop[n]),
                med(dvc[n]),
                med(plain[n]),
                med(walls),
                med(overheads),
                max(c[2] for c in change[n]),
            )
        )
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    calibration = calibration_seconds()
    print(
        f"\nScale, {today} (median of {args.rounds} interleaved rounds; calibration loop {calibration:.3f} s)\n"
    )
    print(
        "| components | no-op rollout | `dvc repro` no-op | plain doit no-op | one-change rollout | its overhead | tags written |"
    )
    print("|---|---|---|---|---|---|---|")
    for n, ours, peer, floor, wall, overhead, written in table:
        shown_dvc = f"{peer:.2f} s" if has_dvc else "not installed"
        print(
            f"| {n} | {ours:.2f} s | {shown_dvc} | {floor:.2f} s | {wall:.2f} s | {overhead:.2f} s | {written} |"
        )
    for n in sizes:
        print(f"  {n}: {graph_lines.get(n, '')}")
    print(
        "\nGit alone moving the refs a one-change rollout moves (n - 1, one transaction): "
        + ", ".join(f"{n}: {med(refs_moved[n]):.3f} s" for n in sizes)
    )
    low, high = min(sizes), max(sizes)
    noop_ratio = med(noop[high]) / med(noop[low])
    doit_ratio = med(noop[high]) / med(plain[high])
    overhead_ratio = med([c[1] for c in change[high]]) / med([c[1] for c in change[low]])
    # Beside the goal, not in it: the same ratio with Git's own ref transaction (timed alone, each
    # round) taken out of both sides: what the rest of the tool adds as components grow.
    net_ratio = (med([c[1] for c in change[high]]) - med(refs_moved[high])) / (
        med([c[1] for c in change[low]]) - med(refs_moved[low])
    )
    print(f"one-change overhead {high} to {low}, net of Git's ref transaction: {net_ratio:.2f}×")
    tags_written = max(c[2] for c in change[high])
    status_ratio = float(status["status_s"]) / float(status["for_each_ref_s"])
    efficiency = critical["ideal_s"] / critical["actual_s"]
    print(
        f"\nstatus --no-health: {status['status_s']:.3f} s, git for-each-ref {status['for_each_ref_s']:.3f} s "
        f"({status['refs']} refs and tags): {status_ratio:.2f}×"
    )
    print(
        f"critical path (doit -n 2): {critical['actual_s']:.1f} s against an ideal {critical['ideal_s']:.1f} s "
        f"({critical['ratio']:.2f}×)"
    )
    goals = {
        "noop_flat": noop_ratio <= 1.3,
        "noop_near_doit": doit_ratio <= 3.0,
        "one_change_flat": overhead_ratio <= 1.5,
        "one_change_tags": tags_written <= 2,
        "status_floor": status_ratio <= 3.0,
        "critical_path": critical["ratio"] <= 1.1,
    }
    print("goals: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in goals.items()))
    print(
        json.dumps(
            {
                "benchmark": "scale",
                "date": today,
                "calibration_s": round(calibration, 4),
                "sizes": sizes,
                "noop_s": {n: round(med(noop[n]), 3) for n in sizes},
                "dvc_noop_s": {n: round(med(dvc[n]), 3) for n in sizes} if has_dvc else None,
                "doit_noop_s": {n: round(med(plain[n]), 3) for n in sizes},
                "one_change_s": {n: round(t[4], 3) for n, t in zip(sizes, table, strict=True)},
                "one_change_overhead_s": {n: round(t[5], 3) for n, t in zip(sizes, table, strict=True)},
                "noop_300_to_1": round(noop_ratio, 3),
                "noop_300_to_doit": round(doit_ratio, 3),
                "one_change_overhead_ratio": round(overhead_ratio, 3),
                "one_change_overhead_ratio_net_of_refs": round(net_ratio, 3),
                "tags_written_one_change": tags_written,
                "ref_transaction_s": {n: round(med(refs_moved[n]), 3) for n in sizes},
                "planned_one_change": {n: max(c[3] for c in change[n]) for n in sizes},
                "status_to_for_each_ref": round(status_ratio, 3),
                "critical_path_efficiency": round(efficiency, 3),
                "goals": goals,
                "all_goals_met": all(goals.values()),
            }
        )
    )
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
