"""The deployment's SBOM is built while Git writes the rollout's refs
(`record._sbom_in_background`), on a real repository: the note is the one written before, a lost
race leaves no note and no thread behind, and a failing SBOM leaves the records in place with
`sbom_error`."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from atmos_tasks import record
from atmos_tasks.gitrepo import GitRepo
from atmos_tasks.record import RecordSpec, RolloutRefused, record_rollout

MODULE = 'variable "label" {\n  type = string\n}\noutput "label" {\n  value = var.label\n}\n'
COMPONENTS = ("a", "b", "c")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name in COMPONENTS:
        (root / "components" / name).mkdir(parents=True)
        (root / "components" / name / "main.tf").write_text(MODULE)
        (root / ".atmos" / "workdir" / name).mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Rolling Out")
    git(root, "config", "user.email", "ops@example.com")
    git(root, "add", "components")
    git(root, "commit", "-q", "-m", "modules")
    return root


def spec_of(root: Path) -> RecordSpec:
    parts = {
        name: {
            "kind": "terraform",
            "module": str(root / "components" / name),
            "workdir": str(root / ".atmos" / "workdir" / name),
            "vendored": None,
        }
        for name in COMPONENTS
    }
    return RecordSpec(
        root=str(root),
        deployment="api",
        target="dev",
        git_sha=git(root, "rev-parse", "HEAD"),
        components=tuple(("terraform", name) for name in COMPONENTS),
        parts=parts,
        sign="never",
    )


def values() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for index, name in enumerate(COMPONENTS):
        found[f"plan_{index}"] = {"status": "planned", "inputs_hash": f"in-{name}", "has_changes": True}
        found[f"apply_{index}"] = {"status": "applied", "inputs_hash": f"in-{name}", "outputs": {}}
    return found


def sbom_note(root: Path) -> dict[str, Any] | None:
    proc = subprocess.run(
        ["git", "notes", "--ref=refs/notes/atmos/api/sbom", "show", "HEAD"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def background_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("atmos-record-sbom")]


def test_the_sbom_is_built_while_the_refs_are_written_and_is_the_same_note(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_of(repo)
    expected = record.sbom_document(spec, {})
    started = threading.Event()
    built = record.sbom_document

    def sbom_document(*args: Any) -> dict[str, Any]:
        started.set()
        return built(*args)

    overlapped = []
    update_refs = GitRepo.update_refs

    def watched(self: GitRepo, updates: Any) -> None:
        # The transaction waits for nothing but the disk: the SBOM has started by now.
        overlapped.append(started.wait(10))
        update_refs(self, updates)

    monkeypatch.setattr(record, "sbom_document", sbom_document)
    monkeypatch.setattr(GitRepo, "update_refs", watched)
    summary = record_rollout(spec, **values())

    assert isinstance(summary, dict), summary
    assert overlapped[0] is True  # the records' transaction (the SBOM note's own follows)
    assert summary["sbom"] == "refs/notes/atmos/api/sbom"
    assert [r["component"] for r in summary["recorded"]] == list(COMPONENTS)
    note = sbom_note(repo)
    assert note is not None and note["targets"]["dev"] == expected
    assert background_threads() == []


def test_a_lost_race_writes_no_sbom_and_leaves_no_thread(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_of(repo)
    finished = threading.Event()
    built = record.sbom_document

    def slow_sbom(*args: Any) -> dict[str, Any]:
        threading.Event().wait(0.3)  # still building when the transaction is refused
        document = built(*args)
        finished.set()
        return document

    update_refs = GitRepo.update_refs

    def another_rollout_first(self: GitRepo, updates: Any) -> None:
        # Another run moved a ref of this target between the read and the transaction.
        git(repo, "update-ref", "refs/atmos/deployments/api/dev/a", spec.git_sha)
        update_refs(self, updates)

    monkeypatch.setattr(record, "sbom_document", slow_sbom)
    monkeypatch.setattr(GitRepo, "update_refs", another_rollout_first)
    outcome = record_rollout(spec, **values())

    assert isinstance(outcome, RolloutRefused), outcome
    assert finished.is_set(), "the SBOM thread was not waited for"
    assert background_threads() == []
    assert sbom_note(repo) is None
    assert git(repo, "for-each-ref", "refs/tags/") == ""


def test_an_sbom_that_fails_in_the_background_leaves_the_records(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> dict[str, Any]:
        raise ValueError("a lock file nobody can read")

    monkeypatch.setattr(record, "sbom_document", broken)
    summary = record_rollout(spec_of(repo), **values())

    assert isinstance(summary, dict), summary
    assert summary["sbom_error"] == "ValueError: a lock file nobody can read"
    assert "sbom" not in summary
    assert [r["component"] for r in summary["recorded"]] == list(COMPONENTS)
    assert len(git(repo, "for-each-ref", "refs/atmos/deployments/api/dev/").splitlines()) == 3
    assert sbom_note(repo) is None
    assert background_threads() == []


def test_whatever_stops_the_record_waits_for_the_sbom_first(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    finished = threading.Event()
    built = record.sbom_document

    def slow_sbom(*args: Any) -> dict[str, Any]:
        threading.Event().wait(0.3)
        document = built(*args)
        finished.set()
        return document

    def no_identity(*args: Any) -> Any:
        raise RuntimeError("git var GIT_COMMITTER_IDENT failed")

    monkeypatch.setattr(record, "sbom_document", slow_sbom)
    monkeypatch.setattr(record, "_ident_and_key", no_identity)
    with pytest.raises(RuntimeError, match="GIT_COMMITTER_IDENT"):
        record_rollout(spec_of(repo), **values())

    assert finished.is_set(), "the SBOM thread was not waited for"
    assert background_threads() == []
    assert sbom_note(repo) is None


def test_without_a_thread_to_start_the_sbom_is_built_in_line(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refused)
    summary = record_rollout(spec_of(repo), **values())

    assert isinstance(summary, dict), summary
    assert summary["sbom"] == "refs/notes/atmos/api/sbom"
    assert sbom_note(repo) is not None
