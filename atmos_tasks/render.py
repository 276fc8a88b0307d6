"""What `atmos-tasks` shows people: tables, lines and documents made from the plain data the domain
functions return (SPEC §12). Nothing here reads Git, a manifest or the network.

Every query renders as `table` (rich markup, for people), `json` or `yaml` (for tools): `emit` picks.
rich and ruamel are imported by the functions that draw with them, so a command that prints JSON,
or only its help, loads neither.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from atmos_tasks.approvals import Approved, Rejected, UnsignedRejection
    from atmos_tasks.migrate import Migrated
    from atmos_tasks.queries import SeveralCommits
    from atmos_tasks.vendored import Pulled


def emit(data: Any, fmt: str, table: Callable[[Any], None]) -> None:
    if fmt == "json":
        # Indented for people; compact (and several times faster to write) for pipes and tools.
        sys.stdout.write(json.dumps(data, indent=2 if sys.stdout.isatty() else None) + "\n")
    elif fmt == "yaml":
        yaml_document(data)
    else:
        table(data)


def yaml_document(data: Any) -> None:
    """YAML in the data's own order (dependency order, dev → prod), not sorted."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.dump(data, sys.stdout)


def json_document(data: Any) -> None:
    """A document tools read (a build plan, an SBOM): indented, whatever stdout is."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def text(output: str) -> None:
    sys.stdout.write(output)


def warning(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


def console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, no_color=bool(os.environ.get("NO_COLOR")))


def ago(timestamp: str | None) -> str:
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


def signature_mark(signature: dict[str, Any] | str | None, by: str | None = None) -> str:
    """verified (by whom) / unverified / bad signature, for the status and history tables."""
    state = signature.get("status") if isinstance(signature, dict) else signature
    if isinstance(signature, dict):
        by = signature.get("by", by)
    if state == "verified":
        return f"[green]verified[/] ({by})" if by else "[green]verified[/]"
    if state == "bad":
        return "[red]bad signature[/]"
    return "[dim]unverified[/]"


def health_mark(health: dict[str, Any] | None) -> str:
    """`✓ healthy (2/2)`, `✗ unhealthy (1/2)`, `? unknown`: what a kind's probe saw, live."""
    if not health:
        return ""
    color = {"healthy": "green", "unhealthy": "red"}.get(str(health.get("state")), "yellow")
    return f"  [{color}]{health.get('shown', health.get('state'))}[/]"


# status, history


def status(data: dict[str, Any], fmt: str, deployment: str | None, target: str | None) -> None:
    if fmt == "json" and not sys.stdout.isatty():
        compact_json(data)
        return
    emit(data, fmt, partial(_status_table, scope=" ".join(x for x in (deployment, target) if x)))


def compact_json(data: dict[str, Any]) -> None:
    """`json.dumps(data)` and a newline, written one top-level entry at a time: the same text,
    without holding all of it at once (6 MB for 15,000 components, and the pieces it is joined
    from) for a single write."""
    write = sys.stdout.write
    separator = "{"
    for key, value in data.items():
        write(f"{separator}{json.dumps(key)}: {json.dumps(value)}")
        separator = ", "
    write("}\n" if data else "{}\n")


def _status_table(found: dict[str, Any], scope: str) -> None:
    if not found:
        print_markup([f"No deployments recorded{' for ' + scope if scope else ''}."])
        return
    lines = []
    since = _Ago()
    for dep, targets in found.items():
        lines.append(f"[bold]{dep}[/] deployment status")
        for tgt, components in targets.items():
            lines.append(f"\n  [bold]{tgt}[/]")
            width = max(len(c) for c in components)
            for name, entry in components.items():
                sha = (entry["git_sha"] or "-------")[:7]
                mark = STATUS_MARK.get(entry["status"], entry["status"])
                signature = signature_mark(entry.get("signature"))
                health = entry.get("health")
                lines.append(
                    f"    {name:<{width}}  {sha}  {since(entry['deployed_at']):>8}  {mark}"
                    f"  {entry['deployed_by'] or ''}  {signature}{health_mark(health) if health else ''}"
                )
                if health:
                    for where, address in health.get("endpoints", {}).items():
                        lines.append(f"    {'':<{width}}  [dim]{where} → {address}[/]")
                if "last_attempt" in entry:
                    last = entry["last_attempt"]
                    lines.append(
                        f"    {'':<{width}}  [red]last attempt {last['git_sha'][:7]} {last['status']} "
                        f"{since(last['timestamp'])}[/]"
                    )
        lines.append("")
    print_markup(lines)


class _Ago:
    """`ago` for many timestamps, most of them repeated: each distinct one is parsed once."""

    def __init__(self) -> None:
        self.seen: dict[str | None, str] = {}

    def __call__(self, timestamp: str | None) -> str:
        shown = self.seen.get(timestamp)
        if shown is None:
            shown = self.seen[timestamp] = ago(timestamp)
        return shown


def history(data: dict[str, Any], fmt: str) -> None:
    emit(data, fmt, _history_table)


def _history_table(found: dict[str, Any]) -> None:
    lines = [f"[bold]{found['deployment']} → {found['target']}[/] deployment history\n"]
    for rollout in found["rollouts"]:
        when = rollout["timestamp"].replace("T", " ")[:16]
        mark = STATUS_MARK.get(rollout["status"], rollout["status"])
        signature = signature_mark(rollout.get("signature"), rollout.get("signed_by"))
        lines.append(f"  {when}  {rollout['git_sha'][:7]}  {rollout['deployed_by']}  {mark}  {signature}")
        notes = []
        if rollout.get("promoted_from"):
            notes.append(f"promoted from {rollout['promoted_from']}")
        if rollout.get("rollback_of"):
            notes.append(f"rollback of {rollout['rollback_of'][:7]}")
        parts = [f"{n} ({c['status']}, changes: {c['changes']})" for n, c in rollout["components"].items()]
        lines.append(f"    {'; '.join(notes + parts)}\n")
    lines.append(f"  Showing {len(found['rollouts'])} rollout(s)")
    print_markup(lines)


# The markup the status and history tables use: one style per span, never nested.
_SPAN = re.compile(r"\[(?:bold|dim|green|red|yellow)\][^\[]*\[/\]")
_TAG = re.compile(r"\[(?:bold|dim|green|red|yellow|/)\]")
# What rich would not print as it stands: an escape (`\`), control characters (rich drops some and
# expands tabs), an emoji code (`:name:`).
_CONTROL = re.compile(r"[\\\x00-\x09\x0b-\x1f\x7f]")
_EMOJI = re.compile(r":\S*:")


def print_markup(lines: list[str]) -> None:
    """Print lines of rich markup exactly as `console().print` would print each, faster.

    rich takes about 0.2 ms a line; a status of 15,000 components would spend 3 s there. When every
    `[` opens or closes one of the tables' own spans (so no value holds markup) and nothing else
    needs rich's interpretation, the text is written directly: without its tags where rich would
    not style (not a terminal), and on a terminal with each distinct span rendered by rich once
    (rich renders spans independently: a line is its plain text and its spans). Anything else goes
    through rich line by line.
    """
    marked = "\n".join(lines) + "\n"
    if "[" not in _SPAN.sub("", marked):
        plain = _TAG.sub("", marked)
        if _CONTROL.search(plain) is None and (":" not in plain or _EMOJI.search(plain) is None):
            if not _styled_output():
                sys.stdout.write(plain)
                return
            out = console()
            rendered: dict[str, str] = {}

            def span(match: re.Match[str]) -> str:
                found = rendered.get(match.group(0))
                if found is None:
                    with out.capture() as captured:
                        out.print(match.group(0), end="")
                    found = rendered[match.group(0)] = captured.get()
                return found

            sys.stdout.write(_SPAN.sub(span, marked))
            return
    out = console()
    for line in lines:
        out.print(line)


def _styled_output() -> bool:
    """Whether `console()` would write escape codes (or HTML) to stdout: rich's own rule
    (`Console.is_terminal`, Jupyter), read without importing rich."""
    import builtins

    if hasattr(builtins, "get_ipython"):
        return True  # maybe Jupyter: let rich decide
    tty = os.environ.get("TTY_COMPATIBLE", "")
    if tty in ("0", "1"):
        return tty == "1"
    force = os.environ.get("FORCE_COLOR")
    if force is not None:
        return force != ""
    try:
        return sys.stdout.isatty()
    except ValueError:
        return False


def several_commits(found: SeveralCommits) -> None:
    """The SBOM of a target whose components run different commits is the one deployed last: say so."""
    shown = "; ".join(f"{sha[:7]}: {', '.join(names)}" for sha, names in found.commits.items())
    sys.stderr.write(
        f"note: {found.target} runs several commits of {found.deployment} ({shown}); this is the SBOM of "
        f"{found.chosen[:7]}, deployed most recently (choose with --git-sha or --component)\n"
    )


# the repository's deployments: list, validate, graph, matrix, migrate, example


def deployments(data: list[dict[str, Any]], fmt: str, labelled: bool) -> None:
    emit(data, fmt, partial(_deployments_table, labelled=labelled))


def _deployments_table(found: list[dict[str, Any]], labelled: bool) -> None:
    out = console()
    if not found:
        out.print("No deployments" + (" with these labels." if labelled else "."))
        return
    width = max(len(d["name"]) for d in found)
    for item in found:
        labels = ", ".join(f"{k}={v}" for k, v in item["labels"].items())
        out.print(
            f"[bold]{item['name']:<{width}}[/]  targets: {', '.join(item['targets'])}  "
            f"components: {len(item['components'])}" + (f"  [dim]{labels}[/]" if labels else "")
        )
        if item["description"]:
            out.print(f"{'':<{width}}  [dim]{item['description']}[/]")


def validation(data: dict[str, Any], fmt: str) -> None:
    emit(data, fmt, _validation_table)


def _validation_table(found: dict[str, Any]) -> None:
    for name, result in found["deployments"].items():
        for message in result.get("warnings", []):
            sys.stderr.write(f"warning: {result['file']}: {message}\n")
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


def task_graph(graph: dict[str, Any], fmt: str) -> None:
    """The tasks of one rollout in execution order: text, mermaid or dot."""
    tasks = graph["tasks"]
    if fmt == "mermaid":
        ids = {t["name"]: f"t{i}" for i, t in enumerate(tasks)}
        lines = ["flowchart TD"]
        lines += [f'    {ids[t["name"]]}["{t["name"]}"]' for t in tasks]
        lines += [f"    {ids[dep]} --> {ids[t['name']]}" for t in tasks for dep in t["after"]]
        text("\n".join(lines) + "\n")
        return
    if fmt == "dot":
        lines = [f'digraph "{graph["deployment"]}-{graph["target"]}" {{', "    rankdir=LR;"]
        lines += [f'    "{t["name"]}";' for t in tasks]
        lines += [f'    "{dep}" -> "{t["name"]}";' for t in tasks for dep in t["after"]]
        text("\n".join(lines) + "\n}\n")
        return
    width = max(len(t["name"]) for t in tasks)
    lines = [f"{graph['deployment']} → {graph['target']}: {len(tasks)} tasks, in execution order"]
    for t in tasks:
        after = f"  after {', '.join(t['after'])}" if t["after"] else ""
        lines.append(f"  {t['name']:<{width}}{after}".rstrip())
    text("\n".join(lines) + "\n")


def matrix(data: dict[str, Any], fmt: str) -> None:
    emit(data, fmt, _matrix_table)


def _matrix_table(found: dict[str, Any]) -> None:
    entries = [e for wave in found["waves"] for e in wave] if "waves" in found else found["include"]
    width = max((len(e["component"]) for e in entries), default=0)
    for entry in entries:
        after = f"  after {', '.join(entry['depends_on'])}" if entry["depends_on"] else ""
        print(f"  {entry['wave']}  {entry['component']:<{width}}  {entry['task']}{after}")


def migrated(found: Migrated) -> None:
    if found.written is None:
        text(found.text)
        return
    print(f"Wrote {found.written}: {found.targets} target(s), {found.components} component(s)")
    print(f"  atmos-tasks validate {found.name} && atmos-tasks describe {found.name}")


def example_ready(path: str) -> None:
    print(f"Example repository ready in {path}")
    print(f"  cd {path} && doit rollout:api:dev")


# vendor pull, status, stats, clean


def vendor_pulled(out: Console, pulled: list[Pulled]) -> None:
    from rich.markup import escape

    rows = []
    for item in pulled:
        done = item.result
        how = "fetched" if done.fetched else "cached"
        rows.append(
            f"  ✓ {item.deployment}/{item.target} {done.component} {item.version or ''} "
            f"{done.digest[:12]} ({how}{', materialised' if done.materialized else ''})"
        )
        if done.repaired is not None:
            rows.append(
                f"  [bold yellow]! warning: {item.deployment}/{item.target} {done.component}:[/] "
                + escape(str(done.repaired))
            )
    for row in rows:
        out.print(row)
    out.print(f"{len(rows)} component(s) vendored" if rows else "Nothing to vendor.")


@contextlib.contextmanager
def vendor_progress(out: Console) -> Iterator[Any]:
    """A progress display for long pulls, on a terminal only: a bar where the phase has a measure
    (bytes downloaded, files extracted or stored), a spinner where it has none (git fetch)."""
    if not out.is_terminal:
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
        console=out,
        transient=True,
    ) as display:

        def report(event: Any) -> None:
            key = (event.phase, event.subject)
            task = bars.get(key)
            if task is None:
                for earlier in bars.values():  # phases follow each other: the last one is over
                    display.update(earlier, visible=False)
                subject = short_path(event.subject)
                task = bars[key] = display.add_task(f"{event.phase} {subject}", total=None, amount="")
            if event.done is None:
                return
            if event.phase == "download":
                amount = decimal(event.done) + (f"/{decimal(event.total)}" if event.total else "")
            else:
                amount = f"{event.done}/{event.total} files" if event.total else f"{event.done} files"
            display.update(task, completed=event.done, total=event.total, amount=amount)

        yield report


def short_path(subject: str) -> str:
    """A workspace path relative to the current directory, and no wider than 72 columns."""
    if os.path.isabs(subject):
        with contextlib.suppress(ValueError):
            subject = os.path.relpath(subject)
    return subject if len(subject) <= 72 else "…" + subject[-71:]


def vendor_status(data: list[dict[str, Any]], fmt: str) -> None:
    emit(data, fmt, _vendor_status_table)


def _vendor_status_table(found: list[dict[str, Any]]) -> None:
    out = console()
    for row in found:
        ok = row["lock_matches"] and row["object_present"] and row["workspace_intact"]
        ok = ok and not row["object_damage"]
        mark = "[green]✓[/]" if ok else "[yellow]![/]"
        problems = [
            message
            for key, message in (
                ("lock_matches", "lock out of date" if row["locked_digest"] else "not pulled yet"),
                ("object_present", "object missing"),
                ("workspace_intact", "workspace not intact"),
            )
            if not row[key] and (key == "lock_matches" or row["locked_digest"])
        ] + [f"object damaged: {damage}" for damage in row["object_damage"]]
        digest = (row["locked_digest"] or "not locked")[:12]
        out.print(
            f"{mark} {row['deployment']}/{row['target']} {row['component']} {row['version'] or ''} "
            f"{digest}" + (f"  ({', '.join(problems)})" if problems else "")
        )
    if not found:
        out.print("No vendored components.")


def vendor_stats(data: dict[str, Any], fmt: str) -> None:
    emit(data, fmt, _vendor_stats_table)


def _vendor_stats_table(found: dict[str, Any]) -> None:
    out = console()
    out.print(f"objects      {found['objects']} ({found['object_bytes']} bytes)")
    out.print(f"workspaces   {found['workspaces']} ({found['workspace_bytes']} bytes as copies)")
    out.print(f"on disk      {found['disk_bytes']} bytes")
    out.print(f"saved        {found['saved_bytes']} bytes ({found['saved_percent']}%) by sharing objects")


def vendor_clean(data: dict[str, Any], fmt: str) -> None:
    emit(data, fmt, _vendor_clean_table)


def _vendor_clean_table(found: dict[str, Any]) -> None:
    verb = "would remove" if found["dry_run"] else "removed"
    print(
        f"{verb}: {len(found['objects'])} object(s), {len(found['workspaces'])} workspace(s), "
        f"{len(found['temporary'])} temporary folder(s), {found['bytes']} bytes"
    )
    if found["dry_run"]:
        print("(a dry run: pass --force to remove them)")


# diff


DIFF_MARKS = {
    "increased": "↑ increased",
    "decreased": "↓ decreased",
    "added": "+ added",
    "removed": "- removed",
    "changed": "changed",
}


def diff(data: dict[str, Any], fmt: str) -> None:
    emit(data, fmt, _diff_table)


def _diff_table(found: dict[str, Any]) -> None:
    out = console()
    old, new = found["from"], found["to"]
    out.print(f"[bold]{found['deployment']}: {old['label']} vs {new['label']}[/]\n")
    out.print("  Commits")
    width = max(len(old["label"]), len(new["label"]))
    for side in (old, new):
        when = f"  (deployed {ago(side['deployed_at'])})" if side.get("deployed_at") else ""
        out.print(f"    {side['label']:<{width}}  {side['git_sha'][:7]}{when}")
    behind, ahead = found["commits"]["behind"], found["commits"]["ahead"]
    if behind or ahead:
        parts = ([f"↓ {behind} commit(s) behind"] if behind else []) + ([f"↑ {ahead} ahead"] if ahead else [])
        out.print(f"    {old['label']} is {', '.join(parts)} {new['label']}")
    else:
        out.print("    same commit")
    changed = {n: c for n, c in found["components"].items() if c["changed"]}
    out.print("\n  Components")
    if not changed:
        out.print("    no differences")
    for name, entry in changed.items():
        a = entry["from"]["git_sha"][:7] if entry["from"] else "—"
        b = entry["to"]["git_sha"][:7] if entry["to"] else "—"
        out.print(f"    {name:<28} {a} → {b}  changed")
    out.print("\n  Configuration")
    if not found["configuration"]:
        out.print("    no differences")
    for item in found["configuration"]:
        out.print(f"    {item['key']:<36} {item['from']!s} → {item['to']!s}  {DIFF_MARKS[item['change']]}")
    if "code" in found:
        code = found["code"]
        out.print("\n  Code")
        for entry in code["files"]:
            added = "bin" if entry["added"] is None else f"+{entry['added']}"
            deleted = "" if entry["deleted"] is None else f"/-{entry['deleted']}"
            out.print(f"    {entry['path']}  {added}{deleted}")
        out.print(
            f"\n  {code['commits']} commit(s), {code['files_changed']} file(s) changed, "
            f"+{code['added']}/-{code['deleted']} lines"
        )


# promotion: graph, status, approve, reject


def promotion_graph(graph: dict[str, Any], fmt: str) -> None:
    """The promotion paths between targets, with their gates: text, mermaid or dot."""

    def gate(target: dict[str, Any]) -> str:
        parts = []
        if target.get("approvals"):
            parts.append(
                f"{target['approvals']} approval(s), {target['approval_method']}"
                + (", not the deployer" if target.get("prevent_self_approval") else "")
            )
        if target.get("min_soak"):
            parts.append(f"soak {target['min_soak']}")
        return "; ".join(parts)

    by_name = {t["name"]: t for t in graph["targets"]}
    if fmt == "mermaid":
        lines = ["flowchart LR"]
        lines += [f'    {t["name"]}["{t["name"]}"]' for t in graph["targets"]]
        for edge in graph["edges"]:
            label = gate(by_name[edge["to"]])
            arrow = f' -->|"{label}"| ' if label else " --> "
            lines.append(f"    {edge['from']}{arrow}{edge['to']}")
        text("\n".join(lines) + "\n")
        return
    if fmt == "dot":
        lines = [f'digraph "{graph["deployment"]}" {{', "    rankdir=LR;"]
        lines += [f'    "{t["name"]}";' for t in graph["targets"]]
        for edge in graph["edges"]:
            label = gate(by_name[edge["to"]])
            lines.append(
                f'    "{edge["from"]}" -> "{edge["to"]}"' + (f' [label="{label}"];' if label else ";")
            )
        text("\n".join(lines) + "\n}\n")
        return
    lines = [f"{graph['deployment']} promotion paths"]
    for edge in graph["edges"]:
        label = gate(by_name[edge["to"]])
        lines.append(f"  {edge['from']} → {edge['to']}" + (f"  ({label})" if label else ""))
    free = [t["name"] for t in graph["targets"] if not t["from"]]
    if free:
        lines.append(f"  accepts any rollout or promotion: {', '.join(free)}")
    text("\n".join(lines) + "\n")


def promotion_status(data: dict[str, Any], fmt: str) -> None:
    emit(data, fmt, _promotion_status_table)


def _promotion_status_table(found: dict[str, Any]) -> None:
    out = console()
    out.print(f"[bold]{found['deployment']}[/] promotion status")
    for target, entry in found["targets"].items():
        runs = entry["runs"]
        shown = (
            runs[:7]
            if isinstance(runs, str)
            else ("mixed: " + ", ".join(r[:7] for r in runs) if runs else "nothing")
        )
        out.print(f"\n  [bold]{target}[/] runs {shown}")
        for source, candidate in entry["sources"].items():
            commit = candidate["commit"][:7] if candidate["commit"] else "—"
            if candidate["ready"]:
                out.print(f"    [green]ready[/]: {commit} from {source}")
            else:
                out.print(f"    from {source} ({commit}): " + "; ".join(candidate["blocked_by"]))


def approved(found: Approved) -> None:
    signed = " (signed)" if found.signed else ""
    what = "signed approval(s) verify" if found.verified else "approval(s) recorded"
    print(
        f"Approved {found.commit[:7]} of {found.deployment} for {found.target} as {found.by}{signed} "
        f"({found.count} {what})"
    )


def unsigned_rejection(found: UnsignedRejection) -> None:
    sys.stderr.write(
        f"warning: this rejection is not signed ({found.problem}): {', '.join(found.targets)} "
        "count only signed rejections and will not honour it\n"
    )


def rejected(found: Rejected) -> None:
    signed = " (signed)" if found.signed else ""
    print(
        f"Rejected {found.commit[:7]} of {found.deployment}{signed}: {found.reason} (it will not be promoted)"
    )


# unlock, destroy


def unlocked(data: dict[str, Any], fmt: str) -> None:
    emit(data, fmt, _unlocked_table)


def _unlocked_table(found: dict[str, Any]) -> None:
    if not found["broken"]:
        print(f"No lock held on {found['deployment']}/{found['target']}")
        return
    print(f"Unlocked {', '.join(found['broken'])} on {found['deployment']}/{found['target']}")
    print(f"  recorded in {found['tag']}: {found['reason']}")


def destroying(deployment: str, target: str, component: str | None) -> str:
    """What a destroy removes, as its confirmation question and refusal name it."""
    return (
        f"{component} on {deployment}/{target}" if component else f"everything {deployment} runs on {target}"
    )


def destroyed(data: dict[str, Any], fmt: str) -> None:
    emit(data, fmt, _destroyed_table)


def _destroyed_table(found: dict[str, Any]) -> None:
    out = console()
    for name, entry in found["components"].items():
        mark = {"destroyed": "[green]✓ destroyed[/]", "failed": "[red]✗ failed[/]"}.get(
            entry["status"], f"[yellow]{entry['status']}[/]"
        )
        detail = entry.get("error") or entry.get("reason") or ""
        out.print(f"  {entry['kind']}/{name}  {mark}  {detail}")
    for tag in found["tags"]:
        out.print(f"  recorded in {tag}")


# prune


def pruned(data: dict[str, Any], fmt: str) -> None:
    emit(data, fmt, _pruned_table)


def _pruned_table(found: dict[str, Any]) -> None:
    removed = found["removed"]
    verb = "would remove" if found["dry_run"] else "removed"
    where = f" (here and on {found['remote']})" if found["remote"] else ""
    print(
        f"{verb} {removed['records']} record(s) in {removed['tags']} tag(s), and {removed['notes']} note(s) "
        f"of {removed['commits']} commit(s) no kept record names{where}"
    )
    print(
        f"kept: the latest record of each component, its last {found['keep_last']}, the one its ref points "
        f"at, and every record younger than {found['older_than']}"
    )
    for deployment, entry in found["deployments"].items():
        for target, counts in entry["targets"].items():
            print(f"  {deployment}/{target}: {counts['removed']} record(s) removed, {counts['kept']} kept")
            for tag in counts["tags"]:
                print(f"    {tag}")
        for namespace, commits in entry["notes"].items():
            print(f"  {deployment} notes {namespace}: {', '.join(c[:7] for c in commits)}")
    if found["dry_run"] and removed["tags"]:
        print("(a dry run: pass --yes to remove them)")
