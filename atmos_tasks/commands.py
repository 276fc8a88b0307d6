"""The `atmos-tasks` commands: each reads its arguments, calls one domain function and hands what it
returns to `render.py`. No Git, Terraform or Docker here; what a command decides is argument
handling only (`-C`, `--remote` or `$ATMOS_TASKS_REMOTE`, a confirmation).

Each command imports its domain module when it runs: `status` must not pay for the manifest model,
doit or the vendor store, nor `--help` for any of them (the modules imported at the top are ones
`--help` loads anyway, or nearly free). Annotations come from `TYPE_CHECKING`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from atmos_tasks import render
from atmos_tasks.errors import EXIT_BAD_INPUT, AtmosError, refused
from atmos_tasks.example import init_example
from atmos_tasks.gitrepo import GitRepo

if TYPE_CHECKING:
    from atmos_tasks.manifest import Manifest
    from atmos_tasks.workspace import Workspace


def _repo_root(args: argparse.Namespace) -> Path:
    from atmos_tasks.root import find_root

    directory = Path(args.directory)
    if not directory.is_dir():
        raise AtmosError.single(
            f"-C {args.directory}: {'not a directory' if directory.exists() else 'no such directory'}",
            None,
            "give the folder of a repository (default: the current one)",
        )
    return find_root(directory)


def _workspace(args: argparse.Namespace) -> Workspace:
    from atmos_tasks.workspace import Workspace

    return Workspace(_repo_root(args))


def _manifest(args: argparse.Namespace) -> Manifest:
    from atmos_tasks.config import load_config
    from atmos_tasks.manifest import load_deployment

    return load_deployment(load_config(_repo_root(args)), args.deployment)


def _remote(args: argparse.Namespace) -> str | None:
    return args.remote or os.environ.get("ATMOS_TASKS_REMOTE") or None


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(question).strip().lower() in ("y", "yes")


# What is deployed where


def cmd_status(args: argparse.Namespace) -> int:
    from atmos_tasks.queries import status

    data = status(
        GitRepo(_repo_root(args)), args.deployment, args.target, health=not args.no_health, drift=args.drift
    )
    render.status(data, args.format, args.deployment, args.target)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from atmos_tasks.queries import history

    data = history(
        GitRepo(_repo_root(args)),
        args.deployment,
        args.target,
        args.component,
        args.limit,
        args.since,
        args.until,
    )
    render.history(data, args.format)
    return 0


def cmd_sbom(args: argparse.Namespace) -> int:
    from atmos_tasks.queries import deployed_sbom

    bom = deployed_sbom(
        GitRepo(_repo_root(args)),
        args.deployment,
        args.target,
        args.component,
        args.git_sha,
        render.several_commits,
    )
    render.json_document(bom)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from atmos_tasks.compare import diff

    data = diff(
        _workspace(args),
        args.deployment,
        args.from_target,
        args.to_target,
        args.from_sha,
        args.to_sha,
        args.component,
        args.show_code,
    )
    render.diff(data, args.format)
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    """Plan what the target runs against its real state; exit 4 when something drifted."""
    from atmos_tasks.drift import check_drift

    lines = args.format == "table"
    if lines:
        render.drift_heading(args.deployment, args.target)
    report = check_drift(
        _workspace(args),
        args.deployment,
        args.target,
        _remote(args),
        (lambda c: render.drift_line(c.name, {**c.to_json(), "seconds": c.seconds})) if lines else None,
        render.warning,
        args.jobs,
    )
    render.drift(report.to_json(), args.format)
    return report.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from atmos_tasks.report import build, serve, write

    made = build(_workspace(args), health=not args.no_health, limit=args.limit, now=datetime.now(UTC))
    for problem in made.problems:
        render.warning(problem)
    render.text(f"Wrote {write(Path(args.html), made.html)}\n")
    if args.serve:

        def ready(url: str) -> None:
            render.text(f"Serving {args.html} at {url} (Ctrl-C stops)\n")
            sys.stdout.flush()

        serve(Path(args.html), args.port, ready)
        render.text("Stopped\n")
    return 0


# What the repository declares


def cmd_list(args: argparse.Namespace) -> int:
    from atmos_tasks.discovery import list_deployments, parse_labels

    data = list_deployments(_workspace(args), parse_labels(args.label or []))
    render.deployments(data, args.format, labelled=bool(args.label))
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from atmos_tasks.discovery import describe

    data = describe(_workspace(args), args.deployment, args.target, args.component, args.provenance)
    render.emit(data, args.format, render.yaml_document)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from atmos_tasks.discovery import validate

    data = validate(_workspace(args), args.deployment)
    render.validation(data, args.format)
    return 0 if data["valid"] else EXIT_BAD_INPUT


def cmd_graph(args: argparse.Namespace) -> int:
    from atmos_tasks.discovery import task_graph

    render.task_graph(task_graph(_workspace(args), args.deployment, args.target), args.format)
    return 0


def cmd_matrix(args: argparse.Namespace) -> int:
    from atmos_tasks.discovery import matrix

    render.matrix(matrix(_workspace(args), args.deployment, args.target, args.waves), args.format)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from atmos_tasks.migrate import migrate_repository

    found = migrate_repository(
        _repo_root(args),
        args.from_stack,
        args.name,
        args.output,
        force=args.force,
        dry_run=args.dry_run,
        warn=render.warning,
    )
    render.migrated(found)
    return 0


def cmd_example_init(args: argparse.Namespace) -> int:
    render.example_ready(str(init_example(Path(args.path))))
    return 0


# Running tasks: rollout, plan, build


def cmd_rollout(args: argparse.Namespace) -> int:
    from atmos_tasks.run import run_tasks

    options: list[str] = []
    if args.kind == "build" and args.skip_push:
        options.append("--skip-push")
    if args.kind in ("rollout", "plan"):
        if args.promote_from:
            options += ["--promote-from", args.promote_from]
        if args.git_sha:
            options += ["--git-sha", args.git_sha]
        if args.show_plan:
            options.append("--show-plan")
    if args.kind == "rollout":
        if args.approve:
            options.append("--approve")
        if args.verify:
            options.append("--verify")
    if args.kind in ("rollout", "build"):
        if args.allow_dirty:
            options.append("--allow-dirty")
        if args.remote:
            options += ["--remote", args.remote]
    if args.component:
        options += ["--component", args.component]
    return run_tasks(_repo_root(args), args.kind, args.deployment, args.target, args.jobs, options)


def cmd_build(args: argparse.Namespace) -> int:
    if not args.plan:
        args.kind = "build"
        return cmd_rollout(args)
    from atmos_tasks.discovery import build_plans

    render.json_document(build_plans(_workspace(args), args.deployment, args.target, args.component))
    return 0


# Vendored modules


def cmd_vendor_pull(args: argparse.Namespace) -> int:
    from atmos_tasks import vendored

    console = render.console()
    with render.vendor_progress(console) as progress:
        pulled = vendored.pull(
            _workspace(args),
            args.deployment,
            args.target,
            frozen=args.frozen,
            update=args.update,
            verify=args.verify,
            progress=progress,
        )
    render.vendor_pulled(console, pulled)
    return 0


def cmd_vendor_status(args: argparse.Namespace) -> int:
    from atmos_tasks import vendored

    render.vendor_status(vendored.status(_workspace(args), args.deployment, args.target), args.format)
    return 0


def cmd_vendor_stats(args: argparse.Namespace) -> int:
    from atmos_tasks import vendored

    render.vendor_stats(vendored.stats(_workspace(args)), args.format)
    return 0


def cmd_vendor_clean(args: argparse.Namespace) -> int:
    from atmos_tasks import vendored

    render.vendor_clean(vendored.clean(_workspace(args), args.older_than, args.force), args.format)
    return 0


# Promotion


def cmd_promotion_graph(args: argparse.Namespace) -> int:
    from atmos_tasks.promotion import promotion_graph

    render.promotion_graph(promotion_graph(_manifest(args)), args.format)
    return 0


def cmd_promotion_status(args: argparse.Namespace) -> int:
    from atmos_tasks.approvals import promotion_status

    render.promotion_status(promotion_status(_repo_root(args), args.deployment), args.format)
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    """Record the invoker's approval of a commit for a target, signed when they can sign."""
    from atmos_tasks.approvals import approve

    render.approved(approve(_repo_root(args), args.deployment, args.target, args.git_sha, _remote(args)))
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    """Record a rejection of a commit, signed when the invoker can sign."""
    from atmos_tasks.approvals import reject

    found = reject(
        _repo_root(args), args.deployment, args.git_sha, args.reason, _remote(args), render.unsigned_rejection
    )
    render.rejected(found)
    return 0


# Locks and removal


def cmd_unlock(args: argparse.Namespace) -> int:
    """Break the locks a run holds on a target (its runner died), recording who did it and why."""
    from atmos_tasks.locks import unlock_target

    manifest = _manifest(args)
    found = unlock_target(
        GitRepo(_repo_root(args)), manifest, args.target, args.component or [], args.reason, _remote(args)
    )
    render.unlocked(found, args.format)
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    """Remove what a target runs (every deploying component, or one), dependants first; recorded."""
    from atmos_tasks.destroy import destroy

    what = render.destroying(args.deployment, args.target, args.component)
    if not args.yes and not _confirm(f"Destroy {what}? [y/N] "):
        raise refused(f"destroying {what} needs a confirmation", "answer y on a terminal, or pass --yes")
    result = destroy(_workspace(args), args.deployment, args.target, args.component, _remote(args))
    render.destroyed(result.to_json(), args.format)
    return 1 if result.failed else 0


# Retention


def cmd_prune(args: argparse.Namespace) -> int:
    """Remove old records (tags) and the notes only they needed; a dry run without --yes."""
    from atmos_tasks.prune import prune

    found = prune(
        GitRepo(_repo_root(args)),
        args.deployment,
        args.target,
        args.keep_last,
        args.older_than,
        apply=args.yes,
        remote=_remote(args),
    )
    render.pruned(found, args.format)
    return 0
