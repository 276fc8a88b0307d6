"""The vendored modules of a repository's deployments, as the `vendor` commands see them (SPEC §7):
which entries each selected target uses, pulling them into their stores, their lock, store and
workspace status, and the stores' statistics and cleaning.

`vendoring.py` chooses a component's entry and runs the `vendor:` task; `vendor_cache.Store` does
the work. This module goes over every deployment and target (or the selected ones) and every store
they use (the default one and any `vendor.cache.dir`), and returns plain data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atmos_tasks.discovery import load_for, resolve_all
from atmos_tasks.errors import AtmosError, Location
from atmos_tasks.manifest import Manifest, duration_seconds
from atmos_tasks.vendoring import cache_ttl, store_root
from vendor_cache import Store, VendorError

if TYPE_CHECKING:
    from atmos_tasks.workspace import Workspace
    from vendor_cache import Progress, VendoredComponent, VendorEntry

STAT_FIELDS = ("objects", "object_bytes", "workspaces", "workspace_bytes", "referenced_bytes", "disk_bytes")


@dataclass(frozen=True)
class Pulled:
    deployment: str
    target: str
    version: str | None  # the entry's version, as the manifest chose it for the target
    result: VendoredComponent
    kind: str | None = None  # the component's kind, for its display name


def _kind(manifest: Manifest, component: str) -> str | None:
    ref = manifest.find_component(component)
    return ref.type if ref is not None else None


def vendored(
    workspace: Workspace, deployment: str | None, target: str | None
) -> list[tuple[Manifest, str, list[VendorEntry]]]:
    """(manifest, target, vendor entries) for each selected deployment and target."""
    names = [deployment] if deployment else workspace.deployment_names()
    found = []
    manifests = [load_for(workspace, name) for name in names]
    if target and not any(target in m.model.targets for m in manifests):
        if deployment:
            raise AtmosError.single(
                f"deployment {deployment!r} has no target {target!r}",
                manifests[0].locate(["targets"], at_key=True),
                f"targets: {', '.join(manifests[0].promotion_order())}",
            )
        raise AtmosError.single(f"no deployment has a target {target!r}", None, "check --target")
    for manifest in manifests:
        if target and target not in manifest.model.targets:
            continue  # --target without --deployment: the deployments that have it
        targets = [target] if target else manifest.promotion_order()
        for name, resolved in resolve_all(workspace, manifest, targets).items():
            entries = [c.vendor for c in resolved.components.values() if c.vendor is not None]
            if entries:
                found.append((manifest, name, entries))
    return found


def stores(workspace: Workspace) -> list[Store]:
    """Every store the repository's deployments use: the default one and any `vendor.cache.dir`."""
    config = workspace.config
    roots = {store_root(config)} | {
        store_root(config, load_for(workspace, name)) for name in workspace.deployment_names()
    }
    return [Store(root) for root in sorted(roots)]


@contextmanager
def _as_problems() -> Iterator[None]:
    """A store's error (a fetch, a lock, a damaged object) as a problem with its origin and exit code."""
    try:
        yield
    except VendorError as err:
        origin = getattr(err, "origin", None)
        raise AtmosError.single(
            getattr(err, "message", str(err)),
            Location(origin) if origin else None,
            getattr(err, "hint", None),
            exit_code=getattr(err, "exit_code", 1),
        ) from None


def pull(
    workspace: Workspace,
    deployment: str | None,
    target: str | None,
    *,
    frozen: bool,
    update: bool,
    verify: bool,
    progress: Progress | None,
) -> list[Pulled]:
    """Fetch (or find in the store) and materialise every selected vendored module; lock it."""
    pulled = []
    with _as_problems():
        for manifest, name, entries in vendored(workspace, deployment, target):
            with Store(store_root(workspace.config, manifest)) as store:
                done = store.vendor_target(
                    manifest.name,
                    name,
                    entries,
                    frozen=frozen,
                    update=update,
                    verify=verify,
                    max_age=None if frozen else cache_ttl(manifest),
                    progress=progress,
                )
            versions = {e.component: e.version for e in entries}
            pulled += [
                Pulled(
                    manifest.name, name, versions.get(item.component), item, _kind(manifest, item.component)
                )
                for item in done
            ]
    return pulled


def status(workspace: Workspace, deployment: str | None, target: str | None) -> list[dict[str, Any]]:
    """Each selected vendored module: its entry, what its lock says, and whether the store and the
    target's workspace still hold it intact."""
    data: list[dict[str, Any]] = []
    with _as_problems():
        for manifest, name, entries in vendored(workspace, deployment, target):
            by_component = {e.component: e for e in entries}
            with Store(store_root(workspace.config, manifest)) as store:
                for found in store.status(manifest.name, name, entries):
                    entry = by_component[found.component]
                    data.append(
                        {
                            "deployment": manifest.name,
                            "target": name,
                            "component": found.component,
                            "kind": _kind(manifest, found.component),
                            "source": entry.source,
                            "version": entry.version,
                            "locked_digest": found.locked.digest if found.locked else None,
                            "locked_commit": found.locked.commit if found.locked else None,
                            "lock_matches": found.lock_matches,
                            "object_present": found.object_present,
                            "workspace_intact": found.workspace_intact,
                            "object_damage": [str(damage) for damage in found.object_damage],
                        }
                    )
    return data


def stats(workspace: Workspace) -> dict[str, Any]:
    """Objects, sizes and what sharing them saves, over every store (figures add up: stores share
    nothing)."""
    data: dict[str, Any] = dict.fromkeys((*STAT_FIELDS, "saved_bytes"), 0)
    for each in stores(workspace):
        with each as store:
            found = store.stats()
        for key in (*STAT_FIELDS, "saved_bytes"):
            data[key] += getattr(found, key)
    data["saved_percent"] = (
        round(100 * data["saved_bytes"] / data["workspace_bytes"], 1) if data["workspace_bytes"] else 0.0
    )
    return data


def clean(workspace: Workspace, older_than: str | None, force: bool) -> dict[str, Any]:
    """Remove (or, without `force`, list) unreferenced objects, stale workspaces and temporary
    folders of every store; only what was last used before `older_than` (a duration) when given."""
    older = duration_seconds(older_than) if older_than else None
    data: dict[str, Any] = {
        "dry_run": not force,
        "objects": [],
        "workspaces": [],
        "temporary": [],
        "bytes": 0,
    }
    for each in stores(workspace):
        with each as store:
            report = store.clean(older_than=older, dry_run=not force)
        data["objects"] += list(report.objects)
        data["workspaces"] += [str(p) for p in report.workspaces]
        data["temporary"] += [str(p) for p in report.temporary]
        data["bytes"] += report.bytes
    return data
