"""A `//subdirectory` source: the object is the source's whole tree and the module a folder in it,
so a module calling `../../` reaches its own repository (as Terraform's module installer does)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vendor_cache.conftest import (
    VPC_FILES,
    VPC_V1,
    HttpServer,
    ModuleRepo,
    files_of,
    git,
    tar_gz,
    write_tree,
)
from vendor_cache import (
    LockedComponent,
    LockMismatchError,
    SourceError,
    Store,
    VendorEntry,
    VendorLock,
    read_lock,
    tree_digest,
    write_lock,
)


def test_two_subdirectories_of_one_ref_share_one_object_and_one_fetch(
    store: Store, module_repo: ModuleRepo
) -> None:
    vpc = store.vendor("api", "dev", VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref=v1.0.0"))
    sg = store.vendor("api", "dev", VendorEntry("sg", f"{module_repo.url}//modules/sg?ref=v1.0.0"))
    assert vpc.fetched and not sg.fetched, "the second subdirectory is answered by the index"
    assert vpc.digest == sg.digest and store.objects() == [vpc.digest]
    assert (vpc.subdir, sg.subdir) == ("modules/vpc", "modules/sg")
    # Each workspace shows the whole tree; the module is its folder.
    assert files_of(vpc.path) == files_of(sg.path) == VPC_V1
    assert files_of(vpc.module) == VPC_FILES
    assert vpc.module == store.workspace("api", "dev", "vpc") / "modules/vpc"
    lock = read_lock(store.lock_path("api", "dev")).components
    assert (lock["vpc"].subdir, lock["sg"].subdir) == ("modules/vpc", "modules/sg")
    assert "subdir: modules/vpc" in store.lock_path("api", "dev").read_text()
    stats = store.stats()
    assert (stats.objects, stats.workspaces) == (1, 2) and stats.disk_bytes == stats.object_bytes


def test_a_module_calling_its_repository_root_reaches_it_in_the_workspace(
    store: Store, module_repo: ModuleRepo
) -> None:
    entry = VendorEntry("complete", f"{module_repo.url}//modules/vpc/examples/complete?ref=v1.0.0")
    done = store.vendor("api", "dev", entry)
    assert (done.module / "main.tf").read_text() == VPC_V1["modules/vpc/examples/complete/main.tf"]
    called = done.module / "../.."  # `source = "../.."` in it
    assert (called / "main.tf").read_text() == VPC_V1["modules/vpc/main.tf"]
    assert (called / "main.tf").resolve().is_relative_to(store.object_path(done.digest).resolve())


def test_a_missing_subdirectory_is_an_error_also_when_the_object_is_known(
    store: Store, module_repo: ModuleRepo
) -> None:
    store.fetch(VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref=v1.0.0"))
    with pytest.raises(SourceError, match="no directory 'modules/nope'"):
        store.fetch(VendorEntry("nope", f"{module_repo.url}//modules/nope?ref=v1.0.0"))


def test_a_glob_subdirectory_is_resolved_and_locked(store: Store, http_server: HttpServer) -> None:
    tar_gz(http_server.directory / "m.tar.gz", VPC_V1, top="m-1.0.0")
    entry = VendorEntry("vpc", http_server.url("m.tar.gz") + "//*/modules/vpc")
    done = store.vendor("api", "dev", entry)
    assert done.subdir == "m-1.0.0/modules/vpc" and files_of(done.module) == VPC_FILES
    assert read_lock(store.lock_path("api", "dev")).components["vpc"].subdir == "m-1.0.0/modules/vpc"
    again = store.vendor("api", "prod", VendorEntry("vpc", http_server.url("m.tar.gz") + "//*/modules/sg"))
    assert again.digest == done.digest and again.subdir == "m-1.0.0/modules/sg"


def test_path_globs_select_among_the_modules_files_so_the_object_is_per_subdirectory(
    store: Store, module_repo: ModuleRepo
) -> None:
    vpc = store.fetch(
        VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref=v1.0.0", excluded_paths=["**/*.md"])
    )
    sg = store.fetch(
        VendorEntry("sg", f"{module_repo.url}//modules/sg?ref=v1.0.0", excluded_paths=["**/*.md"])
    )
    assert vpc.digest != sg.digest
    # Relative to the module: modules/vpc's README goes, the repository's own README stays.
    kept = files_of(store.object_path(vpc.digest))
    assert "modules/vpc/README.md" not in kept and "README.md" in kept
    with pytest.raises(SourceError, match="nothing to vendor"):
        store.fetch(
            VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref=v1.0.0", included_paths=["*.nothing"])
        )


def test_links_outside_the_module_are_left_out_and_inside_it_refused(store: Store, tmp_path: Path) -> None:
    work = write_tree(tmp_path / "work", VPC_V1)
    git("init", "-q", "-b", "main", cwd=work)
    (work / "docs").symlink_to("modules")  # a directory link outside the module
    (work / "passwd.txt").symlink_to("/etc/passwd")  # a link leaving the tree, outside the module
    (work / "modules/vpc/context.tf").symlink_to("../sg/main.tf")  # in the module, inside the tree
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "links", cwd=work)
    url = f"file://{work}"
    done = store.vendor("api", "dev", VendorEntry("vpc", f"{url}//modules/vpc?ref=main"))
    found = files_of(store.object_path(done.digest))
    assert "passwd.txt" not in found and not any(rel.startswith("docs/") for rel in found)
    # A link from the module into its repository is stored as the file it names.
    assert found["modules/vpc/context.tf"] == VPC_V1["modules/sg/main.tf"]
    # In the module, the rules stay: a link leaving the tree is refused (or excluded).
    (work / "modules/vpc/hosts.tf").symlink_to("/etc/hosts")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "a link out of the module", cwd=work)
    entry = VendorEntry("vpc", f"{url}//modules/vpc?ref=main")
    with pytest.raises(SourceError, match=r"modules/vpc/hosts\.tf is a symlink to /etc/hosts, outside"):
        store.fetch(entry, update=True)
    excluded = VendorEntry("vpc", f"{url}//modules/vpc?ref=main", excluded_paths=["hosts.tf"])
    assert "modules/vpc/hosts.tf" not in files_of(store.object_path(store.fetch(excluded).digest))


def test_a_lock_written_when_objects_held_only_the_subdirectory_is_out_of_date(
    store: Store, module_repo: ModuleRepo
) -> None:
    entry = VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref={{{{ version }}}}", "v1.0.0")
    done = store.vendor("api", "dev", entry)
    locked = read_lock(store.lock_path("api", "dev")).components["vpc"]
    # What such a lock held: the digest of the subdirectory alone, and no subdir; its workspace too.
    old = store.insert_tree(done.module)
    store.materialize(old, done.path)
    write_lock(
        store.lock_path("api", "dev"),
        VendorLock({"vpc": LockedComponent(locked.source, locked.version, old, locked.commit)}),
    )
    with pytest.raises(LockMismatchError, match="subdir: lock has none") as raised:
        store.vendor("api", "dev", entry, frozen=True)
    assert "manifest has 'modules/vpc'" in str(raised.value)
    again = store.vendor("api", "dev", entry)
    assert again.digest == done.digest and again.subdir == "modules/vpc" and again.materialized
    assert read_lock(store.lock_path("api", "dev")).components["vpc"].subdir == "modules/vpc"
    # The old object is no longer referenced: clean removes it, and only it.
    assert store.clean(dry_run=False).objects == (old,)
    assert store.objects() == [done.digest]


def test_verify_and_clean_work_on_the_whole_tree(store: Store, module_repo: ModuleRepo) -> None:
    vpc = store.vendor("api", "dev", VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref=v1.0.0"))
    obj = store.object_path(vpc.digest)
    victim = obj / "modules/sg/main.tf"  # outside the module: still part of what it may reach
    (obj / "modules/sg").chmod(0o755)
    victim.chmod(0o644)
    victim.write_text("# tampered\n")
    victim.chmod(0o444)
    (obj / "modules/sg").chmod(0o555)
    assert [(d.path, d.kind) for d in store.check(vpc.digest)] == [("modules/sg/main.tf", "content")]
    redo = store.vendor(
        "api", "dev", VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref=v1.0.0"), verify=True
    )
    assert redo.repaired is not None and redo.fetched
    assert tree_digest(store.object_path(redo.digest)) == redo.digest
    sg = store.vendor("api", "prod", VendorEntry("sg", f"{module_repo.url}//modules/sg?ref=v1.0.0"))
    assert sg.digest == vpc.digest
    store.vendor_target("api", "dev", [])  # dev no longer vendors vpc; prod's sg still uses the object
    assert store.clean(dry_run=False).objects == ()
    assert store.has(vpc.digest)
    store.vendor_target("api", "prod", [])
    assert store.clean(dry_run=False).objects == (vpc.digest,)


def test_a_subdirectory_behind_a_link_is_the_folder_it_names_whatever_was_fetched_first(
    store: Store, tmp_path: Path
) -> None:
    work = write_tree(tmp_path / "work", VPC_V1)
    git("init", "-q", "-b", "main", cwd=work)
    (work / "current").symlink_to("modules/vpc")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "current", cwd=work)
    sg = store.fetch(VendorEntry("sg", f"file://{work}//modules/sg?ref=main"))
    # The object left the link out (it is outside modules/sg); the checkout finds it again.
    current = store.fetch(VendorEntry("vpc", f"file://{work}//current?ref=main"))
    assert current.digest == sg.digest and current.subdir == "modules/vpc"
