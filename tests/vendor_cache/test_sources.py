"""Source strings: local paths, Git (shorthand, git::, file://), archives, //subdir, ?ref=, {{ version }}."""

from __future__ import annotations

from pathlib import Path

import pytest

from vendor_cache import SourceError, VendorError
from vendor_cache.sources import (
    ArchiveSource,
    GitSource,
    LocalSource,
    locate_subdir,
    parse_source,
    render_source,
)

BASE = Path("/repo")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "github.com/org/repo.git//modules/vpc?ref=v1.2.3",
            GitSource("https://github.com/org/repo.git", "v1.2.3", "modules/vpc"),
        ),
        ("gitlab.com/org/repo.git?ref=main", GitSource("https://gitlab.com/org/repo.git", "main", "")),
        (
            "git::https://example.com/org/repo.git//sub/dir?ref=abc123&depth=1",
            GitSource("https://example.com/org/repo.git", "abc123", "sub/dir"),
        ),
        ("git::https://example.com/org/repo", GitSource("https://example.com/org/repo", None, "")),
        ("file:///srv/git/mods.git//vpc?ref=v1", GitSource("file:///srv/git/mods.git", "v1", "vpc")),
        ("file:///srv/git/mods", GitSource("file:///srv/git/mods", None, "")),
        ("git@github.com:org/repo.git//vpc?ref=v2", GitSource("git@github.com:org/repo.git", "v2", "vpc")),
        ("ssh://git@host/org/repo.git", GitSource("ssh://git@host/org/repo.git", None, "")),
        (
            "https://example.com/dl/mods-1.0.tar.gz//mods-1.0/vpc",
            ArchiveSource("https://example.com/dl/mods-1.0.tar.gz", "tar", "mods-1.0/vpc"),
        ),
        ("http://127.0.0.1:8000/m.tgz", ArchiveSource("http://127.0.0.1:8000/m.tgz", "tar", "")),
        ("https://example.com/m.ZIP//*/vpc", ArchiveSource("https://example.com/m.ZIP", "zip", "*/vpc")),
        (
            "https://example.com/get?id=7&archive=zip",
            ArchiveSource("https://example.com/get?id=7", "zip", ""),
        ),
        ("modules/vpc", LocalSource(BASE / "modules/vpc")),
        ("../shared/vpc", LocalSource(BASE / "../shared/vpc")),
        ("/abs/vpc", LocalSource(Path("/abs/vpc"))),
    ],
)
def test_source_forms(text: str, expected: object) -> None:
    assert parse_source(text, base_dir=BASE) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("s3::https://bucket/key.zip", "s3:: getter"),
        ("https://example.com/page", "neither a Git repository"),
        ("oci://registry/mod", "oci:// scheme"),
        ("github.com/org/repo.git//../../etc?ref=v1", "climbs out"),
        ("github.com/org/repo.git?ref=v1&sshkey=abc", "sshkey"),
        ("github.com/org/repo.git?ref=", "empty ?ref="),
        ("https://example.com/x?archive=rar", "archive=rar"),
        ("modules/vpc?ref=v1", "cannot take ?ref=v1"),
    ],
)
def test_bad_sources_are_bad_input(text: str, complaint: str) -> None:
    with pytest.raises(SourceError) as raised:
        parse_source(text, base_dir=BASE)
    assert complaint in str(raised.value)
    assert raised.value.exit_code == 2
    assert raised.value.hint


def test_version_fills_the_source_in_both_spellings() -> None:
    assert (
        render_source("github.com/o/r.git//vpc?ref={{ version }}", "v1.2.3")
        == "github.com/o/r.git//vpc?ref=v1.2.3"
    )
    assert (
        render_source("https://x/m-{{.Version}}.tgz//m-{{ .Version }}", "2.0") == "https://x/m-2.0.tgz//m-2.0"
    )
    assert render_source("modules/vpc", None) == "modules/vpc"


def test_version_placeholder_without_version_or_unknown_placeholder_is_an_error() -> None:
    with pytest.raises(VendorError, match="has no version"):
        render_source("github.com/o/r.git?ref={{ version }}", None)
    with pytest.raises(VendorError, match=r"\{\{ env \}\}"):
        render_source("github.com/o/r.git?ref={{ env }}", "v1")


def test_subdir_globs_must_match_one_directory(tmp_path: Path) -> None:
    (tmp_path / "mods-1.0/vpc").mkdir(parents=True)
    (tmp_path / "mods-1.0/sg").mkdir()
    assert locate_subdir(tmp_path, "*/vpc", source="s") == tmp_path / "mods-1.0/vpc"
    with pytest.raises(SourceError, match=r"matched mods-1\.0/sg, mods-1\.0/vpc"):
        locate_subdir(tmp_path, "*/*", source="s")
    with pytest.raises(SourceError, match="no directory 'nope'"):
        locate_subdir(tmp_path, "nope", source="s")


def test_subdir_cannot_leave_the_tree_through_a_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "escape").symlink_to(outside)
    with pytest.raises(SourceError, match="no directory 'escape'"):
        locate_subdir(tree, "escape", source="s")
