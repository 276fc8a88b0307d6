"""Reads of commits for people: subjects, the commits between two commits, the files they change."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from atmos_tasks.gitrepo import GitRepo, commit_subject


def test_a_subject_is_the_first_paragraph_of_the_message_on_one_line() -> None:
    headers = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@example.com> 1 +0000\n"
    assert commit_subject(headers + b"\nServe on 9090\n\nWhy: the load balancer.\n") == "Serve on 9090"
    assert (
        commit_subject(headers + b"\nServe on 9090;  \nbigger staging\n\nbody\n")
        == "Serve on 9090; bigger staging"
    )
    assert commit_subject(headers + b"encoding ISO-8859-1\n\nCaf\xe9\n") == "Café"
    assert commit_subject(headers + b"\n") == ""
    signed = (
        headers + b"gpgsig -----BEGIN SSH SIGNATURE-----\n \n abc\n -----END SSH SIGNATURE-----\n\nSigned\n"
    )
    assert commit_subject(signed) == "Signed"


def git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "A",
        "GIT_AUTHOR_EMAIL": "a@example.com",
        "GIT_COMMITTER_NAME": "A",
        "GIT_COMMITTER_EMAIL": "a@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(root),
    }
    return subprocess.run(
        ["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True
    ).stdout


def test_commits_between_and_files_changed_limited_to_paths(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "app").mkdir()
    (tmp_path / "app/main.tf").write_text("a\n")
    (tmp_path / "README.md").write_text("r\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "Base")
    base = git(tmp_path, "rev-parse", "HEAD").strip()
    (tmp_path / "app/main.tf").write_text("a\nb\nc\n")
    git(tmp_path, "commit", "-qam", "Grow the app")
    grown = git(tmp_path, "rev-parse", "HEAD").strip()
    (tmp_path / "README.md").write_text("readme\n")
    git(tmp_path, "commit", "-qam", "Docs only")
    head = git(tmp_path, "rev-parse", "HEAD").strip()
    git(tmp_path, "checkout", "-q", "-b", "side", base)
    (tmp_path / "app/other.tf").write_text("x\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "Side work")
    side = git(tmp_path, "rev-parse", "HEAD").strip()

    repo = GitRepo(tmp_path)
    assert repo.subjects([grown, "0" * 40]) == {grown: "Grow the app", "0" * 40: None}
    assert repo.commits_between(base, head) == [(head, "Docs only", True), (grown, "Grow the app", True)]
    assert repo.commits_between(base, head, ["app"]) == [(grown, "Grow the app", True)]
    # Both directions, marked; a path that exists on neither side is no error. (Same-second commits:
    # compared without their order.)
    assert sorted(repo.commits_between(side, head, ["app", "missing/path"])) == sorted(
        [(side, "Side work", False), (grown, "Grow the app", True)]
    )
    assert repo.numstat(base, head) == [(1, 1, "README.md"), (2, 0, "app/main.tf")]
    assert repo.numstat(base, head, ["app"]) == [(2, 0, "app/main.tf")]
    assert repo.commits_between(head, head) == []
