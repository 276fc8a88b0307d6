"""Downloading and safely extracting .tar.* and .zip archives.

Every member is checked before anything is written: no absolute paths, no `..`, no links that leave
the tree (symlinks are resolved from their own directory, hard links from the archive root), no
member reached through a symlink, no devices or FIFOs. Extraction then goes into a fresh directory
that the caller owns, so a rejected archive leaves nothing behind.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from vendor_cache.errors import FetchError, SourceError, UnsafeArchiveError
from vendor_cache.progress import Progress, report

if TYPE_CHECKING:
    import tarfile
    import zipfile

CHUNK = 1 << 16
TIMEOUT_SECONDS = 60


def download(url: str, dest: Path, *, subject: str, progress: Progress | None = None) -> None:
    import http.client
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, open(dest, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            report(progress, "download", subject, done, total)
            while chunk := response.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                report(progress, "download", subject, done, total)
    except urllib.error.HTTPError as error:
        raise FetchError(
            f"downloading {url} failed: HTTP {error.code} {error.reason}",
            hint="check the URL and the version it names",
        ) from None
    except urllib.error.URLError as error:
        raise FetchError(
            f"cannot reach {url}: {error.reason}", hint="check the URL and your network"
        ) from None
    except (OSError, http.client.HTTPException) as error:
        raise FetchError(f"downloading {url} failed: {error}", hint="retry; check your network") from None
    if total is not None and done != total:
        raise FetchError(f"downloading {url} stopped after {done} of {total} bytes", hint="retry the pull")


def extract(archive: Path, kind: str, dest: Path, *, source: str, progress: Progress | None = None) -> None:
    """Extract `archive` ("tar" or "zip") into the new directory `dest`, after checking every member."""
    if kind == "zip":
        _extract_zip(archive, dest, source=source, progress=progress)
    else:
        _extract_tar(archive, dest, source=source, progress=progress)


def _extract_tar(archive: Path, dest: Path, *, source: str, progress: Progress | None) -> None:
    import tarfile

    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()
            _check_tar(members, source)
            dest.mkdir()
            report(progress, "extract", source, 0, len(members))
            # The data filter repeats our checks during extraction; it also drops set-uid bits and
            # foreign ownership, which a module never needs.
            tar.extractall(dest, members=members, filter="data")
            report(progress, "extract", source, len(members), len(members))
    except tarfile.FilterError as error:
        raise UnsafeArchiveError(f"archive {source!r} is unsafe: {error}", hint=_UNSAFE_HINT) from None
    except (tarfile.TarError, EOFError, OSError) as error:
        raise SourceError(
            f"cannot extract {source!r} as a tar archive: {error}", hint=_UNREADABLE_HINT
        ) from None


def _check_tar(members: list[tarfile.TarInfo], source: str) -> None:
    named = [(member, _checked_name(member.name, source)) for member in members]
    # All links are known before any path is judged: archive order must not matter.
    symlinks = {name for member, name in named if member.issym()}
    for member, name in named:
        _not_through_symlink(name, symlinks, source)
        if member.issym():
            _check_symlink(name, member.linkname, symlinks, source)
        elif member.islnk():
            target = _checked_name(member.linkname, source)
            if target == "":
                _reject(source, member.name, f"hard link to the archive root ({member.linkname!r})")
            _not_through_symlink(target, symlinks, source)
        elif not (member.isreg() or member.isdir()):
            _reject(source, member.name, "device, FIFO or other special file")


def _extract_zip(archive: Path, dest: Path, *, source: str, progress: Progress | None) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(archive) as zipped:
            infos = zipped.infolist()
            plan = _check_zip(zipped, infos, source)
            dest.mkdir()
            for done, (info, name, link) in enumerate(plan, 1):
                _write_zip_member(zipped, info, dest / name, link)
                report(progress, "extract", source, done, len(plan))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise SourceError(
            f"cannot extract {source!r} as a zip archive: {error}", hint=_UNREADABLE_HINT
        ) from None


def _check_zip(
    zipped: zipfile.ZipFile, infos: list[zipfile.ZipInfo], source: str
) -> list[tuple[zipfile.ZipInfo, str, str | None]]:
    named: list[tuple[zipfile.ZipInfo, str]] = []
    seen: set[str] = set()
    for info in infos:
        if "\\" in info.filename:
            _reject(source, info.filename, "backslash in a member name (a Windows path)")
        name = _checked_name(info.filename, source)
        if not name:
            continue
        if name in seen:
            _reject(source, info.filename, "the same path twice")
        seen.add(name)
        named.append((info, name))
    # All links are known before any path is judged: archive order must not matter.
    symlinks = {name for info, name in named if stat.S_ISLNK(info.external_attr >> 16)}
    plan: list[tuple[zipfile.ZipInfo, str, str | None]] = []
    for info, name in named:
        _not_through_symlink(name, symlinks, source)
        link = None
        if name in symlinks:
            link = zipped.read(info).decode("utf-8", "surrogateescape")
            _check_symlink(name, link, symlinks, source)
        plan.append((info, name, link))
    return plan


def _write_zip_member(zipped: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, link: str | None) -> None:
    if info.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if link is not None:
        path.symlink_to(link)
        return
    with zipped.open(info) as src, open(path, "xb") as out:
        shutil.copyfileobj(src, out, CHUNK)
    if (info.external_attr >> 16) & stat.S_IXUSR:
        path.chmod(0o755)


_UNREADABLE_HINT = (
    "check that the URL serves the archive itself (not an HTML page) and that its suffix is right"
)
_UNSAFE_HINT = "the archive tries to write outside its own directory; do not vendor it (or fix it upstream)"


def _checked_name(raw: str, source: str) -> str:
    """The member path, normalised and relative; "" for the archive root itself."""
    if raw.startswith("/"):
        _reject(source, raw, "absolute path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        _reject(source, raw, "`..` in the path")
    return "/".join(parts)


def _check_symlink(name: str, target: str, symlinks: set[str], source: str) -> None:
    """Follow the link's target lexically from its own folder; it must stay inside and cross no other link.

    Crossing a link (`b -> .` then `c -> b/../x`) would make the lexical walk disagree with the real
    one, so it is refused rather than reasoned about.
    """
    if target.startswith("/"):
        _reject(source, name, f"symlink to the absolute path {target!r}")
    here = name.split("/")[:-1]
    for part in (p for p in target.split("/") if p not in ("", ".")):
        if here and "/".join(here) in symlinks:
            _reject(source, name, f"symlink to {target!r} crosses the symlink {'/'.join(here)!r}")
        if part != "..":
            here.append(part)
        elif here:
            here.pop()
        else:
            _reject(source, name, f"symlink to {target!r}, outside the archive")


def _not_through_symlink(name: str, symlinks: set[str], source: str) -> None:
    parts = name.split("/")
    for depth in range(1, len(parts)):
        if "/".join(parts[:depth]) in symlinks:
            _reject(source, name, "path passes through a symlink in the archive")


def _reject(source: str, member: str, why: str) -> NoReturn:
    raise UnsafeArchiveError(f"archive {source!r} is unsafe: member {member!r}: {why}", hint=_UNSAFE_HINT)
