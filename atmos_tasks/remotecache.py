"""The remote cache: what one runner fetched or computed, kept in an OCI registry for the next.

Which cache a run uses, first found wins: `--cache URL` (rollout, apply, plan and build tasks), the
environment variable `ATMOS_TASKS_CACHE`, then `cache.url` in `atmos.yaml`; `none` turns a configured
cache off. The URL is `oci://<registry>/<repository>` (HTTPS; plain HTTP for a loopback registry, as
Docker does) or `oci+http://…` (plain HTTP anywhere).

Entries are OCI artifacts under tags named by their kind and key (`vendor-<key>`, `plan-<key>`),
the key being content hashes the task already computes; the entry's annotation says what it holds
and who produced it (`producer`: ref, commit, identity, pull request or not). Entries that a pull
request's run pushes go under their own tags (`pr-…`), so such a run can neither replace nor block a
trusted entry; a protected target (one with a promotion rule) takes a pull request's entry as a hint
only (`trusted`).

Everything here is best effort: a cache that cannot be reached makes a cold run, said once per run
(`Session.unreachable`), and no failure of the cache fails a task. The registry client is imported
only once a task uses a configured cache.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from atmos_tasks.invocation import RolloutOptions
    from atmos_tasks.manifest import Manifest
    from atmos_tasks.resolve import GitInfo
    from vendor_cache.remote import Resolved

ENV = "ATMOS_TASKS_CACHE"
OFF = frozenset({"none", "off", "false", "0"})
ENTRY_ANNOTATION = "org.atmos-tasks.cache.entry"
FORMAT = 1
PULL_REQUEST_TIER = "pr-"


class CacheUnreachable(Exception):
    """The cache does not answer (connection, time-out, server error) or refuses the credentials."""


class CacheDenied(CacheUnreachable):
    """The registry refuses this run's credentials, or the request (a write with a pull-only token)."""


class CacheDamaged(Exception):
    """A blob whose bytes do not match the digest its entry names: refused."""


@dataclass(frozen=True)
class CacheSpec:
    """A task's view of the cache, decided when the graph is compiled (the environment variable is
    read when the task runs: the graph does not depend on it)."""

    configured: str | None  # atmos.yaml's cache.url
    flag: str | None  # --cache
    root: str  # the main checkout: `.atmos/` holds the run's marks
    protected: bool  # the target has a promotion rule: a pull request's entry is a hint only
    git_sha: str = ""
    branch: str = ""

    def url(self) -> str | None:
        for value in (self.flag, os.environ.get(ENV), self.configured):
            if value is not None and value.strip():
                return None if value.strip().lower() in OFF else value.strip()
        return None


def is_protected(manifest: Manifest, target: str) -> bool:
    """A target with a promotion rule (approvals, a source target, a soak time): it never takes a
    pull request's result as done."""
    return manifest.model.targets[target].promotion is not None


def spec_for(
    configured: str | None,
    options: RolloutOptions,
    root: Path | str,
    protected: bool,
    git: GitInfo | None = None,
) -> CacheSpec:
    return CacheSpec(
        configured=configured,
        flag=options.cache,
        root=str(root),
        protected=protected,
        git_sha=git.sha if git else "",
        branch=git.branch if git else "",
    )


# -- who produced an entry, and whom it may serve (pure) -----------------------------------------


def is_pull_request(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """GitHub's `pull_request` events, GitLab's merge request pipelines, or ATMOS_TASKS_PULL_REQUEST=1."""
    return (
        environ.get("GITHUB_EVENT_NAME", "") in ("pull_request", "pull_request_target")
        or bool(environ.get("CI_MERGE_REQUEST_ID"))
        or environ.get("ATMOS_TASKS_PULL_REQUEST", "").strip().lower() in ("1", "true", "yes")
    )


def producer(spec: CacheSpec, environ: dict[str, str] | os._Environ[str] = os.environ) -> dict[str, Any]:
    """Who is pushing: the ref and commit the run is on, its identity, and whether it is a pull
    request's run (the one fact trust is decided on)."""
    ref = (
        environ.get("GITHUB_REF")
        or environ.get("CI_COMMIT_REF_NAME")
        or (f"refs/heads/{spec.branch}" if spec.branch else "")
    )
    by = next(
        (
            environ[name]
            for name in ("ATMOS_TASKS_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN")
            if environ.get(name)
        ),
        None,
    ) or _git_email(spec.root)
    import socket

    found: dict[str, Any] = {
        "ref": ref,
        "sha": environ.get("GITHUB_SHA") or environ.get("CI_COMMIT_SHA") or spec.git_sha,
        "by": by,
        "host": socket.gethostname(),
        "pull_request": is_pull_request(environ),
        "at": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }
    run = environ.get("GITHUB_RUN_ID") or environ.get("CI_PIPELINE_ID")
    if run:
        found["ci_run"] = run
    return found


def _git_email(root: str) -> str:
    """Who runs this when no CI says so: Git's user.email (as records name the deployer)."""
    import subprocess

    try:
        found = subprocess.run(
            ["git", "config", "user.email"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found = ""
    return found or os.environ.get("USER") or "unknown"


def trusted(made_by: dict[str, Any], protected: bool) -> bool:
    """Whether an entry may be taken as done: anywhere, unless the target is protected and the entry
    was made by a pull request's run (or does not say that it was not)."""
    return not protected or made_by.get("pull_request") is False


def shown_producer(made_by: dict[str, Any]) -> str:
    what = "a pull request's run" if made_by.get("pull_request") else "a run"
    ref = f" on {made_by['ref']}" if made_by.get("ref") else ""
    return f"{what}{ref} by {made_by.get('by', '?')} at {made_by.get('at', '?')}"


# -- entries ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    digest: str  # sha256:…
    size: int
    media_type: str


@dataclass(frozen=True)
class Entry:
    """One stored result: its kind and key, what the task produced, who produced it, its blobs."""

    kind: str
    key: str
    result: dict[str, Any]
    producer: dict[str, Any]
    blobs: dict[str, Blob] = field(default_factory=dict)
    manifest_digest: str = ""

    def annotation(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "kind": self.kind,
                "key": self.key,
                "result": self.result,
                "producer": self.producer,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], digest: str) -> Entry | None:
        """The entry a manifest holds; None for anything else (another tool's, a newer format)."""
        try:
            data = json.loads((manifest.get("annotations") or {})[ENTRY_ANNOTATION])
            if data.get("format") != FORMAT:
                return None
            blobs = {
                layer["annotations"]["org.opencontainers.image.title"]: Blob(
                    layer["digest"], int(layer["size"]), layer["mediaType"]
                )
                for layer in manifest.get("layers", [])
            }
            if not (isinstance(data["result"], dict) and isinstance(data["producer"], dict)):
                return None
            if not (isinstance(data["kind"], str) and isinstance(data["key"], str)):
                return None
            return cls(data["kind"], data["key"], data["result"], data["producer"], blobs, digest)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    def same_result(self, other: Entry) -> bool:
        return self.result == other.result and {n: b.digest for n, b in self.blobs.items()} == {
            n: b.digest for n, b in other.blobs.items()
        }


def _sha256(path: Path) -> str:
    import hashlib

    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 16):
            hasher.update(chunk)
    return hasher.hexdigest()


def loopback(host: str) -> bool:
    """Whether a registry host is this machine (spoken to in plain HTTP, never through a proxy)."""
    import ipaddress

    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def tag(kind: str, key: str, pull_request: bool) -> str:
    return f"{PULL_REQUEST_TIER if pull_request else ''}{kind}-{key[:64]}"


class Backend(Protocol):
    """One registry (or other store): entries under tags, blobs by digest."""

    def get(self, tag: str) -> Entry | None: ...

    def blob(self, blob: Blob, dest: Path) -> None:
        """Write the blob to `dest`, verified against its digest and size (`CacheDamaged`)."""
        ...

    def put(self, tag: str, entry: Entry, files: dict[str, Path]) -> Entry | None:
        """Store `entry` with its files ({name: path}, described by `entry.blobs`) under `tag`
        unless the tag holds an entry already: None when stored, else the entry that stays."""
        ...


def backend_for(url: str) -> Backend:
    """The backend a URL's scheme names, chosen once here."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme in ("oci", "oci+http"):
        from atmos_tasks.ocicache import OciBackend

        return OciBackend(url)
    raise ValueError(f"cache URL {url!r}: use oci://<registry>/<repository>")


# -- one task's use of the cache -----------------------------------------------------------------


def _run_id() -> str:
    """The doit run this process works for: its main process (doit's workers are its children),
    with that process's start time, so a reused process id is another run."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    pid = parent.pid if parent is not None and parent.pid is not None else os.getpid()
    try:
        started = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        started = "0"
    return f"{pid}-{started}"


class Session:
    """A task's use of the cache. Every call is safe: failures become `notes` (warning lines the
    task's result carries), and once the cache is found unreachable in this run, later calls in
    any process of the run do nothing, without waiting on it again."""

    def __init__(self, spec: CacheSpec | None) -> None:
        self.spec = spec
        self.url = spec.url() if spec is not None else None
        self.notes: list[str] = []
        self.used: dict[str, Any] = {}
        self._backend: Backend | None = None
        self._down = False

    @property
    def active(self) -> bool:
        return self.url is not None and not self._down and not self._marked_down()

    def _mark(self, what: str = "unreachable") -> Path:
        assert self.spec is not None
        return Path(self.spec.root) / ".atmos" / "cache" / "remote" / f"{what}-{_run_id()}"

    def _marked_down(self) -> bool:
        return self.spec is not None and self._mark().exists()

    def unreachable(self, err: Exception) -> None:
        """The one warning of the run (whichever process finds the cache down first says it)."""
        self._down = True
        if self._first(self._mark()):
            self.notes.append(
                f"the remote cache {self.url} cannot be used ({err}): this run goes on without it"
            )

    def read_only(self, err: Exception) -> None:
        """A cache this run may read but not write to (a pull request's read-only token): said once,
        and nothing more is pushed; reads go on."""
        if self._first(self._mark("read-only")):
            self.notes.append(
                f"the remote cache {self.url} does not take this run's results ({err}): it is only read"
            )

    @staticmethod
    def _first(mark: Path) -> bool:
        """Whether this process is the first of the run to make `mark` (and so says why)."""
        try:
            mark.parent.mkdir(parents=True, exist_ok=True)
            # Marks of runs that ended (`<what>-<pid>-<start>`) go.
            for old in mark.parent.iterdir():
                if old != mark and not Path(f"/proc/{old.name.rsplit('-', 2)[-2]}").exists():
                    old.unlink(missing_ok=True)
            os.close(os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return False
        except OSError:
            pass
        return True

    def _get_backend(self) -> Backend:
        if self._backend is None:
            assert self.url is not None
            try:
                self._backend = backend_for(self.url)
            except ValueError as err:  # a URL that names no cache (ATMOS_TASKS_CACHE=https://…)
                raise CacheUnreachable(str(err)) from None
        return self._backend

    def lookup(self, kind: str, key: str, tiers: tuple[bool, ...] = (False, True)) -> Entry | None:
        """The entry for (kind, key): a trusted run's first, then (unless `tiers` says not) a pull
        request's."""
        if not self.active:
            return None
        try:
            backend = self._get_backend()
            for pull_request in tiers:
                found = backend.get(tag(kind, key, pull_request))
                if found is not None and found.kind == kind and found.key == key:
                    return found
        except CacheUnreachable as err:
            self.unreachable(err)
        except Exception as err:
            self.notes.append(f"the remote cache {self.url}: reading {kind} {key[:12]} failed ({err})")
        return None

    def is_trusted(self, entry: Entry) -> bool:
        return trusted(entry.producer, bool(self.spec and self.spec.protected))

    def lookup_trusted(self, kind: str, key: str) -> Entry | None:
        """The entry of a run that was not a pull request's, for results taken as done on any
        target: an image the builds note then records (and promotions carry on), an apply's outputs
        (never checked against the state). A pull request's tag is not read."""
        found = self.lookup(kind, key, tiers=(False,))
        return found if found is not None and found.producer.get("pull_request") is False else None

    def fetch(self, entry: Entry, name: str, dest: Path) -> bool:
        """The entry's blob `name` at `dest`, verified; False (and a note) when it cannot be had."""
        blob = entry.blobs.get(name)
        if blob is None or not self.active:
            return False
        partial = dest.with_name(f".{dest.name}.{os.getpid()}.pull")
        try:
            self._get_backend().blob(blob, partial)
            os.replace(partial, dest)
            return True
        except CacheUnreachable as err:
            self.unreachable(err)
        except CacheDamaged as err:
            self.notes.append(f"the remote cache's {entry.kind} {entry.key[:12]} was refused: {err}")
        except Exception as err:
            self.notes.append(
                f"the remote cache {self.url}: pulling {entry.kind} {entry.key[:12]} failed ({err})"
            )
        finally:
            partial.unlink(missing_ok=True)
        return False

    def store(self, kind: str, key: str, result: dict[str, Any], files: dict[str, tuple[Path, str]]) -> None:
        """Push a result (best effort). A different result stored first stays: this one is ignored,
        with a warning."""
        if not self.active or self.spec is None or self._mark("read-only").exists():
            return
        made_by = producer(self.spec)
        blobs = {
            name: Blob(f"sha256:{_sha256(path)}", path.stat().st_size, media)
            for name, (path, media) in files.items()
        }
        entry = Entry(kind, key, result, made_by, blobs)
        try:
            paths = {name: path for name, (path, _media) in files.items()}
            kept = self._get_backend().put(tag(kind, key, made_by["pull_request"]), entry, paths)
        except CacheDenied as err:
            self.read_only(err)
            return
        except CacheUnreachable as err:
            self.unreachable(err)
            return
        except Exception as err:
            self.notes.append(f"the remote cache {self.url}: storing {kind} {key[:12]} failed ({err})")
            return
        if kept is None:
            self.used[kind] = "stored"
        elif not kept.same_result(entry):
            self.used[kind] = "ignored"
            self.notes.append(
                f"the remote cache holds another {kind} result for the same key {key[:12]}, stored first by "
                f"{shown_producer(kept.producer)}: it stays, this run's is ignored (the task is not "
                "deterministic)"
            )

    def annotate(self, values: dict[str, Any]) -> dict[str, Any]:
        """The task's result with what the cache did (`cache`) and any warning, shown by the
        reporter as the warning line of `repaired`."""
        if self.used:
            values["cache"] = {**values.get("cache", {}), **self.used}
        if self.notes:
            values["repaired"] = "\n".join(filter(None, [values.get("repaired"), *self.notes]))
        return values


# -- applies: what a recorded apply left, for runners that find the commit deployed ----------------


def apply_key(deployment: str, target: str, component: str, git_sha: str, inputs_hash: str, at: str) -> str:
    """What a recorded apply's outputs are stored under: the record that names it (its component,
    commit, inputs and time). A runner that finds that record current takes the outputs from the
    cache instead of reading the component's state; a later apply of the same inputs (after a
    destroy, a rollback and forward again) is another record, so never served old outputs."""
    from atmos_tasks.hashing import hash_json

    return hash_json(["apply", deployment, target, component, git_sha, inputs_hash, at])


def store_applies(spec: CacheSpec, entries: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Push recorded applies (key, result), a few at once (best effort): the warnings."""
    if spec.url() is None or not entries:
        return []
    from concurrent.futures import ThreadPoolExecutor

    def one(entry: tuple[str, dict[str, Any]]) -> list[str]:
        session = Session(spec)
        session.store("apply", entry[0], entry[1], {})
        return session.notes

    with ThreadPoolExecutor(max_workers=min(8, len(entries))) as pool:
        return sorted({note for notes in pool.map(one, entries) for note in notes})


def recorded_apply(spec: CacheSpec | None, key: str) -> dict[str, Any] | None:
    """A recorded apply's outputs from the cache, stored by a run that was not a pull request's:
    the values an apply task of the component passes on (`outputs`, `cache`), with any warning
    (`repaired`); None when absent."""
    session = Session(spec)
    try:
        entry = session.lookup_trusted("apply", key)
        if entry is None or not isinstance(entry.result.get("outputs"), dict):
            return session.annotate({}) or None
        session.used["apply"] = "reused"
        return session.annotate({"outputs": entry.result["outputs"], "cache": {"made_by": entry.producer}})
    except Exception as err:  # the cache is best effort: the state is read instead
        session.notes.append(f"the remote cache {session.url}: reading apply {key[:12]} failed ({err})")
        return session.annotate({})


class ObjectRemote:
    """The store's `vendor_cache.remote.Remote` on a session: what a source resolved to, as entries
    `vendor-<key>` whose one file is the object's tar. A pull request's answer is not taken for a
    protected target: the source is fetched, and compared with what the pull request said."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.entries: dict[str, Entry] = {}
        # (digest a pull request's entry named, who made it) when one was not trusted.
        self.hint: tuple[str, dict[str, Any]] | None = None

    @staticmethod
    def key(identity: str) -> str:
        from atmos_tasks.hashing import hash_json

        return hash_json(["vendor", identity])

    def resolve(self, identity: str) -> Resolved | None:
        from vendor_cache.remote import Resolved

        entry = self.session.lookup("vendor", self.key(identity))
        if entry is None or not isinstance(entry.result.get("digest"), str):
            return None
        if not self.session.is_trusted(entry):
            self.hint = (entry.result["digest"], entry.producer)
            return None
        self.entries[entry.result["digest"]] = entry
        # A pull request's answer serves this target only: kept out of the store's index, where a
        # protected target's vendoring on this runner would find it without asking whose it was.
        shared = entry.producer.get("pull_request") is False
        return Resolved(entry.result["digest"], entry.result.get("commit"), shared)

    def pull(self, digest: str, archive: Path) -> bool:
        entry = self.entries.get(digest)
        if entry is None or not self.session.fetch(entry, "object", archive):
            return False
        self.session.used["vendor"] = "pulled"
        return True

    def push(self, identity: str, resolved: Resolved, archive: Path) -> None:
        from vendor_cache.remote import MEDIA_TYPE

        result = {"digest": resolved.digest, "commit": resolved.commit}
        self.session.store("vendor", self.key(identity), result, {"object": (archive, MEDIA_TYPE)})

    def refused(self, digest: str, why: str) -> None:
        self.session.notes.append(
            f"the remote cache's object {digest[:12]} was refused ({why}): fetched from the source"
        )

    def judge_hint(self, digest: str) -> None:
        """Say what became of a pull request's answer that was not taken."""
        if self.hint is None:
            return
        hinted, made_by = self.hint
        agreed = (
            "the source agrees" if hinted == digest else f"the source gave {digest[:12]}, not {hinted[:12]}"
        )
        self.session.notes.append(
            f"the remote cache's module entry was made by {shown_producer(made_by)}: not trusted for "
            f"the protected target, fetched from the source ({agreed})"
        )
