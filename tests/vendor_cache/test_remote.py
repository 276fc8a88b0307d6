"""A `Remote` the store asks before fetching a source: what it hands back is checked (archive
rules, tree digest) before it becomes an object; a source fetched is pushed to it; its failures
are misses."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

from tests.vendor_cache.conftest import VPC_V1, ModuleRepo, files_of
from vendor_cache import Store, VendorEntry
from vendor_cache.remote import Resolved, pack


class FakeRemote:
    """Another runner's cache, in memory: identity → (digest, commit), digest → archive bytes."""

    def __init__(self) -> None:
        self.resolved: dict[str, Resolved] = {}
        self.objects: dict[str, bytes] = {}
        self.refusals: list[tuple[str, str]] = []
        self.pushed: list[str] = []
        self.fail = False

    def resolve(self, identity: str) -> Resolved | None:
        if self.fail:
            raise OSError("the registry is down")
        return self.resolved.get(identity)

    def pull(self, digest: str, archive: Path) -> bool:
        if digest not in self.objects:
            return False
        archive.write_bytes(self.objects[digest])
        return True

    def push(self, identity: str, resolved: Resolved, archive: Path) -> None:
        self.resolved[identity] = resolved
        self.objects[resolved.digest] = archive.read_bytes()
        self.pushed.append(identity)

    def refused(self, digest: str, why: str) -> None:
        self.refusals.append((digest, why))


def entry(repo: ModuleRepo) -> VendorEntry:
    return VendorEntry("vpc", f"{repo.url}//modules/vpc?ref=v1.0.0")


def test_a_fetched_source_is_pushed_and_another_store_pulls_it_without_the_source(
    own_repo: ModuleRepo, tmp_path: Path
) -> None:
    remote = FakeRemote()
    with Store(tmp_path / "first") as first:
        fetched = first.vendor("api", "dev", entry(own_repo), remote=remote)
    assert fetched.fetched and not fetched.pulled and len(remote.pushed) == 1
    # The packed object is the same bytes whoever packs it: one blob per object in a registry.
    again = tmp_path / "again.tar.gz"
    pack(Path(tmp_path / "first/objects" / fetched.digest), again)
    assert again.read_bytes() == remote.objects[fetched.digest]

    shutil.rmtree(own_repo.path)  # nothing left to fetch from
    with Store(tmp_path / "second") as second:
        pulled = second.vendor("api", "dev", entry(own_repo), remote=remote)
        assert pulled.pulled and not pulled.fetched
        assert (pulled.digest, pulled.commit, pulled.subdir) == (
            fetched.digest,
            fetched.commit,
            "modules/vpc",
        )
        assert files_of(second.object_path(pulled.digest)) == VPC_V1
        assert second.check(pulled.digest) == ()
        # Indexed like a fetch: the next vendoring asks nobody.
        remote.fail = True
        assert not second.vendor("api", "staging", entry(own_repo), remote=remote).pulled
    assert remote.refusals == []


def tampered(archive: bytes) -> bytes:
    """The same archive with one file's content changed (a valid tar.gz, a wrong tree)."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as source,
        tarfile.open(fileobj=out, mode="w:gz") as tar,
    ):
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            if member.name.endswith("main.tf"):
                data += b'\nresource "null_resource" "backdoor" {}\n'
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return out.getvalue()


def test_an_object_whose_tree_is_not_its_digest_is_refused_and_the_source_fetched(
    own_repo: ModuleRepo, tmp_path: Path
) -> None:
    remote = FakeRemote()
    with Store(tmp_path / "first") as first:
        digest = first.vendor("api", "dev", entry(own_repo), remote=remote).digest
    remote.objects[digest] = tampered(remote.objects[digest])
    with Store(tmp_path / "second") as second:
        done = second.vendor("api", "dev", entry(own_repo), remote=remote)
        assert done.fetched and not done.pulled and done.digest == digest
        assert second.objects() == [digest]  # the tampered tree was never published
    [(refused, why)] = remote.refusals
    assert refused == digest and f"not {digest}" in why


def test_an_unsafe_or_unreadable_archive_and_a_failing_remote_are_misses(
    own_repo: ModuleRepo, tmp_path: Path
) -> None:
    remote = FakeRemote()
    with Store(tmp_path / "first") as first:
        digest = first.vendor("api", "dev", entry(own_repo), remote=remote).digest
    unsafe = io.BytesIO()
    with tarfile.open(fileobj=unsafe, mode="w:gz") as tar:
        member = tarfile.TarInfo("../outside.tf")
        member.size = 2
        tar.addfile(member, io.BytesIO(b"{}"))
    remote.objects[digest] = unsafe.getvalue()
    with Store(tmp_path / "second") as second:
        assert second.vendor("api", "dev", entry(own_repo), remote=remote).fetched
    assert not (tmp_path / "outside.tf").exists() and "unsafe" in remote.refusals[0][1]

    remote.objects[digest] = b"not a tar"
    with Store(tmp_path / "third") as third:
        assert third.vendor("api", "dev", entry(own_repo), remote=remote).fetched
    assert len(remote.refusals) == 2

    remote.fail = True
    with Store(tmp_path / "fourth") as fourth:
        assert fourth.vendor("api", "dev", entry(own_repo), remote=remote).fetched


def test_an_answer_that_is_not_shared_serves_its_vendoring_only(own_repo: ModuleRepo, tmp_path: Path) -> None:
    """A pull request's answer taken for one target is not indexed: another target's vendoring in the
    same store asks again (and may not take it) instead of finding it locally."""
    remote = FakeRemote()
    with Store(tmp_path / "first") as first:
        fetched = first.vendor("api", "dev", entry(own_repo), remote=remote)
    [identity] = remote.resolved
    remote.resolved[identity] = Resolved(fetched.digest, fetched.commit, shared=False)
    with Store(tmp_path / "second") as second:
        assert second.vendor("api", "dev", entry(own_repo), remote=remote).pulled
        remote.resolved.clear()  # the protected target's vendoring is not given the answer
        prod = second.vendor("api", "prod", entry(own_repo), remote=remote)
        assert prod.fetched and not prod.pulled and prod.digest == fetched.digest
