"""Archive sources from a real local HTTP server; unsafe archives are refused before anything is written."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.vendor_cache.conftest import VPC_FILES, VPC_V1, HttpServer, files_of, tar_gz, zip_file
from vendor_cache import FetchError, ProgressEvent, SourceError, Store, UnsafeArchiveError, VendorEntry


def test_tar_gz_and_zip_with_subdirectories_store_one_object(store: Store, http_server: HttpServer) -> None:
    tar_gz(http_server.directory / "mods-1.0.0.tar.gz", VPC_V1, top="mods-1.0.0")
    zip_file(http_server.directory / "mods.zip", VPC_V1, top="mods-1.0.0")
    from_tar = store.fetch(
        VendorEntry("vpc", http_server.url("mods-1.0.0.tar.gz") + "//mods-1.0.0/modules/vpc")
    )
    from_zip = store.fetch(VendorEntry("vpc", http_server.url("mods.zip") + "//*/modules/vpc"))
    # The object is the whole archive (its top folder too); the module is a folder in it.
    obj = store.object_path(from_tar.digest)
    assert files_of(obj) == {f"mods-1.0.0/{rel}": text for rel, text in VPC_V1.items()}
    assert from_tar.subdir == from_zip.subdir == "mods-1.0.0/modules/vpc"
    assert files_of(obj / from_tar.subdir) == VPC_FILES
    assert from_zip.digest == from_tar.digest and from_zip.commit is None
    assert store.objects() == [from_tar.digest]
    assert os.stat(obj / from_zip.subdir / "scripts/plan.sh").st_mode & stat.S_IXUSR


def test_version_fills_archive_urls(store: Store, http_server: HttpServer) -> None:
    tar_gz(http_server.directory / "mods-2.0.tgz", {"main.tf": "# two\n"}, top="mods-2.0")
    entry = VendorEntry(
        "vpc", http_server.url("mods-{{ version }}.tgz") + "//mods-{{ version }}", version="2.0"
    )
    result = store.fetch(entry)
    assert result.source == http_server.url("mods-2.0.tgz") + "//mods-2.0"
    assert files_of(store.object_path(result.digest)) == {"mods-2.0/main.tf": "# two\n"}
    assert result.subdir == "mods-2.0"


def test_included_and_excluded_paths_filter_the_module_and_keep_the_rest(
    store: Store, http_server: HttpServer
) -> None:
    tar_gz(http_server.directory / "m.tar.gz", VPC_V1)
    entry = VendorEntry(
        "vpc",
        http_server.url("m.tar.gz") + "//modules/vpc",
        included_paths=["**/*.tf", "**/*.md"],
        excluded_paths=["**/examples"],
    )
    # The globs match paths relative to the module (modules/vpc) and select among its files only:
    # what `../` reaches from it (the README, modules/sg) is kept whole.
    assert sorted(files_of(store.object_path(store.fetch(entry).digest))) == [
        "README.md",
        "modules/sg/main.tf",
        "modules/vpc/README.md",
        "modules/vpc/main.tf",
        "modules/vpc/variables.tf",
    ]


def test_in_tree_symlinks_are_stored_as_the_files_they_name(store: Store, http_server: HttpServer) -> None:
    with tarfile.open(http_server.directory / "m.tar.gz", "w:gz") as tar:
        _tar_member(tar, "main.tf")
        _tar_member(tar, "alias.tf", tarfile.SYMTYPE, "main.tf")
    obj = store.object_path(store.fetch(VendorEntry("vpc", http_server.url("m.tar.gz"))).digest)
    assert not (obj / "alias.tf").is_symlink()
    assert files_of(obj) == {"alias.tf": "# file\n", "main.tf": "# file\n"}


def test_progress_reports_download_bytes_and_insert_files(store: Store, http_server: HttpServer) -> None:
    path = tar_gz(http_server.directory / "m.tar.gz", VPC_V1)
    events: list[ProgressEvent] = []
    store.fetch(VendorEntry("vpc", http_server.url("m.tar.gz")), progress=events.append)
    downloads = [e for e in events if e.phase == "download"]
    assert downloads[-1].done == downloads[-1].total == path.stat().st_size
    assert [e.done for e in downloads] == sorted(e.done or 0 for e in downloads)
    inserts = [e for e in events if e.phase == "insert"]
    assert inserts[-1].done == inserts[-1].total == len(VPC_V1)
    assert {e.subject for e in events} == {"vpc", http_server.url("m.tar.gz")}


def test_http_errors_are_fetch_failures(store: Store, http_server: HttpServer) -> None:
    with pytest.raises(FetchError, match="HTTP 404") as raised:
        store.fetch(VendorEntry("vpc", http_server.url("absent.tar.gz")))
    assert raised.value.exit_code == 1
    url = http_server.url("m.tar.gz")
    http_server.stop()
    with pytest.raises(FetchError, match="cannot reach"):
        store.fetch(VendorEntry("vpc", url))


def test_a_page_that_is_not_an_archive_is_bad_input(store: Store, http_server: HttpServer) -> None:
    (http_server.directory / "m.tar.gz").write_text("<html>not found</html>")
    (http_server.directory / "m.zip").write_text("<html>not found</html>")
    for name in ("m.tar.gz", "m.zip"):
        with pytest.raises(SourceError, match="cannot extract") as raised:
            store.fetch(VendorEntry("vpc", http_server.url(name)))
        assert raised.value.exit_code == 2


def _tar_member(tar: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    data = b"" if kind != tarfile.REGTYPE else b"# file\n"
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _zip_member(zipped: zipfile.ZipFile, name: str, link: str = "") -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = (0o120777 if link else 0o100644) << 16
    zipped.writestr(info, link or "# file\n")


UNSAFE = {
    "dotdot": ("member '../evil.tf': `..` in the path", [("../evil.tf", "")]),
    "absolute": ("absolute path", [("{outside}/evil.tf", "")]),
    "escaping symlink": ("outside the archive", [("evil.tf", "../../evil.tf")]),
    "absolute symlink": ("symlink to the absolute path", [("evil.tf", "{outside}/evil.tf")]),
    "through a symlink": ("passes through a symlink", [("dir/evil.tf", ""), ("dir", ".")]),
    "link across a link": ("crosses the symlink 'here'", [("here", "."), ("evil.tf", "here/../evil2.tf")]),
}


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_archives_are_refused_and_write_nothing(
    store: Store, http_server: HttpServer, tmp_path: Path, kind: str, case: str
) -> None:
    complaint, members = UNSAFE[case]
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = http_server.directory / f"evil.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zipped:
            _zip_member(zipped, "main.tf")
            for name, link in members:
                _zip_member(zipped, name.format(outside=outside), link.format(outside=outside))
    else:
        with tarfile.open(archive, "w:gz") as tar:
            _tar_member(tar, "main.tf")
            for name, link in members:
                kind_ = tarfile.SYMTYPE if link else tarfile.REGTYPE
                _tar_member(tar, name.format(outside=outside), kind_, link.format(outside=outside))
    with pytest.raises(UnsafeArchiveError) as raised:
        store.vendor("api", "dev", VendorEntry("vpc", http_server.url(archive.name)))
    assert complaint in str(raised.value) and archive.name in str(raised.value)
    assert raised.value.exit_code == 2
    assert list(outside.iterdir()) == [] and not (tmp_path / "evil.tf").exists()
    assert store.objects() == []
    assert list((store.root / "tmp").iterdir()) == []
    assert not store.workspace("api", "dev", "vpc").exists()
    assert not store.lock_path("api", "dev").exists()


@pytest.mark.parametrize(
    ("kind", "link", "complaint"),
    [
        (tarfile.LNKTYPE, "../outside.tf", "`..` in the path"),
        (tarfile.CHRTYPE, "", "device, FIFO"),
        (tarfile.FIFOTYPE, "", "device, FIFO"),
    ],
)
def test_tar_hard_links_and_special_files(
    store: Store, http_server: HttpServer, kind: bytes, link: str, complaint: str
) -> None:
    with tarfile.open(http_server.directory / "evil.tar.gz", "w:gz") as tar:
        _tar_member(tar, "main.tf")
        _tar_member(tar, "odd", kind, link)
    with pytest.raises(UnsafeArchiveError, match=complaint):
        store.fetch(VendorEntry("vpc", http_server.url("evil.tar.gz")))
    assert store.objects() == []
