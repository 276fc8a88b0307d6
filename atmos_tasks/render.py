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
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from operator import itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from atmos_tasks.approvals import Approved, Rejected, UnsignedRejection
    from atmos_tasks.migrate import Migrated
    from atmos_tasks.queries import SeveralCommits
    from atmos_tasks.vendored import Pulled


def emit(data: Any, fmt: str, table: Callable[[Any], None]) -> None:
    if fmt == "json":
        sys.stdout.write(json_text(data, pretty_json(sys.stdout)))
    elif fmt == "yaml":
        yaml_document(data)
    else:
        table(data)


def pretty_json(stream: Any) -> bool:
    """JSON is indented for people (a terminal) and compact for pipes and tools, where it is
    several times faster to write."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def json_text(data: Any, pretty: bool) -> str:
    return json.dumps(data, indent=2 if pretty else None) + "\n"


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


STATUS_STYLE = {
    "success": ("✓ success", "green"),
    "failed": ("✗ failed", "red"),
    "rollback": ("⟲ rollback", "yellow"),
}
STATUS_MARK = {status: f"[{style}]{shown}[/]" for status, (shown, style) in STATUS_STYLE.items()}


def status_cell(status: str | None) -> Cell:
    return STATUS_STYLE.get(str(status), (str(status), ""))


def signature_cell(signature: dict[str, Any] | str | None, by: str | None = None) -> Cell:
    """verified (by whom) / unverified / bad signature, for the status and history tables."""
    state = signature.get("status") if isinstance(signature, dict) else signature
    if isinstance(signature, dict):
        by = signature.get("by", by)
    if state == "verified":
        return (f"verified ({by})" if by else "verified", "green")
    if state == "bad":
        return ("bad signature", "red")
    return ("unverified", "dim")


def signature_mark(signature: dict[str, Any] | str | None, by: str | None = None) -> str:
    return markup(*signature_cell(signature, by))


def health_cell(health: dict[str, Any] | None) -> Cell:
    """`✓ healthy (2/2)`, `✗ unhealthy (1/2)`, `? unknown`: what a kind's probe saw, live."""
    if not health:
        return ("", "")
    color = {"healthy": "green", "unhealthy": "red"}.get(str(health.get("state")), "yellow")
    return (str(health.get("shown", health.get("state"))), color)


def health_mark(health: dict[str, Any] | None) -> str:
    return f"  {markup(*health_cell(health))}" if health else ""


def display_name(kind: str | None, name: str) -> str:
    """How people see a component everywhere: `terraform/ecr/api`, `nixpack/api` (as rollouts and
    manifests name it); a bare name only when its kind is not recorded."""
    return f"{kind}/{name}" if kind else name


def image_digest(image: str | None) -> str:
    """`sha256:3f228ae0e1f2` of `acme/api@sha256:3f228ae0…`; a reference without a digest as it is."""
    if not image:
        return ""
    _name, at, digest = image.rpartition("@")
    if not at:
        return image
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}" if value else digest


def subject_text(subject: str | None, limit: int = 50) -> str:
    """A commit subject for a table cell: `-` when the commit is not in this repository, cut at
    `limit` characters."""
    if subject is None:
        return "-"
    return subject if len(subject) <= limit else subject[: limit - 1] + "…"


# Tables: rows of cells, each a text and its rich style ("" for none), laid out in columns as wide
# as their widest cell. The text is escaped (a `[` in a commit subject is not markup), and padding
# stays outside the styled span, so a line is exactly what rich would print for it.

Cell = tuple[str, str]


@dataclass(frozen=True)
class Note:
    """A line of its own inside a table, starting under column `column` (markup, not a row)."""

    column: int
    markup: str


def escape(text: str) -> str:
    """A value as rich prints it literally: what looks like a tag is escaped (`rich.markup.escape`,
    without importing rich)."""
    if "[" not in text:
        return text
    return _TAG_LIKE.sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", text)


_TAG_LIKE = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def markup(text: str, style: str = "") -> str:
    """`text` in `style`; a backslash that ends it is doubled so that it does not escape the
    closing tag."""
    if not style or not text:
        return escape(text)
    shown = escape(text)
    if shown.endswith("\\"):
        shown += "\\"
    return f"[{style}]{shown}[/]"


def cell_width(text: str) -> int:
    """Terminal columns `text` takes: wide (East Asian) characters take two, combining ones none."""
    if text.isascii():
        return len(text)
    found = _WIDTHS.get(text)
    if found is None:
        import unicodedata

        found = _WIDTHS[text] = sum(
            0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
            for ch in text
        )
    return found


_WIDTHS: dict[str, int] = {}


def column_widths(
    header: Sequence[str], rows: Sequence[Sequence[Cell]], caps: Mapping[int, int] | None = None
) -> list[int]:
    """Each column's width: its widest cell's, or its label's. A cell wider than the column's
    cap (`caps[i]`) does not widen it: it pushes the rest of its own row only."""
    widths = [cell_width(label) for label in header]
    for i in range(len(header)):
        limit = (caps or {}).get(i)
        for text in {row[i][0] for row in rows if len(row) > i}:
            width = cell_width(text)
            if widths[i] < width and (limit is None or width <= limit):
                widths[i] = width
    return widths


def table_lines(
    header: Sequence[str],
    rows: Sequence[Sequence[Cell] | Note | str],
    indent: str = "  ",
    caps: Mapping[int, int] | None = None,
    right: Collection[int] = (),
    shared_from: int | None = None,
) -> list[str]:
    """The header (bold) and the rows as lines of markup, each column as wide as `column_widths`
    says; the columns in `right` are right-aligned. A `str` row is a line as it is (blank, a
    title), a `Note` a line under one column. `shared_from`: see `joiner`."""
    widths = column_widths(header, [row for row in rows if not isinstance(row, (str, Note))], caps)
    row_line = joiner(widths, right, shared_from)
    lines = [f"{indent}[bold]{row_line([(label, '') for label in header])}[/]"]
    for row in rows:
        if isinstance(row, str):
            lines.append(row)
        elif isinstance(row, Note):
            lines.append(indent + " " * (sum(widths[: row.column]) + 2 * row.column) + row.markup)
        else:
            lines.append(indent + row_line(row))
    return lines


def joiner(
    widths: Sequence[int], right: Collection[int] = (), shared_from: int | None = None
) -> Callable[[Sequence[Cell]], str]:
    """A row's cells as one line of markup: each padded to its column's width, two spaces apart,
    no trailing space. Each distinct cell of a column is made once; with `shared_from`, the cells
    from that column on are made once per distinct run of them (status repeats the same commit,
    time, status and deployer over thousands of rows)."""
    last = len(widths) - 1
    made: list[dict[Cell, str]] = [{} for _ in widths]
    runs: dict[tuple[Cell, ...], str] = {}

    def cell(i: int, found: Cell) -> str:
        shown = made[i].get(found)
        if shown is None:
            text, style = found
            shown = markup(text, style)
            pad = " " * max(widths[i] - cell_width(text), 0)
            shown = pad + shown if i in right else shown if i == last else shown + pad
            made[i][found] = shown
        return shown

    def line(row: Sequence[Cell]) -> str:
        if shared_from is None or len(row) <= shared_from:
            return "  ".join([cell(i, found) for i, found in enumerate(row)]).rstrip(" ")
        run = tuple(row[shared_from:])
        tail = runs.get(run)
        if tail is None:
            tail = runs[run] = "  ".join([cell(i, found) for i, found in enumerate(run, shared_from)])
        head = [cell(i, row[i]) for i in range(shared_from)]
        return "  ".join([*head, tail]).rstrip(" ")

    return line


# status, history


def status(data: dict[str, Any], fmt: str, deployment: str | None, target: str | None) -> None:
    if fmt == "json" and not pretty_json(sys.stdout):
        compact_json(data)
        return
    emit(data, fmt, partial(_status_table, scope=" ".join(x for x in (deployment, target) if x)))


def compact_json(data: dict[str, Any]) -> None:
    """`data` as compact JSON and a newline, written one top-level entry at a time (without holding
    6 MB for 15,000 components, and the pieces it is joined from, for a single write). orjson
    encodes it about eight times faster than the standard library: status spends its time here."""
    import orjson

    sys.stdout.flush()
    out = getattr(sys.stdout, "buffer", None)
    if out is None:  # a text-only stream (a test's StringIO)
        sys.stdout.write(json.dumps(data, separators=(",", ":")) + "\n")
        return
    separator = b"{"
    for key, value in data.items():
        out.write(separator + orjson.dumps(key) + b":" + orjson.dumps(value))
        separator = b","
    out.write(b"}\n" if data else b"{}\n")
    out.flush()


STATUS_HEADER = (
    "TARGET",
    "COMPONENT",
    "COMMIT",
    "IMAGE",
    "DEPLOYED",
    "STATUS",
    "BY",
    "SIGNATURE",
    "HEALTH",
    "DRIFT",
)


def _status_table(found: dict[str, Any], scope: str) -> None:
    """Per deployment, one table: its targets in the order the answer has them (promotion order),
    a row per component; the IMAGE and HEALTH columns when some component has one, DRIFT when
    drift was asked for (`--drift`)."""
    if not found:
        print_markup([f"No deployments recorded{' for ' + scope if scope else ''}."])
        return
    lines: list[str] = []
    layout = _RestLayout(_Ago())
    for dep, targets in found.items():
        lines.append(f"[bold]{escape(dep)}[/] deployment status\n")
        lines += _status_rows(targets, layout)
        lines.append("")
    print_markup(lines)


class _RestLayout:
    """The cells after a status row's component, and their line for given column widths, made
    once per distinct value across all the deployments' tables."""

    def __init__(self, since: _Ago) -> None:
        self.since = since
        self.cells: dict[tuple[Any, ...], list[Cell]] = {}
        self.joiners: dict[tuple[int, ...], Callable[[Sequence[Cell]], str]] = {}
        self.lines: dict[tuple[Any, ...], str] = {}

    def cells_of(self, rest: tuple[Any, ...], images: bool, health: bool, drift: bool = False) -> list[Cell]:
        key = (images, health, drift, rest)
        found = self.cells.get(key)
        if found is None:
            found = self.cells[key] = _status_cells(rest, images, health, self.since, drift)
        return found

    def joiner(self, widths: list[int]) -> Callable[[Sequence[Cell]], str]:
        key = tuple(widths)
        found = self.joiners.get(key)
        if found is None:
            found = self.joiners[key] = joiner(widths)
        return found

    def line(
        self, widths: list[int], images: bool, health: bool, rest: tuple[Any, ...], drift: bool = False
    ) -> str:
        key = (*widths, images, health, drift, rest)
        found = self.lines.get(key)
        if found is None:
            found = self.lines[key] = self.joiner(widths)(self.cells_of(rest, images, health, drift))
        return found


def _status_rows(targets: dict[str, dict[str, Any]], layout: _RestLayout) -> list[str]:
    """One deployment's table. Written for 15,000 components: a row is its target, its component
    and the rest of it (commit, time, status, deployer, signature), which repeats from row to row
    and is laid out once per distinct value."""
    entries = [entry for components in targets.values() for entry in components.values()]
    images = any("image" in entry for entry in entries) and any(entry.get("image") for entry in entries)
    health = any("health" in entry for entry in entries) and any(entry.get("health") for entry in entries)
    drift = any("drift" in entry for entry in entries)
    rows: list[tuple[str, str, int, tuple[Any, ...], list[str]]] = []
    for tgt, components in targets.items():
        named = [
            (f"{kind}/{n}" if (kind := e.get("kind") or e.get("type")) else n, e)
            for n, e in components.items()
        ]
        named.sort(key=itemgetter(0))
        for name, entry in named:
            signature = entry.get("signature")
            rest: tuple[Any, ...] = (
                entry["git_sha"],
                entry["deployed_at"],
                entry["status"],
                entry["deployed_by"],
                (signature.get("status"), signature.get("by")) if isinstance(signature, dict) else None,
            )
            notes: list[str] = []
            if images:
                rest = (*rest, entry.get("image"))
            probe = entry.get("health")
            if health:
                rest = (*rest, health_cell(probe))
            if drift:
                checked = entry.get("drift")
                rest = (*rest, (checked.get("state"), checked.get("checked_at")) if checked else None)
            if probe:
                notes += [
                    markup(f"{where} → {to}", "dim") for where, to in probe.get("endpoints", {}).items()
                ]
            if "last_attempt" in entry:
                last = entry["last_attempt"]
                when = layout.since(last["timestamp"])
                notes.append(markup(f"last attempt {last['git_sha'][:7]} {last['status']} {when}", "red"))
            width = len(name) if name.isascii() else cell_width(name)
            rows.append((tgt, escape(name), width, rest, notes))
    distinct = dict.fromkeys(rest for _tgt, _name, _width, rest, _notes in rows)
    header = [
        h
        for h in STATUS_HEADER
        if (h != "IMAGE" or images) and (h != "HEALTH" or health) and (h != "DRIFT" or drift)
    ]
    first = max(cell_width(header[0]), *(cell_width(tgt) for tgt in targets))
    second = max(cell_width(header[1]), *(width for _tgt, _name, width, _rest, _notes in rows))
    widths = column_widths(header[2:], [layout.cells_of(rest, images, health, drift) for rest in distinct])
    shown_rest = {rest: layout.line(widths, images, health, rest, drift) for rest in distinct}
    titles = (
        f"{header[0]:<{first}}  {header[1]:<{second}}  {layout.joiner(widths)([(h, '') for h in header[2:]])}"
    )
    lines = [f"  [bold]{titles}[/]"]
    under = " " * (2 + first + 4)  # notes under a component: its endpoints, its last attempt
    shown = None
    blank = " " * first
    for tgt, name, width, rest, notes in rows:
        if tgt != shown:
            if shown is not None:
                lines.append("")
            label, shown = escape(tgt) + " " * (first - cell_width(tgt)), tgt
        else:
            label = blank
        lines.append(f"  {label}  {name}{' ' * (second - width)}  {shown_rest[rest]}".rstrip(" "))
        if notes:
            lines += [under + note for note in notes]
    return lines


def _status_cells(
    rest: tuple[Any, ...], images: bool, health: bool, since: _Ago, drift: bool = False
) -> list[Cell]:
    """The cells after the component's name, from `_status_rows`'s key of them."""
    sha, deployed_at, status, deployed_by, (signed, by) = rest[:5] if rest[4] else (*rest[:4], (None, None))
    found = [
        ((sha or "-")[:7], ""),
        (since(deployed_at), ""),
        STATUS_STYLE.get(status) or (str(status), ""),
        (deployed_by or "", ""),
        signature_cell(signed, by),
    ]
    if images:
        found.insert(1, (image_digest(rest[5]), ""))
    if health:
        found.append(rest[6 if images else 5])
    if drift:
        checked = rest[-1]
        found.append(drift_cell({"state": checked[0], "checked_at": checked[1]} if checked else None, since))
    return found


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


HISTORY_HEADER = ("WHEN", "COMMIT", "SUBJECT", "BY", "STATUS", "SIGNATURE", "NOTES")
COMPONENT_HEADER = ("COMPONENT", "STATUS", "CHANGES")


def _history_table(found: dict[str, Any]) -> None:
    """A row per rollout, newest first, and under it a line per component it recorded (their
    columns named under the rollouts' header)."""
    lines = [f"[bold]{escape(found['deployment'])} → {escape(found['target'])}[/] deployment history\n"]
    rollouts = found["rollouts"]
    noted = any(r.get("promoted_from") or r.get("rollback_of") for r in rollouts)
    header = HISTORY_HEADER if noted else HISTORY_HEADER[:-1]
    parts: list[tuple[list[Cell], list[list[Cell]]]] = []
    for rollout in rollouts:
        notes = []
        if rollout.get("promoted_from"):
            notes.append(f"promoted from {rollout['promoted_from']}")
        if rollout.get("rollback_of"):
            notes.append(f"rollback of {rollout['rollback_of'][:7]}")
        row = [
            (rollout["timestamp"].replace("T", " ")[:16], ""),
            (rollout["git_sha"][:7], ""),
            (subject_text(rollout.get("subject")), ""),
            (rollout["deployed_by"], ""),
            status_cell(rollout["status"]),
            signature_cell(rollout.get("signature"), rollout.get("signed_by")),
            ("; ".join(notes), ""),
        ][: len(header)]
        components = [
            [
                (display_name(c.get("kind", c.get("type")), name), ""),
                status_cell(c["status"]),
                (str(c["changes"]), ""),
            ]
            for name, c in rollout["components"].items()
        ]
        components.sort(key=lambda cells: cells[0][0])
        parts.append((row, components))
    inner = joiner(column_widths(COMPONENT_HEADER, [c for _row, components in parts for c in components]))
    rows: list[Sequence[Cell] | Note | str] = [
        Note(0, "  [dim]" + inner([(label, "") for label in COMPONENT_HEADER]) + "[/]")
    ]
    for row, components in parts:
        rows += ["", row, *(Note(0, "  " + inner(c)) for c in components)]
    lines += table_lines(header, rows)
    lines.append(f"\n  Showing {len(rollouts)} rollout(s)")
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
    shown = "; ".join(
        f"{sha[:7]}: {', '.join(display_name(found.kinds.get(n), n) for n in names)}"
        for sha, names in found.commits.items()
    )
    sys.stderr.write(
        f"note: {found.target} runs several commits of {found.deployment} ({shown}); this is the SBOM of "
        f"{found.chosen[:7]}, deployed most recently (choose with --git-sha or --component)\n"
    )


# the repository's deployments: list, validate, graph, matrix, migrate, example


def deployments(data: list[dict[str, Any]], fmt: str, labelled: bool) -> None:
    emit(data, fmt, partial(_deployments_table, labelled=labelled))


def _deployments_table(found: list[dict[str, Any]], labelled: bool) -> None:
    if not found:
        print_markup(["No deployments" + (" with these labels." if labelled else ".")])
        return
    rows: list[Sequence[Cell] | Note | str] = [
        [
            (item["name"], "bold"),
            (", ".join(item["targets"]), ""),
            (str(len(item["components"])), ""),
            (", ".join(f"{k}={v}" for k, v in item["labels"].items()), "dim"),
            (item["description"], "dim"),
        ]
        for item in found
    ]
    print_markup(table_lines(("NAME", "TARGETS", "COMPONENTS", "LABELS", "DESCRIPTION"), rows, indent=""))


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
    rows: list[Sequence[Cell] | Note | str] = [
        [
            (str(entry["wave"]), ""),
            (display_name(entry.get("type"), entry["component"]), ""),
            (entry["task"], ""),
            (", ".join(entry["depends_on"]), ""),
        ]
        for entry in entries
    ]
    print_markup(table_lines(("WAVE", "COMPONENT", "TASK", "AFTER"), rows, indent=""))


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
        name = escape(display_name(item.kind, done.component))
        rows.append(
            f"  ✓ {item.deployment}/{item.target} {name} {item.version or ''} "
            f"{done.digest[:12]} ({how}{', materialised' if done.materialized else ''})"
        )
        if done.repaired is not None:
            rows.append(
                f"  [bold yellow]! warning: {item.deployment}/{item.target} {name}:[/] "
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
    if not found:
        print_markup(["No vendored components."])
        return
    rows: list[Sequence[Cell] | Note | str] = []
    for row in found:
        ok = row["lock_matches"] and row["object_present"] and row["workspace_intact"]
        ok = ok and not row["object_damage"]
        problems = [
            message
            for key, message in (
                ("lock_matches", "lock out of date" if row["locked_digest"] else "not pulled yet"),
                ("object_present", "object missing"),
                ("workspace_intact", "workspace not intact"),
            )
            if not row[key] and (key == "lock_matches" or row["locked_digest"])
        ] + [f"object damaged: {damage}" for damage in row["object_damage"]]
        rows.append(
            [
                ("✓", "green") if ok else ("!", "yellow"),
                (row["deployment"], ""),
                (row["target"], ""),
                (display_name(row.get("kind"), row["component"]), ""),
                (row["version"] or "", ""),
                ((row["locked_digest"] or "not locked")[:12], ""),
                (", ".join(problems), ""),
            ]
        )
    header = ("OK", "DEPLOYMENT", "TARGET", "COMPONENT", "VERSION", "DIGEST", "PROBLEMS")
    print_markup(table_lines(header, rows, indent=""))


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
    print_markup(diff_lines(found))


def diff_lines(found: dict[str, Any]) -> list[str]:
    """The diff as sections of tables: the two sides' commits, the components whose commit or image
    differs, the configuration values that differ, and with `--show-code` the commits and files
    between the two commits."""
    old, new = found["from"], found["to"]
    deployment = escape(found["deployment"])
    lines = [f"[bold]{deployment}: {escape(old['label'])} vs {escape(new['label'])}[/]", "", "  Commits"]
    lines += table_lines(
        ("SIDE", "COMMIT", "SUBJECT", "DEPLOYED"),
        [
            [
                (side["label"], ""),
                (side["git_sha"][:7], ""),
                (subject_text(side.get("subject"), 72), ""),
                (ago(side["deployed_at"]) if side.get("deployed_at") else "", ""),
            ]
            for side in (old, new)
        ],
        indent="    ",
    )
    behind, ahead = found["commits"]["behind"], found["commits"]["ahead"]
    if behind or ahead:
        parts = ([f"↓ {behind} commit(s) behind"] if behind else []) + ([f"↑ {ahead} ahead"] if ahead else [])
        lines.append(f"    {escape(old['label'])} is {', '.join(parts)} {escape(new['label'])}")
    else:
        lines.append("    same commit")
    changed = {n: c for n, c in found["components"].items() if c["changed"]}
    lines += ["", "  Components"]
    if changed:
        lines += table_lines(
            ("COMPONENT", old["label"], new["label"]),
            [
                [
                    (display_name(entry.get("kind"), name), ""),
                    _deployed(entry["from"]),
                    _deployed(entry["to"]),
                ]
                for name, entry in sorted(
                    changed.items(), key=lambda kv: display_name(kv[1].get("kind"), kv[0])
                )
            ],
            indent="    ",
        )
    else:
        lines.append("    no differences")
    lines += ["", "  Configuration"]
    if found["configuration"]:
        lines += table_lines(
            ("KEY", old["label"], new["label"], "CHANGE"),
            [
                [
                    (display_name(item.get("kind"), item["key"]), ""),
                    (_value(item["from"]), ""),
                    (_value(item["to"]), ""),
                    (DIFF_MARKS[item["change"]], ""),
                ]
                for item in found["configuration"]
            ],
            indent="    ",
            caps={1: 32, 2: 32},
        )
    else:
        lines.append("    no differences")
    if "code" in found:
        lines += ["", *_code_lines(found["deployment"], old["label"], new["label"], found["code"])]
    return lines


def _deployed(side: dict[str, Any] | None) -> Cell:
    """A component on one side of a diff: its commit, and its image's digest when it has one."""
    if side is None:
        return ("— (not deployed)", "dim")
    digest = image_digest(side.get("image"))
    return (f"{side['git_sha'][:7]} {digest}" if digest else side["git_sha"][:7], "")


def _value(value: Any) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value)


def _code_lines(deployment: str, old: str, new: str, code: dict[str, Any]) -> list[str]:
    scope = (
        f"the {len(code['paths'])} path(s) {deployment} is configured and built from"
        if code.get("paths")
        else "the whole repository"
    )
    lines = [
        f"  Code: {code['commits']} commit(s), {code['files_changed']} file(s) changed, "
        f"+{code['added']}/-{code['deleted']} lines (in {escape(scope)})"
    ]
    if code.get("log"):
        lines += table_lines(
            ("COMMIT", "SUBJECT", "ONLY ON"),
            [
                [
                    (c["git_sha"][:7], ""),
                    (subject_text(c["subject"], 72), ""),
                    (new if c["side"] == "to" else old, ""),
                ]
                for c in code["log"]
            ],
            indent="    ",
        )
    if code["files"]:
        if code.get("log"):
            lines.append("")
        lines += table_lines(
            ("FILE", "ADDED", "DELETED"),
            [
                [
                    (f["path"], ""),
                    ("bin" if f["added"] is None else f"+{f['added']}", "green"),
                    ("bin" if f["deleted"] is None else f"-{f['deleted']}", "red"),
                ]
                for f in code["files"]
            ],
            indent="    ",
            right=(1, 2),
        )
    return lines


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
    """A row per target and promotion source, targets in promotion order."""
    rows: list[Sequence[Cell] | Note | str] = []
    for target, entry in found["targets"].items():
        runs = entry["runs"]
        shown = (
            runs[:7]
            if isinstance(runs, str)
            else ("mixed: " + ", ".join(r[:7] for r in runs) if runs else "nothing")
        )
        if not entry["sources"]:
            rows.append([(target, "bold"), (shown, ""), ("—", "dim"), ("", ""), ("any rollout", "dim")])
        for i, (source, candidate) in enumerate(entry["sources"].items()):
            state = (
                ("ready", "green") if candidate["ready"] else ("; ".join(candidate["blocked_by"]), "yellow")
            )
            rows.append(
                [
                    (target if i == 0 else "", "bold"),
                    (shown if i == 0 else "", ""),
                    (source, ""),
                    (candidate["commit"][:7] if candidate["commit"] else "—", ""),
                    state,
                ]
            )
    lines = [f"[bold]{escape(found['deployment'])}[/] promotion status", ""]
    lines += table_lines(("TARGET", "RUNS", "FROM", "COMMIT", "PROMOTION"), rows)
    print_markup(lines)


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
    names = [display_name(found.get("kinds", {}).get(name), name) for name in found["broken"]]
    print(f"Unlocked {', '.join(names)} on {found['deployment']}/{found['target']}")
    print(f"  recorded in {found['tag']}: {found['reason']}")


def destroying(deployment: str, target: str, component: str | None) -> str:
    """What a destroy removes, as its confirmation question and refusal name it."""
    return (
        f"{component} on {deployment}/{target}" if component else f"everything {deployment} runs on {target}"
    )


def destroyed(data: dict[str, Any], fmt: str) -> None:
    emit(data, fmt, _destroyed_table)


def _destroyed_table(found: dict[str, Any]) -> None:
    marks = {"destroyed": ("✓ destroyed", "green"), "failed": ("✗ failed", "red")}
    rows: list[Sequence[Cell] | Note | str] = [
        [
            (display_name(entry["kind"], name), ""),
            marks.get(entry["status"]) or (str(entry["status"]), "yellow"),
            (entry.get("error") or entry.get("reason") or "", ""),
        ]
        for name, entry in found["components"].items()
    ]
    lines = table_lines(("COMPONENT", "RESULT", "DETAIL"), rows) if rows else []
    lines += [f"  recorded in {escape(tag)}" for tag in found["tags"]]
    print_markup(lines)


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


# drift

DRIFT_STYLE = {
    "in-sync": ("✓", "in sync", "green"),
    "drifted": ("✗", "drifted", "red"),
    "failed": ("!", "check failed", "yellow"),
    "not-checked": ("-", "not checked", "dim"),
}


def drift_cell(drift: dict[str, Any] | None, since: Callable[[str | None], str] = ago) -> Cell:
    """`✓ in sync 5m ago`, `✗ drifted 2h ago`: a component's last drift check, for the status table."""
    if not drift:
        return ("not checked", "dim")
    mark, word, style = DRIFT_STYLE.get(str(drift.get("state"))) or ("?", str(drift.get("state")), "yellow")
    return (f"{mark} {word} {since(drift.get('checked_at'))}", style)


def drift_heading(deployment: str, target: str) -> None:
    print_markup([f"Checking [bold]{escape(deployment)}[/] → [bold]{escape(target)}[/] for drift"])


def drift_line(name: str, entry: dict[str, Any]) -> None:
    """One component's check as it finishes, like a rollout's lines: its state, the commit it runs,
    how long it took, and what would change (Terraform's counts, a line per resource)."""
    mark, word, style = DRIFT_STYLE.get(entry["state"]) or ("?", entry["state"], "yellow")
    about = [entry["git_sha"][:7]]
    if isinstance(entry.get("seconds"), int | float):
        about.append(f"{entry['seconds']:.1f}s")
    counts = entry.get("counts")
    said = (
        f": {counts.get('add', 0)} to add, {counts.get('change', 0)} to change, "
        f"{counts.get('destroy', 0)} to destroy"
        if isinstance(counts, dict)
        else ""
    )
    if entry.get("reason"):
        said = f": {entry['reason']}"
    shown = escape(display_name(entry["kind"], name))
    lines = [f"  {markup(mark, style)} {shown}: {markup(word, style)} ({', '.join(about)}){escape(said)}"]
    lines += [f"      {escape(_shown_change(change))}" for change in entry.get("changes", [])]
    if entry.get("error"):
        lines += [f"      {escape(line)}" for line in str(entry["error"]).splitlines()]
    print_markup(lines)
    sys.stdout.flush()


def _shown_change(change: dict[str, Any]) -> str:
    from atmos_tasks.tfplan import shown_change

    return shown_change(change)


def drift(data: dict[str, Any], fmt: str) -> None:
    """The check's result: with `table`, the lines were printed as each component finished
    (`drift_line`), and this is the summary."""
    emit(data, fmt, _drift_summary)


def _drift_summary(found: dict[str, Any]) -> None:
    components = found["components"]
    where = f"{found['deployment']} → {found['target']}"
    if not components:
        print_markup([f"Nothing deployed on {escape(where)}: nothing to check."])
        return
    states = [entry["state"] for entry in components.values()]
    checked = sum(state != "not-checked" for state in states)

    def named(state: str) -> str:
        return ", ".join(display_name(e["kind"], n) for n, e in components.items() if e["state"] == state)

    unchecked = states.count("not-checked")
    rest = f", {unchecked} not checked" if unchecked else ""
    lines = []
    if "failed" in states:
        lines.append(markup(f"Drift check failed for {named('failed')}", "yellow"))
    if "drifted" in states:
        lines.append(
            markup(f"Drift found on {where}: {named('drifted')}", "red")
            + f" ({states.count('drifted')} of {checked} checked component(s){rest})"
        )
    elif "failed" not in states:
        lines.append(f"No drift on {escape(where)}: {checked} component(s) in sync{rest}")
    if checked:
        lines.append(
            markup(
                f"Recorded in the drift note of the deployed commit (git notes --ref=atmos/"
                f"{found['deployment']}/drift show <commit>)",
                "dim",
            )
        )
    print_markup(lines)
