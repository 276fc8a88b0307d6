"""`atmos-tasks`: query deployments and run rollouts (SPEC §12).

Heavy modules (doit, rich, the engine) are imported by the command that needs them, so a query
starts fast. Every error becomes one message and an exit code (SPEC §13), never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from atmos_tasks.errors import EXIT_BAD_INPUT, AtmosError, refused, render_error
from atmos_tasks.gitrepo import GitError

FORMATS = ("table", "json", "yaml")


def _repo_root(args: argparse.Namespace) -> Path:
    from atmos_tasks.config import find_root

    directory = Path(args.directory)
    if not directory.is_dir():
        raise AtmosError.single(
            f"-C {args.directory}: {'not a directory' if directory.exists() else 'no such directory'}",
            None,
            "give the folder of a repository (default: the current one)",
        )
    return find_root(directory)


def _emit(data: Any, fmt: str, table: Callable[[Any], None]) -> None:
    if fmt == "json":
        # Indented for people; compact (and several times faster to write) for pipes and tools.
        sys.stdout.write(json.dumps(data, indent=2 if sys.stdout.isatty() else None) + "\n")
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


def _signature_mark(signature: dict[str, Any] | str | None, by: str | None = None) -> str:
    """verified (by whom) / unverified / bad signature, for the status and history tables."""
    state = signature.get("status") if isinstance(signature, dict) else signature
    if isinstance(signature, dict):
        by = signature.get("by", by)
    if state == "verified":
        return f"[green]verified[/] ({by})" if by else "[green]verified[/]"
    if state == "bad":
        return "[red]bad signature[/]"
    return "[dim]unverified[/]"


def _health_mark(health: dict[str, Any] | None) -> str:
    """`✓ healthy (2/2)`, `✗ unhealthy (1/2)`, `? unknown`: what a kind's probe saw, live."""
    if not health:
        return ""
    color = {"healthy": "green", "unhealthy": "red"}.get(str(health.get("state")), "yellow")
    return f"  [{color}]{health.get('shown', health.get('state'))}[/]"


def cmd_status(args: argparse.Namespace) -> int:
    from atmos_tasks.gitrepo import GitRepo
    from atmos_tasks.queries import status

    data = status(GitRepo(_repo_root(args)), args.deployment, args.target, health=not args.no_health)

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
                    signature = _signature_mark(entry.get("signature"))
                    health = _health_mark(entry.get("health"))
                    console.print(f"{line}  {entry['deployed_by'] or ''}  {signature}{health}")
                    for where, address in (entry.get("health") or {}).get("endpoints", {}).items():
                        console.print(f"    {'':<{width}}  [dim]{where} → {address}[/]")
                    if "last_attempt" in entry:
                        last = entry["last_attempt"]
                        console.print(
                            f"    {'':<{width}}  [red]last attempt {last['git_sha'][:7]} {last['status']} "
                            f"{_ago(last['timestamp'])}[/]"
                        )
            console.print()

    _emit(data, args.format, table)
    return 0


def _duration_arg(text: str) -> str:
    from atmos_tasks.manifest import duration_seconds

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
            signature = _signature_mark(rollout.get("signature"), rollout.get("signed_by"))
            console.print(
                f"  {when}  {rollout['git_sha'][:7]}  {rollout['deployed_by']}  {mark}  {signature}"
            )
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
    if args.kind == "build" and args.skip_push:
        run.append("--skip-push")
    if args.kind == "rollout":
        if args.promote_from:
            run += ["--promote-from", args.promote_from]
        if args.git_sha:
            run += ["--git-sha", args.git_sha]
        if args.approve:
            run.append("--approve")
        if args.verify:
            run.append("--verify")
    if args.kind in ("rollout", "build"):
        if args.allow_dirty:
            run.append("--allow-dirty")
        if args.remote:
            run += ["--remote", args.remote]
    if args.component:
        run += ["--component", args.component]
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
    from atmos_tasks.workspace import Workspace

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
            for warning in result.get("warnings", []):
                sys.stderr.write(f"warning: {result['file']}: {warning}\n")
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


def cmd_matrix(args: argparse.Namespace) -> int:
    from atmos_tasks.discovery import load_for
    from atmos_tasks.engine import compile_plans
    from atmos_tasks.invocation import Invocation, RolloutOptions, Selected
    from atmos_tasks.matrix import target_matrix

    workspace = _workspace(args)
    manifest = load_for(workspace, args.deployment)
    if args.target not in manifest.model.targets:  # also keeps glob characters out of the selection
        raise AtmosError.single(
            f"deployment {manifest.name!r} has no target {args.target!r}",
            manifest.locate(["targets"], at_key=True),
            f"targets: {', '.join(manifest.target_names())}",
        )
    selected = Selected("rollout", manifest.name, args.target, "*", RolloutOptions())
    (plan,) = compile_plans(workspace, Invocation("list", [selected]))
    data = target_matrix(plan, args.waves)

    def table(found: dict[str, Any]) -> None:
        entries = [e for wave in found["waves"] for e in wave] if "waves" in found else found["include"]
        width = max((len(e["component"]) for e in entries), default=0)
        for entry in entries:
            after = f"  after {', '.join(entry['depends_on'])}" if entry["depends_on"] else ""
            print(f"  {entry['wave']}  {entry['component']:<{width}}  {entry['task']}{after}")

    _emit(data, args.format, table)
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


def cmd_build(args: argparse.Namespace) -> int:
    if not args.plan:
        args.kind = "build"
        return cmd_rollout(args)
    from atmos_tasks.engine import compile_plans
    from atmos_tasks.invocation import Invocation, RolloutOptions, Selected

    root = _repo_root(args)
    target = args.target or _default_target(root, args.deployment)
    invocation = Invocation("list", [Selected("build", args.deployment, target, "*", RolloutOptions())])
    (plan,) = compile_plans(_workspace(args), invocation)
    data = {
        ref.name: {
            "source": str(job.source_dir),
            "source_hash": job.source_hash,
            "plan_hash": job.plan_hash,
            "image": f"{job.name(job.registry)}:{job.tag}",
            "plan": json.loads(job.plan_json),
        }
        for ref, job in plan.builds.items()
        if args.component is None or ref.name in args.component.split(",")
    }
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    return 0


def cmd_sbom(args: argparse.Namespace) -> int:
    from atmos_tasks.gitrepo import GitRepo
    from atmos_tasks.notes import read_note
    from atmos_tasks.queries import status
    from atmos_tasks.record import SBOM

    repo = GitRepo(_repo_root(args))
    deployed = status(repo, args.deployment, args.target).get(args.deployment, {}).get(args.target, {})
    running = {name: entry for name, entry in deployed.items() if entry.get("git_sha")}
    if not running:
        raise AtmosError.single(
            f"{args.target} runs nothing of {args.deployment}",
            None,
            f"roll it out first: doit rollout:{args.deployment}:{args.target}",
        )
    commit = (args.git_sha and _commit(repo, args.git_sha)) or _sbom_commit(args, running)
    bom = read_note(repo, args.deployment, SBOM, commit).get("targets", {}).get(args.target)
    if bom is None:
        raise AtmosError.single(
            f"no SBOM recorded for {args.deployment}/{args.target} at {commit[:7]}",
            None,
            "SBOMs are recorded by rollouts; roll the target out again to record one",
        )
    if args.component:
        bom = _sbom_component(bom, args.component)
    sys.stdout.write(json.dumps(bom, indent=2) + "\n")
    return 0


def _sbom_commit(args: argparse.Namespace, running: dict[str, dict[str, Any]]) -> str:
    """The commit `--component` runs, else the one deployed last (components may disagree)."""
    if args.component in running:
        return str(running[args.component]["git_sha"])
    latest = max(running.values(), key=lambda e: (e.get("deployed_at") or "", e["git_sha"]))
    commits = {e["git_sha"] for e in running.values()}
    if len(commits) > 1:
        shown = "; ".join(
            f"{sha[:7]}: {', '.join(n for n, e in running.items() if e['git_sha'] == sha)}"
            for sha in sorted(commits)
        )
        sys.stderr.write(
            f"note: {args.target} runs several commits of {args.deployment} ({shown}); this is the SBOM of "
            f"{latest['git_sha'][:7]}, deployed most recently (choose with --git-sha or --component)\n"
        )
    return str(latest["git_sha"])


def _sbom_component(bom: dict[str, Any], name: str) -> dict[str, Any]:
    """The part of an aggregated SBOM that describes one component."""
    for component in bom.get("components", []):
        if component.get("name") == name:
            # Nested bom-refs are `<component>:<ref>`: `api` must not take `api-admin:…` along.
            ref = str(component.get("bom-ref", ""))
            return {
                **bom,
                "components": [component],
                "dependencies": [
                    d
                    for d in bom.get("dependencies", [])
                    if d.get("ref") == ref or str(d.get("ref", "")).startswith(f"{ref}:")
                ],
            }
    raise AtmosError.single(
        f"the SBOM has no component {name!r}",
        None,
        "components: " + ", ".join(c.get("name", "?") for c in bom.get("components", [])),
    )


def _vendored(args: argparse.Namespace) -> list[tuple[Any, str, list[Any]]]:
    """(manifest, target, vendor entries) for each selected deployment and target."""
    from atmos_tasks.discovery import load_for, resolve_all

    workspace = _workspace(args)
    names = [args.deployment] if args.deployment else workspace.deployment_names()
    found = []
    manifests = [load_for(workspace, name) for name in names]
    if args.target and not any(args.target in m.model.targets for m in manifests):
        if args.deployment:
            raise AtmosError.single(
                f"deployment {args.deployment!r} has no target {args.target!r}",
                manifests[0].locate(["targets"], at_key=True),
                f"targets: {', '.join(manifests[0].target_names())}",
            )
        raise AtmosError.single(f"no deployment has a target {args.target!r}", None, "check --target")
    for manifest in manifests:
        if args.target and args.target not in manifest.model.targets:
            continue  # --target without --deployment: the deployments that have it
        targets = [args.target] if args.target else manifest.target_names()
        for target, resolved in resolve_all(workspace, manifest, targets).items():
            entries = [c.vendor for c in resolved.components.values() if c.vendor is not None]
            if entries:
                found.append((manifest, target, entries))
    return found


def _store(args: argparse.Namespace, manifest: Any = None) -> Any:
    from atmos_tasks.config import load_config
    from atmos_tasks.vendoring import store_root
    from vendor_cache import Store

    return Store(store_root(load_config(_repo_root(args)), manifest))


def _stores(args: argparse.Namespace) -> list[Any]:
    """Every store the repository's deployments use: the default one and any `vendor.cache.dir`."""
    from atmos_tasks.config import load_config
    from atmos_tasks.discovery import load_for
    from atmos_tasks.vendoring import store_root
    from vendor_cache import Store

    config = load_config(_repo_root(args))
    workspace = _workspace(args)
    roots = {store_root(config)} | {
        store_root(config, load_for(workspace, name)) for name in workspace.deployment_names()
    }
    return [Store(root) for root in sorted(roots)]


def _vendor_error(err: Exception) -> AtmosError:
    from atmos_tasks.errors import Location

    origin = getattr(err, "origin", None)
    return AtmosError.single(
        getattr(err, "message", str(err)),
        Location(origin) if origin else None,
        getattr(err, "hint", None),
        exit_code=getattr(err, "exit_code", 1),
    )


def cmd_vendor_pull(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from atmos_tasks.vendoring import cache_ttl
    from vendor_cache import VendorError

    console = _console()
    rows = []
    try:
        with _vendor_progress(console) as progress:
            for manifest, target, entries in _vendored(args):
                with _store(args, manifest) as store:
                    done = store.vendor_target(
                        manifest.name,
                        target,
                        entries,
                        frozen=args.frozen,
                        update=args.update,
                        verify=args.verify,
                        max_age=None if args.frozen else cache_ttl(manifest),
                        progress=progress,
                    )
                versions = {e.component: e.version for e in entries}
                for item in done:
                    how = "fetched" if item.fetched else "cached"
                    rows.append(
                        f"  ✓ {manifest.name}/{target} {item.component} {versions.get(item.component) or ''} "
                        f"{item.digest[:12]} ({how}{', materialised' if item.materialized else ''})"
                    )
                    if item.repaired is not None:
                        rows.append(
                            f"  [bold yellow]! warning: {manifest.name}/{target} {item.component}:[/] "
                            + escape(str(item.repaired))
                        )
    except VendorError as err:
        raise _vendor_error(err) from None
    for row in rows:
        console.print(row)
    console.print(f"{len(rows)} component(s) vendored" if rows else "Nothing to vendor.")
    return 0


@contextlib.contextmanager
def _vendor_progress(console: Any) -> Iterator[Any]:
    """A progress display for long pulls, on a terminal only: a bar where the phase has a measure
    (bytes downloaded, files extracted or stored), a spinner where it has none (git fetch)."""
    if not console.is_terminal:
        yield None
        return
    from rich.filesize import decimal
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

    bars: dict[tuple[str, str], Any] = {}
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[amount]}"),
        console=console,
        transient=True,
    ) as display:

        def report(event: Any) -> None:
            key = (event.phase, event.subject)
            task = bars.get(key)
            if task is None:
                for earlier in bars.values():  # phases follow each other: the last one is over
                    display.update(earlier, visible=False)
                subject = _short_path(event.subject)
                task = bars[key] = display.add_task(f"{event.phase} {subject}", total=None, amount="")
            if event.done is None:
                return
            if event.phase == "download":
                amount = decimal(event.done) + (f"/{decimal(event.total)}" if event.total else "")
            else:
                amount = f"{event.done}/{event.total} files" if event.total else f"{event.done} files"
            display.update(task, completed=event.done, total=event.total, amount=amount)

        yield report


def _short_path(subject: str) -> str:
    """A workspace path relative to the current directory, and no wider than 72 columns."""
    import os

    if os.path.isabs(subject):
        with contextlib.suppress(ValueError):
            subject = os.path.relpath(subject)
    return subject if len(subject) <= 72 else "…" + subject[-71:]


def cmd_vendor_status(args: argparse.Namespace) -> int:
    from vendor_cache import VendorError

    data: list[dict[str, Any]] = []
    try:
        for manifest, target, entries in _vendored(args):
            versions = {e.component: e for e in entries}
            with _store(args, manifest) as store:
                for status in store.status(manifest.name, target, entries):
                    entry = versions[status.component]
                    data.append(
                        {
                            "deployment": manifest.name,
                            "target": target,
                            "component": status.component,
                            "source": entry.source,
                            "version": entry.version,
                            "locked_digest": status.locked.digest if status.locked else None,
                            "locked_commit": status.locked.commit if status.locked else None,
                            "lock_matches": status.lock_matches,
                            "object_present": status.object_present,
                            "workspace_intact": status.workspace_intact,
                            "object_damage": [str(damage) for damage in status.object_damage],
                        }
                    )
    except VendorError as err:
        raise _vendor_error(err) from None

    def table(found: list[dict[str, Any]]) -> None:
        console = _console()
        for row in found:
            ok = row["lock_matches"] and row["object_present"] and row["workspace_intact"]
            ok = ok and not row["object_damage"]
            mark = "[green]✓[/]" if ok else "[yellow]![/]"
            problems = [
                text
                for key, text in (
                    ("lock_matches", "lock out of date" if row["locked_digest"] else "not pulled yet"),
                    ("object_present", "object missing"),
                    ("workspace_intact", "workspace not intact"),
                )
                if not row[key] and (key == "lock_matches" or row["locked_digest"])
            ] + [f"object damaged: {damage}" for damage in row["object_damage"]]
            digest = (row["locked_digest"] or "not locked")[:12]
            console.print(
                f"{mark} {row['deployment']}/{row['target']} {row['component']} {row['version'] or ''} "
                f"{digest}" + (f"  ({', '.join(problems)})" if problems else "")
            )
        if not found:
            console.print("No vendored components.")

    _emit(data, args.format, table)
    return 0


def cmd_vendor_stats(args: argparse.Namespace) -> int:
    fields = ("objects", "object_bytes", "workspaces", "workspace_bytes", "referenced_bytes", "disk_bytes")
    data: dict[str, Any] = dict.fromkeys((*fields, "saved_bytes"), 0)
    for each in _stores(args):  # figures add up: stores share nothing
        with each as store:
            stats = store.stats()
        for key in (*fields, "saved_bytes"):
            data[key] += getattr(stats, key)
    data["saved_percent"] = (
        round(100 * data["saved_bytes"] / data["workspace_bytes"], 1) if data["workspace_bytes"] else 0.0
    )

    def table(found: dict[str, Any]) -> None:
        console = _console()
        console.print(f"objects      {found['objects']} ({found['object_bytes']} bytes)")
        console.print(f"workspaces   {found['workspaces']} ({found['workspace_bytes']} bytes as copies)")
        console.print(f"on disk      {found['disk_bytes']} bytes")
        console.print(
            f"saved        {found['saved_bytes']} bytes ({found['saved_percent']}%) by sharing objects"
        )

    _emit(data, args.format, table)
    return 0


def cmd_vendor_clean(args: argparse.Namespace) -> int:
    from atmos_tasks.manifest import duration_seconds

    older = duration_seconds(args.older_than) if args.older_than else None
    data: dict[str, Any] = {
        "dry_run": not args.force,
        "objects": [],
        "workspaces": [],
        "temporary": [],
        "bytes": 0,
    }
    for each in _stores(args):
        with each as store:
            report = store.clean(older_than=older, dry_run=not args.force)
        data["objects"] += list(report.objects)
        data["workspaces"] += [str(p) for p in report.workspaces]
        data["temporary"] += [str(p) for p in report.temporary]
        data["bytes"] += report.bytes

    def table(found: dict[str, Any]) -> None:
        verb = "would remove" if found["dry_run"] else "removed"
        print(
            f"{verb}: {len(found['objects'])} object(s), {len(found['workspaces'])} workspace(s), "
            f"{len(found['temporary'])} temporary folder(s), {found['bytes']} bytes"
        )
        if found["dry_run"]:
            print("(a dry run: pass --force to remove them)")

    _emit(data, args.format, table)
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

    def table(found: dict[str, Any]) -> None:
        console = _console()
        old, new = found["from"], found["to"]
        console.print(f"[bold]{found['deployment']}: {old['label']} vs {new['label']}[/]\n")
        console.print("  Commits")
        width = max(len(old["label"]), len(new["label"]))
        for side in (old, new):
            when = f"  (deployed {_ago(side['deployed_at'])})" if side.get("deployed_at") else ""
            console.print(f"    {side['label']:<{width}}  {side['git_sha'][:7]}{when}")
        behind, ahead = found["commits"]["behind"], found["commits"]["ahead"]
        if behind or ahead:
            parts = ([f"↓ {behind} commit(s) behind"] if behind else []) + (
                [f"↑ {ahead} ahead"] if ahead else []
            )
            console.print(f"    {old['label']} is {', '.join(parts)} {new['label']}")
        else:
            console.print("    same commit")
        changed = {n: c for n, c in found["components"].items() if c["changed"]}
        console.print("\n  Components")
        if not changed:
            console.print("    no differences")
        for name, entry in changed.items():
            a = entry["from"]["git_sha"][:7] if entry["from"] else "—"
            b = entry["to"]["git_sha"][:7] if entry["to"] else "—"
            console.print(f"    {name:<28} {a} → {b}  changed")
        console.print("\n  Configuration")
        if not found["configuration"]:
            console.print("    no differences")
        marks = {
            "increased": "↑ increased",
            "decreased": "↓ decreased",
            "added": "+ added",
            "removed": "- removed",
            "changed": "changed",
        }
        for item in found["configuration"]:
            console.print(f"    {item['key']:<36} {item['from']!s} → {item['to']!s}  {marks[item['change']]}")
        if "code" in found:
            code = found["code"]
            console.print("\n  Code")
            for entry in code["files"]:
                added = "bin" if entry["added"] is None else f"+{entry['added']}"
                deleted = "" if entry["deleted"] is None else f"/-{entry['deleted']}"
                console.print(f"    {entry['path']}  {added}{deleted}")
            console.print(
                f"\n  {code['commits']} commit(s), {code['files_changed']} file(s) changed, "
                f"+{code['added']}/-{code['deleted']} lines"
            )

    _emit(data, args.format, table)
    return 0


def _manifest(args: argparse.Namespace) -> Any:
    from atmos_tasks.config import load_config
    from atmos_tasks.manifest import load_deployment

    return load_deployment(load_config(_repo_root(args)), args.deployment)


def cmd_promotion_graph(args: argparse.Namespace) -> int:
    from atmos_tasks.promotion import promotion_graph, render_promotion_graph

    sys.stdout.write(render_promotion_graph(promotion_graph(_manifest(args)), args.format))
    return 0


def cmd_promotion_status(args: argparse.Namespace) -> int:
    from atmos_tasks.gitrepo import GitRepo
    from atmos_tasks.notes import read_note
    from atmos_tasks.promotion import promotion_status
    from atmos_tasks.tracking import read_records

    manifest = _manifest(args)
    root = _repo_root(args)
    repo = GitRepo(root)
    now = datetime.now(UTC)

    def gates(target: str, commit: str) -> Any:
        from atmos_tasks.config import load_config
        from atmos_tasks.record import actor
        from atmos_tasks.signing import SignedApprovals

        rule = manifest.model.targets[target].promotion
        signers = load_config(root).allowed_signers
        return SignedApprovals(repo, signers, manifest.name, target, commit, rule, now, actor(repo.ident()))

    data = promotion_status(
        manifest,
        read_records(repo, manifest.name),
        lambda namespace, commit: read_note(repo, manifest.name, namespace, commit),
        now,
        gates,
    )

    def table(found: dict[str, Any]) -> None:
        console = _console()
        console.print(f"[bold]{found['deployment']}[/] promotion status")
        for target, entry in found["targets"].items():
            runs = entry["runs"]
            shown = (
                runs[:7]
                if isinstance(runs, str)
                else ("mixed: " + ", ".join(r[:7] for r in runs) if runs else "nothing")
            )
            console.print(f"\n  [bold]{target}[/] runs {shown}")
            for source, candidate in entry["sources"].items():
                commit = candidate["commit"][:7] if candidate["commit"] else "—"
                if candidate["ready"]:
                    console.print(f"    [green]ready[/]: {commit} from {source}")
                else:
                    console.print(f"    from {source} ({commit}): " + "; ".join(candidate["blocked_by"]))

    _emit(data, args.format, table)
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    """Record the invoker's approval, signed with their Git signing key (required when the target
    names `approvers`: then it is checked now, as the rollout will check it, before it is written)."""
    from atmos_tasks.config import load_config
    from atmos_tasks.gitrepo import GitRepo
    from atmos_tasks.notes import union, update_note
    from atmos_tasks.promotion import APPROVALS, approvals_for, source_commit, target_states, unexpired
    from atmos_tasks.record import actor
    from atmos_tasks.signing import SignedApprovals, count_people, signed_entry, signing_key, stamp
    from atmos_tasks.tracking import read_records

    manifest = _manifest(args)
    if args.target not in manifest.model.targets:
        raise AtmosError.single(
            f"deployment {manifest.name!r} has no target {args.target!r}",
            None,
            f"targets: {', '.join(manifest.target_names())}",
        )
    root = _repo_root(args)
    repo = GitRepo(root)
    remote = _remote(args)
    if remote:
        from atmos_tasks.engine import fetch_records

        fetch_records(repo, remote)
    rule = manifest.model.targets[args.target].promotion
    commit = _commit(repo, args.git_sha) if args.git_sha else None
    if commit is None:
        sources = rule.sources if rule else []
        if len(sources) != 1:
            raise AtmosError.single(
                f"which commit? {args.target} has {len(sources) or 'no'} promotion source(s)",
                None,
                "pass --git-sha",
            )
        states = read_records(repo, manifest.name)
        commit = source_commit(
            manifest.name, sources[0], target_states(states, manifest.name, sources[0], None), None
        )
    who = actor(repo.ident())
    now = datetime.now(UTC).replace(microsecond=0)
    gate = None
    if rule is not None and rule.approvers is not None and rule.approval_method == "manual":
        gate = SignedApprovals(
            repo, load_config(root).allowed_signers, manifest.name, args.target, commit, rule, now, who
        )
        entry = gate.sign("cli")
        checked = gate.check([entry])[0]
        if checked.reason is not None:
            raise refused(
                f"your approval of {commit[:7]} for {args.target} would not count: {checked.reason}",
                f"{args.target} counts approvals signed by {', '.join(rule.approvers)} with a key listed in "
                f"{gate.signers_path} at {commit[:7]} (see 'Who can approve' in docs/promotion.md)",
            )
        who = entry["by"]
    else:
        # Self-asserted approvals (no approvers named): signed all the same when a key is configured.
        key = signing_key(repo)
        fields = {"target": args.target, "by": who, "at": stamp(now), "method": "cli"}
        entry = signed_entry(key if key.can_sign else None, "approval", manifest.name, commit, fields)
    note = update_note(
        repo, manifest.name, APPROVALS, commit, {"approvals": [entry]}, union("approvals"), remote
    )
    entries = approvals_for(note, args.target)
    if gate is not None:
        count = len(count_people(gate.check(entries))[0])
        what = "signed approval(s) verify"
    else:
        count = len({a.get("by") for a in (unexpired(entries, rule, now) if rule else entries)})
        what = "approval(s) recorded"
    signed = " (signed)" if "signature" in entry else ""
    print(f"Approved {commit[:7]} of {manifest.name} for {args.target} as {who}{signed} ({count} {what})")
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    """Record a rejection, signed when the invoker has a signing key. Targets that name `approvers`
    honour only rejections that verify against the allowed signers at the commit."""
    from atmos_tasks.gitrepo import GitRepo
    from atmos_tasks.notes import union, update_note
    from atmos_tasks.promotion import REJECTIONS
    from atmos_tasks.record import actor
    from atmos_tasks.signing import signed_entry, signing_key, stamp

    manifest = _manifest(args)
    repo = GitRepo(_repo_root(args))
    commit = _commit(repo, args.git_sha)
    who = actor(repo.ident())
    key = signing_key(repo)
    fields = {"by": who, "at": stamp(datetime.now(UTC)), "reason": args.reason}
    entry = signed_entry(key if key.can_sign else None, "rejection", manifest.name, commit, fields)
    signed_targets = [
        name
        for name, target in manifest.model.targets.items()
        if target.promotion is not None and target.promotion.approvers is not None
    ]
    if "signature" not in entry and signed_targets:
        sys.stderr.write(
            f"warning: this rejection is not signed ({key.problem()}): {', '.join(signed_targets)} "
            "count only signed rejections and will not honour it\n"
        )
    update_note(
        repo, manifest.name, REJECTIONS, commit, {"rejections": [entry]}, union("rejections"), _remote(args)
    )
    signed = " (signed)" if "signature" in entry else ""
    print(f"Rejected {commit[:7]} of {manifest.name}{signed}: {args.reason} (it will not be promoted)")
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    """Break the locks a run holds on a target (its runner died), recording who did it and why."""
    from atmos_tasks.gitrepo import GitRepo
    from atmos_tasks.locks import unlock
    from atmos_tasks.record import actor

    manifest = _manifest(args)
    if args.target not in manifest.model.targets:
        raise AtmosError.single(
            f"deployment {manifest.name!r} has no target {args.target!r}",
            manifest.locate(["targets"], at_key=True),
            f"targets: {', '.join(manifest.target_names())}",
        )
    if not args.reason.strip():
        raise AtmosError.single("--reason is empty", None, "say why the lock is broken: it is recorded")
    remote = _remote(args)
    if remote is None:
        raise AtmosError.single(
            "unlock needs the remote that holds the locks",
            None,
            "pass --remote origin (or set ATMOS_TASKS_REMOTE)",
        )
    repo = GitRepo(_repo_root(args))
    ident = repo.ident()
    found = unlock(
        repo,
        remote,
        manifest.name,
        args.target,
        args.component or [],
        args.reason,
        actor(ident),
        ident,
        datetime.now(UTC).replace(microsecond=0),
    )

    def table(found: dict[str, Any]) -> None:
        if not found["broken"]:
            print(f"No lock held on {found['deployment']}/{found['target']}")
            return
        print(f"Unlocked {', '.join(found['broken'])} on {found['deployment']}/{found['target']}")
        print(f"  recorded in {found['tag']}: {found['reason']}")

    _emit(found, args.format, table)
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    """Remove what a target runs (every deploying component, or one), dependants first; recorded."""
    from atmos_tasks.destroy import destroy
    from atmos_tasks.workspace import Workspace

    what = (
        f"{args.component} on {args.deployment}/{args.target}"
        if args.component
        else (f"everything {args.deployment} runs on {args.target}")
    )
    if not args.yes and not _confirm(f"Destroy {what}? [y/N] "):
        raise refused(f"destroying {what} needs a confirmation", "answer y on a terminal, or pass --yes")
    result = destroy(Workspace(_repo_root(args)), args.deployment, args.target, args.component, _remote(args))

    def table(found: dict[str, Any]) -> None:
        console = _console()
        for name, entry in found["components"].items():
            mark = {"destroyed": "[green]✓ destroyed[/]", "failed": "[red]✗ failed[/]"}.get(
                entry["status"], f"[yellow]{entry['status']}[/]"
            )
            detail = entry.get("error") or entry.get("reason") or ""
            console.print(f"  {entry['kind']}/{name}  {mark}  {detail}")
        for tag in found["tags"]:
            console.print(f"  recorded in {tag}")

    _emit(result.to_json(), args.format, table)
    return 1 if result.failed else 0


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(question).strip().lower() in ("y", "yes")


def _remote(args: argparse.Namespace) -> str | None:
    import os

    return args.remote or os.environ.get("ATMOS_TASKS_REMOTE") or None


def _commit(repo: Any, sha: str) -> str:
    found = repo.rev_parse(sha)
    if found is None:
        raise AtmosError.single(f"{sha!r} is not a commit of this repository", None, "give a commit id")
    return str(found)


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
    p.add_argument(
        "--no-health",
        action="store_true",
        help="do not ask the engines that run components how they are (health is read live)",
    )
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("history", help="the rollouts of one target, newest first")
    p.add_argument("deployment")
    p.add_argument("--target", required=True)
    p.add_argument("--component")
    p.add_argument("--limit", type=_positive_arg, help="only the newest N rollouts")
    p.add_argument("--since", type=_time_arg, help="only rollouts at or after this time (RFC 3339 or a date)")
    p.add_argument("--until", type=_time_arg, help="only rollouts at or before this time")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_history)

    for kind, text in (
        ("rollout", "plan and apply every component, then record (runs the doit tasks)"),
        ("plan", "what a rollout would change: plan against what is deployed, apply and record nothing"),
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
            p.add_argument("--verify", action="store_true", help="check vendored modules in the store first")
            p.add_argument("--component", help="with --promote-from: only these components (comma-separated)")
            p.add_argument(
                "--remote",
                help="sync records with this Git remote (default: $ATMOS_TASKS_REMOTE)",
                metavar="NAME",
            )
        else:
            p.add_argument(
                "--component", help="only these components (comma-separated), with what they depend on"
            )
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

    p = sub.add_parser("matrix", help="one target's components as a CI job matrix (GitHub Actions JSON)")
    p.add_argument("deployment")
    p.add_argument("--target", required=True)
    p.add_argument("--waves", action="store_true", help="group components into waves of independent jobs")
    p.add_argument("--format", choices=FORMATS, default="json")
    p.set_defaults(func=cmd_matrix)

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

    p = sub.add_parser("build", help="build the nixpack images of a deployment (runs the doit tasks)")
    p.add_argument("deployment")
    p.add_argument("--target", help="default: the manifest's context.default_target")
    p.add_argument("--component", help="only these images (comma-separated), with what they need")
    p.add_argument("--plan", action="store_true", help="print each image's build plan, build nothing")
    p.add_argument("--skip-push", action="store_true", dest="skip_push")
    p.add_argument(
        "--allow-dirty",
        action="store_true",
        dest="allow_dirty",
        help="apply the Terraform components the images need from a dirty tree (recorded in their tags)",
    )
    p.add_argument(
        "--remote", help="sync records with this Git remote (default: $ATMOS_TASKS_REMOTE)", metavar="NAME"
    )
    p.add_argument("-n", "--jobs", type=int, default=1)
    p.set_defaults(func=cmd_build, promote_from=None, git_sha=None, approve=False)

    p = sub.add_parser("sbom", help="the CycloneDX SBOM of what a target runs")
    p.add_argument("deployment")
    p.add_argument("--target", required=True)
    p.add_argument("--component")
    p.add_argument("--git-sha", dest="git_sha", help="default: the commit the target runs")
    p.set_defaults(func=cmd_sbom)

    p = sub.add_parser("vendor", help="vendored modules: pull, status, stats, clean")
    vendor = p.add_subparsers(dest="vendor_command", required=True, metavar="ACTION")
    pull = vendor.add_parser("pull", help="fetch and materialise every vendored module")
    status_p = vendor.add_parser("status", help="lock, store and workspace state of each vendored module")
    for q in (pull, status_p):
        q.add_argument("--deployment")
        q.add_argument("--target")
    pull.add_argument("--update", action="store_true", help="fetch again even when locked (moved tags)")
    pull.add_argument("--frozen", action="store_true", help="use the lock file only; never touch the network")
    pull.add_argument(
        "--verify", action="store_true", help="re-hash objects; evict and re-fetch corrupt ones"
    )
    pull.set_defaults(func=cmd_vendor_pull)
    status_p.add_argument("--format", choices=FORMATS, default="table")
    status_p.set_defaults(func=cmd_vendor_status)
    stats_p = vendor.add_parser("stats", help="objects, sizes, and what sharing them saves")
    stats_p.add_argument("--format", choices=FORMATS, default="table")
    stats_p.set_defaults(func=cmd_vendor_stats)
    clean = vendor.add_parser("clean", help="remove unreferenced objects and stale workspaces (dry run)")
    clean.add_argument(
        "--older-than", dest="older_than", type=_duration_arg, help="only what was last used before, e.g. 7d"
    )
    clean.add_argument("--force", action="store_true", help="really remove (default: dry run)")
    clean.add_argument("--format", choices=FORMATS, default="table")
    clean.set_defaults(func=cmd_vendor_clean)

    p = sub.add_parser("diff", help="how two targets (or commits) differ")
    p.add_argument("deployment")
    p.add_argument("--from-target", dest="from_target")
    p.add_argument("--to-target", dest="to_target")
    p.add_argument("--from-sha", dest="from_sha")
    p.add_argument("--to-sha", dest="to_sha")
    p.add_argument("--component")
    p.add_argument("--show-code", action="store_true", dest="show_code", help="files and lines changed")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("promotion-graph", help="the promotion paths between targets")
    p.add_argument("deployment")
    p.add_argument("--format", choices=("text", "mermaid", "dot"), default="text")
    p.set_defaults(func=cmd_promotion_graph)

    p = sub.add_parser("promotion-status", help="what each target could promote next, and what blocks it")
    p.add_argument("deployment")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_promotion_status)

    p = sub.add_parser("approve", help="record your approval of a commit for a target, ahead of time")
    p.add_argument("deployment")
    p.add_argument("--target", required=True)
    p.add_argument("--git-sha", dest="git_sha", help="default: the commit the target's promotion source runs")
    p.add_argument("--remote", metavar="NAME")
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("reject", help="mark a commit as never to be promoted")
    p.add_argument("deployment")
    p.add_argument("--git-sha", dest="git_sha", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--remote", metavar="NAME")
    p.set_defaults(func=cmd_reject)

    p = sub.add_parser("unlock", help="break the locks a dead run left on a target, with a recorded reason")
    p.add_argument("deployment")
    p.add_argument("--target", required=True, help="the target whose locks to break")
    p.add_argument(
        "--component", action="append", metavar="NAME", help="only this component's lock (repeatable)"
    )
    p.add_argument("--reason", required=True, help="why: recorded in an atmos/unlocks/… tag")
    p.add_argument(
        "--remote", metavar="NAME", help="the remote holding the locks (default: ATMOS_TASKS_REMOTE)"
    )
    p.add_argument("--format", choices=["table", "json", "yaml"], default="table")
    p.set_defaults(func=cmd_unlock)

    p = sub.add_parser(
        "destroy", help="remove what a target runs (containers, Terraform resources), recorded"
    )
    p.add_argument("deployment")
    p.add_argument("--target", required=True, help="the target to destroy on")
    p.add_argument("--component", metavar="NAME", help="only this component (its dependants keep running)")
    p.add_argument(
        "--yes", action="store_true", help="do not ask for a confirmation (needed without a terminal)"
    )
    p.add_argument("--remote", metavar="NAME", help="record on this remote too, under its locks")
    p.add_argument("--format", choices=["table", "json", "yaml"], default="table")
    p.set_defaults(func=cmd_destroy)

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
