"""The lock file in use: recorded on pull, reused offline, and the only truth under --frozen."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.vendor_cache.conftest import VPC_V1, HttpServer, ModuleRepo, files_of, tar_gz
from vendor_cache import (
    LockError,
    LockMismatchError,
    MissingObjectError,
    Store,
    VendorEntry,
    VendorError,
    is_intact,
    read_lock,
)


def git_entry(repo: ModuleRepo, version: str = "v1.0.0") -> VendorEntry:
    return VendorEntry("vpc", f"{repo.url}//modules/vpc?ref={{{{ version }}}}", version)


def test_pull_records_source_version_digest_and_commit(store: Store, module_repo: ModuleRepo) -> None:
    done = store.vendor("api", "dev", git_entry(module_repo))
    locked = read_lock(store.lock_path("api", "dev")).components["vpc"]
    assert (locked.source, locked.version) == (git_entry(module_repo).source, "v1.0.0")
    assert (locked.digest, locked.commit) == (done.digest, module_repo.commits["v1.0.0"])
    assert done.path == store.root / "deployments/api/dev/terraform/vpc"
    text = store.lock_path("api", "dev").read_text()
    assert f"commit: {module_repo.commits['v1.0.0']}" in text


def test_frozen_needs_no_network_once_locked(store: Store, own_repo: ModuleRepo) -> None:
    entry = git_entry(own_repo)
    first = store.vendor("api", "dev", entry)
    shutil.rmtree(own_repo.path)
    lock_text = store.lock_path("api", "dev").read_text()

    again = store.vendor("api", "dev", entry, frozen=True)
    assert (again.digest, again.fetched, again.materialized) == (first.digest, False, False)
    shutil.rmtree(first.path)
    restored = store.vendor("api", "dev", entry, frozen=True, verify=True)
    assert restored.materialized and is_intact(restored.path, first.digest)
    assert store.lock_path("api", "dev").read_text() == lock_text


def test_frozen_archive_pull_survives_a_stopped_server(store: Store, http_server: HttpServer) -> None:
    tar_gz(http_server.directory / "m-1.tar.gz", VPC_V1, top="m-1")
    entry = VendorEntry(
        "vpc", http_server.url("m-{{ version }}.tar.gz") + "//m-{{ version }}/modules/vpc", "1"
    )
    first = store.vendor("api", "prod", entry)
    http_server.stop()
    shutil.rmtree(first.path)
    again = store.vendor("api", "prod", entry, frozen=True)
    assert again.digest == first.digest and again.materialized
    assert again.subdir == "m-1/modules/vpc"
    assert files_of(again.module)["main.tf"] == VPC_V1["modules/vpc/main.tf"]


def test_without_frozen_a_matching_lock_is_reused_offline(store: Store, own_repo: ModuleRepo) -> None:
    entry = git_entry(own_repo)
    first = store.vendor("api", "dev", entry)
    store.close()
    shutil.rmtree(store.root / "index")
    shutil.rmtree(own_repo.path)
    again = store.vendor("api", "dev", entry)
    assert again.digest == first.digest and not again.fetched


def test_frozen_lock_mismatch_is_a_clear_error(store: Store, module_repo: ModuleRepo) -> None:
    store.vendor("api", "dev", git_entry(module_repo, "v1.0.0"))
    with pytest.raises(LockMismatchError) as raised:
        store.vendor("api", "dev", git_entry(module_repo, "v1.1.0"), frozen=True)
    message = str(raised.value)
    assert "version: lock has 'v1.0.0', manifest has 'v1.1.0'" in message
    assert str(store.lock_path("api", "dev")) in message and "without --frozen" in message
    assert raised.value.exit_code == 2
    updated = store.vendor("api", "dev", git_entry(module_repo, "v1.1.0"))
    assert read_lock(store.lock_path("api", "dev")).components["vpc"].digest == updated.digest


def test_frozen_without_a_lock_or_entry_says_to_pull(store: Store, module_repo: ModuleRepo) -> None:
    with pytest.raises(VendorError, match="contradict"):
        store.vendor("api", "dev", git_entry(module_repo), frozen=True, update=True)
    with pytest.raises(LockError, match="does not exist") as raised:
        store.vendor("api", "dev", git_entry(module_repo), frozen=True)
    assert "run vendor pull without --frozen" in str(raised.value)
    store.vendor("api", "dev", git_entry(module_repo))
    with pytest.raises(LockError, match="has no entry for component 'sg'"):
        store.vendor("api", "dev", VendorEntry("sg", f"{module_repo.url}//modules/sg"), frozen=True)
    assert store.objects() and len(store.objects()) == 1


def test_frozen_with_the_object_gone_says_to_pull_without_frozen(
    store: Store, module_repo: ModuleRepo
) -> None:
    done = store.vendor("api", "dev", git_entry(module_repo))
    again = store.vendor("api", "dev", git_entry(module_repo), frozen=True)
    assert not again.materialized, "an intact workspace is left alone"
    store.evict(done.digest)
    # The workspace's folders are links into the object: without it, the workspace is incomplete.
    assert not (done.module / "scripts").is_dir()
    with pytest.raises(MissingObjectError, match="is missing") as raised:
        store.vendor("api", "dev", git_entry(module_repo), frozen=True)
    assert "run vendor pull without --frozen" in str(raised.value)
    assert (done.path / "README.md").exists(), "a failed frozen run leaves the workspace as it was"
    healed = store.vendor("api", "dev", git_entry(module_repo))
    assert healed.fetched and (done.module / "scripts" / "plan.sh").is_file()


def test_vendor_target_prunes_the_lock_and_reports_status(
    store: Store, module_repo: ModuleRepo, tmp_path: Path
) -> None:
    vpc, sg = git_entry(module_repo), VendorEntry("sg", f"{module_repo.url}//modules/sg?ref=v1.0.0")
    results = store.vendor_target("api", "dev", [vpc, sg])
    assert [r.component for r in results] == ["vpc", "sg"]
    store.vendor_target("api", "dev", [sg])
    assert list(read_lock(store.lock_path("api", "dev")).components) == ["sg"]
    status = store.status("api", "dev", [vpc, sg])
    assert [(s.component, s.lock_matches, s.object_present, s.workspace_intact) for s in status] == [
        ("vpc", False, False, False),
        ("sg", True, True, True),
    ]
    assert store.clean().workspaces == (store.workspace("api", "dev", "vpc"),)


def test_vendor_target_refuses_nested_or_duplicate_components(store: Store) -> None:
    with pytest.raises(VendorError, match="inside component 'ecs'"):
        store.vendor_target("api", "dev", [VendorEntry("ecs", "a"), VendorEntry("ecs/api", "b")])
    with pytest.raises(VendorError, match="more than one vendor entry for vpc"):
        store.vendor_target("api", "dev", [VendorEntry("vpc", "a"), VendorEntry("vpc", "b")])
