"""Recording reads only the newest records it needs: a real repository with many target rollout
records, read fully and for recording, must give each component the same latest and current."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from atmos_tasks.gitrepo import GitRepo, RefUpdate
from atmos_tasks.record import Ident, tag_object
from atmos_tasks.tracking import (
    DeploymentRecord,
    read_records,
    ref_name,
    rollout_message,
    rollout_tag_name,
    tag_name,
)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def commit(root: Path, n: int) -> str:
    (root / "f").write_text(str(n))
    git(root, "add", "f")
    git(root, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", f"c{n}")
    return git(root, "rev-parse", "HEAD").strip()


def rec(component: str, sha: str, stamp: str, **fields: Any) -> DeploymentRecord:
    """A record of app/dev (success, `changes: none` unless `fields` say otherwise)."""
    values: dict[str, Any] = dict(
        deployment="app",
        target="dev",
        component=component,
        type="terraform",
        git_sha=sha,
        deployed_by="t@e",
        timestamp=stamp,
        status="success",
        inputs_hash=f"h-{component}-{sha[:7]}",
        changes="none",
    )
    values.update(fields)
    return DeploymentRecord(**values)


def test_reading_for_recording_gives_the_same_latest_and_current_from_fewer_records(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    repo = GitRepo(root)
    ident = Ident("t", "t@e")
    names = [f"c{i}" for i in range(6)]
    shas = [commit(root, n) for n in range(8)]
    updates: list[RefUpdate] = []
    bodies: dict[str, str] = {}
    for n, sha in enumerate(shas):
        stamp = f"2026-01-0{n + 1}T00-00-00Z"
        when = datetime(2026, 1, n + 1, tzinfo=UTC)
        listed = [rec(c, sha, stamp) for c in names if not (n == 7 and c == "c5")]
        bodies[rollout_tag_name("app", "dev", stamp)] = tag_object(
            sha, "r", ident, when, rollout_message(listed)
        )
        if n == 7:  # the newest rollout: c5 failed on its own tag, its ref stays a commit behind
            failed = rec("c5", sha, stamp, status="failed", changes="applied")
            bodies[tag_name("app", "dev", "c5", stamp)] = tag_object(
                sha, "t", ident, when, failed.to_message()
            )
    for name, sha in zip(names, [shas[7]] * 5 + [shas[6]], strict=True):
        updates.append(RefUpdate(ref_name("app", "dev", name), sha, None))
    shas_written = repo.write_objects("tag", list(bodies.values()))
    updates += [RefUpdate(f"refs/tags/{n}", s, None) for n, s in zip(bodies, shas_written, strict=True)]
    repo.update_refs(updates)

    full = read_records(repo, "app", "dev")
    newest = read_records(repo, "app", "dev", names)
    for name in names:
        key = ("app", "dev", name)
        assert newest[key].git_sha == full[key].git_sha
        assert newest[key].latest == full[key].latest
        assert newest[key].current == full[key].current
        assert newest[key].current is not None
    # c5's current is a rollout older than the newest one: read that far, and no further.
    assert full[("app", "dev", "c0")].history[7].git_sha == shas[0]
    assert len(newest[("app", "dev", "c0")].history) < len(full[("app", "dev", "c0")].history)
    assert newest[("app", "dev", "c5")].current.git_sha == shas[6]
    assert len(newest[("app", "dev", "c5")].history) == 2  # its failed tag and the rollout before
