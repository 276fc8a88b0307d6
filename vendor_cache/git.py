"""Fetching one commit of a Git repository, as cheaply as the server allows."""

from __future__ import annotations

import os
from pathlib import Path

from vendor_cache.errors import FetchError, SourceError
from vendor_cache.progress import Progress, report

# Full fetch, used when a shallow fetch of the ref is refused: servers refuse unadvertised commits
# unless configured otherwise, and every server refuses an abbreviated sha.
ALL_REFS = ("+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")


class _GitFailed(Exception):
    def __init__(self, args: list[str], stderr: str) -> None:
        super().__init__(stderr)
        self.command = " ".join(args)
        self.stderr = stderr.strip()


def fetch_commit(
    url: str, ref: str | None, checkout: Path, *, subject: str, progress: Progress | None = None
) -> str:
    """Check out `ref` (tag, branch or commit; the default branch when None) of `url` into `checkout`.

    Returns the resolved commit sha. The checkout holds a `.git` directory, which tree digests ignore.
    """
    _git("init", "-q", str(checkout))
    report(progress, "fetch", subject)
    try:
        _git("fetch", "-q", "--depth", "1", "--no-tags", url, ref or "HEAD", cwd=checkout)
        commit = _git("rev-parse", "--verify", "FETCH_HEAD^{commit}", cwd=checkout)
    except _GitFailed as shallow:
        if ref is None:
            raise _fetch_error(url, shallow) from None
        commit = _full_fetch(url, ref, checkout)
    report(progress, "checkout", subject)
    try:
        _git("-c", "advice.detachedHead=false", "checkout", "-q", "--detach", commit, cwd=checkout)
    except _GitFailed as failed:
        raise _fetch_error(url, failed) from None
    return commit


def _full_fetch(url: str, ref: str, checkout: Path) -> str:
    try:
        _git("fetch", "-q", url, *ALL_REFS, cwd=checkout)
    except _GitFailed as failed:
        raise _fetch_error(url, failed) from None
    for candidate in (ref, f"refs/remotes/origin/{ref}"):
        try:
            return _git("rev-parse", "--verify", "-q", f"{candidate}^{{commit}}", cwd=checkout)
        except _GitFailed:
            continue
    raise SourceError(
        f"ref {ref!r} is neither a tag, a branch nor a commit of {url}",
        hint="fix ?ref= in the source (or the entry's version)",
    )


def _fetch_error(url: str, failed: _GitFailed) -> FetchError:
    return FetchError(
        f"git could not fetch {url}: {failed.stderr or 'no error output'} (ran: git {failed.command})",
        hint="check the URL, your network and your Git credentials",
    )


def _git(*args: str, cwd: Path | None = None) -> str:
    import subprocess

    # A credential prompt would hang a parallel, non-interactive run; failing is better.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    except FileNotFoundError:
        raise FetchError(
            "git is not installed or not on PATH", hint="install Git to vendor Git sources"
        ) from None
    if proc.returncode != 0:
        raise _GitFailed(list(args), proc.stderr)
    return proc.stdout.strip()
