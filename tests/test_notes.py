"""Notes shared through a remote (SPEC §10): merged on fetch, never clobbered, never pruned away."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from atmos_tasks.gitrepo import GitRepo
from atmos_tasks.notes import notes_ref, read_note, update_note


def merge_keys(current: dict, change: dict) -> dict:
    return {**current, **change}


def git(cwd: Path, env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def clones(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[GitRepo, GitRepo, str]:
    """Two clones of one bare remote, and the commit they share."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    remote = tmp_path / "remote.git"
    git(tmp_path, env, "init", "-q", "--bare", "-b", "main", str(remote))
    seed = tmp_path / "seed"
    git(tmp_path, env, "init", "-q", "-b", "main", str(seed))
    (seed / "README").write_text("x\n")
    git(seed, env, "add", "-A")
    git(seed, env, "commit", "-q", "-m", "First")
    git(seed, env, "push", "-q", str(remote), "main")
    repos = []
    for name in ("one", "two"):
        git(tmp_path, env, "clone", "-q", str(remote), str(tmp_path / name))
        repos.append(GitRepo(tmp_path / name))
    return repos[0], repos[1], git(seed, env, "rev-parse", "HEAD")


def remote_note(repo: GitRepo, namespace: str, commit: str) -> dict:
    repo.run("fetch", "-q", "origin", "+refs/notes/*:refs/notes/theirs/*")
    text = repo.note(f"refs/notes/theirs/atmos/api/{namespace}", commit)
    return json.loads(text) if text else {}


def test_a_fetch_merges_local_only_entries_instead_of_dropping_them(
    clones: tuple[GitRepo, GitRepo, str],
) -> None:
    one, two, commit = clones
    # One records a build locally only (a build task has no remote).
    update_note(one, "api", "builds", commit, {"api": {"digest": "sha256:aa"}}, merge_keys)
    # Meanwhile two publishes another image's build of the same commit, and an SBOM.
    update_note(two, "api", "builds", commit, {"web": {"digest": "sha256:bb"}}, merge_keys, "origin")
    update_note(two, "api", "sbom", commit, {"targets": {"dev": {}}}, merge_keys, "origin")
    # One now writes its SBOM through the remote: that fetches the remote's notes.
    update_note(one, "api", "sbom", commit, {"targets": {"prod": {}}}, merge_keys, "origin")
    assert set(read_note(one, "api", "builds", commit)) == {"api", "web"}
    assert set(read_note(one, "api", "sbom", commit)["targets"]) == {"prod"}  # merge_keys: last writer
    # A namespace the remote never had is not pruned either.
    update_note(one, "api", "test-results", commit, {"dev": {"api": {"passed": True}}}, merge_keys)
    update_note(one, "api", "sbom", commit, {}, merge_keys, "origin")
    assert one.ref(notes_ref("api", "test-results")) is not None


def test_publishing_pushes_local_only_entries_merged_with_the_remote(
    clones: tuple[GitRepo, GitRepo, str],
) -> None:
    from atmos_tasks.notes import publish_notes

    one, two, commit = clones
    update_note(one, "api", "builds", commit, {"api": {"digest": "sha256:aa"}}, merge_keys)
    update_note(two, "api", "builds", commit, {"web": {"digest": "sha256:bb"}}, merge_keys, "origin")
    publish_notes(one, "api", ("builds", "test-results"), "origin")
    assert set(remote_note(two, "builds", commit)) == {"api", "web"}
    # Nothing new: nothing is pushed, and the local ref is what the remote holds.
    before = one.ref(notes_ref("api", "builds"))
    publish_notes(one, "api", ("builds",), "origin")
    assert one.ref(notes_ref("api", "builds")) == before
