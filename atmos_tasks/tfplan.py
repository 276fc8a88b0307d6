"""Terraform's plans read back: `terraform show -json` of a plan file, summarised per resource
(`-/+ null_resource.repository (1 attribute)`), and the drift check's plan of a component.

The summary is pure (`summarise_plan`, `shown_change`). It keeps addresses, actions and how many
attributes change, never a value: what it returns may be printed and written to a note.

`drift_plan` is the Terraform kind's drift check (`TerraformKind.drift`): the executor's own plan
(`-detailed-exitcode`) of the job, moved to a workdir of the check's own and without the remote
cache, then `terraform show -json` of that plan. Nothing is applied; the plan file is removed
once read; the rollout's workdir, its saved plan and doit's database are never touched.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from atmos_tasks import secrets

# Terraform's own symbols for each list of actions (`terraform plan`'s legend).
SYMBOLS = {
    ("create",): "+",
    ("delete",): "-",
    ("update",): "~",
    ("delete", "create"): "-/+",
    ("create", "delete"): "+/-",
    ("read",): "<=",
}
ACTIONS = {
    ("create",): "create",
    ("delete",): "delete",
    ("update",): "update",
    ("delete", "create"): "replace",
    ("create", "delete"): "replace",
    ("read",): "read",
}
Paths = set[tuple[str, ...]]


def _changed_paths(before: Any, after: Any, unknown: Any, path: tuple[str, ...] = ()) -> tuple[Paths, Paths]:
    """(paths whose known value changes, paths whose value is only known after apply): maps are
    walked key by key, anything else is one value."""
    if unknown is True:
        return set(), {path}
    maps = [v for v in (before, after, unknown) if isinstance(v, Mapping)]
    if maps and all(isinstance(v, Mapping) or v is None or v is False for v in (before, after, unknown)):
        known: Paths = set()
        later: Paths = set()
        keys = sorted({str(k) for found in maps for k in found})
        for key in keys:
            a, b = _changed_paths(_get(before, key), _get(after, key), _get(unknown, key), (*path, key))
            known |= a
            later |= b
        return known, later
    return ({path} if before != after else set()), set()


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def attributes_changed(change: Mapping[str, Any], action: str) -> int | None:
    """How many attributes an update or a replacement changes (leaves of maps count one each); for
    a replacement, those whose new value is known, since the rest (ids…) follow from replacing it.
    None for a creation, a deletion or a read: the whole object comes or goes."""
    if action not in ("update", "replace"):
        return None
    known, later = _changed_paths(change.get("before"), change.get("after"), change.get("after_unknown"))
    if action == "replace" and known:
        return len(known)
    return len(known | later)


def summarise_plan(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What a plan changes, from `terraform show -json`: a resource that changes is
    `{"address", "action", "symbol", "attributes"?}` (`action`: create, update, replace, delete,
    read; `symbol`: Terraform's mark for it), an output that changes `{"address": "output.<name>",
    "action", "symbol"}`. Values are left out."""
    found: list[dict[str, Any]] = []
    for resource in plan.get("resource_changes") or []:
        change = resource.get("change") or {}
        actions = tuple(change.get("actions") or ())
        if actions not in ACTIONS:
            continue  # no-op
        action = ACTIONS[actions]
        entry: dict[str, Any] = {
            "address": str(resource.get("address")),
            "action": action,
            "symbol": SYMBOLS[actions],
        }
        count = attributes_changed(change, action)
        if count is not None:
            entry["attributes"] = count
        found.append(entry)
    for name, change in sorted((plan.get("output_changes") or {}).items()):
        actions = tuple((change or {}).get("actions") or ())
        if actions in ACTIONS:
            found.append(
                {"address": f"output.{name}", "action": ACTIONS[actions], "symbol": SYMBOLS[actions]}
            )
    return found


def shown_change(change: Mapping[str, Any]) -> str:
    """One line of a summary, as Terraform marks it: `-/+ null_resource.repository (1 attribute)`."""
    symbol = change.get("symbol") or "?"
    count = change.get("attributes")
    counted = f" ({count} attribute{'' if count == 1 else 's'})" if isinstance(count, int) else ""
    return f"{symbol} {change.get('address')}{counted}"


def prior_outputs(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs of the state the plan was made against (what dependants read now)."""
    outputs = ((plan.get("prior_state") or {}).get("values") or {}).get("outputs") or {}
    secrets.add([entry.get("value") for entry in outputs.values() if entry.get("sensitive")])
    return {name: entry.get("value") for name, entry in sorted(outputs.items())}


def anchored_backend(job: Any) -> dict[str, Any]:
    """The job's backend as seen from any workdir: a local state's relative path is relative to
    the rollout's workdir, so the check's workdir names the same file absolutely."""
    path = job.backend.get("path")
    if job.backend_type != "local" or not isinstance(path, str) or os.path.isabs(path):
        return dict(job.backend)
    return {**job.backend, "path": os.path.normpath(Path(job.workdir) / path)}


def drift_plan(
    job: Any, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]], workdir: str
) -> dict[str, Any]:
    """`{status: in-sync | drifted | failed, changes, counts, outputs, …}` of a Terraform job."""
    from atmos_tasks.kinds.terraform import (
        PLAN_FILE,
        TerraformExecutor,
        TerraformFailed,
        _tail,
        provider_channel,
        run_dir,
        terraform_binary,
        terraform_env,
    )

    checking = dataclasses.replace(job, workdir=workdir, backend=anchored_backend(job), cache=None)
    planned = TerraformExecutor().plan(checking, outputs, images)
    plan_file = Path(workdir) / PLAN_FILE
    try:
        if planned.get("status") != "planned":
            return {"status": "failed", "error": planned.get("error", "the plan failed"), "workdir": workdir}
        with provider_channel(terraform_env(checking)) as env:
            proc = subprocess.run(
                [
                    terraform_binary(job.command),
                    "show",
                    "-json",
                    "-no-color",
                    os.path.relpath(plan_file, run_dir(checking)),
                ],
                cwd=run_dir(checking),
                env=env,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
            )
        if proc.returncode != 0:
            raise TerraformFailed(f"terraform show failed: {secrets.mask(_tail(proc.stderr))}")
        shown = json.loads(proc.stdout or "{}")
    except (TerraformFailed, OSError, ValueError) as err:
        return {"status": "failed", "error": secrets.mask(str(err)), "workdir": workdir}
    finally:
        plan_file.unlink(missing_ok=True)
    found: dict[str, Any] = {"status": "drifted" if planned.get("has_changes") else "in-sync"}
    if planned.get("has_changes"):
        found["changes"] = secrets.RUN.mask_tree(summarise_plan(shown))
        if isinstance(planned.get("changes"), dict):
            found["counts"] = planned["changes"]
    found["outputs"] = prior_outputs(shown)
    return found
