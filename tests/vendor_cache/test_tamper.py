"""A tampered object: every kind of damage is found by verify and by status, a vendor run with
verify evicts and repairs it and says so, and materialising never links or copies anything from
outside the object. The module vendored is at its repository's root, so the object's top level is
the module's (the workspace hard-links its files and links its folders)."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.vendor_cache.conftest import ModuleRepo
from vendor_cache import (
    FetchError,
    MissingObjectError,
    Store,
    VendorEntry,
    VendorError,
    is_intact,
    tree_digest,
)

PASSWD = Path("/etc/passwd")


@contextmanager
def writable(obj: Path) -> Iterator[None]:
    """Open a read-only object for tampering, then seal again the folders left as opened, so that
    the tampering is the only change (running as root needs none of this, anyone else does)."""
    folders = [directory for directory, _, _ in os.walk(obj)]
    for folder in folders:
        os.chmod(folder, 0o755)
    try:
        yield
    finally:
        for folder in folders:
            if (
                os.path.isdir(folder)
                and not os.path.islink(folder)
                and stat.S_IMODE(os.stat(folder).st_mode) == 0o755
            ):
                os.chmod(folder, 0o555)


def replace_file(path: Path, text: str) -> None:
    """A new inode with other content where the file was: hard links to the old one keep the old."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(text)
    fresh.chmod(path.stat().st_mode)
    os.replace(fresh, path)


def edit_in_place(path: Path, text: str) -> None:
    mode = path.stat().st_mode
    path.chmod(0o644)
    path.write_text(text)
    path.chmod(stat.S_IMODE(mode))


def outside_copy(obj: Path, rel: str, outside: Path) -> Path:
    """A file or folder outside the object with exactly the content of `rel`."""
    copy = outside / rel.replace("/", "_")
    if (obj / rel).is_dir():
        shutil.copytree(obj / rel, copy)
    else:
        shutil.copyfile(obj / rel, copy)
    return copy


def symlink_instead(obj: Path, rel: str, target: Path) -> None:
    path = obj / rel
    if path.is_dir():
        for directory, _, _ in os.walk(path):
            os.chmod(directory, 0o755)
        shutil.rmtree(path)
    else:
        path.unlink()
    path.symlink_to(target)


@dataclass(frozen=True)
class Tamper:
    kind: str  # the Damage.kind verify must report
    path: str  # the path it must name
    act: Callable[[Path, Path], None]  # (object, a folder outside it)


def file_instead_of_folder(obj: Path, rel: str) -> None:
    symlink_instead(obj, rel, Path("nowhere"))
    (obj / rel).unlink()
    (obj / rel).write_text("#\n")


TAMPERS = {
    "content, top-level file edited in place": Tamper(
        "content", "main.tf", lambda o, _: edit_in_place(o / "main.tf", "# edited\n")
    ),
    "content, top-level file replaced by another inode": Tamper(
        "content", "variables.tf", lambda o, _: replace_file(o / "variables.tf", "# replaced\n")
    ),
    "content, nested file": Tamper(
        "content",
        "examples/complete/main.tf",
        lambda o, _: edit_in_place(o / "examples/complete/main.tf", "#\n"),
    ),
    "added, top level": Tamper("added", "backdoor.tf", lambda o, _: (o / "backdoor.tf").write_text("# x\n")),
    "added, nested": Tamper(
        "added",
        "examples/complete/extra.tf",
        lambda o, _: (o / "examples/complete/extra.tf").write_text("#\n"),
    ),
    "missing, top level": Tamper("missing", "variables.tf", lambda o, _: (o / "variables.tf").unlink()),
    "missing, nested": Tamper(
        "missing", "examples/complete/main.tf", lambda o, _: (o / "examples/complete/main.tf").unlink()
    ),
    "file replaced by a symlink inside the object": Tamper(
        "type", "README.md", lambda o, _: symlink_instead(o, "README.md", Path("variables.tf"))
    ),
    "file replaced by a symlink to an identical file outside": Tamper(
        "type", "main.tf", lambda o, out: symlink_instead(o, "main.tf", outside_copy(o, "main.tf", out))
    ),
    "top-level file replaced by a symlink to /etc/passwd": Tamper(
        "type", "main.tf", lambda o, _: symlink_instead(o, "main.tf", PASSWD)
    ),
    "nested file replaced by a symlink to /etc/passwd": Tamper(
        "type", "scripts/plan.sh", lambda o, _: symlink_instead(o, "scripts/plan.sh", PASSWD)
    ),
    "folder replaced by a file": Tamper(
        "type", "examples", lambda o, _: file_instead_of_folder(o, "examples")
    ),
    "folder replaced by a symlink to an identical folder outside": Tamper(
        "type", "scripts", lambda o, out: symlink_instead(o, "scripts", outside_copy(o, "scripts", out))
    ),
    "mode, executable bit set": Tamper("mode", "main.tf", lambda o, _: (o / "main.tf").chmod(0o555)),
    "mode, executable bit cleared": Tamper(
        "mode", "scripts/plan.sh", lambda o, _: (o / "scripts/plan.sh").chmod(0o444)
    ),
    "mode, file made writable": Tamper(
        "mode", "variables.tf", lambda o, _: (o / "variables.tf").chmod(0o644)
    ),
    "mode, folder made writable": Tamper("mode", "scripts", lambda o, _: (o / "scripts").chmod(0o775)),
}


def tamper(store: Store, digest: str, how: Tamper, outside: Path) -> None:
    with writable(store.object_path(digest)):
        how.act(store.object_path(digest), outside)


def entry_of(repo: ModuleRepo) -> VendorEntry:
    return VendorEntry("vpc", f"{repo.url}?ref=v1.0.0", "v1.0.0")


def reached_from_outside(root: Path, outside: list[Path], *, skip: Path | None = None) -> list[str]:
    """Entries under `root` (but not under `skip`) that lead outside: a hard link to one of the
    `outside` files or a symlink to one, or a copy of /etc/passwd."""
    inodes = {(p.stat().st_dev, p.stat().st_ino) for p in outside}
    targets = {p.resolve() for p in outside}
    secret = PASSWD.read_bytes()
    found = []
    for directory, folders, files in os.walk(root):
        if skip is not None and Path(directory).is_relative_to(skip):
            continue
        for name in files + folders:
            path = Path(directory, name)
            info = path.lstat()
            if (info.st_dev, info.st_ino) in inodes:
                found.append(f"{path}: a hard link")
            elif path.is_symlink() and path.resolve() in targets:
                found.append(f"{path}: a symlink")
            elif stat.S_ISREG(info.st_mode) and path.read_bytes() == secret:
                found.append(f"{path}: a copy")
    return found


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("name", list(TAMPERS))
def test_verify_and_status_find_every_kind_of_tampering(
    name: str, store: Store, vpc_repo: ModuleRepo, outside: Path
) -> None:
    entry = entry_of(vpc_repo)
    first = store.vendor("api", "dev", entry)
    assert store.check(first.digest) == ()
    how = TAMPERS[name]
    tamper(store, first.digest, how, outside)

    found = store.check(first.digest)
    assert (how.kind, how.path) in {(d.kind, d.path) for d in found}, found
    (row,) = store.status("api", "dev", [entry])
    assert row.object_damage == found, "vendor status reports the same damage"
    assert store.has(first.digest), "check and status never evict"

    assert not store.verify(first.digest)
    assert not store.has(first.digest), "verify evicts a damaged object"
    assert not reached_from_outside(store.root, [PASSWD, *outside.iterdir()])


@pytest.mark.parametrize("name", list(TAMPERS))
def test_vendor_with_verify_repairs_every_kind_and_says_what_was_wrong(
    name: str, store: Store, vpc_repo: ModuleRepo, outside: Path
) -> None:
    entry = entry_of(vpc_repo)
    first = store.vendor("api", "dev", entry)
    assert first.repaired is None
    how = TAMPERS[name]
    tamper(store, first.digest, how, outside)

    redo = store.vendor("api", "dev", entry, verify=True)
    assert redo.repaired is not None and redo.repaired.digest == first.digest
    assert (how.kind, how.path) in {(d.kind, d.path) for d in redo.repaired.damage}
    message = str(redo.repaired)
    assert first.digest in message and how.path in message
    assert redo.fetched and redo.materialized and redo.digest == first.digest
    assert store.check(first.digest) == ()
    assert is_intact(redo.path, first.digest)
    obj = store.object_path(first.digest)
    for top in ("main.tf", "variables.tf", "README.md"):
        assert os.path.samefile(redo.path / top, obj / top), "relinked to the repaired object"
    assert not reached_from_outside(store.root, [PASSWD, *outside.iterdir()])
    again = store.vendor("api", "dev", entry, verify=True)
    assert again.repaired is None and not again.fetched


@pytest.mark.parametrize("name", list(TAMPERS))
def test_frozen_verify_refuses_a_damaged_object_even_with_an_intact_workspace(
    name: str, store: Store, vpc_repo: ModuleRepo, outside: Path
) -> None:
    entry = entry_of(vpc_repo)
    first = store.vendor("api", "dev", entry)
    how = TAMPERS[name]
    tamper(store, first.digest, how, outside)
    with pytest.raises(MissingObjectError, match="damaged") as raised:
        store.vendor("api", "dev", entry, frozen=True, verify=True)
    assert how.path in str(raised.value) and first.digest in str(raised.value)
    assert not store.has(first.digest)


LEAKS = [name for name, how in TAMPERS.items() if how.kind in ("type", "added", "missing")]


@pytest.mark.parametrize("link", [True, False], ids=["linked", "copied"])
@pytest.mark.parametrize("name", LEAKS)
def test_materialize_refuses_a_damaged_object_and_never_reaches_outside(
    name: str, link: bool, store: Store, vpc_repo: ModuleRepo, outside: Path
) -> None:
    digest = store.fetch(entry_of(vpc_repo)).digest
    how = TAMPERS[name]
    tamper(store, digest, how, outside)
    dest = store.workspace("api", "dev", "vpc")
    with pytest.raises(VendorError, match=f"object {digest} is damaged") as raised:
        store.materialize(digest, dest, link=link)
    assert how.path in str(raised.value)
    assert not os.path.lexists(dest)
    assert not reached_from_outside(store.root, [PASSWD, *outside.iterdir()], skip=store.objects_dir)


def test_a_context_file_linked_to_etc_passwd_never_becomes_part_of_a_workspace(
    store: Store, vpc_repo: ModuleRepo, tmp_path: Path
) -> None:
    entry = entry_of(vpc_repo)
    first = store.vendor("api", "dev", entry)
    obj = store.object_path(first.digest)
    with writable(obj):
        (obj / "context.tf").symlink_to(PASSWD)
    shutil.rmtree(first.path)  # the next pull materialises again
    with pytest.raises(VendorError, match=r"context\.tf"):
        store.vendor("api", "dev", entry)
    assert not reached_from_outside(store.root, [PASSWD], skip=store.objects_dir)
    repaired = store.vendor("api", "dev", entry, verify=True)
    assert repaired.repaired is not None
    assert [(d.path, d.kind) for d in repaired.repaired.damage] == [("context.tf", "added")]
    assert "symlink to /etc/passwd" in str(repaired.repaired)
    assert not reached_from_outside(store.root, [PASSWD])
    assert tree_digest(store.object_path(first.digest)) == first.digest


def test_a_sound_object_passes_and_terraform_files_do_not_count(store: Store, vpc_repo: ModuleRepo) -> None:
    digest = store.vendor("api", "dev", entry_of(vpc_repo)).digest
    obj = store.object_path(digest)
    with writable(obj):
        (obj / "examples/complete/.terraform").mkdir()
        (obj / "examples/complete/.terraform/plugin").write_text("x")
        (obj / "examples/complete/terraform.tfstate").write_text("{}")
    assert store.check(digest) == ()
    assert store.verify(digest)


def test_an_object_stored_before_file_digests_were_kept_is_still_checked_in_full(
    store: Store, vpc_repo: ModuleRepo
) -> None:
    digest = store.vendor("api", "dev", entry_of(vpc_repo)).digest
    listing = store._cache.get(("listing", digest))
    store._cache.set(("listing", digest), {"dirs": listing["dirs"], "files": listing["files"]})
    obj = store.object_path(digest)
    with writable(obj):
        edit_in_place(obj / "examples/complete/main.tf", "#\n")
    assert [(d.path, d.kind) for d in store.check(digest)] == [(".", "content")]
    store._cache.delete(("listing", digest))
    with writable(obj):
        symlink_instead(obj, "main.tf", PASSWD)
    assert ("main.tf", "added") in {(d.path, d.kind) for d in store.check(digest)}
    assert not store.verify(digest) and not store.has(digest)


def test_a_damaged_object_whose_source_is_gone_is_evicted_and_the_error_says_so(
    store: Store, own_vpc_repo: ModuleRepo, outside: Path
) -> None:
    entry = entry_of(own_vpc_repo)
    first = store.vendor("api", "dev", entry)
    tamper(store, first.digest, TAMPERS["top-level file replaced by a symlink to /etc/passwd"], outside)
    shutil.rmtree(own_vpc_repo.path)
    with pytest.raises(FetchError) as raised:
        store.vendor("api", "dev", entry, verify=True)
    message = str(raised.value)
    assert f"object {first.digest} was damaged (main.tf: a symlink to /etc/passwd" in message
    assert "evicted, but could not be fetched again" in message
    assert not store.has(first.digest)
