"""Git notes as JSON documents (SPEC §10): `refs/notes/atmos/<dep>/{builds,sbom,approvals,drift,…}`.

One JSON document per commit per namespace, merged, never clobbered. Concurrent writers are
normal (several CI jobs): a write is a compare-and-swap on the notes ref; on a lost race the
writer re-reads, merges its change into what won, and tries again. With a remote, the same loop
runs against the remote's ref (fetch, merge, push with a lease).

A fetch never lands on the local notes refs: the remote's refs go to tracking refs
(`refs/notes/atmos-remote/<remote>/<dep>/<namespace>`), then each local ref takes them in —
a fast-forward, or a merge of the two JSON documents of every commit both annotate. Notes
written locally and not pushed yet (a build task has no remote) therefore survive, and reach
the remote with the next push of their namespace.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from atmos_tasks.errors import AtmosError, Problem
from atmos_tasks.gitrepo import GitRepo, RefRaceError, RefUpdate

NAMESPACES = ("builds", "sbom", "approvals", "rejections", "test-results", "drift")
ATTEMPTS = 8


def notes_ref(deployment: str, namespace: str) -> str:
    return f"refs/notes/atmos/{deployment}/{namespace}"


def read_note(repo: GitRepo, deployment: str, namespace: str, commit: str) -> dict[str, Any]:
    text = repo.note(notes_ref(deployment, namespace), commit)
    return _document(text) if text else {}


def union(key: str) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]:
    """A merge that keeps every distinct entry of the list under `key`, in first-seen order."""

    def merge(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
        entries = list(current.get(key, []))
        for entry in change.get(key, []):
            if entry not in entries:
                entries.append(entry)
        return {**current, **{k: v for k, v in change.items() if k != key}, key: entries}

    return merge


def merge_keys(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    return {**current, **change}


def merge_nested(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """One level deeper than `merge_keys`: `{target: {component: …}}` keeps other components."""
    merged = dict(current)
    for key, value in change.items():
        below = merged.get(key)
        merged[key] = {**below, **value} if isinstance(below, dict) and isinstance(value, dict) else value
    return merged


Merge = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
# How two writers' documents of one commit combine, per namespace; the same rules the writers use.
MERGES: dict[str, Merge] = {
    "builds": merge_keys,
    "sbom": merge_nested,
    "approvals": union("approvals"),
    "rejections": union("rejections"),
    "test-results": merge_nested,
    "drift": merge_nested,
}
TRACKING = "refs/notes/atmos-remote"


def tracking_ref(remote: str, ref: str) -> str:
    """Where a fetch leaves the remote's copy of a notes ref (under refs/notes/, so `git notes` reads it)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", remote).strip("_") or "remote"
    return f"{TRACKING}/{name}/{ref.removeprefix('refs/notes/atmos/')}"


def tracking_refspec(remote: str, deployment: str | None = None) -> str:
    """Fetch the remote's notes (of one deployment, or all) into tracking refs, never the local ones."""
    scope = f"refs/notes/atmos/{deployment}/*" if deployment else "refs/notes/atmos/*"
    return f"+{scope}:{tracking_ref(remote, scope)}"


def merge_fetched_notes(repo: GitRepo, remote: str, deployment: str | None = None) -> None:
    """Take the fetched remote notes into the local refs, keeping what only the local side has."""
    local_prefix = f"refs/notes/atmos/{deployment}/" if deployment else "refs/notes/atmos/"
    tracked_prefix = tracking_ref(remote, local_prefix)
    for _attempt in range(ATTEMPTS):
        rows = repo.for_each_ref([local_prefix, tracked_prefix], ["refname", "objectname"])
        heads = {name: sha for name, sha in rows}
        updates = []
        for name, theirs in heads.items():
            if not name.startswith(tracked_prefix):
                continue
            ref = local_prefix + name.removeprefix(tracked_prefix)
            ours = heads.get(ref)
            if ours == theirs or (ours is not None and repo.is_ancestor(theirs, ours)):
                continue
            if ours is None or repo.is_ancestor(ours, theirs):
                updates.append(RefUpdate(ref, theirs, ours))
            else:
                merge = MERGES.get(ref.rsplit("/", 1)[-1], merge_keys)
                updates.append(RefUpdate(ref, _merge_notes(repo, theirs, ours, merge), ours))
        try:
            repo.update_refs(updates)
            return
        except RefRaceError:
            continue  # another local writer moved a notes ref meanwhile: merge again
    raise _lost(f"the notes fetched from {remote}")


def _merge_notes(repo: GitRepo, theirs: str, ours: str, merge: Merge) -> str:
    """A notes commit with both parents: per annotated commit, the two documents merged (ours last)."""
    their_notes, our_notes = repo.notes_in(theirs), repo.notes_in(ours)
    merged = {**their_notes, **our_notes}
    both = sorted(obj for obj, blob in our_notes.items() if their_notes.get(obj, blob) != blob)
    texts = []
    for obj in both:
        document = merge(
            _document(repo.blob_text(their_notes[obj])), _document(repo.blob_text(our_notes[obj]))
        )
        texts.append(json.dumps(document, indent=2, sort_keys=True) + "\n")
    merged.update(zip(both, repo.write_objects("blob", texts), strict=True))
    return repo.notes_commit(merged, [theirs, ours], "Notes merged by atmos-tasks")


def _document(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def sync_notes(repo: GitRepo, remote: str, deployment: str) -> None:
    repo.fetch(remote, [tracking_refspec(remote, deployment)])
    merge_fetched_notes(repo, remote, deployment)


def publish_notes(repo: GitRepo, deployment: str, namespaces: Sequence[str], remote: str) -> None:
    """Push what the local notes of these namespaces hold and the remote's lack, merged, with leases."""
    for _attempt in range(ATTEMPTS):
        # Equal to what the last fetch saw: nothing of ours is missing there, no fetch needed.
        if not _unpublished(repo, deployment, namespaces, remote):
            return
        sync_notes(repo, remote, deployment)
        updates = _unpublished(repo, deployment, namespaces, remote)
        try:
            repo.push_atomic(remote, updates)
        except RefRaceError:
            continue
        _pushed(repo, remote, updates)
        return
    raise _lost(f"the notes of {deployment} on {remote}")


def _unpublished(repo: GitRepo, deployment: str, namespaces: Sequence[str], remote: str) -> list[RefUpdate]:
    updates = []
    for namespace in namespaces:
        ref = notes_ref(deployment, namespace)
        ours, theirs = repo.ref(ref), repo.ref(tracking_ref(remote, ref))
        if ours is not None and ours != theirs:
            updates.append(RefUpdate(ref, ours, theirs))
    return updates


def _pushed(repo: GitRepo, remote: str, updates: Sequence[RefUpdate]) -> None:
    """The tracking refs follow a successful push, as a fetch would have moved them."""
    # A concurrent fetch may have moved them already; the next fetch corrects them either way.
    with contextlib.suppress(RefRaceError):
        repo.update_refs([RefUpdate(tracking_ref(remote, u.ref), u.new, u.old) for u in updates])


def update_note(
    repo: GitRepo,
    deployment: str,
    namespace: str,
    commit: str,
    change: dict[str, Any],
    merge: Merge,
    remote: str | None = None,
) -> dict[str, Any]:
    """Merge `change` into the commit's note and publish it; returns the document written."""
    ref = notes_ref(deployment, namespace)
    for _attempt in range(ATTEMPTS):
        if remote:
            sync_notes(repo, remote, deployment)
        expected = repo.ref(ref)
        current = read_note(repo, deployment, namespace, commit)
        document = merge(current, change)
        new = expected
        if document != current:
            text = json.dumps(document, indent=2, sort_keys=True) + "\n"
            try:
                new = repo.write_note(ref, commit, text, expected)
            except RefRaceError:
                continue
        if not remote:
            return document
        # The local ref now descends from the remote's (merged in above): a fast-forward push,
        # leased on what the fetch saw, carrying local entries not pushed before as well.
        published = repo.ref(tracking_ref(remote, ref))
        if new is None or new == published:
            return document
        update = RefUpdate(ref, new, published)
        try:
            repo.push_atomic(remote, [update])
        except RefRaceError:
            continue
        _pushed(repo, remote, [update])
        return document
    raise _lost(ref)


def _lost(what: str) -> AtmosError:
    return AtmosError(
        [
            Problem(
                f"could not update {what} after {ATTEMPTS} attempts: other writers kept winning",
                None,
                "run the command again",
            )
        ],
        exit_code=3,
    )
