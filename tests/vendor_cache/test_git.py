"""Git sources against a real bare repository over file://: tags, branches, commits, subdirectories."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from tests.vendor_cache.conftest import VPC_FILES, VPC_V1, ModuleRepo, files_of, git, write_tree
from vendor_cache import FetchError, SourceError, Store, VendorEntry, entries_from_manifest


def test_annotated_tag_and_subdirectory(store: Store, module_repo: ModuleRepo) -> None:
    result = store.fetch(VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref=v1.0.0"))
    assert result.commit == module_repo.commits["v1.0.0"]
    assert not result.from_cache
    # The object is the whole repository at the ref (never its .git); the module is a folder in it.
    obj = store.object_path(result.digest)
    assert files_of(obj) == VPC_V1 and result.subdir == "modules/vpc"
    assert files_of(obj / result.subdir) == VPC_FILES
    assert os.stat(obj / "modules/vpc/scripts/plan.sh").st_mode & stat.S_IXUSR
    assert all(not p.stat().st_mode & 0o222 for p in obj.rglob("*")), "objects are read-only"
    assert store.objects() == [result.digest]


def test_branch_commit_abbreviated_commit_and_default_branch(store: Store, module_repo: ModuleRepo) -> None:
    commits = module_repo.commits
    feature = store.fetch(VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref=feature"))
    assert feature.commit == commits["feature"]
    assert files_of(store.object_path(feature.digest))["modules/vpc/feature.tf"] == "# feature\n"

    by_sha = store.fetch(VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref={commits['v1.0.0']}"))
    v1 = store.fetch(VendorEntry("vpc", f"git::{module_repo.url}//modules/vpc?ref=v1.0.0"))
    assert by_sha.commit == commits["v1.0.0"] and by_sha.digest == v1.digest

    # No server hands out an abbreviated sha; the full-fetch fallback resolves it.
    short = store.fetch(VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref={commits['v1.1.0'][:9]}"))
    default = store.fetch(VendorEntry("vpc", f"{module_repo.url}//modules/vpc"))
    assert short.commit == default.commit == commits["v1.1.0"]
    assert short.digest == default.digest != v1.digest
    assert "# v1.1" in (store.object_path(default.digest) / "modules/vpc/main.tf").read_text()


def test_dev_and_prod_pinned_to_different_versions_get_different_digests(
    store: Store, module_repo: ModuleRepo
) -> None:
    source = f"{module_repo.url}//modules/vpc?ref={{{{ version }}}}"
    dev = store.vendor("api", "dev", VendorEntry("vpc", source, "v1.1.0"))
    prod = store.vendor("api", "prod", VendorEntry("vpc", source, "v1.0.0"))
    assert dev.digest != prod.digest
    assert "# v1.1" in (dev.module / "main.tf").read_text()
    assert "# v1\n" in (prod.module / "main.tf").read_text()
    assert (dev.commit, prod.commit) == (module_repo.commits["v1.1.0"], module_repo.commits["v1.0.0"])


def test_the_index_answers_without_the_network_until_update(store: Store, own_repo: ModuleRepo) -> None:
    entry = VendorEntry("vpc", f"{own_repo.url}//modules/vpc?ref=main")
    first = store.fetch(entry)
    shutil.rmtree(own_repo.path)
    again = store.fetch(entry)
    assert again.from_cache and again.digest == first.digest and again.commit == first.commit
    with pytest.raises(FetchError) as raised:
        store.fetch(entry, update=True)
    assert raised.value.exit_code == 1
    assert str(own_repo.path) in str(raised.value)


def test_update_and_max_age_pick_up_a_moved_branch(
    store: Store, own_repo: ModuleRepo, tmp_path: Path
) -> None:
    entry = VendorEntry("vpc", f"{own_repo.url}//modules/vpc?ref=main")
    before = store.fetch(entry)
    work = tmp_path / "push"
    git("clone", "-q", own_repo.url, str(work), cwd=tmp_path)
    write_tree(work, {"modules/vpc/outputs.tf": 'output "id" { value = 1 }\n'})
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "outputs", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)

    assert store.fetch(entry).digest == before.digest
    updated = store.fetch(entry, update=True)
    assert updated.digest != before.digest and not updated.from_cache
    assert updated.commit == git("rev-parse", "HEAD", cwd=work)
    assert store.fetch(entry, max_age=3600).from_cache
    assert not store.fetch(entry, max_age=0).from_cache


def test_same_content_from_git_and_a_local_copy_is_stored_once(
    store: Store, module_repo: ModuleRepo, tmp_path: Path
) -> None:
    from_git = store.fetch(VendorEntry("vpc", f"{module_repo.url}//modules/vpc?ref=v1.0.0"))
    local = write_tree(tmp_path / "copy", VPC_V1)
    assert store.fetch(VendorEntry("vpc", str(local))).digest == from_git.digest
    assert store.objects() == [from_git.digest]


@pytest.mark.parametrize(
    ("suffix", "error", "complaint"),
    [
        ("//modules/vpc?ref=v9.9.9", SourceError, "'v9.9.9' is neither a tag, a branch nor a commit"),
        ("//modules/nope?ref=v1.0.0", SourceError, "no directory 'modules/nope'"),
    ],
)
def test_bad_refs_and_subdirectories_are_bad_input(
    store: Store, module_repo: ModuleRepo, suffix: str, error: type[Exception], complaint: str
) -> None:
    with pytest.raises(error) as raised:
        store.fetch(VendorEntry("vpc", module_repo.url + suffix))
    assert complaint in str(raised.value)
    assert store.objects() == []
    assert list((store.root / "tmp").iterdir()) == []


def test_a_missing_repository_is_a_fetch_failure(store: Store, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="git could not fetch") as raised:
        store.fetch(VendorEntry("vpc", f"file://{tmp_path}/absent.git?ref=v1"))
    assert raised.value.exit_code == 1


def test_errors_name_where_the_entry_is_written(store: Store, module_repo: ModuleRepo) -> None:
    entry = VendorEntry("vpc", module_repo.url + "//modules/vpc?ref=v9.9.9", origin="deployments/api.yaml:20")
    with pytest.raises(SourceError) as raised:
        store.vendor("api", "dev", entry)
    assert raised.value.origin == "deployments/api.yaml:20"
    assert str(raised.value).startswith("deployments/api.yaml:20: ref 'v9.9.9' is neither")
    [entry] = entries_from_manifest([{"targets": ["vpc"], "source": "./vpc"}], origins=["api.yaml:7"])
    assert entry.origin == "api.yaml:7"


def test_vendor_with_max_age_asks_the_source_again_despite_the_lock(
    store: Store, own_repo: ModuleRepo, tmp_path: Path
) -> None:
    entry = VendorEntry("vpc", f"{own_repo.url}//modules/vpc?ref=main")
    first = store.vendor("api", "dev", entry)
    work = tmp_path / "push"
    git("clone", "-q", own_repo.url, str(work), cwd=tmp_path)
    write_tree(work, {"modules/vpc/outputs.tf": 'output "id" { value = 1 }\n'})
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "outputs", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)

    assert store.vendor("api", "dev", entry).digest == first.digest  # the lock answers
    assert store.vendor("api", "dev", entry, max_age=3600).digest == first.digest  # still fresh
    moved = store.vendor("api", "dev", entry, max_age=0)
    assert moved.digest != first.digest and moved.fetched and moved.materialized
    assert (moved.module / "outputs.tf").is_file()
    assert store.status("api", "dev", [entry])[0].locked.digest == moved.digest  # type: ignore[union-attr]
