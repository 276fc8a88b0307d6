"""Scoped stack loading: one deployment versus a whole-repository scan, side by side.

Generates a repository of 5,000 stack files and 500 deployments (deep catalogs, three-level
inheritance, globs, tenant/region/stage mixins, stack names from `name_template`, Go templates and
YAML functions in every component), then measures in one run:

  - resolving one deployment (all three targets, every component: stacks, manifest, context,
    templates) the way `atmos-tasks describe` and a rollout do — only its import closure is read;
  - resolving every top-level stack of the repository and every component in it — what a
    whole-repository scan (`atmos describe stacks`) costs, with parsed files memoised;
  - the same single deployment as a fresh process (`atmos-tasks describe`), minus the start of a
    bare interpreter; beside it, a process that only imports the libraries describe needs
    (pydantic, Jinja2, ruamel.yaml, blake3) — the part of the figure that is not our code — and a
    fixed pure-Python loop, so a reader can tell a slow machine from a slow command.

Process timings interleave the three commands round by round (so drift on a shared machine hits
all of them alike) and report the median and the best of nine.

Goals: the scan costs at least 50× one deployment; one deployment resolves in under 0.3 s of
work after interpreter start. Usage: python benchmarks/scoped_load.py [--keep DIR]
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
from pathlib import Path

from _common import calibration_seconds, compile_package

APPS = 500
TENANTS = 20
REGIONS = 10
STAGES = ("dev", "staging", "prod")
KINDS = ("ecr", "taskdef", "service", "monitoring", "alarms")
TARGET_FILES = 5000


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def generate(root: Path) -> dict[str, int]:
    stacks = root / "stacks"
    write(
        root / "atmos.yaml",
        'stacks:\n  included_paths: ["orgs/**/*"]\n  excluded_paths: ["**/_defaults.yaml"]\n'
        '  name_template: "{{ .vars.tenant }}-{{ .vars.environment }}-{{ .vars.stage }}"\n'
        "templates:\n  settings:\n    enabled: true\n    sprig:\n      enabled: true\n"
        "    gomplate:\n      enabled: true\n",
    )
    for kind in KINDS:
        variables = "".join(
            f'variable "{v}" {{\n  type = any\n  default = null\n}}\n'
            for v in (
                "name",
                "tier",
                "level",
                "size",
                "region",
                "environment",
                "stage",
                "tenant",
                "namespace",
                "tags",
                "cpu",
                "memory",
                "replicas",
                "alarm_email",
                "retention",
            )
        )
        write(root / "components/terraform" / kind / "variables.tf", variables)
        write(
            stacks / "catalog/bases" / f"{kind}.yaml",
            f"components:\n  terraform:\n"
            f"    {kind}-root:\n      metadata: {{type: abstract, component: {kind}}}\n"
            f"      vars: {{level: root, size: small, tags: {{kind: {kind}, layer: root}}}}\n"
            f"      settings: {{alerts: {{enabled: false, channel: ops}}}}\n"
            f"    {kind}-tier-a:\n      metadata: {{type: abstract, inherits: [{kind}-root]}}\n"
            f"      vars: {{level: tier, tier: a, tags: {{layer: tier-a}}}}\n"
            f"    {kind}-tier-b:\n      metadata: {{type: abstract, inherits: [{kind}-root]}}\n"
            f"      vars: {{level: tier, tier: b, size: large, tags: {{layer: tier-b}}}}\n",
        )
    for region in range(REGIONS):
        write(
            stacks / f"mixins/region/r{region}.yaml",
            f"vars:\n  region: region-{region}\n  environment: r{region}\n",
        )
    for stage in STAGES:
        write(
            stacks / f"mixins/stage/{stage}.yaml",
            f"vars:\n  stage: {stage}\nterraform:\n  vars:\n    tags: {{stage: {stage}}}\n",
        )
    for tenant in range(TENANTS):
        write(
            stacks / f"orgs/t{tenant}/_defaults.yaml",
            f"vars:\n  namespace: acme\n  tenant: t{tenant}\nterraform:\n  vars:\n    tags: {{tenant: t{tenant}}}\n",
        )
    for app in range(APPS):
        base = stacks / f"catalog/apps/app{app}"
        write(
            base / "_defaults.yaml",
            f"vars:\n  app: app{app}\nterraform:\n  vars:\n    tags: {{app: app{app}}}\n",
        )
        for kind in KINDS:
            tier = "a" if (app + len(kind)) % 2 else "b"
            write(
                base / f"{kind}.yaml",
                f"import:\n  - ./_defaults\n  - catalog/bases/{kind}\n"
                f"components:\n  terraform:\n    app{app}-{kind}:\n"
                f"      metadata:\n        component: {kind}\n        inherits: [{kind}-tier-{tier}]\n"
                f"      vars:\n        name: app{app}-{kind}\n        retention: {app % 30 + 1}\n"
                # Go templates and YAML functions, as teams write them: rendered per component.
                '        namespace: "{{ .vars.tenant | upper }}-{{ .atmos_component }}"\n'
                '        alarm_email: "{{ .atmos_stack }}@example.com"\n'
                "        owner: !env BENCH_OWNER platform\n",
            )
        tenant, region = app % TENANTS, app % REGIONS
        for stage in STAGES:
            write(
                stacks / f"orgs/t{tenant}/r{region}/{stage}/app{app}.yaml",
                f"import:\n  - orgs/t{tenant}/_defaults\n  - mixins/region/r{region}\n  - mixins/stage/{stage}\n"
                f"  - catalog/apps/app{app}/*\n"
                f"components:\n  terraform:\n    app{app}-service:\n      vars:\n        replicas: {STAGES.index(stage) + 1}\n",
            )
        components = "".join(f"      app{app}-{kind}: {{}}\n" for kind in KINDS if kind != "alarms")
        targets = "".join(
            f"    {stage}:\n      stacks: [orgs/t{tenant}/_defaults, mixins/region/r{region}, mixins/stage/{stage}]\n"
            f"      context: {{cpu: {256 << STAGES.index(stage)}, memory: {512 << STAGES.index(stage)}, "
            f"replicas: {STAGES.index(stage) + 1}}}\n"
            for stage in STAGES
        )
        write(
            root / f"deployments/app{app}.yaml",
            f"deployment:\n  name: app{app}\n  labels: {{tenant: t{tenant}}}\n  stacks:\n"
            + "".join(f"    - catalog/apps/app{app}/{kind}\n" for kind in KINDS)
            + "  components:\n    terraform:\n"
            + components
            + f'      app{app}-alarms:\n        vars:\n          alarm_email: "{{{{ target.name }}}}-app{app}@example.com"\n'
            + "  targets:\n"
            + targets,
        )
    existing = len(list(stacks.rglob("*.yaml")))
    team = 0
    while existing < TARGET_FILES:  # other teams' stacks that no deployment here reads
        write(
            stacks / f"legacy/team{team % 40}/svc{team}.yaml",
            f"vars:\n  owner: team{team % 40}\ncomponents:\n  terraform:\n    legacy{team}:\n      vars: {{n: {team}}}\n",
        )
        existing += 1
        team += 1
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return {"stack_files": len(list(stacks.rglob("*.yaml"))), "deployments": APPS}


def resolve_one(root: Path, name: str) -> tuple[float, int, int]:
    from atmos_tasks.discovery import load_for, resolve_all
    from atmos_tasks.workspace import Workspace

    start = time.perf_counter()
    workspace = Workspace(root)
    manifest = load_for(workspace, name)
    resolved = resolve_all(workspace, manifest, manifest.target_names())
    elapsed = time.perf_counter() - start
    components = sum(len(t.components) for t in resolved.values())
    opened = len({p for t in resolved.values() for p in t.stack_files})
    return elapsed, components, opened


def resolve_everything(root: Path) -> tuple[float, int, int]:
    from atmos_tasks.config import load_config
    from atmos_tasks.errors import Location
    from atmos_tasks.stacks import (
        StackLoader,
        component_config,
        evaluate_functions,
        evaluate_templates,
        stack_name,
        top_level_stacks,
    )

    start = time.perf_counter()
    config = load_config(root)
    loader = StackLoader(config)
    stacks = top_level_stacks(config)
    components = 0
    for path in stacks:
        rel = str(path.relative_to(config.stacks_base).with_suffix(""))
        merged = loader.load_closure([(rel, Location(rel))])
        names = (merged.value.get("components") or {}).get("terraform") or {}
        for name in names:
            resolved = component_config(merged, name, config)
            if not resolved.abstract and resolved.enabled:
                # What the scan must do per component too: name the stack, render, run functions.
                stack = stack_name(config, path, loader.read(path).data, resolved.vars.value)
                resolved = evaluate_templates(resolved, config, stack, rel)
                evaluate_functions(resolved, config, stack, frozenset(names))
                components += 1
    return time.perf_counter() - start, components, len(loader.opened)


def median_runs(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    return statistics.median(fn() for _ in range(runs))


def process_samples(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Each command `runs` times, interleaved round by round, after one unmeasured warm-up."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(runs + 1):
        for name, args in commands.items():
            start = time.perf_counter()
            subprocess.run(args, check=True, capture_output=True)
            if round_:
                samples[name].append(time.perf_counter() - start)
    return samples


def main() -> int:
    compile_package()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="generate the repository here and keep it")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="scoped-load-"))
    try:
        if args.keep and root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True, exist_ok=True)
        sizes = generate(root)
        resolve_one(root, "app42")  # warm the on-disk caches (module digests, declared variables)
        one_runs = [resolve_one(root, f"app{n}") for n in (42, 137, 256, 311, 499)]
        one_s = statistics.median(r[0] for r in one_runs)
        _, one_components, one_opened = one_runs[0]
        everything_s, all_components, all_opened = resolve_everything(root)
        cli = [
            sys.executable,
            "-m",
            "atmos_tasks.cli",
            "-C",
            str(root),
            "describe",
            "app42",
            "--format",
            "json",
        ]
        libraries = "import pydantic.main, pydantic.types, jinja2.sandbox, ruamel.yaml, blake3"
        samples = process_samples(
            {
                "bare": [sys.executable, "-c", "pass"],
                "libraries": [sys.executable, "-c", libraries],
                "describe": cli,
            },
            9,
        )
        calibration_s = calibration_seconds()
        bare_s = statistics.median(samples["bare"])
        libraries_s = statistics.median(samples["libraries"])
        cli_s = statistics.median(samples["describe"])
        work_s = cli_s - bare_s
        best_work_s = min(samples["describe"]) - min(samples["bare"])
        ratio = everything_s / one_s
        rows = [
            ("one deployment (3 targets), in process", one_s, one_components, one_opened),
            ("every top-level stack of the repository", everything_s, all_components, all_opened),
            ("one deployment, `atmos-tasks describe` process", cli_s, one_components, one_opened),
            ("  of which interpreter start (python -c pass)", bare_s, 0, 0),
            ("  a process importing only the libraries", libraries_s, 0, 0),
        ]
        print(f"Repository: {sizes['stack_files']} stack files, {sizes['deployments']} deployments\n")
        print(f"{'measurement':<50} {'seconds':>9} {'components':>11} {'files read':>11}")
        for label, seconds, comps, files in rows:
            print(f"{label:<50} {seconds:>9.3f} {comps:>11} {files:>11}")
        print(f"\nscan / one deployment: {ratio:.0f}×  (goal ≥ 50×)")
        print(
            f"one deployment after interpreter start: {work_s:.3f} s median, {best_work_s:.3f} s best "
            f"(goal < 0.3 s); libraries alone {libraries_s - bare_s:.3f} s"
        )
        print(f"machine: a fixed 2M-step Python loop took {calibration_s:.3f} s")
        print(
            json.dumps(
                {
                    "benchmark": "scoped_load",
                    "stack_files": sizes["stack_files"],
                    "deployments": sizes["deployments"],
                    "one_deployment_s": round(one_s, 4),
                    "whole_repo_s": round(everything_s, 3),
                    "ratio": round(ratio, 1),
                    "ratio_goal": 50,
                    "one_deployment_process_s": round(cli_s, 3),
                    "interpreter_start_s": round(bare_s, 3),
                    "one_deployment_after_start_s": round(work_s, 3),
                    "one_deployment_after_start_best_s": round(best_work_s, 3),
                    "libraries_import_s": round(libraries_s - bare_s, 3),
                    "calibration_loop_s": round(calibration_s, 3),
                    "after_start_goal_s": 0.3,
                    "goal_met": ratio >= 50 and work_s < 0.3,
                }
            )
        )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ratio >= 50 and work_s < 0.3 else 1


if __name__ == "__main__":
    sys.exit(main())
