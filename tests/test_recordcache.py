"""Records kept by tag (`recordcache`): a read through them gives what Git holds, whatever moved
since they were kept, and asks Git for the messages of new tags only."""

from __future__ import annotations

import os
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from atmos_tasks import recordcache
from atmos_tasks.gitrepo import GitRepo, RefUpdate
from atmos_tasks.record import Ident, tag_object
from atmos_tasks.tracking import (
    read_records,
    record_patterns,
    ref_name,
    rollout_message,
    rollout_tag_name,
    tag_name,
)
from tests.test_tracking_newest import git, rec

NAMES = [f"c{i}" for i in range(5)]
IDENT = Ident("t", "t@e")


class Records:
    """A real repository (with the `.atmos` folder a run leaves) that rollouts record into."""

    def __init__(self, root: Path) -> None:
        root.mkdir()
        git(root, "init", "-q", "-b", "main")
        (root / ".atmos").mkdir()
        self.root, self.repo, self.n = root, GitRepo(root), 0

    def rollout(self, changed: list[str], **fields: Any) -> str:
        """A commit, a tag per changed component, a rollout record of the others, every ref moved."""
        self.n += 1
        (self.root / "f").write_text(str(self.n))
        git(self.root, "add", "f")
        git(self.root, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", f"c{self.n}")
        sha = git(self.root, "rev-parse", "HEAD").strip()
        stamp = f"2026-01-{self.n:02d}T00-00-00Z"
        when = datetime(2026, 1, self.n, tzinfo=UTC)
        bodies = {
            tag_name("app", "dev", c, stamp): tag_object(
                sha, "t", IDENT, when, rec(c, sha, stamp, **{"changes": "applied", **fields}).to_message()
            )
            for c in changed
        }
        unchanged = [rec(c, sha, stamp, changes="none") for c in NAMES if c not in changed]
        if unchanged:
            bodies[rollout_tag_name("app", "dev", stamp)] = tag_object(
                sha, "r", IDENT, when, rollout_message(unchanged)
            )
        shas = self.repo.write_objects("tag", list(bodies.values()))
        current = dict(self.repo.for_each_ref(["refs/atmos/"], ["refname", "objectname"]))
        updates = [RefUpdate(f"refs/tags/{n}", s, None) for n, s in zip(bodies, shas, strict=True)]
        updates += [
            RefUpdate(ref_name("app", "dev", c), sha, current.get(ref_name("app", "dev", c))) for c in NAMES
        ]
        self.repo.update_refs(updates)
        return stamp

    def kept_file(self) -> Path:
        files = list((self.root / recordcache.FOLDER).glob("*.pickle"))
        assert len(files) == 1, files
        return files[0]


def read_both(records: Records, monkeypatch: pytest.MonkeyPatch, wanted: list[str] | None = None) -> Any:
    """What Git holds (cache off) and what a read through the kept records gives (cache on)."""
    monkeypatch.setenv("ATMOS_TASKS_GRAPH_CACHE", "off")
    fresh = read_records(records.repo, "app", "dev", wanted)
    monkeypatch.setenv("ATMOS_TASKS_GRAPH_CACHE", "on")
    return fresh, read_records(records.repo, "app", "dev", wanted)


def message_reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The patterns of every `for-each-ref` that reads tag messages from now on."""
    asked: list[list[str]] = []
    rows = GitRepo.for_each_ref_rows

    def watched(self: GitRepo, patterns: Any, fields: Any, observe: bool = True) -> Any:
        if "contents" in fields:
            asked.append(list(patterns))
        return rows(self, patterns, fields, observe)

    monkeypatch.setattr(GitRepo, "for_each_ref_rows", watched)
    return asked


def test_a_read_through_kept_records_is_what_git_holds_as_tags_come_go_and_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = Records(tmp_path / "repo")
    records.rollout(NAMES)
    for wanted in (None, NAMES):
        fresh, kept = read_both(records, monkeypatch, wanted)
        assert kept == fresh and kept[("app", "dev", "c0")].latest is not None
    assert records.kept_file().stat().st_mode & 0o077 == 0  # its owner's only

    records.rollout(["c1"])
    stamp = records.rollout(["c2"])
    for wanted in (None, NAMES, NAMES):  # kept, then read again from what was kept
        fresh, kept = read_both(records, monkeypatch, wanted)
        assert kept == fresh
        assert kept[("app", "dev", "c2")].latest.changes == "applied"  # type: ignore[union-attr]
        assert kept[("app", "dev", "c0")].latest.timestamp == stamp  # from the rollout record  # type: ignore[union-attr]

    # A pruned tag is gone from the read; a tag moved to another object reads as that object.
    git(records.root, "tag", "-d", tag_name("app", "dev", "c2", stamp))
    moved = tag_name("app", "dev", "c1", "2026-01-02T00-00-00Z")
    sha = git(records.root, "rev-parse", "HEAD").strip()
    body = tag_object(
        sha,
        "t",
        IDENT,
        datetime(2026, 1, 2, tzinfo=UTC),
        rec("c1", sha, "x", deployed_by="m@e", changes="applied").to_message(),
    )
    git(records.root, "update-ref", f"refs/tags/{moved}", records.repo.write_objects("tag", [body])[0])
    for wanted in (None, NAMES):
        fresh, kept = read_both(records, monkeypatch, wanted)
        assert kept == fresh
        applied = [r.deployed_by for r in kept[("app", "dev", "c1")].history if r.changes == "applied"]
        assert applied == ["m@e", "t@e"]


def test_a_read_asks_git_for_the_messages_of_new_tags_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = Records(tmp_path / "repo")
    for _ in range(3):
        records.rollout(NAMES)
    monkeypatch.setenv("ATMOS_TASKS_GRAPH_CACHE", "on")
    read_records(records.repo, "app", "dev", NAMES)
    stamp = records.rollout(["c3"])
    asked = message_reads(monkeypatch)
    states = read_records(records.repo, "app", "dev", NAMES)
    assert asked == [
        [f"refs/tags/{tag_name('app', 'dev', 'c3', stamp)}"],
        [f"refs/tags/{rollout_tag_name('app', 'dev', stamp)}"],
    ]
    assert states[("app", "dev", "c0")].latest.timestamp == stamp  # type: ignore[union-attr]
    asked.clear()
    assert read_records(records.repo, "app", "dev", NAMES) == states
    assert asked == []
    # Recording parses the newest rollout records only: older ones are not kept.
    kept = pickle.loads(records.kept_file().read_bytes())[1]
    assert sorted(name for name, _ in kept if "/rollouts/" in name) == [
        f"refs/tags/{rollout_tag_name('app', 'dev', stamp)}"
    ]


def test_what_is_kept_is_what_a_read_gives_and_verify_finds_a_wrong_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    records = Records(tmp_path / "repo")
    records.rollout(NAMES)
    monkeypatch.setenv("ATMOS_TASKS_GRAPH_CACHE", "on")
    read_records(records.repo, "app", "dev")
    path = records.kept_file()
    stamp, entries = pickle.loads(path.read_bytes())
    key = next(k for k in entries if "/c4/" in k[0])
    entries[key] = rec("c4", "f" * 40, "forged")
    path.write_bytes(pickle.dumps((stamp, entries)))
    os.chmod(path, 0o600)
    assert read_records(records.repo, "app", "dev")[("app", "dev", "c4")].latest.git_sha == "f" * 40  # type: ignore[union-attr]

    monkeypatch.setenv("ATMOS_TASKS_GRAPH_CACHE", "verify")
    with pytest.raises(SystemExit) as stopped:
        read_records(records.repo, "app", "dev")
    assert stopped.value.code == 1
    assert "kept deployment records of app/dev/c4 differ" in capsys.readouterr().err

    # Writable by others, a kept file is never unpickled: Git's records are read.
    path.write_bytes(pickle.dumps((stamp, entries)))
    os.chmod(path, 0o666)
    monkeypatch.setenv("ATMOS_TASKS_GRAPH_CACHE", "on")
    assert read_records(records.repo, "app", "dev")[("app", "dev", "c4")].latest.git_sha != "f" * 40  # type: ignore[union-attr]


def test_nothing_is_kept_with_the_cache_off_or_outside_a_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = Records(tmp_path / "repo")
    records.rollout(NAMES)
    monkeypatch.setenv("ATMOS_TASKS_GRAPH_CACHE", "off")
    read_records(records.repo, "app", "dev")
    assert not (records.root / recordcache.FOLDER).exists()
    monkeypatch.setenv("ATMOS_TASKS_GRAPH_CACHE", "on")
    (records.root / ".atmos").rmdir()
    assert read_records(records.repo, "app", "dev")[("app", "dev", "c0")].latest is not None
    assert not (records.root / ".atmos").exists()


def test_many_new_tags_are_read_by_pattern_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = Records(tmp_path / "repo")
    records.rollout(NAMES)
    monkeypatch.setattr(recordcache, "FETCH_LIMIT", 2)
    asked = message_reads(monkeypatch)
    fresh, kept = read_both(records, monkeypatch)
    assert kept == fresh
    assert asked[-1] == record_patterns("app", "dev")[1:]


def test_a_rollout_record_deleted_between_listing_and_reading_is_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full read (status, history) of a target whose newest rollout record is pruned after Git
    listed it and before its message is read: read as if it were never there, no error."""
    records = Records(tmp_path / "repo")
    records.rollout(NAMES)
    monkeypatch.setenv("ATMOS_TASKS_GRAPH_CACHE", "on")
    read_records(records.repo, "app", "dev")
    stamp = records.rollout(["c1"])
    doomed = f"refs/tags/{rollout_tag_name('app', 'dev', stamp)}"
    original = recordcache.messages

    def pruned_meanwhile(repo: GitRepo, refnames: list[str], patterns: list[str]) -> Any:
        git(records.root, "update-ref", "-d", doomed)
        return original(repo, refnames, patterns)

    monkeypatch.setattr(recordcache, "messages", pruned_meanwhile)
    kept = read_records(records.repo, "app", "dev")
    monkeypatch.setattr(recordcache, "messages", original)
    fresh, again = read_both(records, monkeypatch)
    assert kept == fresh == again
    assert kept[("app", "dev", "c0")].latest.timestamp != stamp  # type: ignore[union-attr]


def test_a_rollout_record_moved_before_its_message_is_read_is_kept_as_the_object_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording reads rollout records when it needs them: one moved (`git tag -f`) after it was
    listed is read, and kept, as the object Git gave, never under the id it was listed with."""
    records = Records(tmp_path / "repo")
    records.rollout(NAMES)
    monkeypatch.setenv("ATMOS_TASKS_GRAPH_CACHE", "on")
    read_records(records.repo, "app", "dev", NAMES)
    stamp = records.rollout(["c1"])
    name = f"refs/tags/{rollout_tag_name('app', 'dev', stamp)}"
    listed = git(records.root, "rev-parse", name).strip()
    sha = git(records.root, "rev-parse", "HEAD").strip()
    other = records.repo.write_objects(
        "tag",
        [
            tag_object(
                sha,
                "r",
                IDENT,
                datetime(2026, 1, 9, tzinfo=UTC),
                rollout_message([rec(c, sha, stamp, changes="none", deployed_by="moved@e") for c in NAMES]),
            )
        ],
    )[0]
    original = recordcache.messages

    def moved_meanwhile(repo: GitRepo, refnames: list[str], patterns: list[str]) -> Any:
        if name in refnames:
            git(records.root, "update-ref", name, other)
        return original(repo, refnames, patterns)

    monkeypatch.setattr(recordcache, "messages", moved_meanwhile)
    states = read_records(records.repo, "app", "dev", NAMES)
    assert states[("app", "dev", "c0")].latest.deployed_by == "moved@e"  # type: ignore[union-attr]
    assert states[("app", "dev", "c0")].latest.tag_object == other  # type: ignore[union-attr]
    entries = pickle.loads(records.kept_file().read_bytes())[1]
    assert (name, other) in entries and (name, listed) not in entries


def test_a_full_read_keeps_no_rollout_record_a_record_task_did_not_keep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """History parses every rollout record, each listing every unchanged component: kept, they
    would grow the file with every rollout. Only those recording needed are kept."""
    records = Records(tmp_path / "repo")
    for _ in range(4):
        records.rollout(["c0"])
    fresh, kept = read_both(records, monkeypatch)  # history, status of the target
    assert kept == fresh and len(kept[("app", "dev", "c1")].history) == 4
    entries = pickle.loads(records.kept_file().read_bytes())[1]
    assert not [name for name, _ in entries if "/rollouts/" in name]
    assert len(entries) == 4  # c0's four tags
    read_records(records.repo, "app", "dev", NAMES)  # recording: the newest rollout record
    assert read_both(records, monkeypatch)[1] == fresh
    entries = pickle.loads(records.kept_file().read_bytes())[1]
    assert len([name for name, _ in entries if "/rollouts/" in name]) == 1
