"""The report page (`atmos-tasks report --html`): the data `report.gather` collects, as one HTML
document and the Graphviz sources of its pictures. Pure: data in, text out; no Git, no Graphviz run.

The document needs nothing but itself: the style sheet and the pictures (SVG, laid out by Graphviz)
are inline, there is no script, and it reads the same from a file, a web server or a CI artifact.
Templates run in Jinja2's sandbox with autoescaping: a commit subject or a configuration value is
text, never markup.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from markupsafe import Markup

from atmos_tasks.render import display_name, image_digest

# A picture: ("promotion", deployment, None) or ("tasks", deployment, target).
PictureKey = tuple[str, str, str | None]

FONT = "sans-serif"
STATUS_SHOWN = {"success": "✓ success", "failed": "✗ failed", "rollback": "⟲ rollback"}
# Task actions by their name's first part, each its own fill (the text on each is black).
TASK_FILLS = {
    "vendor": "#f3e8ff",
    "build": "#e0ecff",
    "test": "#e0ecff",
    "plan": "#fff3cd",
    "apply": "#dcf5e3",
    "record": "#eceff3",
    "rollout": "#eceff3",
}
CHANGE_SHOWN = {
    "added": "+ added",
    "removed": "− removed",
    "increased": "↑ increased",
    "decreased": "↓ decreased",
    "changed": "~ changed",
}


# Graphviz sources


def dot_string(text: str) -> str:
    """A DOT double-quoted string: the name or label as written, never DOT syntax (`:` in a task
    name is no port, a quote ends nothing)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attributes(**values: str) -> str:
    return "[" + ", ".join(f"{key}={dot_string(value)}" for key, value in values.items()) + "]"


def _head(name: str, prefix: str) -> list[str]:
    """`prefix`: of every id in the SVG (its elements' ids are unique in a page of several)."""
    return [
        f"digraph {dot_string(name)} {{",
        f"    graph {_attributes(id=prefix, rankdir='LR', bgcolor='transparent', fontname=FONT)};",
        f"    node {_attributes(shape='box', style='rounded,filled', fontname=FONT, fontsize='12')};",
        f"    edge {_attributes(fontname=FONT, fontsize='11', color='#444444')};",
    ]


def gate_label(target: Mapping[str, Any]) -> str:
    """What a promotion into `target` waits for: approvals, soak time."""
    parts = []
    if target.get("approvals"):
        parts.append(
            f"{target['approvals']} approval(s), {target.get('approval_method', 'manual')}"
            + (", not the deployer" if target.get("prevent_self_approval") else "")
        )
    if target.get("min_soak"):
        parts.append(f"soak {target['min_soak']}")
    return "; ".join(parts)


def running_label(components: Mapping[str, Mapping[str, Any]] | None) -> str:
    """What a target runs, in a word: a short commit, `2 commits`, or `nothing deployed`."""
    commits = sorted({str(e["git_sha"]) for e in (components or {}).values() if e.get("git_sha")})
    if not commits:
        return "nothing deployed"
    return commits[0][:7] if len(commits) == 1 else f"{len(commits)} commits"


def promotion_dot(graph: Mapping[str, Any], status: Mapping[str, Mapping[str, Any]]) -> str:
    """The promotion paths (promotion.promotion_graph's data): a node per target with what it runs,
    an edge per path labelled with its gate."""
    lines = _head(f"{graph['deployment']} promotion", f"promotion:{graph['deployment']}")
    by_name = {t["name"]: t for t in graph["targets"]}
    for target in graph["targets"]:
        name = target["name"]
        label = f"{name}\n{running_label(status.get(name))}"
        lines.append(
            f"    {dot_string(name)} {_attributes(label=label, fillcolor='#e7eefa', color='#1f4e8c')};"
        )
    for edge in graph["edges"]:
        label = gate_label(by_name.get(edge["to"], {}))
        attributes = f" {_attributes(label=label)}" if label else ""
        lines.append(f"    {dot_string(edge['from'])} -> {dot_string(edge['to'])}{attributes};")
    return "\n".join([*lines, "}"]) + "\n"


def tasks_dot(graph: Mapping[str, Any]) -> str:
    """One rollout's tasks (discovery.task_graph's data), each after the tasks it waits for."""
    lines = _head(
        f"{graph['deployment']} {graph['target']} tasks", f"tasks:{graph['deployment']}:{graph['target']}"
    )
    for task in graph["tasks"]:
        # `plan:api:dev:ecr/api` is shown as `plan` over `ecr/api`: the graph is one target's.
        action, *scope, component = task["name"].split(":", 3)
        label = f"{action}\n{component}" if len(scope) == 2 else action
        fill = TASK_FILLS.get(action, "#ffffff")
        lines.append(
            f"    {dot_string(task['name'])} {_attributes(label=label, fillcolor=fill, color='#555555')};"
        )
    for task in graph["tasks"]:
        lines += [f"    {dot_string(dep)} -> {dot_string(task['name'])};" for dep in task["after"]]
    return "\n".join([*lines, "}"]) + "\n"


def dot_sources(report: Mapping[str, Any]) -> dict[PictureKey, str]:
    """Every picture of the page, as Graphviz source."""
    sources: dict[PictureKey, str] = {}
    for deployment in report["deployments"]:
        name = deployment["name"]
        if deployment.get("promotion"):
            sources[("promotion", name, None)] = promotion_dot(deployment["promotion"], deployment["status"])
        for target, graph in deployment.get("tasks", {}).items():
            sources[("tasks", name, target)] = tasks_dot(graph)
    return sources


_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)


def inline_svg(svg: str, label: str) -> Markup:
    """Graphviz's SVG document as an element of the page: without its XML declaration, doctype and
    comments, named for assistive technology (`role="img"` and `aria-label`)."""
    body = _COMMENT.sub("", _PROLOGUE.sub("", svg, count=1)).strip()
    if not body.startswith("<svg"):
        raise ValueError("not an SVG document")
    escaped = str(Markup.escape(label))
    return Markup(f'<svg role="img" aria-label="{escaped}" focusable="false"{body[4:]}')


# The page


def when_shown(timestamp: str | None) -> str:
    """`2025-01-23 15:30 UTC` of `2025-01-23T15:30:00Z`: a static page says when, not how long ago."""
    if not timestamp:
        return "—"
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    return when.strftime("%Y-%m-%d %H:%M UTC")


def value_shown(value: Any) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value)


def drift_shown(drift: Any) -> tuple[str, str]:
    """A `drift` field, as `atmos-tasks drift` records it: its state (and when it was checked)."""
    if isinstance(drift, Mapping):
        state = str(drift.get("state") or drift.get("status") or "checked")
        checked = drift.get("checked_at") or drift.get("timestamp")
        text = f"{state} ({when_shown(str(checked))})" if checked else state
    else:
        state = text = str(drift)
    css = {"none": "good", "clean": "good", "in-sync": "good", "drift": "bad", "drifted": "bad"}
    return text, css.get(state, "warn")


class _Ids:
    """HTML ids made of names, unique within the page."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def __call__(self, *parts: str) -> str:
        base = "-".join(re.sub(r"[^A-Za-z0-9_-]+", "-", part).strip("-") or "x" for part in parts)
        found, n = base, 1
        while found in self.taken:
            n += 1
            found = f"{base}-{n}"
        self.taken.add(found)
        return found


def _status_row(name: str, entry: Mapping[str, Any], subjects: Mapping[str, str | None]) -> dict[str, Any]:
    sha = entry.get("git_sha") or ""
    status = str(entry.get("status"))
    signature = entry.get("signature") or {}
    sig_state = signature.get("status")
    row: dict[str, Any] = {
        "component": display_name(entry.get("kind") or entry.get("type"), name),
        "git_sha": sha,
        "short": sha[:7],
        "subject": subjects.get(sha),
        "image": entry.get("image") or "",
        "digest": image_digest(entry.get("image")),
        "by": entry.get("deployed_by") or "—",
        "at": entry.get("deployed_at"),
        "when": when_shown(entry.get("deployed_at")),
        "status": STATUS_SHOWN.get(status, status),
        "status_class": {"success": "good", "failed": "bad"}.get(status, "warn"),
        "signature": (
            f"verified ({signature['by']})"
            if sig_state == "verified" and signature.get("by")
            else {"verified": "verified", "bad": "bad signature"}.get(str(sig_state), "unverified")
        ),
        "signature_class": {"verified": "good", "bad": "bad"}.get(str(sig_state), "muted"),
        "health": None,
        "drift": None,
        "note": None,
    }
    health = entry.get("health")
    if health:
        row["health"] = (
            str(health.get("shown") or health.get("state")),
            {"healthy": "good", "unhealthy": "bad"}.get(str(health.get("state")), "warn"),
        )
    if entry.get("drift") is not None:
        row["drift"] = drift_shown(entry["drift"])
    last = entry.get("last_attempt")
    if last:
        row["note"] = (
            f"last attempt {last.get('status')} at {when_shown(last.get('timestamp'))}"
            f" ({str(last.get('git_sha') or '')[:7]})"
        )
    return row


def _rollout(rollout: Mapping[str, Any]) -> dict[str, Any]:
    status = str(rollout.get("status"))
    notes = []
    if rollout.get("promoted_from"):
        notes.append(f"promoted from {rollout['promoted_from']}")
    if rollout.get("rollback_of"):
        notes.append(f"rollback of {str(rollout['rollback_of'])[:7]}")
    if rollout.get("signature") == "verified":
        notes.append(f"signed by {rollout['signed_by']}" if rollout.get("signed_by") else "signed")
    elif rollout.get("signature") == "bad":
        notes.append("bad signature")
    components = sorted(
        (
            display_name(c.get("kind") or c.get("type"), name),
            STATUS_SHOWN.get(str(c.get("status")), str(c.get("status"))),
            str(c.get("changes") or ""),
        )
        for name, c in rollout.get("components", {}).items()
    )
    return {
        "at": rollout.get("timestamp"),
        "when": when_shown(rollout.get("timestamp")),
        "git_sha": rollout.get("git_sha") or "",
        "short": str(rollout.get("git_sha") or "")[:7],
        "subject": rollout.get("subject"),
        "by": rollout.get("deployed_by"),
        "status": STATUS_SHOWN.get(status, status),
        "status_class": {"success": "good", "failed": "bad"}.get(status, "warn"),
        "notes": notes,
        "components": components,
    }


def _side_shown(side: Mapping[str, Any] | None) -> str:
    if side is None:
        return "not deployed"
    digest = image_digest(side.get("image"))
    return f"{str(side['git_sha'])[:7]} {digest}".strip()


def _diff(found: Mapping[str, Any], ids: _Ids, deployment: str) -> dict[str, Any]:
    old, new = found["from"], found["to"]
    behind, ahead = found["commits"]["behind"], found["commits"]["ahead"]
    if behind or ahead:
        parts = [f"{behind} commit(s) behind"] if behind else []
        parts += [f"{ahead} commit(s) ahead of"] if ahead else []
        distance = f"{old['label']} is {' and '.join(parts)} {new['label']}"
    else:
        distance = "both run the same commit"
    code = found.get("code")
    return {
        "id": ids(deployment, "diff", str(old["label"]), str(new["label"])),
        "from": old["label"],
        "to": new["label"],
        "sides": [
            {
                "label": side["label"],
                "git_sha": side["git_sha"],
                "short": str(side["git_sha"])[:7],
                "subject": side.get("subject"),
                "at": side.get("deployed_at"),
                "when": when_shown(side.get("deployed_at")),
            }
            for side in (old, new)
        ],
        "distance": distance,
        "components": [
            (display_name(c.get("kind"), name), _side_shown(c.get("from")), _side_shown(c.get("to")))
            for name, c in sorted(
                found["components"].items(), key=lambda kv: display_name(kv[1].get("kind"), kv[0])
            )
            if c.get("changed")
        ],
        "configuration": [
            (
                display_name(item.get("kind"), item["key"]),
                value_shown(item.get("from")),
                value_shown(item.get("to")),
                CHANGE_SHOWN.get(str(item.get("change")), str(item.get("change"))),
            )
            for item in found["configuration"]
        ],
        "code": code,
    }


def page_view(report: Mapping[str, Any], pictures: Mapping[PictureKey, str | None]) -> dict[str, Any]:
    """What the template shows, worked out: names, cells, ids, pictures as inline SVG."""
    ids = _Ids()
    for fixed in ("main", "top"):
        ids.taken.add(fixed)
    deployments = []
    for deployment in report["deployments"]:
        name = deployment["name"]
        status = deployment["status"]
        subjects = deployment.get("subjects", {})
        targets = []
        for target in deployment["targets"]:
            rows = [
                _status_row(component, entry, subjects) for component, entry in status.get(target, {}).items()
            ]
            rows.sort(key=lambda row: row["component"])
            history = deployment.get("history", {}).get(target)
            tasks = deployment.get("tasks", {}).get(target)
            picture = pictures.get(("tasks", name, target))
            targets.append(
                {
                    "name": target,
                    "rows": rows,
                    "history_id": ids(name, "history", target),
                    "rollouts": [_rollout(r) for r in history["rollouts"]] if history else [],
                    "tasks": tasks["tasks"] if tasks else None,
                    "tasks_id": ids(name, "tasks", target),
                    "tasks_svg": (
                        inline_svg(picture, f"Task graph of {name} on {target}") if picture else None
                    ),
                }
            )
        all_rows = [row for t in targets for row in t["rows"]]
        promotion = deployment.get("promotion")
        picture = pictures.get(("promotion", name, None))
        paths = ", ".join(f"{e['from']} → {e['to']}" for e in promotion["edges"]) if promotion else ""
        deployments.append(
            {
                "name": name,
                "id": ids(name),
                "status_id": ids(name, "status"),
                "promotion_id": ids(name, "promotion"),
                "history_id": ids(name, "history"),
                "diffs_id": ids(name, "diffs"),
                "tasks_id": ids(name, "tasks"),
                "description": deployment.get("description"),
                "targets": targets,
                "recorded": bool(all_rows),
                "health": any(row["health"] for row in all_rows),
                "drift": any(row["drift"] for row in all_rows),
                "promotion": promotion,
                "promotion_paths": paths,
                "promotion_svg": (
                    inline_svg(picture, f"Promotion graph of {name}: {paths or 'no paths'}")
                    if picture
                    else None
                ),
                "diffs": [_diff(found, ids, name) for found in deployment.get("diffs", [])],
                "limit": report.get("limit"),
                "problems": deployment.get("problems", []),
            }
        )
    head = report.get("head")
    return {
        "generated": when_shown(report.get("generated_at")),
        "generated_at": report.get("generated_at"),
        "head": head,
        "head_short": str(head["git_sha"])[:7] if head else None,
        "version": report.get("version", ""),
        "deployments": deployments,
        "problems": report.get("problems", []),
    }


@cache
def _environment() -> Any:
    from jinja2 import PackageLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(
        loader=PackageLoader("atmos_tasks", "report_templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_page(report: Mapping[str, Any], pictures: Mapping[PictureKey, str | None]) -> str:
    """The report as one HTML document; a picture that is missing (None, or no key) is described
    in words instead."""
    return str(_environment().get_template("report.html.j2").render(page=page_view(report, pictures)))
