"""The store itself: atomic read-only objects, workspaces linked into them, verify, stats and clean."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from tests.vendor_cache.conftest import VPC_V1, ModuleRepo, files_of, write_tree
from vendor_cache import (
    MissingObjectError,
    SourceError,
    Store,
    VendorEntry,
    VendorError,
    is_intact,
    tree_digest,
)


def test_insert_is_content_addressed_read_only_and_deduplicated(store: Store, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", VPC_V1)
    write_tree(src, {".terraform/providers/p": "binary", "terraform.tfstate": "{}"})
    digest = store.insert_tree(src)
    assert digest == tree_digest(src)
    obj = store.object_path(digest)
    assert files_of(obj) == VPC_V1
    assert all(not (p.stat().st_mode & 0o222) for p in [obj, *obj.rglob("*")])
    assert store.insert_tree(write_tree(tmp_path / "again", VPC_V1)) == digest
    assert store.objects() == [digest]
    info = store.object_info(digest)
    assert info is not None and info.files == len(VPC_V1)
    assert info.bytes == sum(len(text) for text in VPC_V1.values())
    assert list((store.root / "tmp").iterdir()) == []


def test_symlinks_leaving_a_local_module_are_refused(store: Store, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("key")
    src = write_tree(tmp_path / "src", {"main.tf": "# m\n"})
    (src / "inside.tf").symlink_to("main.tf")
    assert files_of(store.object_path(store.insert_tree(src)))["inside.tf"] == "# m\n"
    (src / "leak.tf").symlink_to(tmp_path / "secret")
    with pytest.raises(SourceError, match=r"leak\.tf is a symlink to .*, outside the module"):
        store.insert_tree(src)


def test_directory_symlinks_are_refused_unless_excluded(store: Store, tmp_path: Path) -> None:
    write_tree(tmp_path / "shared", {"common.tf": "# c\n"})
    src = write_tree(tmp_path / "src", {"main.tf": "# m\n"})
    (src / "shared").symlink_to(tmp_path / "shared")
    with pytest.raises(SourceError, match="shared is a symlink to a directory"):
        store.insert_tree(src)
    assert files_of(store.object_path(store.insert_tree(src, excluded=["shared"]))) == {"main.tf": "# m\n"}


def test_materialize_links_into_the_object(store: Store, tmp_path: Path) -> None:
    digest = store.insert_tree(write_tree(tmp_path / "src", VPC_V1))
    dest = store.workspace("api", "dev", "vpc")
    done = store.materialize(digest, dest)
    assert (done.linked, done.copied) == (len(VPC_V1), 0)
    obj = store.object_path(digest)
    assert (dest / "README.md").stat().st_ino == (obj / "README.md").stat().st_ino, "a hard link"
    assert not (dest / "README.md").stat().st_mode & 0o222, "files share the object's read-only inode"
    # Folders are not re-created: each top-level one is a relative link to the object's folder.
    assert (dest / "modules").is_symlink() and not os.readlink(dest / "modules").startswith("/")
    assert (dest / "modules").resolve() == (obj / "modules").resolve()
    assert not (dest / "modules").stat().st_mode & 0o222, "the linked folder is the read-only object's"
    assert (dest / "modules/vpc/main.tf").stat().st_ino == (obj / "modules/vpc/main.tf").stat().st_ino
    assert dest.stat().st_mode & 0o200, "the workspace's own folder stays writable"
    assert is_intact(dest, digest)
    # Terraform writes its working files into the workspace; they do not make it less intact.
    (dest / ".terraform").mkdir()
    (dest / ".terraform" / "plugin").write_text("x")
    assert is_intact(dest, digest)
    (dest / "extra.tf").write_text("# drift\n")
    assert not is_intact(dest, digest)


def test_workspaces_survive_moving_the_whole_store(tmp_path: Path) -> None:
    with Store(tmp_path / "cache") as store:
        digest = store.insert_tree(write_tree(tmp_path / "src", VPC_V1))
        store.materialize(digest, store.workspace("api", "dev", "network/vpc"))
    (tmp_path / "cache").rename(tmp_path / "restored")  # a CI cache restored elsewhere
    with Store(tmp_path / "restored") as moved:
        assert is_intact(moved.workspace("api", "dev", "network/vpc"), digest)


def test_materialize_of_an_object_with_an_extra_file_says_it_is_damaged(store: Store, tmp_path: Path) -> None:
    digest = store.insert_tree(write_tree(tmp_path / "src", VPC_V1))
    tampered = store.object_path(digest) / "modules/vpc"
    tampered.chmod(0o755)
    (tampered / "backdoor.tf").write_text("# not from the source\n")
    with pytest.raises(VendorError, match=r"modules/vpc/backdoor\.tf: added \(a file\)"):
        store.materialize(digest, tmp_path / "ws")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "src"], "no workspace, no temp folder"


def test_names_that_digests_ignore_do_not_make_an_object_damaged(store: Store, tmp_path: Path) -> None:
    digest = store.insert_tree(write_tree(tmp_path / "src", VPC_V1))
    # Terraform run by hand in a linked folder, as root, leaves its files in the object.
    inside = store.object_path(digest) / "modules/vpc"
    inside.chmod(0o755)
    write_tree(inside, {"terraform.tfstate": "{}", ".terraform/modules/modules.json": "{}"})
    inside.chmod(0o555)  # root writes without opening it; a folder left writable is damage
    assert store.verify(digest)
    done = store.materialize(digest, tmp_path / "ws")
    assert done.linked == len(VPC_V1) and is_intact(tmp_path / "ws", digest)


def test_a_filesystem_refusing_hard_links_gets_a_full_copy(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = store.insert_tree(write_tree(tmp_path / "src", VPC_V1))

    def refuse(*_: object, **__: object) -> None:  # test double: a filesystem without hard links
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("vendor_cache.store.os.link", refuse)
    done = store.materialize(digest, tmp_path / "ws")
    assert (done.linked, done.copied) == (0, len(VPC_V1))
    assert not (tmp_path / "ws" / "modules").is_symlink(), "a copy does not depend on the store"
    assert is_intact(tmp_path / "ws", digest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "src", "ws"], "no temp folder left"


def test_materialize_copies_when_asked_to(store: Store, tmp_path: Path) -> None:
    digest = store.insert_tree(write_tree(tmp_path / "src", VPC_V1))
    dest = tmp_path / "ws"
    done = store.materialize(digest, dest, link=False)
    assert (done.linked, done.copied) == (0, len(VPC_V1))
    assert (dest / "modules/vpc/main.tf").stat().st_nlink == 1
    assert os.access(dest / "modules/vpc/scripts/plan.sh", os.X_OK)
    assert is_intact(dest, digest)


def other_filesystem(than: Path) -> Path:
    """A writable folder on another filesystem than `than` (a tmpfs on any Linux CI machine)."""
    here = than.stat().st_dev
    for candidate in (Path("/dev/shm"), Path("/run/user") / str(os.getuid()), Path("/run"), Path("/tmp")):
        if candidate.is_dir() and os.access(candidate, os.W_OK) and candidate.stat().st_dev != here:
            return candidate
    raise AssertionError(f"this test needs a writable folder on another filesystem than {than} (/dev/shm)")


def test_materialize_across_devices_falls_back_to_copies(store: Store, tmp_path: Path) -> None:
    digest = store.insert_tree(write_tree(tmp_path / "src", VPC_V1))
    with tempfile.TemporaryDirectory(dir=other_filesystem(tmp_path)) as other:
        done = store.materialize(digest, Path(other) / "ws")
        assert (done.linked, done.copied) == (0, len(VPC_V1))
        assert is_intact(Path(other) / "ws", digest)


def test_materialize_replaces_a_workspace_whole(store: Store, tmp_path: Path) -> None:
    old = store.insert_tree(write_tree(tmp_path / "old", {"main.tf": "# old\n", "gone.tf": "# gone\n"}))
    new = store.insert_tree(write_tree(tmp_path / "new", {"main.tf": "# new\n"}))
    dest = store.workspace("api", "dev", "ecs/service")
    store.materialize(old, dest)
    store.materialize(new, dest)
    assert files_of(dest) == {"main.tf": "# new\n"}
    assert sorted(p.name for p in dest.parent.iterdir()) == ["service"], "no temp siblings left behind"


def test_materialize_replaces_a_linked_workspace_with_another_version(store: Store, tmp_path: Path) -> None:
    v1 = store.insert_tree(write_tree(tmp_path / "v1", VPC_V1))
    v2_files = {**VPC_V1, "modules/vpc/main.tf": "# v2\n", "modules/nat/main.tf": "# nat\n"}
    v2 = store.insert_tree(write_tree(tmp_path / "v2", v2_files))
    dest = store.workspace("api", "dev", "vpc")
    store.materialize(v1, dest)
    store.materialize(v2, dest)
    assert is_intact(dest, v2) and (dest / "modules/nat/main.tf").read_text() == "# nat\n"
    assert tree_digest(store.object_path(v1)) == v1, "replacing the workspace left the old object alone"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["vpc"], "no temp siblings left behind"


def test_materialize_without_the_listing_walks_the_object(store: Store, tmp_path: Path) -> None:
    digest = store.insert_tree(write_tree(tmp_path / "src", VPC_V1))
    store._cache.delete(("listing", digest))  # an index written before listings were kept
    done = store.materialize(digest, tmp_path / "ws")
    assert (done.linked, done.copied) == (len(VPC_V1), 0)
    assert is_intact(tmp_path / "ws", digest)


def test_materialize_of_a_damaged_object_leaves_nothing_and_says_how_to_fix_it(
    store: Store, tmp_path: Path
) -> None:
    digest = store.insert_tree(write_tree(tmp_path / "src", VPC_V1))
    damaged = store.object_path(digest) / "modules/vpc"
    damaged.chmod(0o755)
    (damaged / "variables.tf").unlink()
    with pytest.raises(VendorError, match=r"modules/vpc/variables\.tf: missing") as raised:
        store.materialize(digest, tmp_path / "ws")
    assert "--verify" in str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "src"], "no workspace, no temp folder"


def test_materialize_of_an_unknown_object_says_how_to_fix_it(store: Store, tmp_path: Path) -> None:
    with pytest.raises(MissingObjectError, match="not in the store") as raised:
        store.materialize("0" * 64, tmp_path / "ws")
    assert "vendor pull" in str(raised.value)
    assert not (tmp_path / "ws").exists()


def _flip_a_byte(path: Path) -> None:
    mode = path.stat().st_mode
    path.parent.chmod(0o755)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    path.chmod(mode)
    path.parent.chmod(0o555)


def test_a_flipped_byte_is_detected_evicted_and_fetched_again(store: Store, module_repo: ModuleRepo) -> None:
    entry = VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref=v1.0.0")
    first = store.vendor("api", "dev", entry)
    assert store.verify(first.digest)
    # A top-level file of the object (the repository's README), which the workspace hard-links.
    _flip_a_byte(store.object_path(first.digest) / "README.md")

    assert not store.verify(first.digest)
    assert store.objects() == []
    again = store.fetch(entry)
    assert not again.from_cache and again.digest == first.digest
    assert store.verify(first.digest)
    # The workspace shared the corrupted inode; the next vendor notices and relinks it.
    assert not is_intact(first.path, first.digest)
    redo = store.vendor("api", "dev", entry, verify=True)
    assert redo.materialized and is_intact(redo.path, first.digest)


def test_vendor_with_verify_evicts_and_refetches_a_corrupt_object(
    store: Store, module_repo: ModuleRepo
) -> None:
    entry = VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref=v1.0.0")
    first = store.vendor("api", "dev", entry)
    _flip_a_byte(store.object_path(first.digest) / "modules/vpc/variables.tf")
    redo = store.vendor("api", "dev", entry, verify=True)
    assert redo.fetched and redo.digest == first.digest
    assert tree_digest(store.object_path(first.digest)) == first.digest


def test_three_targets_on_one_version_store_it_once(store: Store, module_repo: ModuleRepo) -> None:
    entry = VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref=v1.0.0")
    results = [store.vendor("api", target, entry) for target in ("dev", "staging", "prod")]
    assert [r.fetched for r in results] == [True, False, False]
    stats = store.stats()
    assert (stats.objects, stats.workspaces) == (1, 3)
    assert stats.workspace_bytes == 3 * stats.object_bytes
    assert stats.disk_bytes == stats.referenced_bytes == stats.object_bytes
    assert stats.saved_bytes == 2 * stats.object_bytes > 0


def test_local_sources_are_reread_so_edits_show_up(store: Store, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "modules/vpc-1", {"main.tf": "# a\n"})
    entry = VendorEntry("vpc", "modules/vpc-{{ version }}", "1", base_dir=tmp_path)
    first = store.vendor("api", "dev", entry)
    assert not store.vendor("api", "dev", entry).materialized
    (src / "main.tf").write_text("# b\n")
    second = store.vendor("api", "dev", entry)
    assert second.digest != first.digest and second.materialized
    assert (second.path / "main.tf").read_text() == "# b\n"


def test_clean_dry_run_reports_and_force_removes(
    store: Store, module_repo: ModuleRepo, tmp_path: Path
) -> None:
    kept = store.vendor("api", "dev", VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref=v1.0.0"))
    unreferenced = store.fetch(VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref=v1.1.0")).digest
    stale_ws = store.workspace("api", "dev", "old-component")
    store.materialize(kept.digest, stale_ws)
    unlocked_ws = store.workspace("web", "dev", "vpc")
    store.materialize(kept.digest, unlocked_ws)
    leftover = store.root / "tmp" / ".vendor-tmp-99999999-dead"
    write_tree(leftover, {"half.tf": "#"})

    report = store.clean()
    assert report.dry_run
    assert report.objects == (unreferenced,)
    assert set(report.workspaces) == {stale_ws, unlocked_ws}
    assert report.temporary == (leftover,)
    assert report.bytes > 0
    assert store.has(unreferenced) and stale_ws.exists() and leftover.exists()

    assert store.clean(older_than=3600, dry_run=False).objects == ()
    assert store.has(unreferenced) and stale_ws.exists() and not leftover.exists()

    removed = store.clean(dry_run=False)
    assert removed.objects == (unreferenced,) and not removed.dry_run
    assert store.objects() == [kept.digest]
    assert not stale_ws.exists() and not unlocked_ws.exists()
    assert is_intact(kept.path, kept.digest)
    assert store.fetch(VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref=v1.0.0")).from_cache
    assert store.clean() == type(report)((), (), (), 0, True)


def test_clean_older_than_spares_recently_used_objects(store: Store, tmp_path: Path) -> None:
    digest = store.insert_tree(write_tree(tmp_path / "src", {"main.tf": "#"}))
    long_ago = time.time() - 7200
    os.utime(store.object_path(digest), (long_ago, long_ago))
    assert store.clean(older_than=3600).objects == (digest,)
    store.materialize(digest, tmp_path / "ws")
    assert store.clean(older_than=3600).objects == ()


def test_clean_older_than_keeps_the_object_of_a_workspace_it_keeps(store: Store, tmp_path: Path) -> None:
    digest = store.insert_tree(write_tree(tmp_path / "src", VPC_V1))
    recent = store.workspace("api", "dev", "unlocked")  # no lock lists it: stale, but used just now
    store.materialize(digest, recent)
    long_ago = time.time() - 7200
    os.utime(store.object_path(digest), (long_ago, long_ago))
    report = store.clean(older_than=3600, dry_run=False)
    assert report.objects == () and report.workspaces == ()
    assert is_intact(recent, digest), "its folder links still lead somewhere"
    assert store.clean(dry_run=False).objects == (digest,)
