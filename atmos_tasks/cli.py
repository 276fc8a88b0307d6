"""`atmos-tasks`: query deployments and run rollouts (SPEC §12).

Heavy modules (doit, rich, the engine) are imported by the command that needs them, so a query
starts fast. Every error becomes one message and an exit code (SPEC §13), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from atmos_tasks.errors import EXIT_BAD_INPUT, AtmosError, render_error
from atmos_tasks.gitrepo import GitError

FORMATS = ("table", "json", "yaml")


def _repo_root(args: argparse.Namespace) -> Path:
    from atmos_tasks.config import find_root

    return find_root(Path(args.directory))


def _emit(data: Any, fmt: str, table: Callable[[Any], None]) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif fmt == "yaml":
        _yaml(data)
    else:
        table(data)


def _yaml(data: Any) -> None:
    """YAML in the data's own order (dependency order, dev → prod), not sorted."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.dump(data, sys.stdout)


def _console() -> Any:
    import os

    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, no_color=bool(os.environ.get("NO_COLOR")))


def _ago(timestamp: str | None) -> str:
    if not timestamp:
        return "-"
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    seconds = int((datetime.now(UTC) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


STATUS_MARK = {
    "success": "[green]✓ success[/]",
    "failed": "[red]✗ failed[/]",
    "rollback": "[yellow]⟲ rollback[/]",
}


def cmd_status(args: argparse.Namespace) -> int:
    from atmos_tasks.gitrepo import GitRepo
    from atmos_tasks.queries import status

    data = status(GitRepo(_repo_root(args)), args.deployment, args.target)

    def table(found: dict[str, Any]) -> None:
        console = _console()
        if not found:
            scope = " ".join(x for x in (args.deployment, args.target) if x)
            console.print(f"No deployments recorded{' for ' + scope if scope else ''}.")
            return
        for dep, targets in found.items():
            console.print(f"[bold]{dep}[/] deployment status")
            for tgt, components in targets.items():
                console.print(f"\n  [bold]{tgt}[/]")
                width = max(len(c) for c in components)
                for name, entry in components.items():
                    sha = (entry["git_sha"] or "-------")[:7]
                    mark = STATUS_MARK.get(entry["status"], entry["status"])
                    line = f"    {name:<{width}}  {sha}  {_ago(entry['deployed_at']):>8}  {mark}"
                    console.print(f"{line}  {entry['deployed_by'] or ''}")
                    if "last_attempt" in entry:
                        last = entry["last_attempt"]
                        console.print(
                            f"    {'':<{width}}  [red]last attempt {last['git_sha'][:7]} {last['status']} "
                            f"{_ago(last['timestamp'])}[/]"
                        )
            console.print()

    _emit(data, args.format, table)
    return 0


def _time_arg(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or RFC 3339 time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def cmd_history(args: argparse.Namespace) -> int:
    from atmos_tasks.gitrepo import GitRepo
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

    def table(found: dict[str, Any]) -> None:
        console = _console()
        console.print(f"[bold]{found['deployment']} → {found['target']}[/] deployment history\n")
        for rollout in found["rollouts"]:
            when = rollout["timestamp"].replace("T", " ")[:16]
            mark = STATUS_MARK.get(rollout["status"], rollout["status"])
            console.print(f"  {when}  {rollout['git_sha'][:7]}  {rollout['deployed_by']}  {mark}")
            notes = []
            if rollout.get("promoted_from"):
                notes.append(f"promoted from {rollout['promoted_from']}")
            if rollout.get("rollback_of"):
                notes.append(f"rollback of {rollout['rollback_of'][:7]}")
            parts = [
                f"{n} ({c['status']}, changes: {c['changes']})" for n, c in rollout["components"].items()
            ]
            console.print(f"    {'; '.join(notes + parts)}\n")
        console.print(f"  Showing {len(found['rollouts'])} rollout(s)")

    _emit(data, args.format, table)
    return 0


def cmd_example_init(args: argparse.Namespace) -> int:
    from atmos_tasks.example import init_example

    path = init_example(Path(args.path))
    print(f"Example repository ready in {path}")
    print(f"  cd {path} && doit rollout:api:dev")
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    from doit.doit_cmd import DoitMain

    from atmos_tasks.doit_loader import AtmosTaskLoader

    root = _repo_root(args)
    target = args.target or _default_target(root, args.deployment)
    run: list[str] = ["run"]
    if args.jobs and args.jobs > 1:
        run += ["-n", str(args.jobs)]
    task = f"{args.kind}:{args.deployment}:{target}"
    run.append(task)
    if args.kind == "rollout":
        if args.promote_from:
            run += ["--promote-from", args.promote_from]
        if args.git_sha:
            run += ["--git-sha", args.git_sha]
        if args.approve:
            run.append("--approve")
        if args.allow_dirty:
            run.append("--allow-dirty")
    result = DoitMain(AtmosTaskLoader(root)).run(run)
    return int(result or 0)


def _default_target(root: Path, deployment: str) -> str:
    from atmos_tasks.config import load_config
    from atmos_tasks.manifest import load_deployment

    manifest = load_deployment(load_config(root), deployment)
    default = manifest.model.context.default_target
    if default is None:
        raise AtmosError.single(
            f"deployment {deployment!r} has no default target",
            None,
            f"pass --target (one of {', '.join(manifest.target_names())}) or set context.default_target",
        )
    return default


def _workspace(args: argparse.Namespace) -> Any:
    from atmos_tasks.engine import Workspace

    return Workspace(_repo_root(args))


def cmd_list(args: argparse.Namespace) -> int:
    from atmos_tasks.discovery import list_deployments, parse_labels

    data = list_deployments(_workspace(args), parse_labels(args.label or []))

    def table(found: list[dict[str, Any]]) -> None:
        console = _console()
        if not found:
            console.print("No deployments" + (" with these labels." if args.label else "."))
            return
        width = max(len(d["name"]) for d in found)
        for item in found:
            labels = ", ".join(f"{k}={v}" for k, v in item["labels"].items())
            console.print(
                f"[bold]{item['name']:<{width}}[/]  targets: {', '.join(item['targets'])}  "
                f"components: {len(item['components'])}" + (f"  [dim]{labels}[/]" if labels else "")
            )
            if item["description"]:
                console.print(f"{'':<{width}}  [dim]{item['description']}[/]")

    _emit(data, args.format, table)
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from atmos_tasks.discovery import describe

    data = describe(_workspace(args), args.deployment, args.target, args.component, args.provenance)

    _emit(data, args.format, _yaml)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from atmos_tasks.discovery import validate

    data = validate(_workspace(args), args.deployment)

    def table(found: dict[str, Any]) -> None:
        for name, result in found["deployments"].items():
            if result["valid"]:
                print(f"✓ {name}: valid ({result['file']})")
                continue
            for problem in result["problems"]:
                where = ":".join(str(x) for x in (problem["file"], problem["line"], problem["column"]) if x)
                sys.stderr.write(
                    f"error: {where}: {problem['message']}\n" if where else f"error: {problem['message']}\n"
                )
                if problem["hint"]:
                    sys.stderr.write(f"  hint: {problem['hint']}\n")
        count = sum(len(r["problems"]) for r in found["deployments"].values())
        if count:
            sys.stderr.write(f"{count} problem(s) found\n")

    _emit(data, args.format, table)
    return 0 if data["valid"] else EXIT_BAD_INPUT


def cmd_graph(args: argparse.Namespace) -> int:
    from atmos_tasks.discovery import render_graph, task_graph

    sys.stdout.write(render_graph(task_graph(_workspace(args), args.deployment, args.target), args.format))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from atmos_tasks.config import load_config
    from atmos_tasks.manifest import load_manifest
    from atmos_tasks.migrate import migrate

    config = load_config(_repo_root(args))
    migration = migrate(config, args.from_stack, args.name)
    text = migration.to_yaml()
    for warning in migration.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    if args.dry_run:
        sys.stdout.write(text)
        return 0
    output = Path(args.output) if args.output else config.deployments_base / f"{args.name}.yaml"
    if not output.is_absolute():
        output = Path.cwd() / output
    if output.exists() and not args.force:
        raise AtmosError.single(f"{output} exists", None, "choose --output, or pass --force to replace it")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(text)
    tmp.replace(output)
    load_manifest(output, config) if output.parent == config.deployments_base else None
    print(
        f"Wrote {config.shown(output)}: {len(migration.targets)} target(s), "
        f"{len(migration.manifest['deployment']['components']['terraform'])} component(s)"
    )
    print(f"  atmos-tasks validate {args.name} && atmos-tasks describe {args.name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atmos-tasks", description="Git-tracked deployment orchestration: what is deployed where."
    )
    parser.add_argument("-C", "--directory", default=".", help="repository to work in (default: .)")
    parser.add_argument("--version", action="version", version=f"atmos-tasks {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("status", help="what is deployed where")
    p.add_argument("deployment", nargs="?")
    p.add_argument("--target")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("history", help="the rollouts of one target, newest first")
    p.add_argument("deployment")
    p.add_argument("--target", required=True)
    p.add_argument("--component")
    p.add_argument("--limit", type=int)
    p.add_argument("--since", type=_time_arg, help="only rollouts at or after this time (RFC 3339 or a date)")
    p.add_argument("--until", type=_time_arg, help="only rollouts at or before this time")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_history)

    for kind, text in (
        ("rollout", "plan and apply every component, then record (runs the doit tasks)"),
        ("plan", "plan every component without applying"),
    ):
        p = sub.add_parser(kind, help=text)
        p.add_argument("deployment")
        p.add_argument("--target", help="default: the manifest's context.default_target")
        p.add_argument("-n", "--jobs", type=int, default=1, help="components to run in parallel")
        if kind == "rollout":
            p.add_argument("--promote-from", dest="promote_from")
            p.add_argument("--git-sha", dest="git_sha")
            p.add_argument("--approve", action="store_true")
            p.add_argument("--allow-dirty", action="store_true", dest="allow_dirty")
        p.set_defaults(func=cmd_rollout, kind=kind)

    p = sub.add_parser("list", help="the deployments of this repository")
    p.add_argument("--label", action="append", metavar="K=V", help="only deployments with this label")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("describe", help="the resolved configuration of a deployment's components")
    p.add_argument("deployment")
    p.add_argument("--target")
    p.add_argument("--component")
    p.add_argument("--provenance", action="store_true", help="where each value came from (file:line:col)")
    p.add_argument("--format", choices=FORMATS, default="yaml")
    p.set_defaults(func=cmd_describe)

    p = sub.add_parser("validate", help="every problem of every manifest (or one), at once")
    p.add_argument("deployment", nargs="?")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("graph", help="the task graph of one rollout")
    p.add_argument("deployment")
    p.add_argument("--target", required=True)
    p.add_argument("--format", choices=("text", "mermaid", "dot"), default="text")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("migrate", help="a deployment manifest for existing top-level stacks")
    p.add_argument(
        "--from-stack",
        action="append",
        required=True,
        dest="from_stack",
        metavar="STACK",
        help="a top-level stack (path or name); repeat for one target per stack",
    )
    p.add_argument("--name", required=True, help="the deployment's name")
    p.add_argument("--output", help="where to write (default: deployments/<name>.yaml)")
    p.add_argument("--dry-run", action="store_true", dest="dry_run", help="print the manifest, write nothing")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("example", help="the bundled example repository")
    example = p.add_subparsers(dest="example_command", required=True, metavar="ACTION")
    init = example.add_parser("init", help="write the example into a new Git repository")
    init.add_argument("path")
    init.set_defaults(func=cmd_example_init)
    return parser


def _version() -> str:
    from atmos_tasks import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except AtmosError as err:
        sys.stderr.write(render_error(err) + "\n")
        return err.exit_code
    except GitError as err:
        sys.stderr.write(f"error: {err}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except OSError as err:
        sys.stderr.write(f"error: {err}\n")
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
