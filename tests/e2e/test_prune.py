"""`atmos-tasks prune` on real repositories made from the example: real rollouts, real Git, a bare
remote; what goes, what stays, and that status, history, a rollback and a promotion still work."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from atmos_tasks.gitrepo import GitRepo
from tests.conftest import Repo, isolated_env, make_repo

REAL_GIT = shutil.which("git") or "/usr/bin/git"
PRUNE = ("prune", "api", "--older-than", "0s")


@pytest.fixture(scope="session")
def rolled_out(example_template: Path, tmp_path_factory: pytest.TempPathFactory, home: Path) -> Path:
    """dev rolled out at three commits (A, B, C); staging promoted from dev at A. Made once."""
    repo = make_repo(example_template, tmp_path_factory.mktemp("rolled") / "repo", isolated_env(home))
    commits = []
    changes = [
        ("", "", ""),
        ("stacks/catalog/ecs/taskdef-api.yaml", "log_retention_days: 14", "log_retention_days: 30"),
        ("services/api/index.html", "<h1>api</h1>", "<h1>api, v2</h1>"),
    ]
    for step, (path, old, new) in enumerate(changes):
        if path:
            repo.replace(path, old, new)
            repo.commit(f"Change {step}")
        proc = repo.doit("rollout:api:dev")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        commits.append(repo.head())
        if step == 0:
            proc = repo.doit("rollout:api:staging", "--promote-from", "dev")
            assert proc.returncode == 0, proc.stdout + proc.stderr
    (repo.path / ".git" / "test-commits").write_text(" ".join(commits))
    return repo.path


@pytest.fixture
def deployed(rolled_out: Path, tmp_path: Path, env: dict[str, str]) -> Repo:
    return make_repo(rolled_out, tmp_path / "repo", env)


def commits(repo: Repo) -> list[str]:
    return (repo.path / ".git" / "test-commits").read_text().split()


def cli_json(repo: Repo, *args: str) -> Any:
    proc = repo.cli(*args, "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def snapshot(path: Path) -> dict[str, Any]:
    """Every record ref, every `atmos/` tag, and what every notes ref of the deployments holds."""
    repo = GitRepo(path)
    rows = repo.for_each_ref(["refs/atmos/deployments/", "refs/tags/atmos/"], ["refname", "objectname"])
    notes = repo.for_each_ref(["refs/notes/atmos/"], ["refname", "objectname"])
    return {
        "refs": {name: sha for name, sha in rows if name.startswith("refs/atmos/")},
        "tags": {name: sha for name, sha in rows if name.startswith("refs/tags/")},
        "notes": {name: repo.notes_in(sha) for name, sha in notes},
    }


def noted(repo: Repo, namespace: str) -> set[str]:
    out = repo.git("notes", f"--ref=refs/notes/atmos/api/{namespace}", "list")
    return {line.split()[1] for line in out.splitlines()}


def status(repo: Repo) -> Any:
    return cli_json(repo, "status", "api", "--no-health")


def test_a_dry_run_shows_yes_removes_and_status_history_and_rollback_still_work(deployed: Repo) -> None:
    a, b, c = commits(deployed)
    before = snapshot(deployed.path)
    shown = status(deployed)
    assert len(cli_json(deployed, "history", "api", "--target", "dev")["rollouts"]) == 3

    dry = cli_json(deployed, *PRUNE, "--target", "dev", "--keep-last", "2")
    dev = dry["deployments"]["api"]["targets"]["dev"]
    assert dry["dry_run"] is True and list(dry["deployments"]["api"]["targets"]) == ["dev"]
    assert dev["removed"] == 5 and dev["kept"] == 10  # A's record of each of the 5 components
    assert all(
        t.startswith("atmos/deployments/api/dev/") and t.endswith(tag_stamp(deployed, a)) for t in dev["tags"]
    )
    assert dry["deployments"]["api"]["notes"] == {}  # staging still runs A: its notes stay
    table = deployed.cli(*PRUNE, "--target", "dev", "--keep-last", "2")
    assert table.returncode == 0 and "would remove 5 record(s) in 5 tag(s)" in table.stdout
    assert "atmos/deployments/api/dev/ecr%2Fapi/" in table.stdout and "pass --yes" in table.stdout
    assert snapshot(deployed.path) == before  # a dry run removes nothing

    done = cli_json(deployed, *PRUNE, "--target", "dev", "--keep-last", "2", "--yes")
    assert done["dry_run"] is False and done["removed"] == {"tags": 5, "records": 5, "notes": 0, "commits": 0}
    after = snapshot(deployed.path)
    assert set(before["tags"]) - set(after["tags"]) == {f"refs/tags/{t}" for t in dev["tags"]}
    assert after["refs"] == before["refs"] and after["notes"] == before["notes"]
    assert status(deployed) == shown
    history = cli_json(deployed, "history", "api", "--target", "dev")["rollouts"]
    assert [r["git_sha"] for r in history] == [c, b]
    assert cli_json(deployed, "history", "api", "--target", "staging")["rollouts"][0]["git_sha"] == a
    assert deployed.run("git", "fsck", "--strict", "--no-dangling").returncode == 0
    # Nothing is older than a week: nothing more goes.
    assert (
        cli_json(deployed, *PRUNE[:2], "--older-than", "1w", "--keep-last", "0", "--yes")["removed"]["tags"]
        == 0
    )

    # Roll back to B, which prune kept: its records, its builds note, its image (not rebuilt).
    back = deployed.doit("rollout:api:dev", "--git-sha", b)
    assert back.returncode == 0, back.stdout + back.stderr
    assert "Rolling back api on dev" in back.stdout and "building" not in back.stdout
    assert {e["git_sha"] for e in status(deployed)["api"]["dev"].values()} == {b}
    refused = deployed.doit("rollout:api:dev", "--git-sha", a)
    assert refused.returncode == 3 and "was never deployed to dev" in refused.stdout + refused.stderr

    # Keep only the latest on dev now: the rollback's records. C's records go, but not C's notes: the
    # rollback records name it (rollback_of). No record of C is left on dev to roll back to.
    last = cli_json(deployed, *PRUNE, "--target", "dev", "--keep-last", "1", "--yes")
    assert last["removed"]["records"] == 10 and last["deployments"]["api"]["notes"] == {}
    assert {a, b, c} <= noted(deployed, "builds") and {a, b, c} <= noted(deployed, "sbom")
    assert [r["git_sha"] for r in cli_json(deployed, "history", "api", "--target", "dev")["rollouts"]] == [b]
    assert {e["git_sha"] for e in status(deployed)["api"]["dev"].values()} == {b}
    sbom = deployed.cli("sbom", "api", "--target", "dev")
    assert sbom.returncode == 0 and json.loads(sbom.stdout)["metadata"]["component"]["version"] == b[:12]
    refused = deployed.doit("rollout:api:dev", "--git-sha", c)
    assert refused.returncode == 3 and "was never deployed to dev" in refused.stdout + refused.stderr


def tag_stamp(repo: Repo, commit: str) -> str:
    """The stamp of the dev rollout of `commit` (its records' tags end with it)."""
    for rollout in cli_json(repo, "history", "api", "--target", "dev")["rollouts"]:
        if rollout["git_sha"] == commit:
            return str(rollout["timestamp"]).replace(":", "-")
    raise AssertionError(f"no rollout of {commit}")


def bare_remote(repo: Repo, path: Path) -> Path:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], env=repo.env, check=True)
    repo.git("remote", "add", "origin", str(path))
    repo.git(
        "push",
        "-q",
        "origin",
        "main",
        "refs/atmos/*:refs/atmos/*",
        "refs/tags/atmos/*:refs/tags/atmos/*",
        "refs/notes/atmos/*:refs/notes/atmos/*",
    )
    return path


def same_records(one: dict[str, Any], two: dict[str, Any]) -> bool:
    return one["refs"] == two["refs"] and one["tags"] == two["tags"] and one["notes"] == two["notes"]


def test_with_a_remote_the_remote_is_pruned_and_a_promotion_from_it_still_works(
    deployed: Repo, tmp_path: Path
) -> None:
    _a, b, c = commits(deployed)
    remote = bare_remote(deployed, tmp_path / "remote.git")
    found = cli_json(deployed, *PRUNE, "--keep-last", "1", "--remote", "origin", "--yes")
    # dev's records of A and B go; staging keeps its one record of A, and so A keeps its notes.
    assert found["remote"] == "origin" and found["removed"]["records"] == 10
    assert found["deployments"]["api"]["notes"] == {"builds": [b], "sbom": [b]}
    here, there = snapshot(deployed.path), snapshot(remote)
    assert same_records(here, there)
    assert b not in noted(deployed, "builds")
    # The notes refs fast-forward on the remote: another clone's next sync takes the removal.
    for ref, sha in GitRepo(remote).for_each_ref(["refs/notes/atmos/"], ["refname", "objectname"]):
        assert deployed.run("git", "merge-base", "--is-ancestor", f"{sha}^", sha).returncode == 0, ref
    # Promote C (what dev runs, its only record there) from the pruned remote: nothing is rebuilt.
    promoted = deployed.doit("rollout:api:staging", "--promote-from", "dev", "--remote", "origin")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "building" not in promoted.stdout
    assert {e["git_sha"] for e in status(deployed)["api"]["staging"].values()} == {c}
    assert same_records(snapshot(deployed.path), snapshot(remote))


def test_a_remote_that_moved_is_refused_and_nothing_is_removed_anywhere(
    deployed: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atmos_tasks import prune
    from atmos_tasks.errors import AtmosError

    a, _b, _c = commits(deployed)
    remote = bare_remote(deployed, tmp_path / "remote.git")
    for key, value in deployed.env.items():
        monkeypatch.setenv(key, value)
    synced = prune.sync

    def another_runner_records(repo: GitRepo, name: str) -> None:
        synced(repo, name)  # prune reads the remote, then another runner moves a ref there
        subprocess.run(
            ["git", "update-ref", "refs/atmos/deployments/api/dev/ecr%2Fapi", a], cwd=remote, check=True
        )

    monkeypatch.setattr(prune, "sync", another_runner_records)
    before, remote_before = snapshot(deployed.path), snapshot(remote)
    with pytest.raises(AtmosError) as raised:
        prune.prune(GitRepo(deployed.path), "api", None, 1, "0s", apply=True, remote="origin")
    assert raised.value.exit_code == 3
    assert "origin moved since prune read it" in str(raised.value) and "nothing was removed" in str(
        raised.value
    )
    assert snapshot(deployed.path)["tags"] == before["tags"]
    assert snapshot(deployed.path)["notes"] == before["notes"]
    remote_after = snapshot(remote)
    assert remote_after["tags"] == remote_before["tags"] and remote_after["notes"] == remote_before["notes"]
    # Run again: it reads the remote afresh and prunes both.
    monkeypatch.setattr(prune, "sync", synced)
    prune.prune(GitRepo(deployed.path), "api", None, 1, "0s", apply=True, remote="origin")
    assert same_records(snapshot(deployed.path), snapshot(remote))


def test_a_local_prune_in_a_clone_that_shares_a_remote_is_undone_by_the_next_sync(
    deployed: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atmos_tasks import prune

    remote = bare_remote(deployed, tmp_path / "remote.git")
    for key, value in deployed.env.items():
        monkeypatch.setenv(key, value)
    full = snapshot(remote)
    local = cli_json(deployed, *PRUNE, "--keep-last", "1", "--yes")
    assert local["removed"]["notes"] == 2 and snapshot(remote) == full
    prune.sync(GitRepo(deployed.path), "origin")  # what any command with --remote does first
    again = snapshot(deployed.path)
    # Tags and notes are back together: the removal of notes alone is never published.
    assert again["tags"] == full["tags"] and again["notes"] == full["notes"]


# Killed at every Git write.

WRAPPER = r"""#!/bin/sh
# git as prune sees it: numbers every write, and at the chosen one kills prune before running it.
real='@REAL@'
dir='@DIR@'
sub=
skip=0
for arg in "$@"; do
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  case "$arg" in
    -C|-c) skip=1 ;;
    -*) ;;
    *) sub="$arg"; break ;;
  esac
done
case "$sub" in
  update-ref|mktree|commit-tree|push) write=1 ;;
  hash-object) case " $* " in *" -w "*) write=1 ;; *) write=0 ;; esac ;;
  *) write=0 ;;
esac
if [ "$write" = 1 ]; then
  n=$(( $(cat "$dir/count" 2>/dev/null || echo 0) + 1 ))
  echo "$n" > "$dir/count"
  if [ "$n" = "$(cat "$dir/kill-at")" ]; then
    kill -9 "$PPID"
    exit 137
  fi
fi
exec "$real" "$@"
"""


def run_prune(repo: Repo, tools: Path | None, kill_at: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(repo.env)
    if tools is not None:
        (tools / "count").write_text("0")
        (tools / "kill-at").write_text(str(kill_at))
        env["PATH"] = f"{tools}:{env['PATH']}"
    return repo.run(
        sys.executable, "-m", "atmos_tasks.cli", *PRUNE, "--keep-last", "1", "--yes", *args, env=env
    )


def git_wrapper(where: Path) -> Path:
    where.mkdir()
    path = where / "git"
    path.write_text(WRAPPER.replace("@REAL@", REAL_GIT).replace("@DIR@", str(where)))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return where


@pytest.mark.parametrize("with_remote", [False, True], ids=["local", "remote"])
def test_a_prune_killed_at_any_git_write_leaves_the_old_or_the_new_state(
    deployed: Repo, tmp_path: Path, with_remote: bool
) -> None:
    tools = git_wrapper(tmp_path / "tools")
    args = ("--remote", "origin") if with_remote else ()
    if with_remote:
        bare_remote(deployed, tmp_path / "remote.git")

    def copy(name: str) -> tuple[Repo, Path | None]:
        repo = make_repo(deployed.path, tmp_path / name / "repo", deployed.env)
        if not with_remote:
            return repo, None
        remote = tmp_path / name / "remote.git"
        shutil.copytree(tmp_path / "remote.git", remote)
        repo.git("remote", "set-url", "origin", str(remote))
        return repo, remote

    def states(repo: Repo, remote: Path | None) -> list[dict[str, Any]]:
        return [snapshot(repo.path)] + ([snapshot(remote)] if remote else [])

    old_repo, old_remote = copy("old")
    old = states(old_repo, old_remote)
    new_repo, new_remote = copy("new")
    counted = run_prune(new_repo, tools, 0, *args)
    assert counted.returncode == 0, counted.stdout + counted.stderr
    writes = int((tools / "count").read_text())
    assert writes >= (6 if with_remote else 4)  # notes trees and commits, the transaction (the push)
    new = states(new_repo, new_remote)
    assert old[0]["tags"] != new[0]["tags"] and old[0]["notes"] != new[0]["notes"]

    seen = set()
    for kill_at in range(1, writes + 1):
        repo, remote = copy(f"kill-{kill_at}")
        killed = run_prune(repo, tools, kill_at, *args)
        assert killed.returncode == -9, (kill_at, killed.stdout, killed.stderr)
        outcome = []
        for where, found in enumerate(states(repo, remote)):
            # Each repository is whole: all of its old records and notes, or exactly the pruned ones.
            assert found == old[where] or same_records(found, new[where]), (kill_at, where)
            outcome.append("old" if found == old[where] else "new")
        seen.add(tuple(outcome))
        assert repo.run("git", "fsck", "--strict", "--no-dangling").returncode == 0
        again = run_prune(repo, None, 0, *args)
        assert again.returncode == 0, (kill_at, again.stdout, again.stderr)
        assert all(same_records(f, n) for f, n in zip(states(repo, remote), new, strict=True)), kill_at
    # Killed before its transaction; with a remote, also after the push and before the local
    # transaction, and after both (before the notes tracking refs follow).
    assert seen == ({("old", "old"), ("old", "new"), ("new", "new")} if with_remote else {("old",)}), seen
