"""The content-addressable store of vendored modules (SPEC §7).

    <root>/objects/<digest>/…                      immutable trees, files and directories read-only
    <root>/index/                                  diskcache: fetch identity → digest, digest → stats
    <root>/deployments/<dep>/<target>/terraform/<c>/   workspaces: links into objects (see _link_tree)
    <root>/deployments/<dep>/<target>/.vendor-lock.yaml
    <root>/tmp/, <root>/locks/                     scratch space and flock files

Writes follow one pattern: build under a `.vendor-tmp-*` name on the same filesystem, then rename into
place, so readers see a whole object (or workspace, or lock) or none. Work that two processes might
both do is guarded the way pre-commit guards its clones: check, take an exclusive lock, check again.
Every operation holds the store lock shared and `clean` holds it exclusively, so `clean` never pulls
an object from under a running pull, and every temp name it finds is garbage by construction.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import blake3

from vendor_cache.archive import download, extract
from vendor_cache.digest import (
    CHUNK,
    DIGEST,
    IGNORED_DIRS,
    IGNORED_FILES,
    digest_entries,
    file_digest,
    is_executable,
    iter_tree,
    tree_digest,
)
from vendor_cache.entries import VendorEntry
from vendor_cache.errors import LockError, LockMismatchError, MissingObjectError, SourceError, VendorError
from vendor_cache.fsops import (
    flock,
    is_temp_name,
    make_read_only,
    make_temp_dir,
    remove_tree,
    temp_name,
    touch,
)
from vendor_cache.git import fetch_commit
from vendor_cache.globs import PathFilter, path_filter
from vendor_cache.lockfile import LockedComponent, VendorLock, read_lock, write_lock
from vendor_cache.progress import Progress, report
from vendor_cache.sources import GitSource, LocalSource, locate_subdir, parse_source

if TYPE_CHECKING:
    import diskcache

LOCK_FILE = ".vendor-lock.yaml"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY


@dataclass(frozen=True)
class FetchResult:
    digest: str
    commit: str | None
    source: str
    from_cache: bool


@dataclass(frozen=True)
class ObjectInfo:
    files: int
    bytes: int


@dataclass(frozen=True)
class Materialized:
    path: Path
    linked: int
    copied: int


@dataclass(frozen=True)
class VendoredComponent:
    component: str
    digest: str
    commit: str | None
    path: Path
    fetched: bool
    materialized: bool


@dataclass(frozen=True)
class ComponentStatus:
    component: str
    locked: LockedComponent | None
    lock_matches: bool
    object_present: bool
    workspace_intact: bool


@dataclass(frozen=True)
class StoreStats:
    """Sizes are apparent bytes (st_size); a file reached through several links counts once wherever shared.

    `workspace_bytes` is what the workspaces would take as independent copies, `disk_bytes` what
    objects and workspaces take together, `referenced_bytes` the part of the objects that some
    workspace links to, and `saved_bytes` what sharing the objects' files saves across workspaces.
    """

    objects: int
    object_bytes: int
    workspaces: int
    workspace_bytes: int
    referenced_bytes: int
    disk_bytes: int
    saved_bytes: int


@dataclass(frozen=True)
class CleanReport:
    objects: tuple[str, ...]
    workspaces: tuple[Path, ...]
    temporary: tuple[Path, ...]
    bytes: int
    dry_run: bool


def is_intact(
    path: Path, digest: str, hash_file: Callable[[Path, os.stat_result], str] | None = None
) -> bool:
    """Whether the workspace at `path` shows exactly the tree `digest` (Terraform's own files aside);
    a folder link whose object is gone leaves it incomplete, so not intact."""
    return path.is_dir() and tree_digest(path, hash_file, follow_dir_links=True) == digest


class Store:
    """The store under `root` (created on first write). Close it, or use it as a context manager."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.objects_dir = self.root / "objects"
        self.deployments_dir = self.root / "deployments"
        self._index: diskcache.Cache | None = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    # -- layout -------------------------------------------------------------------------------

    def object_path(self, digest: str) -> Path:
        if not DIGEST.match(digest):
            raise VendorError(f"{digest!r} is not a tree digest", hint="digests are 64 lowercase hex digits")
        return self.objects_dir / digest

    def has(self, digest: str) -> bool:
        return self.object_path(digest).is_dir()

    def object_info(self, digest: str) -> ObjectInfo | None:
        """Files and bytes of an object, from the index (no walk); None when the index does not know it."""
        value = self._cache.get(("object", digest))
        if not isinstance(value, dict) or not self.has(digest):
            return None
        return ObjectInfo(value["files"], value["bytes"])

    def objects(self) -> list[str]:
        try:
            return sorted(name for name in os.listdir(self.objects_dir) if DIGEST.match(name))
        except FileNotFoundError:
            return []

    def target_dir(self, deployment: str, target: str) -> Path:
        for kind, name in (("deployment", deployment), ("target", target)):
            if not NAME.match(name):
                raise VendorError(f"{kind} name {name!r} cannot name a directory", hint="use [A-Za-z0-9._-]")
        return self.deployments_dir / deployment / target

    def workspace(self, deployment: str, target: str, component: str) -> Path:
        return self.target_dir(deployment, target) / "terraform" / component

    def lock_path(self, deployment: str, target: str) -> Path:
        return self.target_dir(deployment, target) / LOCK_FILE

    # -- objects ------------------------------------------------------------------------------

    def insert_tree(
        self,
        path: Path | str,
        *,
        included: Iterable[str] = (),
        excluded: Iterable[str] = (),
        progress: Progress | None = None,
    ) -> str:
        """Copy the selected files of the directory `path` into the store; returns the tree digest."""
        tree = Path(path)
        if not tree.is_dir():
            raise SourceError(f"{tree} is not a directory", hint="insert a module directory")
        with self._using(), self._scratch() as scratch:
            return self._insert(
                tree, path_filter(included, excluded), scratch, str(tree), progress, move=False
            )

    def fetch(
        self,
        entry: VendorEntry,
        *,
        update: bool = False,
        max_age: float | None = None,
        progress: Progress | None = None,
    ) -> FetchResult:
        """The object for `entry`: from the index when known (no network), unless `update` or stale.

        An index entry older than `max_age` seconds counts as unknown.

        Local sources are always re-read, since their content changes without their name changing.
        """
        rendered = entry.rendered_source
        source = parse_source(rendered, base_dir=entry.base_dir or Path.cwd())
        selected = path_filter(entry.included_paths, entry.excluded_paths)
        with self._using():
            if isinstance(source, LocalSource):
                return self._fetch_local(entry, source.path, rendered, selected, progress)
            key = ("source", rendered, entry.version, entry.included_paths, entry.excluded_paths)
            if not update and (hit := self._lookup(key, rendered, max_age)):
                return hit
            with self._exclusive("source-" + blake3.blake3(repr(key).encode()).hexdigest()[:32]):
                # Another process may have fetched this source while we waited for the lock.
                if not update and (hit := self._lookup(key, rendered, max_age)):
                    return hit
                with self._scratch() as scratch:
                    if isinstance(source, GitSource):
                        tree = scratch / "checkout"
                        commit: str | None = fetch_commit(
                            source.url, source.ref, tree, subject=entry.component, progress=progress
                        )
                    else:
                        tree, commit = scratch / "extracted", None
                        archive = scratch / "archive"
                        download(source.url, archive, subject=entry.component, progress=progress)
                        extract(archive, source.kind, tree, source=rendered, progress=progress)
                    module = locate_subdir(tree, source.subdir, source=rendered)
                    digest = self._insert(module, selected, scratch, entry.component, progress, move=True)
                self._cache.set(key, {"digest": digest, "commit": commit, "fetched": time.time()})
        return FetchResult(digest, commit, rendered, from_cache=False)

    def verify(self, digest: str, *, progress: Progress | None = None) -> bool:
        """Recompute the object's digest; on a mismatch (or no object) evict it and its index entries."""
        report(progress, "verify", digest)
        path = self.object_path(digest)
        if path.is_dir() and tree_digest(path) == digest:
            return True
        with self._using():
            self._evict(digest)
        return False

    def evict(self, digest: str) -> None:
        """Remove an object and every index entry that points at it, so the next fetch fetches again."""
        with self._using():
            self._evict(digest)

    # -- workspaces ---------------------------------------------------------------------------

    def materialize(
        self, digest: str, dest: Path | str, *, link: bool = True, progress: Progress | None = None
    ) -> Materialized:
        """Make `dest` show the object's tree: linked (see `_link_tree`) unless `link` is False or the
        object is on another filesystem or refuses hard links; then an independent copy.

        An existing `dest` is replaced by a rename: it is the old tree or the new one, never a mix
        (for an instant between the two renames it is absent).
        """
        dest = Path(dest)
        source = self.object_path(digest)
        with self._using():
            if not source.is_dir():
                raise MissingObjectError(
                    f"object {digest} is not in the store {self.objects_dir}",
                    hint="fetch it first (vendor pull without --frozen)",
                )
            report(progress, "materialize", str(dest))
            name = blake3.blake3(str(dest.absolute()).encode()).hexdigest()[:32]
            listing = self._listing(digest, source)
            # Shared with other materialisations, exclusive with an eviction (`--verify`, `clean`),
            # which would otherwise pull the object from under the links being checked.
            with (
                flock(self._lock_file(f"object-{digest}"), shared=True),
                self._exclusive(f"workspace-{name}"),
            ):
                build = make_temp_dir(dest.parent)
                try:
                    linked = copied = 0
                    if link and os.stat(source).st_dev == os.stat(build).st_dev:
                        try:
                            linked = _link_tree(source, build, dest, listing, digest)
                        except _LinkRefused:
                            remove_tree(build)
                            build.mkdir()
                    if not linked:
                        copied = _copy_tree(source, build, listing, digest)
                    _swap_in(build, dest)
                finally:
                    remove_tree(build)
            touch(source)
        return Materialized(dest, linked, copied)

    def vendor(
        self,
        deployment: str,
        target: str,
        entry: VendorEntry,
        *,
        frozen: bool = False,
        update: bool = False,
        verify: bool = False,
        link: bool = True,
        max_age: float | None = None,
        progress: Progress | None = None,
    ) -> VendoredComponent:
        """Vendor one component into its workspace and record it in the target's lock.

        With `frozen`, the lock alone decides: no network, no lock writes, and an error when the lock
        is missing, out of date with `entry`, or names an object the store does not hold.
        Without it, a matching lock entry is reused (no network) unless `update`; anything else is
        fetched and the lock is updated. `verify` re-hashes the object before use and evicts and
        re-fetches a corrupt one. With `max_age` (seconds), a lock or index entry resolved longer ago
        than that is resolved again (a branch that moved is picked up; a tag resolves to the same).
        """
        if frozen and update:
            raise VendorError("--frozen and --update contradict each other", hint="drop one of them")
        lock_path = self.lock_path(deployment, target)
        dest = self.workspace(deployment, target, entry.component)
        with _blame(entry), self._using():
            locked = read_lock(lock_path).components.get(entry.component)
            fetched = False
            if frozen:
                digest, commit = self._frozen(lock_path, entry, locked, dest, verify=verify)
            elif (
                locked
                and locked.matches(entry)
                and not update
                and max_age is None
                and not self._is_local(entry)
                and (self.verify(locked.digest, progress=progress) if verify else self.has(locked.digest))
            ):
                digest, commit = locked.digest, locked.commit
            else:
                result = self.fetch(entry, update=update, max_age=max_age, progress=progress)
                if verify and result.from_cache and not self.verify(result.digest, progress=progress):
                    result = self.fetch(entry, update=True, progress=progress)
                digest, commit, fetched = result.digest, result.commit, not result.from_cache
            materialized = not is_intact(dest, digest)
            if materialized:
                self.materialize(digest, dest, link=link, progress=progress)
            if not frozen:
                self._update_lock(
                    lock_path, {entry.component: LockedComponent.from_entry(entry, digest, commit)}
                )
        return VendoredComponent(entry.component, digest, commit, dest, fetched, materialized)

    def vendor_target(
        self,
        deployment: str,
        target: str,
        entries: Iterable[VendorEntry],
        *,
        frozen: bool = False,
        update: bool = False,
        verify: bool = False,
        link: bool = True,
        max_age: float | None = None,
        progress: Progress | None = None,
    ) -> list[VendoredComponent]:
        """Vendor each entry of a target (one per component); unless `frozen`, unlock other components."""
        chosen = list(entries)
        _check_disjoint([e.component for e in chosen])
        results = [
            self.vendor(
                deployment,
                target,
                e,
                frozen=frozen,
                update=update,
                verify=verify,
                link=link,
                max_age=max_age,
                progress=progress,
            )
            for e in chosen
        ]
        if not frozen:
            with self._using():
                self._update_lock(self.lock_path(deployment, target), {}, keep={e.component for e in chosen})
        return results

    def status(self, deployment: str, target: str, entries: Iterable[VendorEntry]) -> list[ComponentStatus]:
        """Offline state of each entry: locked digest, lock up to date, object present, workspace intact."""
        lock = read_lock(self.lock_path(deployment, target))
        statuses = []
        for entry in entries:
            locked = lock.components.get(entry.component)
            present = locked is not None and self.has(locked.digest)
            statuses.append(
                ComponentStatus(
                    component=entry.component,
                    locked=locked,
                    lock_matches=locked is not None and locked.matches(entry),
                    object_present=present,
                    workspace_intact=locked is not None
                    and is_intact(self.workspace(deployment, target, entry.component), locked.digest),
                )
            )
        return statuses

    # -- accounting and garbage collection -----------------------------------------------------

    def stats(self) -> StoreStats:
        object_inodes: dict[tuple[int, int], int] = {}
        digests = self.objects()
        for digest in digests:
            for _, info in iter_tree(self.objects_dir / digest):
                object_inodes[(info.st_dev, info.st_ino)] = info.st_size
        workspace_inodes: dict[tuple[int, int], int] = {}
        workspace_bytes = workspaces = 0
        for target_dir, lock in self._locks():
            for component in lock.components:
                path = target_dir / "terraform" / component
                if not path.is_dir():
                    continue
                workspaces += 1
                for _, info in iter_tree(path, follow_dir_links=True):
                    workspace_bytes += info.st_size
                    workspace_inodes[(info.st_dev, info.st_ino)] = info.st_size
        shared = workspace_inodes.keys() & object_inodes.keys()
        object_bytes = sum(object_inodes.values())
        return StoreStats(
            objects=len(digests),
            object_bytes=object_bytes,
            workspaces=workspaces,
            workspace_bytes=workspace_bytes,
            referenced_bytes=sum(object_inodes[key] for key in shared),
            disk_bytes=object_bytes
            + sum(size for key, size in workspace_inodes.items() if key not in shared),
            saved_bytes=workspace_bytes - sum(workspace_inodes.values()),
        )

    def clean(self, *, older_than: float | None = None, dry_run: bool = True) -> CleanReport:
        """Objects no lock references, workspaces no lock lists, and leftovers of interrupted runs.

        `older_than` (seconds) spares objects and workspaces used more recently. With `dry_run` nothing
        is removed; the report says what would be. An unreadable lock file stops the clean: an
        object it might reference is never deleted on a guess.
        """
        now = time.time()

        def old_enough(path: Path) -> bool:
            return older_than is None or now - path.lstat().st_mtime >= older_than

        with flock(self._lock_file("store"), shared=False):
            referenced: set[str] = set()
            workspaces: list[Path] = []
            temporary = _children(self.root / "tmp")
            for target_dir, lock in self._locks():
                referenced.update(c.digest for c in lock.components.values())
                stale, temps = _unlisted(target_dir, set(lock.components))
                for path in stale:
                    if old_enough(path):
                        workspaces.append(path)
                    else:  # kept: so are the objects its folders link to
                        referenced.update(_linked_objects(path))
                temporary.extend(temps)
            objects = [d for d in self.objects() if d not in referenced and old_enough(self.objects_dir / d)]
            size = sum(_tree_bytes(p) for p in [*(self.objects_dir / d for d in objects), *workspaces])
            if not dry_run:
                for digest in objects:
                    self._evict(digest)
                for path in [*workspaces, *temporary]:
                    remove_tree(path)
                # Every other lock is taken under the shared store lock, so none is held now and
                # their files can go without two processes ever locking different inodes.
                for path in _children(self.root / "locks"):
                    if path != self._lock_file("store"):
                        path.unlink()
        return CleanReport(tuple(objects), tuple(workspaces), tuple(temporary), size, dry_run)

    # -- internals ----------------------------------------------------------------------------

    @property
    def _cache(self) -> diskcache.Cache:
        if self._index is None:
            import diskcache

            # Never cull: an index entry is only dropped with its object.
            self._index = diskcache.Cache(str(self.root / "index"), eviction_policy="none")
        return self._index

    def _lock_file(self, name: str) -> Path:
        return self.root / "locks" / f"{name}.lock"

    @contextmanager
    def _using(self) -> Iterator[None]:
        with flock(self._lock_file("store"), shared=True):
            yield

    def _exclusive(self, name: str) -> AbstractContextManager[None]:
        return flock(self._lock_file(name))

    @contextmanager
    def _scratch(self) -> Iterator[Path]:
        path = make_temp_dir(self.root / "tmp")
        try:
            yield path
        finally:
            remove_tree(path)

    def _evict(self, digest: str) -> None:
        path = self.object_path(digest)
        with self._exclusive(f"object-{digest}"):
            if path.is_dir():
                with self._scratch() as scratch:
                    # Move it out of objects/ first: a reader sees the whole object or none of it.
                    os.chmod(path, 0o755)
                    os.rename(path, scratch / "evicted")
            index = self._cache
            index.delete(("object", digest))
            index.delete(("listing", digest))
            for key in list(index.iterkeys()):
                value = index.get(key)
                if isinstance(value, dict) and value.get("digest") == digest:
                    index.delete(key)

    def _lookup(self, key: tuple[Any, ...], rendered: str, max_age: float | None) -> FetchResult | None:
        value = self._cache.get(key)
        if not isinstance(value, dict) or not self.has(value["digest"]):
            return None
        if max_age is not None and time.time() - value["fetched"] > max_age:
            return None
        touch(self.object_path(value["digest"]))
        return FetchResult(value["digest"], value["commit"], rendered, from_cache=True)

    def _fetch_local(
        self, entry: VendorEntry, path: Path, rendered: str, selected: PathFilter, progress: Progress | None
    ) -> FetchResult:
        if not path.is_dir():
            raise SourceError(
                f"component {entry.component}: local source {path} is not a directory",
                hint="relative paths start at the vendor manifest's folder (or the entry's base_dir)",
            )
        files = _selected_files(path, selected, rendered)
        digest = digest_entries((rel, is_executable(info), file_digest(path / rel)) for rel, info in files)
        if self.has(digest):
            touch(self.object_path(digest))
            return FetchResult(digest, None, rendered, from_cache=True)
        with self._scratch() as scratch:
            digest = self._insert(path, selected, scratch, entry.component, progress, move=False)
        return FetchResult(digest, None, rendered, from_cache=False)

    def _listing(self, digest: str, source: Path) -> dict[str, list[str]]:
        """The object's folders and files, kept at insert; an object stored before listings were kept
        is walked once and its listing kept from then on."""
        listing = self._cache.get(("listing", digest))
        if not isinstance(listing, dict):
            listing = _listing(rel for rel, _ in iter_tree(source))
            self._cache.set(("listing", digest), listing)
        return listing

    def _insert(
        self,
        tree: Path,
        selected: PathFilter,
        scratch: Path,
        subject: str,
        progress: Progress | None,
        *,
        move: bool,
    ) -> str:
        """Stage the selected files of `tree` in `scratch`, then publish them as an object.

        With `move`, `tree` is a scratch checkout and its files are renamed rather than copied.
        """
        files = _selected_files(tree, selected, subject)
        stage = scratch / "object"
        stage.mkdir()
        made = {stage}
        hashed: dict[str, tuple[str, bool, str]] = {}
        # Links first: moving the file a symlink points at would leave the link dangling.
        for done, (rel, info) in enumerate(sorted(files, key=lambda f: not (tree / f[0]).is_symlink()), 1):
            src, dst = tree / rel, stage / rel
            if dst.parent not in made:
                dst.parent.mkdir(parents=True, exist_ok=True)
                made.add(dst.parent)
            if move and not src.is_symlink():
                os.rename(src, dst)
                digest = file_digest(dst)
            else:
                digest = _copy_hashing(src, dst)
            os.chmod(dst, 0o555 if is_executable(info) else 0o444)
            hashed[rel] = (rel, is_executable(info), digest)
            report(progress, "insert", subject, done, len(files))
        digest = digest_entries(hashed[rel] for rel, _ in files)
        self._publish(stage, digest)
        self._cache.set(("object", digest), {"files": len(files), "bytes": sum(i.st_size for _, i in files)})
        self._cache.set(("listing", digest), _listing(rel for rel, _ in files))
        return digest

    def _publish(self, stage: Path, digest: str) -> None:
        target = self.object_path(digest)
        if target.is_dir():
            return
        with self._exclusive(f"object-{digest}"):
            # Another process may have published the same tree while we staged ours.
            if target.is_dir():
                return
            make_read_only(stage)
            self.objects_dir.mkdir(parents=True, exist_ok=True)
            os.rename(stage, target)
            os.chmod(target, 0o555)

    def _frozen(
        self, lock_path: Path, entry: VendorEntry, locked: LockedComponent | None, dest: Path, *, verify: bool
    ) -> tuple[str, str | None]:
        """The locked (digest, commit) for `entry`, usable offline, or a LockError saying why not."""
        again = "run vendor pull without --frozen"
        if locked is None:
            where = (
                f"has no entry for component {entry.component!r}" if lock_path.exists() else "does not exist"
            )
            raise LockError(
                f"--frozen needs the vendor lock, and {lock_path} {where}", hint=f"{again} to write it"
            )
        differences = locked.differences(entry)
        if differences:
            raise LockMismatchError(
                f"component {entry.component!r} no longer matches {lock_path}: {'; '.join(differences)}",
                hint=f"{again} to update the lock, or restore the locked source and version",
            )
        # A workspace that shows the locked tree is left as it is (its folders link into the object,
        # so this also says the object is there).
        if is_intact(dest, locked.digest):
            return locked.digest, locked.commit
        present = self.has(locked.digest)
        if present and (not verify or self.verify(locked.digest)):
            return locked.digest, locked.commit
        state = "corrupt (now evicted)" if present else "missing"
        raise MissingObjectError(
            f"component {entry.component!r}: locked object {locked.digest} is {state} in {self.objects_dir}",
            hint=f"{again} to fetch it again",
        )

    def _update_lock(
        self, lock_path: Path, components: dict[str, LockedComponent], keep: set[str] | None = None
    ) -> None:
        # Components of one target are vendored in parallel (doit -n), each updating this one file.
        with self._exclusive("lock-" + blake3.blake3(str(lock_path).encode()).hexdigest()[:32]):
            current = read_lock(lock_path)
            merged = {**current.components, **components}
            if keep is not None:
                merged = {name: value for name, value in merged.items() if name in keep}
            if merged != dict(current.components) or not lock_path.exists():
                write_lock(lock_path, VendorLock(merged))

    def _locks(self) -> Iterator[tuple[Path, VendorLock]]:
        for target_dir in sorted(self.deployments_dir.glob("*/*")):
            if target_dir.is_dir() and not is_temp_name(target_dir.name):
                yield target_dir, read_lock(target_dir / LOCK_FILE)

    @staticmethod
    def _is_local(entry: VendorEntry) -> bool:
        return isinstance(
            parse_source(entry.rendered_source, base_dir=entry.base_dir or Path.cwd()), LocalSource
        )


def _selected_files(tree: Path, selected: PathFilter, subject: str) -> list[tuple[str, os.stat_result]]:
    """The files to vendor from `tree`: no symlink may leave it, no directory symlink may stay unexcluded."""
    root = tree.resolve()
    files = []
    for rel, info in iter_tree(tree):
        if not selected(rel):
            continue
        path = tree / rel
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise SourceError(
                f"{subject}: {rel} is a symlink to {os.readlink(path)}, outside the module",
                hint="vendor only modules whose links stay inside them (or exclude the link)",
            )
        files.append((rel, info))
    # Tree digests do not follow directory links, so their content would silently go missing.
    for directory, subdirs, _ in os.walk(tree):
        subdirs[:] = [d for d in subdirs if d not in IGNORED_DIRS]
        for name in subdirs:
            rel = Path(directory, name).relative_to(tree).as_posix()
            if Path(directory, name).is_symlink() and not selected.excludes(rel):
                raise SourceError(
                    f"{subject}: {rel} is a symlink to a directory, which vendoring does not follow",
                    hint=f"add {rel!r} to excluded_paths, or vendor the directory it points to instead",
                )
    if not files:
        raise SourceError(
            f"{subject}: nothing to vendor (no files, or included_paths/excluded_paths removed them all)",
            hint="check the subdirectory after // and the path globs",
        )
    return files


def _copy_hashing(src: Path, dst: Path) -> str:
    hasher = blake3.blake3()
    with open(src, "rb") as reader, open(dst, "xb") as writer:
        while chunk := reader.read(CHUNK):
            hasher.update(chunk)
            writer.write(chunk)
    return hasher.hexdigest()


def _listing(files: Iterable[str]) -> dict[str, list[str]]:
    """An object's folders (parents before children) and files: materialising from it skips the walk."""
    paths = sorted(files)
    folders = {str(parent) for rel in paths for parent in Path(rel).parents if str(parent) != "."}
    return {"dirs": sorted(folders), "files": paths}


class _LinkRefused(Exception):
    """The filesystem refused a hard link (EXDEV across devices, EPERM where links are forbidden)."""


def _link_tree(source: Path, build: Path, dest: Path, listing: dict[str, list[str]], digest: str) -> int:
    """Fill `build`, which becomes `dest`, with links into the object `source`; returns the files shared.

    The workspace's own folder holds a hard link per top-level file and, for each top-level folder, a
    relative symlink to the object's read-only folder. A tool run in the workspace writes only in its
    own folder (Terraform: `.terraform/`, the lock file, local state), never in the store. This is a
    few entries for any module size, where re-creating every folder and linking every file costs a
    metadata write each (a 1,000-file module: 1,164; see docs/vendoring.md for the figures).
    """
    top_dirs = [rel for rel in listing["dirs"] if "/" not in rel]
    top_files = [rel for rel in listing["files"] if "/" not in rel]
    # Relative links survive moving the whole store; physical paths keep them right under symlinks.
    up = os.path.relpath(os.path.realpath(source), os.path.join(os.path.realpath(dest.parent), dest.name))
    src_dir = os.open(source, DIR_FLAGS)
    try:
        dst_dir = os.open(build, DIR_FLAGS)
        try:
            for rel in top_dirs:
                if not os.path.isdir(os.path.join(source, rel)):
                    raise _damaged(digest, rel)
                try:
                    os.symlink(f"{up}/{rel}", rel, dir_fd=dst_dir)
                except OSError as err:
                    raise _LinkRefused from err
            for rel in top_files:
                try:
                    os.link(rel, rel, src_dir_fd=src_dir, dst_dir_fd=dst_dir)
                except FileNotFoundError:
                    raise _damaged(digest, rel) from None
                except OSError as err:
                    if not os.path.isfile(os.path.join(source, rel)):
                        raise _damaged(digest, rel) from None
                    raise _LinkRefused from err
        finally:
            os.close(dst_dir)
    finally:
        os.close(src_dir)
    _check_complete(build, listing, digest)
    return len(listing["files"])


def _check_complete(build: Path, listing: dict[str, list[str]], digest: str) -> None:
    """The files reached through the links are exactly the object's: a file deleted from (or added
    to) the store is caught here, by name, before the workspace is swapped in (a walk, no hashing:
    content is `--verify`'s job). Names that tree digests ignore are ignored here too, or an object
    `--verify` calls sound could never be materialised."""
    found: set[str] = set()

    def walk(directory: str, prefix: str) -> None:
        with os.scandir(directory) as scan:
            for entry in scan:
                if entry.is_dir():  # follows the folder links; d_type answers for the rest
                    if entry.name not in IGNORED_DIRS:
                        walk(entry.path, f"{prefix}{entry.name}/")
                elif entry.name not in IGNORED_FILES:
                    found.add(prefix + entry.name)

    walk(str(build), "")
    expected = set(listing["files"])
    if found != expected:
        missing = sorted(expected - found)
        if missing:
            raise _damaged(digest, missing[0])
        raise VendorError(
            f"object {digest} is damaged: {sorted(found - expected)[0]} is not part of it",
            hint="run vendor pull --verify to evict it and fetch it again",
        )


def _copy_tree(source: Path, build: Path, listing: dict[str, list[str]], digest: str) -> int:
    """Fill `build` with an independent copy of the object: one folder and one file at a time."""
    src_dir = os.open(source, DIR_FLAGS)
    try:
        dst_dir = os.open(build, DIR_FLAGS)
        try:
            for rel in listing["dirs"]:
                os.mkdir(rel, dir_fd=dst_dir)
            for rel in listing["files"]:
                try:
                    _copy_file(rel, src_dir, dst_dir, stat.S_IMODE(os.stat(rel, dir_fd=src_dir).st_mode))
                except FileNotFoundError:
                    raise _damaged(digest, rel) from None
        finally:
            os.close(dst_dir)
    finally:
        os.close(src_dir)
    return len(listing["files"])


def _damaged(digest: str, rel: str) -> VendorError:
    return VendorError(
        f"object {digest} is damaged: {rel} is missing",
        hint="run vendor pull --verify to evict it and fetch it again",
    )


def _copy_file(name: str, src_dir: int, dst_dir: int, mode: int) -> None:
    with (
        open(os.open(name, os.O_RDONLY, dir_fd=src_dir), "rb") as reader,
        open(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode, dir_fd=dst_dir), "wb") as writer,
    ):
        shutil.copyfileobj(reader, writer)


@contextmanager
def _blame(entry: VendorEntry) -> Iterator[None]:
    """Errors raised while vendoring `entry` name where the entry is written."""
    try:
        yield
    except VendorError as err:
        if err.origin is None and entry.origin is not None:
            err.origin = str(entry.origin)
        raise


def _swap_in(build: Path, dest: Path) -> None:
    if not os.path.lexists(dest):
        os.rename(build, dest)
        return
    aside = dest.parent / temp_name()
    os.rename(dest, aside)
    try:
        os.rename(build, dest)
    except BaseException:
        os.rename(aside, dest)
        raise
    remove_tree(aside)


def _check_disjoint(components: list[str]) -> None:
    names = set(components)
    if len(names) != len(components):
        twice = sorted({c for c in components if components.count(c) > 1})
        raise VendorError(
            f"more than one vendor entry for {', '.join(twice)}",
            hint="choose one entry per component (see select_entries)",
        )
    for name in names:
        parts = name.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in names:
                raise VendorError(
                    f"component {name!r} would be vendored inside component {'/'.join(parts[:depth])!r}",
                    hint="rename one of them: a workspace cannot contain another",
                )


def _unlisted(target_dir: Path, components: set[str]) -> tuple[list[Path], list[Path]]:
    """Workspaces under `target_dir` that no lock entry lists, and leftover temp files and dirs."""
    parents = {"/".join(c.split("/")[:i]) for c in components for i in range(1, c.count("/") + 1)}
    stale: list[Path] = []
    temps = [p for p in _children(target_dir) if is_temp_name(p.name)]

    def walk(directory: Path, prefix: str) -> None:
        for path in _children(directory):
            rel = prefix + path.name
            if is_temp_name(path.name):
                temps.append(path)
            elif rel in parents and path.is_dir() and not path.is_symlink():
                walk(path, rel + "/")
            elif rel not in components:
                stale.append(path)

    walk(target_dir / "terraform", "")
    return stale, temps


def _linked_objects(workspace: Path) -> set[str]:
    """Digests of the objects a workspace's folder links point into."""
    digests = set()
    for path in _children(workspace):
        if path.is_symlink():
            parts = Path(os.readlink(path)).parts
            for before, digest in pairwise(parts):
                if before == "objects" and DIGEST.fullmatch(digest):
                    digests.add(digest)
    return digests


def _children(directory: Path) -> list[Path]:
    try:
        return sorted(directory.iterdir())
    except FileNotFoundError:
        return []


def _tree_bytes(path: Path) -> int:
    if not path.is_dir() or path.is_symlink():
        return path.lstat().st_size
    return sum(info.st_size for _, info in iter_tree(path))
