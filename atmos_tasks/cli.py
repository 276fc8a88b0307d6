"""`atmos-tasks`: query deployments and run rollouts (SPEC §12). The edge: the parser, the entry
point, and the one place an error becomes a message and an exit code (SPEC §13), never a traceback.

The commands are in `commands.py` (each calls one domain function), what they print in
`render.py`; both import their heavy modules when a command runs, so `--help` and a query start
fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from atmos_tasks import __version__, commands
from atmos_tasks.errors import EXIT_BAD_INPUT, AtmosError, render_error
from atmos_tasks.gitrepo import GitError

FORMATS = ("table", "json", "yaml")


def _duration_arg(text: str) -> str:
    from atmos_tasks.manifest import duration_seconds  # the manifest model is heavy: only when given

    try:
        duration_seconds(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (write e.g. 30m, 12h or 7d)") from None
    return text


def _positive_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, got {text!r}")
    return value


def _count_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of 0 or more, got {text!r}")
    return value


def _retention_arg(text: str) -> str:
    from atmos_tasks.prune import retention_seconds

    try:
        retention_seconds(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (write e.g. 12h, 30d or 2w)") from None
    return text


def _time_arg(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or RFC 3339 time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


DEPLOYMENT = "the deployment: the name of its manifest, deployments/<name>.yaml"
REMOTE = "sync records with this Git remote (default: $ATMOS_TASKS_REMOTE)"


def _format(p: argparse.ArgumentParser, default: str = "table", choices: Sequence[str] = FORMATS) -> None:
    tools = {
        "table": "table (for people)",
        "json": "json (for tools; indented on a terminal)",
        "yaml": "yaml",
        "text": "text",
        "mermaid": "mermaid",
        "dot": "dot (Graphviz)",
    }
    p.add_argument(
        "--format",
        choices=choices,
        default=default,
        help=f"output: {', '.join(tools[c] for c in choices)} (default: {default})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atmos-tasks", description="Git-tracked deployment orchestration: what is deployed where."
    )
    parser.add_argument("-C", "--directory", default=".", help="repository to work in (default: .)")
    parser.add_argument(
        "--version", action="version", version=f"atmos-tasks {_version()}", help="print the version and exit"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("status", help="what is deployed where")
    p.add_argument("deployment", nargs="?", help="only this deployment (default: every deployment recorded)")
    p.add_argument("--target", help="only this target (of every deployment, without a deployment)")
    p.add_argument(
        "--no-health",
        action="store_true",
        help="do not ask the engines that run components how they are (health is read live)",
    )
    p.add_argument(
        "--drift",
        action="store_true",
        help="add the last drift check of what each component runs (recorded by atmos-tasks drift)",
    )
    _format(p)
    p.set_defaults(func=commands.cmd_status)

    p = sub.add_parser("history", help="the rollouts of one target, newest first")
    p.add_argument("deployment", help=DEPLOYMENT)
    p.add_argument("--target", required=True, help="the target whose rollouts to list")
    p.add_argument("--component", help="only this component's records (e.g. ecr/api)")
    p.add_argument("--limit", type=_positive_arg, help="only the newest N rollouts")
    p.add_argument("--since", type=_time_arg, help="only rollouts at or after this time (RFC 3339 or a date)")
    p.add_argument("--until", type=_time_arg, help="only rollouts at or before this time")
    _format(p)
    p.set_defaults(func=commands.cmd_history)

    for kind, text in (
        ("rollout", "plan and apply every component, then record (runs the doit tasks)"),
        ("plan", "what a rollout would change: plan against what is deployed, apply and record nothing"),
    ):
        p = sub.add_parser(kind, help=text)
        p.add_argument("deployment", help=DEPLOYMENT)
        p.add_argument(
            "--target", help="the target to run it on (default: the manifest's context.default_target)"
        )
        p.add_argument("-n", "--jobs", type=int, default=1, help="components to run in parallel (default: 1)")
        if kind == "rollout":
            p.add_argument(
                "--promote-from",
                dest="promote_from",
                metavar="TARGET",
                help="deploy the commit (and the images) this other target runs, checked against the "
                "target's promotion rules (path, soak, approvals)",
            )
            p.add_argument(
                "--git-sha",
                dest="git_sha",
                metavar="SHA",
                help="deploy this commit, one the target ran successfully before: a rollback",
            )
            p.add_argument(
                "--approve",
                action="store_true",
                help="record your approval of the commit for the target as part of the rollout",
            )
            p.add_argument(
                "--allow-dirty",
                action="store_true",
                dest="allow_dirty",
                help="roll out from a working tree with uncommitted changes (recorded in the tags)",
            )
            p.add_argument("--verify", action="store_true", help="check vendored modules in the store first")
            p.add_argument(
                "--component",
                help="only these components (comma-separated), with what they depend on: applied and "
                "recorded (a CI matrix job's share), or promoted",
            )
            p.add_argument("--remote", help=REMOTE, metavar="NAME")
        else:
            p.add_argument(
                "--component", help="only these components (comma-separated), with what they depend on"
            )
            p.add_argument(
                "--promote-from",
                dest="promote_from",
                metavar="TARGET",
                help="plan the commit this other target runs, as promoting it here would deploy it",
            )
            p.add_argument(
                "--git-sha",
                dest="git_sha",
                metavar="SHA",
                help="plan this commit, as deploying it here would (what an approval prompt shows)",
            )
        p.add_argument(
            "--show-plan",
            action="store_true",
            dest="show_plan",
            help="print each component's plan under it: a line per resource and output that changes "
            "(+ create, ~ update, - destroy, -/+ replace), sensitive values never shown",
        )
        p.set_defaults(func=commands.cmd_rollout, kind=kind)

    p = sub.add_parser(
        "drift", help="plan what a target runs against its real state: changed outside a rollout? (exit 4)"
    )
    p.add_argument("deployment", help=DEPLOYMENT)
    p.add_argument("--target", required=True, help="the target whose components to check")
    p.add_argument(
        "-n", "--jobs", type=_positive_arg, default=1, help="components to check in parallel (default: 1)"
    )
    p.add_argument("--remote", help=REMOTE, metavar="NAME")
    _format(p)
    p.set_defaults(func=commands.cmd_drift)

    p = sub.add_parser("report", help="what is deployed where, as a static web page (no script needed)")
    p.add_argument("--html", required=True, metavar="DIR", help="write the page to DIR/index.html")
    p.add_argument("--serve", action="store_true", help="then serve DIR on 127.0.0.1 until Ctrl-C")
    p.add_argument(
        "--port", type=_count_arg, default=8000, help="the port --serve listens on (default: 8000; 0: any)"
    )
    p.add_argument(
        "--limit",
        type=_positive_arg,
        default=20,
        metavar="N",
        help="the newest N rollouts of each target (default: 20)",
    )
    p.add_argument(
        "--no-health",
        action="store_true",
        help="do not ask the engines that run components how they are (health is read live)",
    )
    p.set_defaults(func=commands.cmd_report)

    p = sub.add_parser("list", help="the deployments of this repository")
    p.add_argument("--label", action="append", metavar="K=V", help="only deployments with this label")
    _format(p)
    p.set_defaults(func=commands.cmd_list)

    p = sub.add_parser("describe", help="the resolved configuration of a deployment's components")
    p.add_argument("deployment", help=DEPLOYMENT)
    p.add_argument("--target", help="only this target (default: every target, in promotion order)")
    p.add_argument("--component", help="only this component (e.g. ecr/api or terraform/ecr/api)")
    p.add_argument("--provenance", action="store_true", help="where each value came from (file:line:col)")
    _format(p, "yaml")
    p.set_defaults(func=commands.cmd_describe)

    p = sub.add_parser("validate", help="every problem of every manifest (or one), at once")
    p.add_argument("deployment", nargs="?", help="only this deployment (default: every manifest)")
    _format(p)
    p.set_defaults(func=commands.cmd_validate)

    p = sub.add_parser("graph", help="the task graph of one rollout")
    p.add_argument("deployment", help=DEPLOYMENT)
    p.add_argument("--target", required=True, help="the target whose rollout to draw")
    _format(p, "text", ("text", "mermaid", "dot"))
    p.set_defaults(func=commands.cmd_graph)

    p = sub.add_parser("matrix", help="one target's components as a CI job matrix (GitHub Actions JSON)")
    p.add_argument("deployment", help=DEPLOYMENT)
    p.add_argument("--target", required=True, help="the target whose components to list")
    p.add_argument("--waves", action="store_true", help="group components into waves of independent jobs")
    _format(p, "json")
    p.set_defaults(func=commands.cmd_matrix)

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
    p.set_defaults(func=commands.cmd_migrate)

    p = sub.add_parser("build", help="build the nixpack images of a deployment (runs the doit tasks)")
    p.add_argument("deployment", help=DEPLOYMENT)
    p.add_argument(
        "--target", help="the target to run it on (default: the manifest's context.default_target)"
    )
    p.add_argument("--component", help="only these images (comma-separated), with what they need")
    p.add_argument("--plan", action="store_true", help="print each image's build plan, build nothing")
    p.add_argument(
        "--skip-push", action="store_true", dest="skip_push", help="build, but push nothing to a registry"
    )
    p.add_argument(
        "--allow-dirty",
        action="store_true",
        dest="allow_dirty",
        help="apply the Terraform components the images need from a dirty tree (recorded in their tags)",
    )
    p.add_argument("--remote", help=REMOTE, metavar="NAME")
    p.add_argument("-n", "--jobs", type=int, default=1, help="tasks to run in parallel (default: 1)")
    p.set_defaults(func=commands.cmd_build, promote_from=None, git_sha=None, approve=False)

    p = sub.add_parser("sbom", help="the CycloneDX SBOM of what a target runs")
    p.add_argument("deployment", help=DEPLOYMENT)
    p.add_argument("--target", required=True, help="the target whose SBOM to print")
    p.add_argument("--component", help="only this component's part of the SBOM")
    p.add_argument("--git-sha", dest="git_sha", help="default: the commit the target runs")
    p.set_defaults(func=commands.cmd_sbom)

    p = sub.add_parser("vendor", help="vendored modules: pull, status, stats, clean")
    vendor = p.add_subparsers(dest="vendor_command", required=True, metavar="ACTION")
    pull = vendor.add_parser("pull", help="fetch and materialise every vendored module")
    status_p = vendor.add_parser("status", help="lock, store and workspace state of each vendored module")
    for q in (pull, status_p):
        q.add_argument("--deployment", help="only this deployment's modules (default: every deployment)")
        q.add_argument("--target", help="only this target's modules (default: every target)")
    pull.add_argument("--update", action="store_true", help="fetch again even when locked (moved tags)")
    pull.add_argument("--frozen", action="store_true", help="use the lock file only; never touch the network")
    pull.add_argument(
        "--verify", action="store_true", help="re-hash objects; evict and re-fetch corrupt ones"
    )
    pull.set_defaults(func=commands.cmd_vendor_pull)
    _format(status_p)
    status_p.set_defaults(func=commands.cmd_vendor_status)
    stats_p = vendor.add_parser("stats", help="objects, sizes, and what sharing them saves")
    _format(stats_p)
    stats_p.set_defaults(func=commands.cmd_vendor_stats)
    clean = vendor.add_parser("clean", help="remove unreferenced objects and stale workspaces (dry run)")
    clean.add_argument(
        "--older-than", dest="older_than", type=_duration_arg, help="only what was last used before, e.g. 7d"
    )
    clean.add_argument("--force", action="store_true", help="really remove (default: dry run)")
    _format(clean)
    clean.set_defaults(func=commands.cmd_vendor_clean)

    p = sub.add_parser("diff", help="how two targets (or commits) differ")
    p.add_argument("deployment", help=DEPLOYMENT)
    p.add_argument(
        "--from-target", dest="from_target", metavar="TARGET", help="one side: what this target runs"
    )
    p.add_argument(
        "--to-target", dest="to_target", metavar="TARGET", help="the other side: what this target runs"
    )
    p.add_argument(
        "--from-sha",
        dest="from_sha",
        metavar="SHA",
        help="one side: this commit, read with the other side's target (or the default target)",
    )
    p.add_argument("--to-sha", dest="to_sha", metavar="SHA", help="the other side: this commit")
    p.add_argument("--component", help="only this component")
    p.add_argument(
        "--show-code",
        action="store_true",
        dest="show_code",
        help="the commits between the two sides, and the files and lines changed in the paths their "
        "components are configured and built from",
    )
    _format(p)
    p.set_defaults(func=commands.cmd_diff)

    p = sub.add_parser("promotion-graph", help="the promotion paths between targets")
    p.add_argument("deployment", help=DEPLOYMENT)
    _format(p, "text", ("text", "mermaid", "dot"))
    p.set_defaults(func=commands.cmd_promotion_graph)

    p = sub.add_parser("promotion-status", help="what each target could promote next, and what blocks it")
    p.add_argument("deployment", help=DEPLOYMENT)
    _format(p)
    p.set_defaults(func=commands.cmd_promotion_status)

    p = sub.add_parser("approve", help="record your approval of a commit for a target, ahead of time")
    p.add_argument("deployment", help=DEPLOYMENT)
    p.add_argument("--target", required=True, help="the target the approval is for")
    p.add_argument("--git-sha", dest="git_sha", help="default: the commit the target's promotion source runs")
    p.add_argument(
        "--remote", metavar="NAME", help="record it on this remote too (default: $ATMOS_TASKS_REMOTE)"
    )
    p.set_defaults(func=commands.cmd_approve)

    p = sub.add_parser("reject", help="mark a commit as never to be promoted")
    p.add_argument("deployment", help=DEPLOYMENT)
    p.add_argument("--git-sha", dest="git_sha", required=True, help="the commit to reject")
    p.add_argument("--reason", required=True, help="why: recorded with the rejection")
    p.add_argument(
        "--remote", metavar="NAME", help="record it on this remote too (default: $ATMOS_TASKS_REMOTE)"
    )
    p.set_defaults(func=commands.cmd_reject)

    p = sub.add_parser("unlock", help="break the locks a dead run left on a target, with a recorded reason")
    p.add_argument("deployment", help=DEPLOYMENT)
    p.add_argument("--target", required=True, help="the target whose locks to break")
    p.add_argument(
        "--component", action="append", metavar="NAME", help="only this component's lock (repeatable)"
    )
    p.add_argument("--reason", required=True, help="why: recorded in an atmos/unlocks/… tag")
    p.add_argument(
        "--remote", metavar="NAME", help="the remote holding the locks (default: ATMOS_TASKS_REMOTE)"
    )
    _format(p)
    p.set_defaults(func=commands.cmd_unlock)

    p = sub.add_parser(
        "destroy", help="remove what a target runs (containers, Terraform resources), recorded"
    )
    p.add_argument("deployment", help=DEPLOYMENT)
    p.add_argument("--target", required=True, help="the target to destroy on")
    p.add_argument("--component", metavar="NAME", help="only this component (its dependants keep running)")
    p.add_argument(
        "--yes", action="store_true", help="do not ask for a confirmation (needed without a terminal)"
    )
    p.add_argument("--remote", metavar="NAME", help="record on this remote too, under its locks")
    _format(p)
    p.set_defaults(func=commands.cmd_destroy)

    p = sub.add_parser(
        "prune", help="remove old deployment records and the notes only they needed (a dry run without --yes)"
    )
    p.add_argument("deployment", nargs="?", help="default: every deployment")
    p.add_argument("--target", help="only this target's records (default: every target)")
    p.add_argument(
        "--keep-last",
        dest="keep_last",
        type=_count_arg,
        required=True,
        metavar="N",
        help="keep the last N records of each component on each target (the latest is always kept)",
    )
    p.add_argument(
        "--older-than",
        dest="older_than",
        type=_retention_arg,
        required=True,
        metavar="D",
        help="keep every record younger than D (12h, 30d, 2w)",
    )
    p.add_argument("--yes", action="store_true", help="remove them (default: only show what would go)")
    p.add_argument(
        "--remote", metavar="NAME", help="prune this remote too, first (default: $ATMOS_TASKS_REMOTE)"
    )
    _format(p)
    p.set_defaults(func=commands.cmd_prune)

    p = sub.add_parser("example", help="the bundled example repository")
    example = p.add_subparsers(dest="example_command", required=True, metavar="ACTION")
    init = example.add_parser("init", help="write the example into a new Git repository")
    init.add_argument("path", help="the folder to create (it must not exist, or be empty)")
    init.set_defaults(func=commands.cmd_example_init)
    return parser


def _version() -> str:
    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    from atmos_tasks import process

    process.exit_quickly()
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
