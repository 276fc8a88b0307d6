"""Just-in-time vendoring of Terraform modules per deployment and target (SPEC §7).

Which module a component uses comes from, in this order: the manifest's inline `vendor.components`,
the file `vendor.manifest` names, the repository's `vendor.yaml` (filtered to this deployment's
components), then auto-discovery (a `component.yaml` in the component's folder). Per target, an
entry applies when its `labels` match the target's labels, so dev and prod can pin different
versions of one module. The `vendor:` task materialises the chosen object from the
content-addressable store into the target's workspace.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmos_tasks import inputs
from atmos_tasks.config import RepoConfig
from atmos_tasks.errors import AtmosError, Location, Problem, Where
from atmos_tasks.hashing import hash_json

if TYPE_CHECKING:
    from atmos_tasks.manifest import ComponentRef, Manifest
    from vendor_cache import Store

VendorFor = Callable[["ComponentRef", str, Where], Any]
VERIFY_ENV = "ATMOS_TASKS_VERIFY"


def verify_requested(flag: bool = False) -> bool:
    """Whether `vendor:` tasks check their object before use: `--verify`, or ATMOS_TASKS_VERIFY=1."""
    return flag or os.environ.get(VERIFY_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class EntryPlace:
    """Where an inline vendor entry is written; the line is looked up only when an error shows it
    (and the place travels to doit's worker processes, so it is plain data)."""

    path: str
    shown: str
    index: int

    def location(self) -> Location:
        from atmos_tasks.yamlio import locate_in_file

        keypath: list[str | int] = ["deployment", "vendor", "components", self.index]
        return locate_in_file(Path(self.path), self.shown, keypath)

    def __str__(self) -> str:
        return str(self.location())


def module_origin(folder: str, entry: Any) -> dict[str, Any]:
    """A vendored module as the target's entry chose it: folder, source (version filled in), version."""
    return {"folder": folder, "source": entry.rendered_source, "version": entry.version}


def store_root(config: RepoConfig, manifest: Manifest | None = None) -> Path:
    cache = manifest.model.vendor.cache if manifest is not None else None
    if cache is not None and cache.dir:
        return (config.work_root_path / cache.dir).resolve()
    return config.work_dir / "vendor-cache"


def _problem(err: Exception, where: Where | None) -> AtmosError:
    message = getattr(err, "message", str(err))
    hint = getattr(err, "hint", None) or "fix the vendor entry"
    return AtmosError([Problem(message, where, hint)], getattr(err, "exit_code", 2))


def _component_yaml(path: Path, folder: str, base_dir: Path) -> Any:
    """Atmos's per-component vendoring file (`kind: ComponentVendorConfig`), as one entry."""
    from atmos_tasks.yamlio import load_data
    from vendor_cache import VendorEntry
    from vendor_cache.errors import ManifestError

    data = load_data(path, str(path))
    source = (data or {}).get("spec", {}).get("source", {}) if isinstance(data, dict) else {}
    if not isinstance(source, dict) or not isinstance(source.get("uri"), str):
        raise ManifestError(f"{path}: spec.source.uri is missing", hint="see Atmos's component.yaml format")
    return VendorEntry(
        component=folder,
        source=source["uri"],
        version=str(source["version"]) if source.get("version") is not None else None,
        included_paths=tuple(source.get("included_paths") or ()),
        excluded_paths=tuple(source.get("excluded_paths") or ()),
        base_dir=base_dir,
    )


def checked_entry(config: RepoConfig, entry: Any, ref: ComponentRef, where: Where | None) -> Any:
    """The entry as the component's vendor task takes it, its source checked now."""
    from vendor_cache import VendorError, parse_source

    # A relative local path is part of the commit (a promotion reads it from its worktree), from
    # the folder of the file that names it; a relative Git repository (`git::./modules.git`) is
    # beside the checkout, never in a commit: the same folder, in the main checkout.
    base = (entry.base_dir or config.root).resolve()
    if entry.source.startswith("git::") and base.is_relative_to(config.root.resolve()):
        base = config.work_root_path.resolve() / base.relative_to(config.root.resolve())
    try:
        # The source as the vendor task reads it: placeholders that cannot be filled, an unknown
        # getter or a subdirectory `//…` that climbs out of the module are bad input now, never
        # a failed task in the middle of a rollout.
        parse_source(entry.rendered_source, base_dir=base)
    except VendorError as err:
        if isinstance(entry.origin, EntryPlace):
            raise _problem(err, entry.origin.location()) from None
        # An entry of a vendor.yaml or component.yaml (or a stack's `source:`): its own file and
        # line lead the message.
        text = f"{entry.origin}: {err.message}" if entry.origin is not None else err.message
        raise AtmosError([Problem(text, where, err.hint or "fix the vendor entry")]) from None
    # The workspace is per component, even when entries name the shared folder.
    return dataclasses.replace(entry, component=ref.name, base_dir=base)


def source_entry(config: RepoConfig, ref: ComponentRef, source: Any, where: Where | None) -> Any:
    """Atmos's `source:` of a component (just-in-time vendoring) as its vendor entry: the `uri`,
    its `version`, `included_paths`/`excluded_paths`; a relative source from the repository's root.
    None when it sets no `uri`. `source`: the component's merged section (`stacks.Sourced`)."""
    from atmos_tasks.stacks import find_origin, origin_location
    from vendor_cache import VendorEntry, VendorError

    section = source.value
    if not section:
        return None
    origin = find_origin(source.prov, ["uri"])
    at = origin_location(config, origin) if origin is not None else where
    uri = section.get("uri")
    if not isinstance(uri, str) or not uri:
        raise AtmosError.single(
            f"{ref}: source must name a uri (where Atmos fetches the component from)",
            at,
            "write e.g. source: {uri: 'github.com/acme/modules//vpc?ref={{.Version}}', version: 1.2.0}",
        )
    version = section.get("version")
    paths = {key: section.get(key) or () for key in ("included_paths", "excluded_paths")}
    try:
        entry = VendorEntry(
            component=ref.name,
            source=uri,
            version=str(version) if version is not None else None,
            included_paths=tuple(str(p) for p in paths["included_paths"]),
            excluded_paths=tuple(str(p) for p in paths["excluded_paths"]),
            base_dir=config.root,
            origin=f"{at.file}:{at.line}" if isinstance(at, Location) else None,
        )
    except VendorError as err:
        raise _problem(err, at) from None
    return checked_entry(config, entry, ref, at)


def vendor_resolver(config: RepoConfig, manifest: Manifest, target: str) -> VendorFor:
    """A function that says, per terraform component, which vendor entry applies on `target`."""
    from vendor_cache import (
        VendorError,
        entries_from_manifest,
        read_vendor_yaml,
        resolve_entries,
    )

    spec = manifest.model.vendor
    labels = dict(manifest.model.targets[target].labels)

    # Each file is read once; entries are then taken per component (a component's entry depends on
    # the entries naming it only), so resolving N components costs N lookups, not N file scans.
    files: list[dict[str, list[Any]]] | None = None
    read: list[Path] = []
    discovered: dict[str, list[Any]] = {}

    def by_component(entries: list[Any]) -> dict[str, list[Any]]:
        grouped: dict[str, list[Any]] = {}
        for entry in entries:
            grouped.setdefault(entry.component, []).append(entry)
        return grouped

    def read_files() -> list[dict[str, list[Any]]]:
        items = [e.model_dump(exclude_none=True) for e in spec.components]
        places = [EntryPlace(str(manifest.path), manifest.shown, index) for index in range(len(items))]
        found = [by_component(entries_from_manifest(items, base_dir=config.root, origins=places))]
        if spec.manifest:
            read.append(config.root / spec.manifest)
            inputs.file(config.root / spec.manifest)
            found.append(by_component(read_vendor_yaml(config.root / spec.manifest)))
        repository = (config.vendor_base or config.root) / "vendor.yaml"
        read.append(repository)
        inputs.file(repository)
        if repository.is_file():
            found.append(by_component(read_vendor_yaml(repository)))
        return found

    def discover(name: str) -> list[Any]:
        path = config.terraform_base / name / "component.yaml"
        inputs.file(path)  # each time: each component's resolution is observed on its own too
        if name not in discovered:
            discovered[name] = (
                [_component_yaml(path, name, config.terraform_base / name)] if path.is_file() else []
            )
        return discovered[name]

    def layers(names: set[str]) -> dict[str, Any]:
        nonlocal files
        if files is None:
            files = read_files()
        else:
            for path in read:  # read once, observed each time (`inputs.scoped`)
                inputs.file(path)
        found = [[e for name in sorted(names) for e in layer.get(name, ())] for layer in files]
        if spec.auto_discover:
            found.append([e for name in sorted(names) for e in discover(name)])
        return resolve_entries(found, labels)

    def vendor_for(ref: ComponentRef, folder: str, where: Where) -> Any:
        wanted = {ref.name, folder}
        try:
            chosen = layers(wanted)
        except VendorError as err:
            raise _problem(err, manifest.locate(["vendor"], at_key=True)) from None
        entry = chosen.get(ref.name) or chosen.get(folder)
        if entry is None:
            return None
        return checked_entry(config, entry, ref, where)

    def fingerprint() -> str:
        """Every vendor entry the target could take, as read (the files `vendor.yaml` imports
        included, which are read below this module's observation): what the resolve memo keys on."""
        nonlocal files
        if files is None:
            try:
                files = read_files()
            except VendorError as err:
                raise _problem(err, manifest.locate(["vendor"], at_key=True)) from None
        return repr([sorted((name, repr(found)) for name, found in layer.items()) for layer in files])

    vendor_for.fingerprint = fingerprint  # type: ignore[attr-defined]
    return vendor_for


@dataclass(frozen=True)
class VendorSpec:
    """One `vendor:` task: which entry, into which workspace of which store."""

    store: str
    deployment: str
    target: str
    entry: Any  # vendor_cache.VendorEntry
    key: str
    max_age: float | None = None  # vendor.cache.ttl: how long a resolved source is trusted
    cache_url: str | None = None  # atmos.yaml's cache.url: the remote cache (`remotecache`)
    protected: bool = False  # the target has a promotion rule: a pull request's answer is a hint only


def cache_ttl(manifest: Manifest) -> float | None:
    """`vendor.cache.ttl` in seconds: after it, a source is asked again (a moved branch is picked up)."""
    from atmos_tasks.manifest import duration_seconds

    cache = manifest.model.vendor.cache
    return float(duration_seconds(cache.ttl)) if cache is not None and cache.ttl else None


def vendor_spec(config: RepoConfig, manifest: Manifest, target: str, entry: Any) -> VendorSpec:
    """The task's key is the entry; the object it resolved to is checked by `WorkspaceIntact`
    (a `vendor pull --update` that moves the lock re-materialises the workspace, and the task
    runs again)."""
    from atmos_tasks.remotecache import is_protected
    from vendor_cache.sources import subdir_of

    identity: dict[str, Any] = {
        "source": entry.source,
        "version": entry.version,
        "included": list(entry.included_paths),
        "excluded": list(entry.excluded_paths),
    }
    if subdir_of(entry.rendered_source):
        # The workspace of a `//` subdirectory is its source's whole tree: one vendored when
        # objects held the subdirectory alone is vendored again, and its plan runs again.
        identity["tree"] = True
    key = hash_json(identity)
    return VendorSpec(
        str(store_root(config, manifest)),
        manifest.name,
        target,
        entry,
        key,
        cache_ttl(manifest),
        config.cache_url,
        is_protected(manifest, target),
    )


# The store each process (and thread: `doit -P thread`) last vendored into, kept open for its next
# vendor task: opening its index (SQLite) and closing it again cost about 6 ms a task. A forked
# worker opens its own (diskcache would reconnect after a fork anyway); another store closes it.
_open_store: dict[tuple[int, int, str], Store] = {}
_open_store_lock = threading.Lock()


def _store(root: str) -> Store:
    from vendor_cache import Store

    worker = (os.getpid(), threading.get_ident())
    key = (*worker, root)
    with _open_store_lock:
        found = _open_store.get(key)
        if found is None:
            for other_key in [k for k in _open_store if k[:2] == worker or k[0] != worker[0]]:
                # A parent's connection is the parent's to close: a forked worker only drops it.
                other = _open_store.pop(other_key)
                if other_key[0] == worker[0]:
                    other.close()
            found = _open_store[key] = Store(root)
    return found


def vendor_component(spec: VendorSpec, verify: bool = False, cache: Any = None) -> dict[str, Any]:
    """The `vendor:` action: the module in its workspace, a failure as a value.

    With `verify`, the object is checked in full before use; a damaged one is evicted and fetched
    again, and `repaired` says which object it was and what was wrong with it. With a remote
    `cache` (`remotecache.CacheSpec`), an object the store lacks is pulled from it (verified)
    before the source is fetched, and a source fetched is pushed to it.
    """
    from atmos_tasks.remotecache import ObjectRemote, Session
    from vendor_cache import VendorError

    session = Session(cache)
    remote = ObjectRemote(session) if session.active else None
    try:
        done = _store(spec.store).vendor(
            spec.deployment, spec.target, spec.entry, max_age=spec.max_age, verify=verify, remote=remote
        )
    except VendorError as err:
        return {"status": "failed", "error": str(err)}
    except Exception as err:
        return {"status": "failed", "error": f"{type(err).__name__}: {err}"}
    result = {
        "status": "vendored",
        "digest": done.digest,
        "commit": done.commit,
        "path": str(done.path),
        "subdir": done.subdir,
        "source": spec.entry.rendered_source,
        "version": spec.entry.version,
        # Where the object came from: its source (fetched), the remote cache (pulled), or this
        # runner's store (another component's vendoring, or an earlier run, put it there).
        "from": "source" if done.fetched else "cache" if done.pulled else "store",
    }
    if done.repaired is not None:
        result["repaired"] = str(done.repaired)
    if remote is not None:
        remote.judge_hint(done.digest)
    return session.annotate(result)


# The stat cache each workspace's checks read, loaded once per process: a target of 300 vendored
# components checks 300 workspaces, and each check loaded the whole file again. What the checks
# hashed is kept when the process ends (a workspace is vendored moments before its first check,
# too new to keep then: without it, every later run read and hashed its files again).
_STAT_CACHES: dict[str, Any] = {}


def _keep_stat_caches() -> None:
    for cache in _STAT_CACHES.values():
        try:
            cache.save()
        except OSError:  # a read-only checkout, a full disk: a cache is a hint
            continue


class WorkspaceIntact:
    """Up to date only while the workspace still holds exactly the vendored object."""

    def __init__(self, root: str) -> None:
        self.root = root

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        if values.get("status") != "vendored":
            return False
        from atmos_tasks.hashing import StatCache
        from vendor_cache import is_intact

        cache = _STAT_CACHES.get(self.root)
        if cache is None:
            if not _STAT_CACHES:
                import atexit

                atexit.register(_keep_stat_caches)
            path = Path(self.root) / ".atmos" / "cache" / "stat-cache.json"
            cache = _STAT_CACHES[self.root] = StatCache(path)
        return bool(is_intact(Path(values["path"]), values["digest"], hash_file=cache.file))
