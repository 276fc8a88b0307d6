"""CI runners sharing work: a cold runner against a fresh runner with a warm remote cache, and
four runners against one — each runner its own clone and `.atmos/`, all sharing one bare Git
remote, one registry (Debian's `docker-registry`: the remote cache and the images) and one
PostgreSQL (Terraform's `pg` backend), started here.

1. Cold versus warm, on a repository shaped like the example, scaled: 20 Terraform components
   (four vendored modules from a Git source, five components each, each five a chain through
   `depends_on`) and 3 images (static sites, built with the oci builder, pushed to the registry).
   The cold runner rolls out `dev` with an empty `.atmos/` and an empty cache: it fetches the
   modules, builds and pushes the images, plans and applies. A fresh runner with the cache then
   rolls out the same commit, which the cold runner deployed (records fetched from the remote).
   Counted from what doit saved for the warm runner's tasks: modules fetched from their source,
   images built, Terraform applies, cache hits (vendor: pulled; build: reused; plan and apply:
   the recorded apply's outputs taken), and the bytes pulled from the cache (the registry's
   stored size of every blob a warm task pulled).
2. Four runners against one, on 20 independent components that each wait 2 s in a `local-exec`
   (a stand-in for cloud API latency): one runner rolls out all 20; four runners, started at once,
   each roll out their share (`rollout --component`, five each, as the matrix jobs of docs/ci.md
   do) and record it. Every runner runs one task at a time (`-n 1`), as a one-core CI job would.
   Each is measured `--rounds` times, interleaved (fresh clones, remote and database each time);
   the medians are compared.

Goals: warm ≥ 10× faster than cold with zero source fetches, builds and applies, and a cache hit
for every vendor, build and plan task; four runners ≥ 3× faster than one. The last line is one
JSON object; the exit status is 1 when a goal is missed.

Usage: python benchmarks/ci_cache.py [--rounds 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import GIT_ENV, ROOT, calibration_seconds, compile_package

sys.path.insert(0, str(ROOT))

ENV = {
    **GIT_ENV,
    # A cache URL of the environment would stand in for this benchmark's.
    "ATMOS_TASKS_CACHE": "",
}
MODULES = 4
PER_MODULE = 5
IMAGES = 3
WAITERS = 20
RUNNERS = 4
WAIT = 2

MODULE = """variable "label" {
  type = string
}
resource "null_resource" "this" {
  triggers = { label = var.label }
}
output "label" {
  value = "${var.label}-%s"
}
"""
WAITER = """variable "label" {
  type = string
}
resource "null_resource" "wait" {
  triggers = { label = var.label }
  provisioner "local-exec" {
    command = "sleep %d"
  }
}
"""
STACK = """terraform:
  backend_type: pg
  backend:
    pg:
      conn_str: !env PG_STATE_CONN_STR
      schema_name: 'state_{{ .atmos_component }}'
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env={**ENV, **(env or {})}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {cwd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def commit(root: Path, message: str) -> None:
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-q", "-m", message], root)


def module_source(base: Path) -> Path:
    """A Git repository of modules m1…m4, tagged v1.0.0: what vendoring fetches."""
    source = base / "modules"
    for k in range(1, MODULES + 1):
        write(source / f"m{k}/main.tf", MODULE % f"m{k}")
    run(["git", "init", "-q", "-b", "main"], source)
    commit(source, "modules")
    run(["git", "tag", "v1.0.0"], source)
    return source


def scaffold(root: Path) -> None:
    write(root / "atmos.yaml", "templates:\n  settings:\n    enabled: true\n")
    write(root / "dodo.py", "from atmos_tasks.dodo import *  # noqa: F403\n")
    write(root / ".gitignore", ".atmos/\n")
    write(root / "stacks/shared.yaml", STACK)


def example_repo(root: Path, modules: Path, registry: str) -> None:
    """20 vendored Terraform components in chains of five, and 3 images pushed to `registry`."""
    scaffold(root)
    lines = ["deployment:", "  name: app", "  stacks: [shared]", "  vendor:", "    components:"]
    for k in range(1, MODULES + 1):
        lines += [
            f'      - source: "git::file://{modules}//m{k}?ref=v{{{{ version }}}}"',
            '        version: "1.0.0"',
            f"        targets: [m{k}]",
        ]
    lines += ["  components:", "    nixpack:"]
    run_id = uuid.uuid4().hex[:8]
    for i in range(IMAGES):
        write(root / f"services/site{i}/index.html", f"<p>site {i}</p>\n")
        lines += [
            f"      site{i}:",
            f"        vars: {{ source: ./services/site{i}, "
            f"image: {{ name: bench/site{i}-{run_id}, registry: '{registry}' }} }}",
            "        settings: { nixpack: { base_image: scratch, publish: true, builder: oci } }",
        ]
    lines += ["    terraform:"]
    for k in range(1, MODULES + 1):
        for j in range(PER_MODULE):
            name = f"m{k}c{j}"
            lines += [f"      {name}:", f"        component: m{k}"]
            if j:
                lines += ["        metadata:", f'          depends_on: ["terraform/m{k}c{j - 1}"]']
            lines += [f"        vars: {{ label: {name} }}"]
    lines += ["  targets:", "    dev: {}", ""]
    write(root / "deployments/app.yaml", "\n".join(lines))
    run(["git", "init", "-q", "-b", "main"], root)
    commit(root, "app")


def waiters_repo(root: Path) -> None:
    scaffold(root)
    write(root / "components/terraform/waiter/main.tf", WAITER % WAIT)
    lines = ["deployment:", "  name: app", "  stacks: [shared]", "  components:", "    terraform:"]
    for i in range(WAITERS):
        lines += [f"      w{i:02d}:", "        component: waiter", f"        vars: {{ label: w{i:02d} }}"]
    lines += ["  targets:", "    dev: {}", ""]
    write(root / "deployments/app.yaml", "\n".join(lines))
    run(["git", "init", "-q", "-b", "main"], root)
    commit(root, "waiters")


def bare_remote(seed: Path, remote: Path) -> None:
    run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], seed.parent)
    run(["git", "remote", "add", "origin", str(remote)], seed)
    run(["git", "push", "-q", "origin", "main"], seed)


def clone(remote: Path, dest: Path) -> Path:
    run(["git", "clone", "-q", str(remote), str(dest)], dest.parent)
    return dest


def rollout(runner: Path, env: dict[str, str], *extra: str) -> tuple[float, str]:
    begin = time.perf_counter()
    proc = run(
        [sys.executable, "-m", "doit", "-n", "1", "rollout:app:dev", *extra, "--remote", "origin"],
        runner,
        env,
    )
    return time.perf_counter() - begin, proc.stdout + proc.stderr


def saved(runner: Path) -> dict[str, dict[str, Any]]:
    """What doit saved for each task of the runner."""
    with sqlite3.connect(runner / ".atmos/doit.sqlite") as db:
        rows = db.execute("select task_id, task_data from doit").fetchall()
    return {task: dict(json.loads(data).get("_values_:", {})) for task, data in rows}


def counts(runner: Path) -> dict[str, Any]:
    """Source fetches, builds, applies and cache hits, from what each task saved."""
    values = saved(runner)
    of = {
        kind: {t: v for t, v in values.items() if t.startswith(f"{kind}:app:dev:")}
        for kind in ("vendor", "build", "plan", "apply")
    }
    where = [v.get("from") for v in of["vendor"].values()]
    vendor_hits = {"cache": where.count("cache"), "store": where.count("store")}
    build_hits = {
        "cache": sum(1 for v in of["build"].values() if (v.get("cache") or {}).get("build") == "reused"),
        "record": sum(
            1
            for v in of["build"].values()
            if v.get("reused") and (v.get("cache") or {}).get("build") != "reused"
        ),
    }
    plan_hits = sum(1 for v in of["plan"].values() if isinstance((v.get("cache") or {}).get("made_by"), dict))
    return {
        "tasks": {kind: len(found) for kind, found in of.items()},
        "source_fetches": where.count("source"),
        "builds": sum(1 for v in of["build"].values() if v.get("status") == "built" and not v.get("reused")),
        "applies": sum(
            1 for v in of["apply"].values() if v.get("status") == "applied" and not v.get("current")
        ),
        "hits": {"vendor": vendor_hits, "build": build_hits, "plan": plan_hits},
    }


def pulled_bytes(registry: Any, repository: str, runner: Path) -> int:
    """Bytes the warm runner pulled from the cache: the object of each module it pulled (a plan's
    or an apply's entry it took carries no file it pulls: an apply's outputs are in its manifest)."""
    from atmos_tasks.ocicache import OciBackend

    backend = OciBackend(registry.url(repository))
    with urllib.request.urlopen(f"http://{registry.host}/v2/{repository}/tags/list", timeout=10) as answer:
        tags = json.loads(answer.read()).get("tags") or []
    sizes = {}
    for name in tags:
        entry = backend.get(name) if name.startswith("vendor-") else None
        if entry is not None:
            sizes[entry.result.get("digest")] = sum(blob.size for blob in entry.blobs.values())
    values = saved(runner)
    pulled = {
        v.get("digest")
        for t, v in values.items()
        if t.startswith("vendor:") and (v.get("cache") or {}).get("vendor") == "pulled"
    }
    return sum(sizes.get(digest, 0) for digest in pulled)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temporary folder)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of 1 and 4 runners (default 3)"
    )
    args = parser.parse_args()
    compile_package()
    from tests.postgres_env import _stop, start_server
    from tests.registry_env import start_registry

    base = args.keep or Path(tempfile.mkdtemp(prefix="atmos-ci-cache-"))
    base.mkdir(parents=True, exist_ok=True)
    calibration = calibration_seconds()
    server = start_server()
    registry = start_registry(base / "registry")
    try:
        return measure(base, server, registry, calibration, args.rounds)
    finally:
        registry.stop()
        _stop(server)
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


def database(server: Any) -> str:
    name = f"b_{uuid.uuid4().hex[:12]}"
    server.psql("postgres", f"CREATE DATABASE {name}")
    return server.conn_str(name)


def one_runner(base: Path, seed: Path, server: Any, round_: int) -> float:
    """Wall time of one runner rolling out every waiting component."""
    remote = base / f"solo-{round_}.git"
    run(["git", "clone", "-q", "--bare", str(seed), str(remote)], base)
    wall, _ = rollout(clone(remote, base / f"solo-{round_}"), {"PG_STATE_CONN_STR": database(server)})
    return wall


def four_runners(base: Path, seed: Path, server: Any, round_: int) -> tuple[float, list[float], int]:
    """Wall time of four runners started at once on one remote, each rolling out its share; each
    runner's wall time; the components the remote has recorded after."""
    remote = base / f"shared-{round_}.git"
    run(["git", "clone", "-q", "--bare", str(seed), str(remote)], base)
    shared = {"PG_STATE_CONN_STR": database(server)}
    runners = [clone(remote, base / f"runner-{round_}-{k}") for k in range(RUNNERS)]
    names = [f"w{i:02d}" for i in range(WAITERS)]
    shares = [",".join(names[k::RUNNERS]) for k in range(RUNNERS)]
    begin = time.perf_counter()
    with ThreadPoolExecutor(RUNNERS) as pool:
        jobs = list(
            pool.map(
                lambda job: rollout(job[0], shared, "--component", job[1]), zip(runners, shares, strict=True)
            )
        )
    wall = time.perf_counter() - begin
    recorded = run(["git", "for-each-ref", "--format=%(refname)", "refs/atmos/deployments"], remote)
    return wall, [round(w, 2) for w, _out in jobs], len(recorded.stdout.split())


def measure(base: Path, server: Any, registry: Any, calibration: float, rounds: int) -> int:
    # 1. Cold against warm.
    modules = module_source(base)
    seed = base / "example"
    seed.mkdir()
    example_repo(seed, modules, registry.host)
    bare_remote(seed, base / "example.git")
    repository = f"cache-{uuid.uuid4().hex[:8]}"
    env = {"PG_STATE_CONN_STR": database(server), "ATMOS_TASKS_CACHE": registry.url(repository)}
    cold_runner = clone(base / "example.git", base / "cold")
    cold, cold_out = rollout(cold_runner, {**env, "ATMOS_TASKS_ACTOR": "cold"})
    cold_counts = counts(cold_runner)
    warm_runner = clone(base / "example.git", base / "warm")
    warm, warm_out = rollout(warm_runner, {**env, "ATMOS_TASKS_ACTOR": "warm"})
    warm_counts = counts(warm_runner)
    bytes_pulled = pulled_bytes(registry, repository, warm_runner)

    # 2. Four runners against one, each its own database (the same state would make the second a no-op),
    # rounds interleaved: the machine's speed drifts between minutes.
    seed = base / "waiters"
    seed.mkdir()
    waiters_repo(seed)
    ones, fours, each, recorded_components = [], [], [], []
    for round_ in range(rounds):
        for mode in ("four", "one") if round_ % 2 else ("one", "four"):
            if mode == "one":
                ones.append(one_runner(base, seed, server, round_))
            else:
                wall, walls, recorded = four_runners(base, seed, server, round_)
                fours.append(wall)
                each.append(walls)
                recorded_components.append(recorded)
    one, four = statistics.median(ones), statistics.median(fours)

    warm_tasks = warm_counts["tasks"]
    hits = warm_counts["hits"]
    every_hit = (
        hits["vendor"]["cache"] + hits["vendor"]["store"] == warm_tasks["vendor"]
        and hits["vendor"]["cache"] > 0
        and hits["build"]["cache"] + hits["build"]["record"] == warm_tasks["build"]
        and hits["plan"] == warm_tasks["plan"]
    )
    speedup = cold / warm
    goals = {
        "speedup": speedup >= 10,
        "warm_source_fetches": warm_counts["source_fetches"] == 0,
        "warm_builds": warm_counts["builds"] == 0,
        "warm_applies": warm_counts["applies"] == 0,
        "warm_cache_hits": every_hit,
        "runners_4_to_1": one / four >= 3 and all(n == WAITERS for n in recorded_components),
    }
    print(f"calibration loop: {calibration:.3f} s")
    print()
    print(
        "| runner | wall | source fetches | builds | applies "
        "| vendor: cache + store | build: cache + record | plan: recorded apply from the cache |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, wall, found in (("cold", cold, cold_counts), ("warm", warm, warm_counts)):
        h = found["hits"]
        print(
            f"| {label} | {wall:.2f} s | {found['source_fetches']} | {found['builds']} | {found['applies']} | "
            f"{h['vendor']['cache']} + {h['vendor']['store']} | {h['build']['cache']} + {h['build']['record']} "
            f"| {h['plan']} |"
        )
    print(f"\ncold ÷ warm: {speedup:.1f}× (goal ≥ 10×); bytes pulled from the cache: {bytes_pulled}")
    print(
        f"{WAITERS} components waiting {WAIT} s each, median of {rounds} interleaved rounds: "
        f"1 runner {one:.2f} s, {RUNNERS} runners {four:.2f} s: {one / four:.2f}× (goal ≥ 3×)"
    )
    print(
        f"  rounds: 1 runner {[round(w, 2) for w in ones]} s; {RUNNERS} runners {[round(w, 2) for w in fours]} s; "
        f"each runner {each} s; components recorded {recorded_components}"
    )
    print(
        "what limits it: every runner here shares this machine's cores (Terraform's init, plan and apply "
        "of each component are CPU work between the waits) and pushes its records to one remote"
    )
    figures = {
        "calibration_seconds": round(calibration, 3),
        "cold_seconds": round(cold, 3),
        "warm_seconds": round(warm, 3),
        "speedup": round(speedup, 2),
        "warm_source_fetches": warm_counts["source_fetches"],
        "warm_builds": warm_counts["builds"],
        "warm_applies": warm_counts["applies"],
        "warm_cache_hits": hits["vendor"]["cache"] + hits["build"]["cache"] + hits["plan"],
        "warm_store_hits": hits["vendor"]["store"],
        "warm_builds_reused_from_record": hits["build"]["record"],
        "warm_tasks": warm_tasks,
        "cold_source_fetches": cold_counts["source_fetches"],
        "cold_builds": cold_counts["builds"],
        "cold_applies": cold_counts["applies"],
        "bytes_pulled": bytes_pulled,
        "one_runner_seconds": round(one, 3),
        "four_runners_seconds": round(four, 3),
        "one_runner_rounds": [round(w, 3) for w in ones],
        "four_runners_rounds": [round(w, 3) for w in fours],
        "runners_4_to_1": round(one / four, 2),
        "each_runner_seconds": each,
        "goals_met": goals,
    }
    del cold_out, warm_out
    print(json.dumps(figures))
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
