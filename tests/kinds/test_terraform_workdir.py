"""The Terraform workdir of a vendored module: real folders of hard links, whatever the workspace links."""

from __future__ import annotations

import os
from pathlib import Path

from atmos_tasks.kinds.terraform import sync_module
from vendor_cache import Store

MODULE = {
    "main.tf": 'module "alarm" {\n  source = "./modules/alarm"\n}\n',
    "modules/alarm/main.tf": 'resource "null_resource" "alarm" {}\n',
    "modules/alarm/files/policy.json": "{}\n",
}


def test_the_workdir_gets_real_folders_so_writes_beside_a_submodule_stay_out_of_the_store(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    for rel, text in MODULE.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    with Store(tmp_path / "cache") as store:
        digest = store.insert_tree(src)
        workspace = store.workspace("api", "dev", "alarms")
        store.materialize(digest, workspace)
        obj = store.object_path(digest)
    assert (workspace / "modules").is_symlink()
    workdir = tmp_path / "workdir"
    sync_module(workspace, workdir, vendored=True)
    assert (workdir / "modules").is_dir() and not (workdir / "modules").is_symlink()
    for rel in MODULE:
        assert os.path.samefile(workdir / rel, obj / rel), rel
    # A module writing `${path.module}/…` (archive_file, local_file) writes in the workdir only.
    (workdir / "modules/alarm/files/build.zip").write_text("zip")
    assert not (obj / "modules/alarm/files/build.zip").exists()
    # The next sync from a version without the submodule's extra file drops it from the workdir.
    (src / "modules/alarm/files/policy.json").unlink()
    with Store(tmp_path / "cache") as store:
        store.materialize(store.insert_tree(src), workspace)
    sync_module(workspace, workdir, vendored=True)
    assert not (workdir / "modules/alarm/files/policy.json").exists()
    assert (workdir / "modules/alarm/main.tf").is_file()


def test_a_repository_modules_folder_links_are_not_followed_like_its_content_hash(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    (shared / "lib").mkdir(parents=True)
    (shared / "lib" / "main.tf").write_text("# shared\n")
    module = tmp_path / "components/terraform/app"
    module.mkdir(parents=True)
    (module / "main.tf").write_text("# app\n")
    (module / "lib").symlink_to(shared / "lib")
    sync_module(module, tmp_path / "workdir")
    assert (tmp_path / "workdir/main.tf").is_file() and not (tmp_path / "workdir/lib").exists()


def test_a_file_that_is_a_link_out_of_the_module_is_never_hard_linked_into_the_workdir(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("not the module's\n")
    module = tmp_path / "module"
    module.mkdir()
    (module / "main.tf").write_text('resource "null_resource" "x" {}\n')
    (module / "context.tf").symlink_to(outside)
    workdir = tmp_path / "workdir"
    sync_module(module, workdir, vendored=True)
    sync_module(module, workdir, vendored=True)  # and again, over what the first left
    placed = workdir / "context.tf"
    assert placed.is_symlink()
    assert os.lstat(placed).st_ino != os.stat(outside).st_ino
    assert os.stat(outside).st_nlink == 1
