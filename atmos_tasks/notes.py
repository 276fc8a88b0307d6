"""Git notes as JSON documents (SPEC §10): `refs/notes/atmos/<dep>/{builds,sbom,approvals,…}`.

One JSON document per commit per namespace, merged, never clobbered. Concurrent writers are
normal (several CI jobs): a write is a compare-and-swap on the notes ref; on a lost race the
writer re-reads, merges its change into what won, and tries again. With a remote, the same loop
runs against the remote's ref (fetch, merge, push with a lease).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from atmos_tasks.errors import AtmosError, Problem
from atmos_tasks.gitrepo import GitRepo, RefRaceError, RefUpdate

NAMESPACES = ("builds", "sbom", "approvals", "rejections", "test-results")
ATTEMPTS = 8


def notes_ref(deployment: str, namespace: str) -> str:
    return f"refs/notes/atmos/{deployment}/{namespace}"


def read_note(repo: GitRepo, deployment: str, namespace: str, commit: str) -> dict[str, Any]:
    text = repo.note(notes_ref(deployment, namespace), commit)
    if not text:
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def union(key: str) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]:
    """A merge that keeps every distinct entry of the list under `key`, in first-seen order."""

    def merge(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
        entries = list(current.get(key, []))
        for entry in change.get(key, []):
            if entry not in entries:
                entries.append(entry)
        return {**current, **{k: v for k, v in change.items() if k != key}, key: entries}

    return merge


def update_note(
    repo: GitRepo,
    deployment: str,
    namespace: str,
    commit: str,
    change: dict[str, Any],
    merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
    remote: str | None = None,
) -> dict[str, Any]:
    """Merge `change` into the commit's note and publish it; returns the document written."""
    ref = notes_ref(deployment, namespace)
    for _attempt in range(ATTEMPTS):
        if remote:
            # A wildcard refspec: a note namespace the remote does not have yet is not an error.
            scope = f"refs/notes/atmos/{deployment}/*"
            repo.fetch(remote, [f"+{scope}:{scope}"])
        expected = repo.ref(ref)
        document = merge(read_note(repo, deployment, namespace, commit), change)
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        try:
            new = repo.write_note(ref, commit, text, expected)
        except RefRaceError:
            continue
        if not remote:
            return document
        try:
            # Right after the fetch, the local ref was the remote's: that is the lease to hold.
            repo.push_atomic(remote, [RefUpdate(ref, new, expected)])
            return document
        except RefRaceError:
            continue
    raise AtmosError(
        [
            Problem(
                f"could not update {ref} after {ATTEMPTS} attempts: other writers kept winning",
                None,
                "run the command again",
            )
        ],
        exit_code=3,
    )
