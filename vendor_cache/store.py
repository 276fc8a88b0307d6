"""The content-addressable store of vendored modules (SPEC §7).

    <root>/objects/<digest>/…                      immutable trees, files and directories read-only: a
                                                   source's whole tree (the module is a folder in it)
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

import contextlib
import dataclasses
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
from vendor_cache.integrity import FILE, FOLDER, Damage, damage, scan
from vendor_cache.lockfile import LockedComponent, VendorLock, read_lock, write_lock
from vendor_cache.progress import Progress, report
from vendor_cache.remote import Remote, Resolved, pack
from vendor_cache.sources import GitSource, LocalSource, locate_subdir, parse_source

if TYPE_CHECKING:
    import diskcache

LOCK_FILE = ".vendor-lock.yaml"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY
# Never through a link: an object's folder or file replaced by one is damage, not a way out.
NOFOLLOW_DIR = DIR_FLAGS | os.O_NOFOLLOW
ABSENT = Damage(".", "missing", "the object is not in the store")


@dataclass(frozen=True)
class FetchResult:
    """The object of a source's whole tree, and where the module is in it (`subdir`, "" for its root:
    the source's `//` subdirectory with any glob resolved)."""

    digest: str
    commit: str | None
    source: str
    from_cache: bool
    subdir: str = ""
    # Pulled from a `Remote` (verified), not fetched from the source.
    from_remote: bool = False


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
class Repair:
    """An object that verification found damaged, evicted and fetched again: say so loudly."""

    digest: str
    damage: tuple[Damage, ...]

    def __str__(self) -> str:
        return f"object {self.digest} was damaged ({_shown(self.damage)}): evicted and fetched again"


@dataclass(frozen=True)
class VendoredComponent:
    """A component in its workspace. `path` is the workspace, which shows the object's whole tree;
    the module is `module`, the folder `subdir` of it (the workspace itself when `subdir` is "")."""

    component: str
    digest: str
    commit: str | None
    path: Path
    fetched: bool
    materialized: bool
    repaired: Repair | None = None  # with `verify`: the damaged object this run replaced
    subdir: str = ""
    pulled: bool = False  # from a `Remote`, not the source (`fetched` is then False)

    @property
    def module(self) -> Path:
        return self.path / self.subdir if self.subdir else self.path


@dataclass(frozen=True)
class ComponentStatus:
    component: str
    locked: LockedComponent | None
    lock_matches: bool
    object_present: bool
    workspace_intact: bool
    object_damage: tuple[Damage, ...] = ()  # how the locked object differs from what it should hold


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
        subdir: str = "",
    ) -> str:
        """Copy the directory `path` into the store; returns the tree digest.

        `included`/`excluded` select among the files of the module, the folder `subdir` of the tree
        (the tree itself by default), with paths relative to it; the rest of the tree is kept whole.
        """
        tree = Path(path)
        if not tree.is_dir():
            raise SourceError(f"{tree} is not a directory", hint="insert a module directory")
        if subdir:
            subdir = _relative(locate_subdir(tree, subdir, source=str(tree)), tree)
        with self._using(), self._scratch() as scratch:
            return self._insert(
                tree, path_filter(included, excluded), scratch, str(tree), progress, move=False, subdir=subdir
            )

    def fetch(
        self,
        entry: VendorEntry,
        *,
        update: bool = False,
        max_age: float | None = None,
        progress: Progress | None = None,
        remote: Remote | None = None,
    ) -> FetchResult:
        """The object for `entry`: from the index when known (no network), unless `update` or stale.

        The object is the source's whole tree (the repository at the ref, the archive's content) and
        the result's `subdir` says where the module is in it, as Terraform's module installer keeps a
        package whole and points at the `//` subdirectory: a module calling `../../` reaches its own
        repository. Two subdirectories of one repository at one ref share one object and one fetch;
        with path globs, which select among the module's own files, the object is per subdirectory.

        An index entry older than `max_age` seconds counts as unknown.

        Local sources are always re-read, since their content changes without their name changing.

        With a `remote`, an object the index does not know is asked of it before the source is
        fetched (not with `update`): a verified object from it is stored and indexed like a fetch;
        a source fetched is pushed to it.
        """
        rendered = entry.rendered_source
        source = parse_source(rendered, base_dir=entry.base_dir or Path.cwd())
        selected = path_filter(entry.included_paths, entry.excluded_paths)
        with self._using():
            if isinstance(source, LocalSource):
                return self._fetch_local(entry, source.path, rendered, selected, progress)
            globs = (entry.included_paths, entry.excluded_paths)
            scope = source.subdir if any(globs) else ""
            whole = repr(dataclasses.replace(source, subdir=""))
            key = ("tree", whole, entry.version, *globs, scope)
            if not update and (hit := self._module_in(self._lookup(key, rendered, max_age), source.subdir)):
                return hit
            with self._exclusive("source-" + blake3.blake3(repr(key).encode()).hexdigest()[:32]):
                # Another process may have fetched this source while we waited for the lock.
                if not update and (
                    hit := self._module_in(self._lookup(key, rendered, max_age), source.subdir)
                ):
                    return hit
                identity = repr(key)
                if remote is not None and not update:
                    pulled = self._pull(remote, identity, entry, rendered, progress)
                    if pulled is not None and (hit := self._module_in(pulled[0], source.subdir)):
                        if pulled[1]:
                            self._cache.set(
                                key, {"digest": hit.digest, "commit": hit.commit, "fetched": time.time()}
                            )
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
                    subdir = _relative(locate_subdir(tree, source.subdir, source=rendered), tree)
                    digest = self._insert(
                        tree, selected, scratch, entry.component, progress, move=True, subdir=subdir
                    )
                self._cache.set(key, {"digest": digest, "commit": commit, "fetched": time.time()})
                if remote is not None:
                    self._push(remote, identity, Resolved(digest, commit))
        return FetchResult(digest, commit, rendered, from_cache=False, subdir=subdir)

    def _pull(
        self, remote: Remote, identity: str, entry: VendorEntry, rendered: str, progress: Progress | None
    ) -> tuple[FetchResult, bool] | None:
        """The object `identity` resolved to on another runner, pulled and checked, and whether the
        answer may be indexed (`Resolved.shared`); None for a miss.

        The archive is extracted with the archive rules and its tree digest compared with the one
        the remote named before anything is published: a tampered or truncated object is refused
        (the remote is told why) and the source is fetched instead."""
        try:
            resolved = remote.resolve(identity)
        except Exception:  # a remote's failure is a miss, never a vendoring error
            return None
        if resolved is None or not DIGEST.match(resolved.digest):
            return None
        if not self.has(resolved.digest):
            with self._scratch() as scratch:
                archive, tree = scratch / "object.tar.gz", scratch / "pulled"
                try:
                    if not remote.pull(resolved.digest, archive):
                        return None
                except Exception:
                    return None
                try:
                    extract(
                        archive, "tar", tree, source=f"remote object {resolved.digest}", progress=progress
                    )
                    self._insert(
                        tree,
                        path_filter((), ()),
                        scratch,
                        entry.component,
                        progress,
                        move=True,
                        expected=resolved.digest,
                    )
                except VendorError as err:
                    remote.refused(resolved.digest, err.message)
                    return None
        touch(self.object_path(resolved.digest))
        found = FetchResult(resolved.digest, resolved.commit, rendered, from_cache=True, from_remote=True)
        return found, resolved.shared

    def _push(self, remote: Remote, identity: str, resolved: Resolved) -> None:
        with contextlib.suppress(Exception), self._scratch() as scratch:
            archive = scratch / "object.tar.gz"
            pack(self.object_path(resolved.digest), archive)
            remote.push(identity, resolved, archive)

    def check(self, digest: str, *, progress: Progress | None = None) -> tuple[Damage, ...]:
        """How the object differs from what it should hold (empty: sound); changes nothing.

        The object is read without following any link: every name, type and mode is compared with
        the listing kept when it was stored (files 0444, or 0555 when executable, folders 0555,
        nothing else), every file's content with its digest then, and all of them with the
        object's own name.
        """
        report(progress, "verify", digest)
        path = self.object_path(digest)
        try:
            found = scan(path, modes=True, hashes=True)
        except FileNotFoundError:  # absent, or evicted while it was read
            return (ABSENT,)
        listing = self._cache.get(("listing", digest))
        if not isinstance(listing, dict):
            listing = _listing_of(found)
        problems = tuple(damage(found, listing, digest))
        if not problems and "hashes" not in listing:
            self._cache.set(("listing", digest), _listing_of(found))
        return problems

    def verify(self, digest: str, *, progress: Progress | None = None) -> bool:
        """`check` the object; when it is damaged (or absent) evict it and its index entries."""
        return self._verify(digest, progress) == ()

    def evict(self, digest: str) -> None:
        """Remove an object and every index entry that points at it, so the next fetch fetches again."""
        with self._using():
            self._evict(digest)

    def _verify(self, digest: str, progress: Progress | None = None) -> tuple[Damage, ...] | None:
        """() for a sound object; its damage, once evicted; None for an absent one (index entries
        dropped all the same)."""
        problems = self.check(digest, progress=progress)
        if not problems:
            return ()
        with self._using():
            self._evict(digest)
        return None if problems == (ABSENT,) else problems

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
            # Names and types only (a walk of the folders, no hashing: content and modes are
            # `verify`'s job); a symlink anywhere in the object stops here, before any link is made.
            problems = damage(scan(source), listing)
            if problems:
                raise _damaged(digest, problems)
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
        remote: Remote | None = None,
    ) -> VendoredComponent:
        """Vendor one component into its workspace and record it in the target's lock.

        With `frozen`, the lock alone decides: no network, no lock writes, and an error when the lock
        is missing, out of date with `entry`, or names an object the store does not hold.
        Without it, a matching lock entry is reused (no network) unless `update`; anything else is
        fetched and the lock is updated. `verify` re-hashes the object before use and evicts and
        re-fetches a corrupt one. With `max_age` (seconds), a lock or index entry resolved longer ago
        than that is resolved again (a branch that moved is picked up; a tag resolves to the same).
        A `remote` is asked before a source is fetched, and told what was fetched (`fetch`).
        """
        if frozen and update:
            raise VendorError("--frozen and --update contradict each other", hint="drop one of them")
        lock_path = self.lock_path(deployment, target)
        dest = self.workspace(deployment, target, entry.component)
        with _blame(entry), self._using():
            locked = read_lock(lock_path).components.get(entry.component)
            fetched, pulled, repaired = False, False, None
            if frozen:
                digest, commit, subdir = self._frozen(
                    lock_path, entry, locked, dest, verify=verify, progress=progress
                )
            else:
                digest, commit, subdir, fetched, pulled, repaired = self._resolve(
                    entry,
                    locked,
                    update=update,
                    verify=verify,
                    max_age=max_age,
                    progress=progress,
                    remote=remote,
                )
            # A repaired object has new inodes: the workspace is linked to them even if it looks intact.
            materialized = repaired is not None or not is_intact(dest, digest)
            if materialized:
                self.materialize(digest, dest, link=link, progress=progress)
            if subdir and not (dest / subdir).is_dir():
                raise VendorError(
                    f"component {entry.component!r}: object {digest} has no folder {subdir!r}",
                    hint="run vendor pull --update to resolve the source again",
                )
            if not frozen:
                self._update_lock(
                    lock_path, {entry.component: LockedComponent.from_entry(entry, digest, commit, subdir)}
                )
        return VendoredComponent(
            entry.component, digest, commit, dest, fetched, materialized, repaired, subdir, pulled
        )

    def _resolve(
        self,
        entry: VendorEntry,
        locked: LockedComponent | None,
        *,
        update: bool,
        verify: bool,
        max_age: float | None,
        progress: Progress | None,
        remote: Remote | None = None,
    ) -> tuple[str, str | None, str, bool, bool, Repair | None]:
        """(digest, commit, subdir, fetched, pulled, repaired) for `entry` without `frozen`: the lock's
        object when it matches and is there (and, with `verify`, sound), else the index's, the
        remote's or a fetch."""
        repaired: Repair | None = None
        reuse = (
            locked is not None
            and locked.matches(entry)
            and not update
            and max_age is None
            and not self._is_local(entry)
        )
        if locked is not None and reuse and verify:
            problems = self._verify(locked.digest, progress)
            reuse = problems == ()
            if problems:
                repaired = Repair(locked.digest, problems)
        if locked is not None and reuse and (verify or self.has(locked.digest)):
            return locked.digest, locked.commit, locked.subdir, False, False, None
        try:
            result = self.fetch(entry, update=update, max_age=max_age, progress=progress, remote=remote)
            if verify and result.from_cache:
                problems = self._verify(result.digest, progress)
                if problems:
                    repaired = repaired or Repair(result.digest, problems)
                if problems != ():
                    result = self.fetch(entry, update=True, progress=progress, remote=remote)
        except VendorError as err:
            if repaired is not None:  # the damaged object is gone and nothing replaced it: say both
                err.message = (
                    f"object {repaired.digest} was damaged ({_shown(repaired.damage)}) and has been "
                    f"evicted, but could not be fetched again: {err.message}"
                )
            raise
        fetched = not result.from_cache
        return result.digest, result.commit, result.subdir, fetched, result.from_remote, repaired

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
        """Offline state of each entry: locked digest, lock up to date, object present and sound
        (`check`, which hashes it), workspace intact."""
        lock = read_lock(self.lock_path(deployment, target))
        statuses = []
        checked: dict[str, tuple[Damage, ...]] = {}
        for entry in entries:
            locked = lock.components.get(entry.component)
            present = locked is not None and os.path.lexists(self.object_path(locked.digest))
            if locked is not None and present and locked.digest not in checked:
                checked[locked.digest] = self.check(locked.digest)
            statuses.append(
                ComponentStatus(
                    component=entry.component,
                    locked=locked,
                    lock_matches=locked is not None and locked.matches(entry),
                    object_present=present,
                    workspace_intact=locked is not None
                    and is_intact(self.workspace(deployment, target, entry.component), locked.digest),
                    object_damage=checked.get(locked.digest, ()) if locked is not None else (),
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
            if os.path.lexists(path):
                with self._scratch() as scratch:
                    # Move it out of objects/ first: a reader sees the whole object or none of it.
                    # A link in its place is moved as it is, never followed.
                    if not path.is_symlink():
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

    def _module_in(self, found: FetchResult | None, subdir: str) -> FetchResult | None:
        """`found` (an object from the index) with the folder `subdir` located in it, a glob
        resolved. None when the object does not show that folder: the source is fetched again and
        the subdirectory looked for in the checkout, which says it is missing (or finds it behind
        a link the object left out), as for a first fetch."""
        if found is None:
            return None
        obj = self.object_path(found.digest)
        try:
            module = locate_subdir(obj, subdir, source=found.source)
        except SourceError:
            return None
        return dataclasses.replace(found, subdir=_relative(module, obj))

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
            listing = _listing_of(scan(source))
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
        subdir: str = "",
        expected: str | None = None,
    ) -> str:
        """Stage the selected files of `tree` in `scratch`, then publish them as an object.

        With `move`, `tree` is a scratch checkout and its files are renamed rather than copied.
        `selected` applies to the files of the module, the folder `subdir` of `tree`. With
        `expected`, a tree of another digest is refused before it is published.
        """
        files = _selected_files(tree, selected, subject, subdir)
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
        if expected is not None and digest != expected:
            raise SourceError(
                f"{subject}: the object's files hash to {digest}, not {expected}",
                hint="the copy was damaged or altered on its way: it is not used",
            )
        self._publish(stage, digest)
        self._cache.set(("object", digest), {"files": len(files), "bytes": sum(i.st_size for _, i in files)})
        self._cache.set(
            ("listing", digest),
            _listing((rel for rel, _ in files), {rel: [x, d] for rel, x, d in hashed.values()}),
        )
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
        self,
        lock_path: Path,
        entry: VendorEntry,
        locked: LockedComponent | None,
        dest: Path,
        *,
        verify: bool,
        progress: Progress | None = None,
    ) -> tuple[str, str | None, str]:
        """The locked (digest, commit, subdir) for `entry`, usable offline, or a LockError saying why not."""
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
        if verify:
            # Before the workspace is looked at: a workspace shares only some of its object's
            # inodes, so it can look intact over a damaged object.
            problems = self._verify(locked.digest, progress)
            if problems == ():
                return locked.digest, locked.commit, locked.subdir
            state = f"damaged ({_shown(problems)}), now evicted," if problems else "missing"
        # A workspace that shows the locked tree is left as it is (its folders link into the object,
        # so this also says the object is there).
        elif is_intact(dest, locked.digest) or self.has(locked.digest):
            return locked.digest, locked.commit, locked.subdir
        else:
            state = "missing"
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


def _selected_files(
    tree: Path, selected: PathFilter, subject: str, subdir: str = ""
) -> list[tuple[str, os.stat_result]]:
    """The files to vendor from `tree`, whose module is the folder `subdir` ("" for `tree` itself).

    `selected` (the path globs) picks among the module's files, by their path relative to it; the
    rest of the tree is kept whole, since it is what `../` in the module reaches. In the module, a
    symlink leaving the tree or an unexcluded directory symlink is an error; outside it, where the
    globs cannot name them, such links are left out.
    """
    root = tree.resolve()
    prefix = f"{subdir}/" if subdir else ""
    where = "the source tree" if subdir else "the module"
    files = []
    in_module = 0
    for rel, info in iter_tree(tree):
        inside = rel.startswith(prefix)
        if inside and not selected(rel[len(prefix) :]):
            continue
        path = tree / rel
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            if not inside:
                continue
            raise SourceError(
                f"{subject}: {rel} is a symlink to {os.readlink(path)}, outside {where}",
                hint="vendor only modules whose links stay inside them (or exclude the link)",
            )
        files.append((rel, info))
        in_module += inside
    # Tree digests do not follow directory links, so their content would silently go missing.
    for directory, subdirs, _ in os.walk(tree):
        subdirs[:] = [d for d in subdirs if d not in IGNORED_DIRS]
        for name in subdirs:
            rel = Path(directory, name).relative_to(tree).as_posix()
            if not rel.startswith(prefix):
                continue
            if Path(directory, name).is_symlink() and not selected.excludes(rel[len(prefix) :]):
                raise SourceError(
                    f"{subject}: {rel} is a symlink to a directory, which vendoring does not follow",
                    hint=f"add {rel[len(prefix) :]!r} to excluded_paths, or vendor the directory it points "
                    "to instead",
                )
    if not in_module:
        raise SourceError(
            f"{subject}: nothing to vendor (no files, or included_paths/excluded_paths removed them all)",
            hint="check the subdirectory after // and the path globs",
        )
    return files


def _relative(folder: Path, tree: Path) -> str:
    """The folder's path in `tree` ("" for the tree itself), through no link: where it really is."""
    rel = folder.resolve().relative_to(tree.resolve()).as_posix()
    return "" if rel == "." else rel


def _copy_hashing(src: Path, dst: Path) -> str:
    hasher = blake3.blake3()
    with open(src, "rb") as reader, open(dst, "xb") as writer:
        while chunk := reader.read(CHUNK):
            hasher.update(chunk)
            writer.write(chunk)
    return hasher.hexdigest()


def _listing(files: Iterable[str], hashes: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    """An object's folders (parents before children) and files: materialising from it skips the
    walk. With `hashes` (`{path: [executable, file digest]}`), verification names each file that
    changed."""
    paths = sorted(files)
    folders = {str(parent) for rel in paths for parent in Path(rel).parents if str(parent) != "."}
    listing: dict[str, Any] = {"dirs": sorted(folders), "files": paths}
    if hashes is not None:
        listing["hashes"] = hashes
    return listing


def _listing_of(found: dict[str, Any]) -> dict[str, Any]:
    """The listing of an object stored before listings were kept, from a `scan` of it: its regular
    files (with their digests when the scan read them) and its folders; links and the rest left out."""
    files = [rel for rel, f in found.items() if f.kind == FILE]
    hashes = {
        rel: [bool((f.mode or 0) & stat.S_IXUSR), f.digest]
        for rel, f in found.items()
        if f.kind == FILE and f.digest
    }
    listing = _listing(files, hashes if hashes and len(hashes) == len(files) else None)
    listing["dirs"] = sorted(rel for rel, f in found.items() if f.kind == FOLDER and rel != ".")
    return listing


class _LinkRefused(Exception):
    """The filesystem refused a hard link (EXDEV across devices, EPERM where links are forbidden)."""


def _link_tree(source: Path, build: Path, dest: Path, listing: dict[str, Any], digest: str) -> int:
    """Fill `build`, which becomes `dest`, with links into the object `source`; returns the files shared.

    The workspace's own folder holds a hard link per top-level file and, for each top-level folder, a
    relative symlink to the object's read-only folder. A tool run in the workspace writes only in its
    own folder (Terraform: `.terraform/`, the lock file, local state), never in the store. This is a
    few entries for any module size, where re-creating every folder and linking every file costs a
    metadata write each (a 1,000-file module: 1,164; see docs/vendoring.md for the figures).

    The caller has checked the object's names and types against the listing. Nothing is linked
    through a symlink all the same: a hard link is made of the entry itself (never of what a link
    names) and must turn out a regular file, and a folder is linked to only while it is a folder.
    """
    top_dirs = [rel for rel in listing["dirs"] if "/" not in rel]
    top_files = [rel for rel in listing["files"] if "/" not in rel]
    # Relative links survive moving the whole store; physical paths keep them right under symlinks.
    up = os.path.relpath(os.path.realpath(source), os.path.join(os.path.realpath(dest.parent), dest.name))
    src_dir = os.open(source, NOFOLLOW_DIR)
    try:
        dst_dir = os.open(build, DIR_FLAGS)
        try:
            for rel in top_dirs:
                if not _is(rel, src_dir, stat.S_ISDIR):
                    raise _damaged(digest, [Damage(rel, "type", "not a folder")])
                try:
                    os.symlink(f"{up}/{rel}", rel, dir_fd=dst_dir)
                except OSError as err:
                    raise _LinkRefused from err
            for rel in top_files:
                try:
                    os.link(rel, rel, src_dir_fd=src_dir, dst_dir_fd=dst_dir, follow_symlinks=False)
                except FileNotFoundError:
                    raise _damaged(digest, [Damage(rel, "missing", "missing")]) from None
                except OSError as err:
                    if not _is(rel, src_dir, stat.S_ISREG):
                        raise _damaged(digest, [Damage(rel, "type", "not a file")]) from None
                    raise _LinkRefused from err
                # What was linked is what the workspace shows: it must be a file, not a link's inode.
                if not _is(rel, dst_dir, stat.S_ISREG):
                    raise _damaged(digest, [Damage(rel, "type", "not a file")])
        finally:
            os.close(dst_dir)
    finally:
        os.close(src_dir)
    return len(listing["files"])


def _is(name: str, dir_fd: int, kind: Callable[[int], bool]) -> bool:
    try:
        return kind(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _copy_tree(source: Path, build: Path, listing: dict[str, Any], digest: str) -> int:
    """Fill `build` with an independent copy of the object: one folder and one file at a time, each
    opened relative to its parent's descriptor and never through a link."""
    folders: dict[str, int] = {}
    try:
        folders["."] = os.open(source, NOFOLLOW_DIR)
        dst_dir = os.open(build, DIR_FLAGS)
        try:
            for rel in listing["dirs"]:
                parent, name = _split(rel)
                try:
                    folders[rel] = os.open(name, NOFOLLOW_DIR, dir_fd=folders[parent])
                except FileNotFoundError:
                    raise _damaged(digest, [Damage(rel, "missing", "missing")]) from None
                except OSError:  # ELOOP or ENOTDIR: a symlink or a file where the folder belongs
                    raise _damaged(digest, [Damage(rel, "type", "not a folder")]) from None
                os.mkdir(rel, dir_fd=dst_dir)
            for rel in listing["files"]:
                parent, name = _split(rel)
                _copy_file(name, rel, folders[parent], dst_dir, digest)
        finally:
            os.close(dst_dir)
    finally:
        for fd in folders.values():
            os.close(fd)
    return len(listing["files"])


def _split(rel: str) -> tuple[str, str]:
    parent, _, name = rel.rpartition("/")
    return parent or ".", name


def _shown(problems: Iterable[Damage], most: int = 5) -> str:
    items = list(problems)
    more = f"; and {len(items) - most} more" if len(items) > most else ""
    return "; ".join(str(item) for item in items[:most]) + more


def _damaged(digest: str, problems: Iterable[Damage]) -> VendorError:
    return VendorError(
        f"object {digest} is damaged: {_shown(problems)}",
        hint="run vendor pull --verify to evict it and fetch it again",
    )


def _copy_file(name: str, rel: str, src_dir: int, dst_dir: int, digest: str) -> None:
    try:
        handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src_dir)
    except FileNotFoundError:
        raise _damaged(digest, [Damage(rel, "missing", "missing")]) from None
    except OSError:  # ELOOP: a symlink
        raise _damaged(digest, [Damage(rel, "type", "not a file")]) from None
    with open(handle, "rb") as reader:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            raise _damaged(digest, [Damage(rel, "type", "not a file")])
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        with open(os.open(rel, flags, stat.S_IMODE(info.st_mode), dir_fd=dst_dir), "wb") as writer:
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
