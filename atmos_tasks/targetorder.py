"""Targets in promotion order: each target after the targets it is promoted from (dev → staging →
prod), otherwise in the order the manifest lists them.

`promotion_order` is the rule. `manifest_orders` is how `status` learns each deployment's order
without the manifest model (pydantic) or, most of the time, the YAML library: it reads only the
manifests' `targets:` sections and keeps each answer in `.atmos/cache/target-order.json` by the
digest of the manifest's bytes (and of `atmos.yaml`, which says where manifests are).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from atmos_tasks.atomic import write_atomic

CACHE = Path(".atmos") / "cache" / "target-order.json"


def promotion_order(sources: Mapping[str, Sequence[str]]) -> list[str]:
    """The targets of `sources` (target → the targets it is promoted from, in manifest order),
    each after its sources; among the targets ready at a step, the one the manifest lists first.

    Sources that are not targets are ignored; a cycle (which validation refuses) leaves its
    targets in manifest order after the others."""
    names = list(sources)
    waiting = {name: {s for s in sources[name] if s in sources and s != name} for name in names}
    order: list[str] = []
    while waiting:
        ready = next((name for name in names if name in waiting and not waiting[name]), None)
        if ready is None:
            order += [name for name in names if name in waiting]
            break
        order.append(ready)
        del waiting[ready]
        for pending in waiting.values():
            pending.discard(ready)
    return order


def ordered(names: Iterable[str], order: Sequence[str]) -> list[str]:
    """`names` in `order`; names it lacks (a target whose manifest no longer has it) last, sorted."""
    rank = {name: i for i, name in enumerate(order)}
    return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))


def sources_of(targets: Any) -> dict[str, list[str]] | None:
    """target → its promotion sources, from a manifest's raw `targets:` mapping; None when it is
    not one (the manifest is broken: its validation says how)."""
    if not isinstance(targets, dict):
        return None
    found: dict[str, list[str]] = {}
    for name, spec in targets.items():
        if not isinstance(name, str):
            return None
        promotion = spec.get("promotion") if isinstance(spec, dict) else None
        promotion = promotion if isinstance(promotion, dict) else {}
        source = promotion.get("from")
        allowed = promotion.get("allowed_from")
        if isinstance(source, str):
            found[name] = [source]
        elif isinstance(allowed, list):
            found[name] = [s for s in allowed if isinstance(s, str)]
        else:
            found[name] = []
    return found


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def manifest_orders(root: Path, deployments: Iterable[str]) -> dict[str, list[str]]:
    """Each named deployment's targets in promotion order, as its manifest declares them; a
    deployment without a readable manifest is left out (its targets stay as they were)."""
    wanted = list(deployments)
    if not wanted:
        return {}
    path = root / CACHE
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    cache = cache if isinstance(cache, dict) else {}
    manifests = cache.get("manifests")
    known: dict[str, Any] = manifests if isinstance(manifests, dict) else {}
    config = _digest(root / "atmos.yaml") or "-"
    changed = False
    base = cache.get("base") if cache.get("config") == config else None
    if not isinstance(base, str):
        base = _deployments_base(root)
        if base is None:
            return {}
        cache.update({"config": config, "base": base})
        changed = True
    folder = root / base
    try:
        files = set(os.listdir(folder))
    except OSError:
        files = set()
    found: dict[str, list[str]] = {}
    for deployment in wanted:
        name = next((deployment + ext for ext in (".yaml", ".yml") if deployment + ext in files), None)
        digest = _digest(folder / name) if name else None
        if digest is None:
            continue
        entry = known.get(deployment)
        if isinstance(entry, dict) and entry.get("digest") == digest and isinstance(entry.get("order"), list):
            found[deployment] = [str(t) for t in entry["order"]]
            continue
        order = _read_order(folder / str(name), root)
        known[deployment] = {"digest": digest, "order": order}
        changed = True
        found[deployment] = order
    if changed:
        cache["manifests"] = known
        with contextlib.suppress(OSError):  # a cache only
            write_atomic(path, json.dumps(cache, sort_keys=True))
    return found


def _deployments_base(root: Path) -> str | None:
    from atmos_tasks.config import load_config
    from atmos_tasks.errors import AtmosError

    try:
        config = load_config(root)
    except AtmosError:
        return None  # the commands that read manifests say what is wrong with it
    return config.shown(config.deployments_base)


def _read_order(path: Path, root: Path) -> list[str]:
    """The promotion order of one manifest file; empty when it cannot be read as one."""
    from atmos_tasks.errors import AtmosError
    from atmos_tasks.yamlio import load_data

    try:
        data = load_data(path, str(path.relative_to(root)) if path.is_relative_to(root) else str(path))
    except AtmosError:
        return []
    deployment = data.get("deployment") if isinstance(data, dict) else None
    sources = sources_of(deployment.get("targets") if isinstance(deployment, dict) else None)
    return promotion_order(sources) if sources else []
