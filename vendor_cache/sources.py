"""Source strings (SPEC §7), parsed the way go-getter (and so Atmos and Terraform) reads them.

    ../modules/vpc                                       local directory, relative to the entry's base
    github.com/org/repo.git//modules/vpc?ref=v1.2.3      Git over HTTPS (shorthand)
    git::https://host/org/repo.git//sub?ref=main         Git, forced
    file:///srv/git/modules.git//vpc?ref=<sha>           Git, a local (bare) repository
    https://host/modules-1.2.3.tar.gz//modules-1.2.3/vpc HTTP(S) archive (.tar.gz .tgz .tar.* .zip)

`//` separates the repository or archive from a subdirectory inside it (go-getter's rule: the first
`//` after the scheme). The subdirectory may be a glob that matches exactly one directory, which
is how one reaches into an archive whose top folder carries the version. As in Terraform's module
installer, the store keeps the whole repository or archive and the module is that folder in it, so
a module calling `../../` reaches its own repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl, urlencode, urlsplit

from vendor_cache.errors import SourceError

ARCHIVE_SUFFIXES = {
    ".tar.gz": "tar",
    ".tgz": "tar",
    ".tar": "tar",
    ".tar.bz2": "tar",
    ".tbz2": "tar",
    ".tar.xz": "tar",
    ".txz": "tar",
    ".zip": "zip",
}
GIT_HOST_SHORTHANDS = ("github.com/", "gitlab.com/")
# Accepted for compatibility with go-getter; every fetch is shallow when the server allows it anyway.
IGNORED_GIT_PARAMS = frozenset({"depth"})
VERSION_PLACEHOLDER = re.compile(r"\{\{\s*(?:version|\.Version)\s*\}\}")
ANY_PLACEHOLDER = re.compile(r"\{\{.*?\}\}")
SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:(?!//)")


@dataclass(frozen=True)
class LocalSource:
    path: Path


@dataclass(frozen=True)
class GitSource:
    url: str
    ref: str | None
    subdir: str


@dataclass(frozen=True)
class ArchiveSource:
    url: str
    kind: str
    subdir: str


Source = LocalSource | GitSource | ArchiveSource


def render_source(template: str, version: str | None) -> str:
    """Fill `{{ version }}` (Atmos' `{{ .Version }}` too) from the entry's version."""
    if VERSION_PLACEHOLDER.search(template):
        if version is None:
            raise SourceError(
                f"source {template!r} uses {{{{ version }}}} but the entry has no version",
                hint="add `version:` to the vendor entry, or write the version into the source",
            )
        template = VERSION_PLACEHOLDER.sub(lambda _: version, template)
    if unknown := ANY_PLACEHOLDER.search(template):
        raise SourceError(
            f"source {template!r} has the placeholder {unknown.group(0)}; only {{{{ version }}}} is known",
            hint="write the value into the source, or use {{ version }}",
        )
    return template


def parse_source(text: str, *, base_dir: Path) -> Source:
    """Classify a rendered source string; `base_dir` anchors relative local paths. Pure: no I/O."""
    forced, _, rest = text.partition("::") if re.match(r"^[a-z0-9]+::", text) else ("", "", text)
    if forced and forced != "git":
        raise SourceError(
            f"source {text!r} asks for the {forced}:: getter, which vendor_cache does not support",
            hint="use git::<url>, an http(s) archive URL (.tar.gz, .tgz, .zip), or a local path",
        )
    address, _, query = rest.partition("?")
    scheme = urlsplit(address).scheme if "://" in address else ""

    if forced == "git" and address.startswith(("./", "../")):
        # A repository beside the one that vendors (`git::./modules.git//vpc`): anchored like a local path.
        url, subdir = _split_subdir(address)
        address = str((base_dir / url).resolve()) + (f"//{subdir}" if subdir else "")
    if forced == "git" or scheme in ("ssh", "git") or SCP_LIKE.match(address):
        return _git(text, address, query)
    if not scheme and address.startswith(GIT_HOST_SHORTHANDS):
        return _git(text, "https://" + address, query)
    if scheme in ("http", "https", "file"):
        base, _ = _split_subdir(address)
        params = dict(parse_qsl(query, keep_blank_values=True))
        kind = _archive_kind(text, urlsplit(base).path, params.get("archive"))
        if kind:
            return _archive(text, address, params, kind)
        if base.endswith(".git") or scheme == "file":
            return _git(text, address, query)
        raise SourceError(
            f"cannot tell what {text!r} is: neither a Git repository (.git) nor an archive",
            hint="prefix Git URLs with git::, or point at a .tar.gz/.tgz/.zip archive",
        )
    if scheme:
        raise SourceError(
            f"source {text!r} uses the {scheme}:// scheme, which vendor_cache does not fetch",
            hint="use https://, file://, git::<url>, or a local path",
        )
    if query:
        raise SourceError(f"local source {text!r} cannot take ?{query}", hint="remove the query string")
    path = Path(address).expanduser()
    return LocalSource(path if path.is_absolute() else base_dir / path)


def _git(text: str, address: str, query: str) -> GitSource:
    url, subdir = _split_subdir(address)
    params = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(params) - {"ref"} - IGNORED_GIT_PARAMS)
    if unknown:
        raise SourceError(
            f"Git source {text!r} has unsupported parameter(s): {', '.join(unknown)}",
            hint="only ?ref=<tag|branch|commit> is supported",
        )
    ref = params.get("ref")
    if ref == "":
        raise SourceError(f"Git source {text!r} has an empty ?ref=", hint="name a tag, branch or commit")
    return GitSource(url=url, ref=ref, subdir=_checked_subdir(text, subdir))


def _archive(text: str, address: str, params: dict[str, str], kind: str) -> ArchiveSource:
    url, subdir = _split_subdir(address)
    # go-getter strips its own `archive` parameter; everything else (signed URLs) goes to the server.
    rest = {k: v for k, v in params.items() if k != "archive"}
    if rest:
        url = f"{url}?{urlencode(rest)}"
    return ArchiveSource(url=url, kind=kind, subdir=_checked_subdir(text, subdir))


def _archive_kind(text: str, path: str, forced: str | None) -> str | None:
    if forced is not None:
        kind = ARCHIVE_SUFFIXES.get("." + forced.lower())
        if kind is None:
            raise SourceError(
                f"source {text!r} forces ?archive={forced}, which is not a supported archive type",
                hint=f"use one of: {', '.join(s[1:] for s in ARCHIVE_SUFFIXES)}",
            )
        return kind
    lowered = path.lower()
    return next((kind for suffix, kind in ARCHIVE_SUFFIXES.items() if lowered.endswith(suffix)), None)


def _split_subdir(address: str) -> tuple[str, str]:
    scheme_end = address.find("://")
    start = scheme_end + 3 if scheme_end >= 0 else 0
    split = address.find("//", start)
    if split < 0:
        return address, ""
    return address[:split], address[split + 2 :]


def _checked_subdir(text: str, subdir: str) -> str:
    subdir = subdir.strip("/")
    if not subdir:
        return ""
    if ".." in PurePosixPath(subdir).parts:
        raise SourceError(
            f"source {text!r} has a subdirectory that climbs out of the repository: {subdir!r}",
            hint="name a directory inside the repository or archive after //",
        )
    return subdir


def subdir_of(text: str) -> str:
    """The subdirectory a rendered source names after `//` ("" for none, and for a local path);
    a glob stays a glob. Nothing is fetched, and a source that does not parse names none."""
    try:
        source = parse_source(text, base_dir=Path("/"))
    except SourceError:
        return ""
    return "" if isinstance(source, LocalSource) else _normal(source.subdir)


def is_glob(subdir: str) -> bool:
    return any(char in subdir for char in "*?[")


def _normal(subdir: str) -> str:
    parts = PurePosixPath(subdir).parts
    return "/".join(parts) if parts else ""


def locate_subdir(tree: Path, subdir: str, *, source: str) -> Path:
    """The module directory inside a fetched tree; a glob subdirectory must match exactly one directory."""
    if not subdir:
        return tree
    root = tree.resolve()

    def inside(path: Path) -> bool:
        # A symlink in the checkout must not carry the subdirectory out of it.
        return path.is_dir() and path.resolve().is_relative_to(root)

    if not is_glob(subdir):
        found = tree / subdir
        if not inside(found):
            raise SourceError(
                f"source {source!r} has no directory {subdir!r}",
                hint="check the path after // (it is relative to the repository or archive root)",
            )
        return found
    matches = sorted(p for p in tree.glob(subdir) if inside(p))
    if len(matches) != 1:
        shown = ", ".join(str(m.relative_to(tree)) for m in matches) or "nothing"
        raise SourceError(
            f"source {source!r}: the subdirectory glob {subdir!r} must match exactly one directory, "
            f"and it matched {shown}",
            hint="make the glob after // more specific",
        )
    return matches[0]
