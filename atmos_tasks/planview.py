"""A Terraform plan as people read it: `--show-plan`, the job summary and the approval prompt.

`plan_lines` is pure: `terraform show -json` of a plan file in, one line per change out. Each
resource that changes is a line as `tfplan.shown_change` writes it (Terraform's own symbols:
`+ null_resource.x`, `~ aws_x.y (2 attributes)`, `- old.z`, `-/+ r.w (1 attribute)` for a
replacement, `(tainted)` or `(replaced on request)` when that is why, `<= data.x.y` for a read),
then each output that changes, with its value when
Terraform does not call it sensitive (`~ output.arn = "arn:…:1" → "arn:…:2"`,
`~ output.password = (sensitive)`). A resource's values are never shown, only its address and how
many attributes change.

Values pass through `mask` (the run's `secrets.mask`) before they are shortened, so a value the
user marked sensitive is masked whole; the lines are masked again wherever they are printed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from atmos_tasks.tfplan import shown_change, summarise_plan

# An output's value longer than this is cut (the plan log has it whole).
VALUE_WIDTH = 100
UNKNOWN = "(known after apply)"
SENSITIVE = "(sensitive)"
# Why a resource is replaced when no attribute of it changes (Terraform's `action_reason`).
REASONS = {"replace_because_tainted": "tainted", "replace_by_request": "replaced on request"}


def wanted(show_plan: bool) -> bool:
    """Whether a plan's lines are computed: asked for (`--show-plan`, an approval prompt's
    preview), or a GitHub job summary will hold them. A plain rollout runs no `terraform show`."""
    return show_plan or bool(os.environ.get("GITHUB_STEP_SUMMARY"))


def _marked(sensitive: Any) -> bool:
    """Terraform's `*_sensitive`: true, or a structure with a true leaf somewhere."""
    if isinstance(sensitive, Mapping):
        return any(_marked(v) for v in sensitive.values())
    if isinstance(sensitive, list):
        return any(_marked(v) for v in sensitive)
    return sensitive is True


def _value(value: Any, mask: Callable[[str], str]) -> str:
    text = mask(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")))
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def output_line(name: str, change: Mapping[str, Any], mask: Callable[[str], str] = str) -> str | None:
    """One output's change; None when it does not change."""
    actions = tuple(change.get("actions") or ())
    before, after = change.get("before"), change.get("after")
    unknown = _marked(change.get("after_unknown"))
    address = f"output.{name}"
    if actions == ("delete",) or (actions == ("update",) and after is None and not unknown):
        return f"- {address}"
    if actions not in (("create",), ("update",)):
        return None
    sensitive = _marked(change.get("before_sensitive")) or _marked(change.get("after_sensitive"))
    if sensitive:
        return f"{'+' if actions == ('create',) else '~'} {address} = {SENSITIVE}"
    new = UNKNOWN if unknown else _value(after, mask)
    if actions == ("create",) or before is None:
        return f"+ {address} = {new}"
    return f"~ {address} = {_value(before, mask)} → {new}"


def plan_lines(plan: Mapping[str, Any], mask: Callable[[str], str] = str) -> list[str]:
    """What a plan changes, a line each: resources in Terraform's order, then outputs by name."""
    reasons = {
        str(resource.get("address")): REASONS.get(str(resource.get("action_reason")))
        for resource in plan.get("resource_changes") or []
    }
    lines = []
    for change in summarise_plan(plan):
        address = str(change["address"])
        if address.startswith("output."):
            continue
        reason = reasons.get(address)
        if change["action"] == "replace" and reason:
            line = f"{change['symbol']} {address} ({reason})"
        elif change.get("attributes") == 0:
            # Terraform plans an update when only whether a value is sensitive changes.
            line = f"{change['symbol']} {address} (sensitivity only)"
        else:
            line = shown_change(change)
        lines.append(mask(line))
    for name, change in sorted((plan.get("output_changes") or {}).items()):
        shown = output_line(name, change or {}, mask)
        if shown is not None:
            lines.append(mask(shown))
    return lines
