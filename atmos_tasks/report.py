"""`atmos-tasks report --html DIR`: what is deployed where, as one static page (issue 14).

The data is the query layer's, as the JSON outputs show it: `queries.status` and
`queries.history`, `compare.diff` across each promotion path, `promotion.promotion_graph` and
`discovery.task_graph`. Nothing here reads Git another way. Every string of it then goes through
one mask (the sensitive values this process knows and those the manifests' targets resolve to),
the pictures are laid out by Graphviz's `dot`, and `report_page.render_page` makes the page.
Writing it into a folder and serving that folder on 127.0.0.1 are the edges.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmos_tasks import __version__, secrets
from atmos_tasks.errors import AtmosError, Problem
from atmos_tasks.report_page import PictureKey, dot_sources, render_page
from atmos_tasks.secrets import Secrets

if TYPE_CHECKING:
    from atmos_tasks.manifest import Manifest
    from atmos_tasks.workspace import Workspace

PAGE = "index.html"
DOT_MISSING = (
    "Graphviz's dot was not found: the page describes its graphs in words "
    "(install Graphviz for the pictures, e.g. apt-get install graphviz)"
)


@dataclass(frozen=True)
class Report:
    html: str
    problems: list[str]


def gather(workspace: Workspace, *, health: bool, limit: int, now: datetime) -> dict[str, Any]:
    """Every deployment that has records or a manifest: what each target runs, its newest `limit`
    rollouts, the differences across each promotion path, the promotion paths and each target's
    task graph; masked."""
    from atmos_tasks.manifest import list_manifest_paths
    from atmos_tasks.queries import status

    repo = workspace.repo
    deployed = status(repo, health=health, drift=True)
    manifests = {path.stem for path in list_manifest_paths(workspace.config)}
    hidden = Secrets()
    hidden.add(sorted(secrets.RUN.values))
    deployments = [
        _deployment(workspace, name, deployed.get(name, {}), name in manifests, limit, hidden)
        for name in sorted(set(deployed) | manifests)
    ]
    head = repo.rev_parse("HEAD")
    report = {
        "generated_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "version": __version__,
        "limit": limit,
        "head": {"git_sha": head, "subject": repo.subjects([head]).get(head)} if head else None,
        "deployments": deployments,
        "problems": [],
    }
    # Compared and compiled as they are, shown masked (as `diff` and `describe` do).
    return hidden.mask_tree(report)  # type: ignore[no-any-return]


def _deployment(
    workspace: Workspace,
    name: str,
    status: dict[str, dict[str, Any]],
    has_manifest: bool,
    limit: int,
    hidden: Secrets,
) -> dict[str, Any]:
    from atmos_tasks.queries import history

    repo = workspace.repo
    problems: list[str] = []
    histories = {target: history(repo, name, target, limit=limit) for target in status}
    subjects = {r["git_sha"]: r.get("subject") for h in histories.values() for r in h["rollouts"]}
    running = {e["git_sha"] for found in status.values() for e in found.values() if e.get("git_sha")}
    if running - subjects.keys():
        subjects.update(repo.subjects(sorted(running - subjects.keys())))
    out: dict[str, Any] = {
        "name": name,
        "description": None,
        "targets": list(status),
        "status": status,
        "subjects": subjects,
        "history": histories,
        "promotion": None,
        "tasks": {},
        "diffs": [],
        "problems": problems,
    }
    if not has_manifest:
        problems.append(f"{name} has no manifest any more: only its records are shown")
        return out
    from atmos_tasks.manifest import load_deployment

    try:
        manifest = load_deployment(workspace.config, name)
    except AtmosError as err:
        _note(problems, err.problems)
        return out
    _manifest_parts(workspace, manifest, out, problems, hidden)
    return out


def _manifest_parts(
    workspace: Workspace,
    manifest: Manifest,
    out: dict[str, Any],
    problems: list[str],
    hidden: Secrets,
) -> None:
    """What the manifest adds: targets in promotion order, the promotion graph, each target's
    task graph, the differences across each promotion path, and the values to mask."""
    from atmos_tasks.compare import diff
    from atmos_tasks.discovery import resolve_all, sensitive_names, task_graph
    from atmos_tasks.promotion import promotion_graph
    from atmos_tasks.secrets import sensitive_values

    name, status = manifest.name, out["status"]
    order = manifest.promotion_order()
    out["description"] = manifest.model.description
    out["targets"] = order + [t for t in status if t not in order]
    out["promotion"] = graph = promotion_graph(manifest)
    for target in order:
        try:
            out["tasks"][target] = task_graph(workspace, name, target)
        except AtmosError as err:
            _note(problems, err.problems)
    for edge in graph["edges"]:
        if status.get(edge["from"]) and status.get(edge["to"]):
            try:
                out["diffs"].append(diff(workspace, name, edge["from"], edge["to"], None, None, None, True))
            except AtmosError as err:
                _note(problems, err.problems)
    try:
        resolved = resolve_all(workspace, manifest, order)
    except AtmosError as err:
        _note(problems, err.problems)
        return
    for resolved_target in resolved.values():
        for component in resolved_target.components.values():
            names = sensitive_names(workspace, component)
            hidden.add(sensitive_values(names, component.vars, component.env))


def _note(problems: list[str], found: list[Problem]) -> None:
    for problem in found:
        text = problem.render()
        if text not in problems:
            problems.append(text)


def layout(source: str) -> str:
    """Graphviz source as an SVG document, laid out by `dot`."""
    dot = shutil.which("dot")
    if dot is None:
        raise FileNotFoundError(DOT_MISSING)
    proc = subprocess.run(
        [dot, "-Tsvg"], input=source, capture_output=True, text=True, encoding="utf-8", timeout=300
    )
    if proc.returncode != 0:
        raise ValueError(f"Graphviz's dot failed: {proc.stderr.strip()}")
    return proc.stdout


def pictures(report: dict[str, Any]) -> tuple[dict[PictureKey, str | None], list[str]]:
    """Every picture of the page, and what kept any from being drawn."""
    found: dict[PictureKey, str | None] = {}
    problems: list[str] = []
    for key, source in dot_sources(report).items():
        if problems and problems[0] == DOT_MISSING:
            found[key] = None
            continue
        try:
            found[key] = layout(source)
        except FileNotFoundError:
            problems.insert(0, DOT_MISSING)
            found[key] = None
        except (ValueError, subprocess.TimeoutExpired) as err:
            problems.append(f"{key[0]} graph of {'/'.join(k for k in key[1:] if k)}: {err}")
            found[key] = None
    return found, problems


def build(workspace: Workspace, *, health: bool, limit: int, now: datetime) -> Report:
    """The page, and every problem met making it (the page shows them too)."""
    report = gather(workspace, health=health, limit=limit, now=now)
    drawn, problems = pictures(report)
    report["problems"] = problems
    found = problems + [p for d in report["deployments"] for p in d["problems"]]
    return Report(render_page(report, drawn), found)


def write(directory: Path, html: str) -> Path:
    """`directory/index.html`, replaced whole: a reader (or a server) never sees half a page."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / PAGE
    tmp = directory / f".{PAGE}.{os.getpid()}.tmp"
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def serve(directory: Path, port: int, ready: Callable[[str], None]) -> None:
    """Serve `directory` on 127.0.0.1 (only this machine) until Ctrl-C; `ready` hears the URL."""
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handler = partial(SimpleHTTPRequestHandler, directory=str(directory))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as err:
        raise AtmosError.single(
            f"cannot serve on 127.0.0.1:{port}: {err.strerror or err}",
            None,
            "choose another port with --port (0 picks a free one)",
        ) from None
    with server:
        ready(f"http://127.0.0.1:{server.server_address[1]}/")
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the way to stop
            server.serve_forever()
