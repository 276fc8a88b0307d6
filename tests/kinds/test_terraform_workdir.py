"""The Terraform workdir of a vendored module: real folders of hard links, whatever the workspace links;
for a module in a subdirectory of its source, the whole tree, with Terraform run in that folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from atmos_tasks.kinds.terraform import (
    TerraformExecutor,
    TerraformJob,
    _plan_arg,
    module_key,
    module_path,
    run_dir,
    sync_module,
)
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


# A repository whose example calls the module at its root, as cloudposse/terraform-null-label's
# examples/complete does.
LABEL = {
    "main.tf": 'resource "null_resource" "label" {}\n',
    "README.md": "# label\n",
    "examples/complete/main.tf": 'module "this" {\n  source = "../../"\n}\n',
    "examples/complete/.terraform.lock.hcl": "# locked providers\n",
}


def _job(tmp_path: Path, module_dir: Path, subdir: str, backend: dict[str, str]) -> TerraformJob:
    return TerraformJob(
        kind="terraform",
        deployment="label",
        target="dev",
        component="naming/label",
        root=str(tmp_path),
        workdir=str(tmp_path / ".atmos/workdir/label/dev/naming%2Flabel"),
        vars={},
        env={},
        static_key="",
        module_dir=str(module_dir),
        backend=backend,
        module_subdir=subdir,
        vendored={"folder": "label", "source": "git::…", "version": "1"},
    )


def test_a_vendored_subdirectory_runs_in_its_folder_of_the_tree_under_the_workdir(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for rel, text in LABEL.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    with Store(tmp_path / "cache") as store:
        digest = store.insert_tree(src)
        workspace = store.workspace("label", "dev", "naming/label")
        store.materialize(digest, workspace)
        obj = store.object_path(digest)
    backend = {"path": "../../../../state/label/dev/naming/label.tfstate"}
    job = _job(tmp_path, workspace, "examples/complete", backend)
    workdir = Path(job.workdir)
    # What a workdir made before held: the subdirectory's files at its top, Terraform's beside them.
    sync_module(workspace / "examples/complete", workdir, vendored=True)
    for stale in ("backend.tf.json", "naming-label.auto.tfvars.json"):
        (workdir / stale).write_text("{}")
    (workdir / ".terraform").mkdir()

    run = TerraformExecutor()._prepare(job)
    assert run == run_dir(job) == workdir / "tree/examples/complete"
    for rel in ("main.tf", "README.md", "examples/complete/main.tf"):
        assert os.path.samefile(workdir / "tree" / rel, obj / rel), rel
    # `../../` from where Terraform runs is the repository's root, in the workdir's copy of it.
    assert (run / "../../main.tf").resolve() == (workdir / "tree/main.tf").resolve()
    # Terraform rewrites its lock file in place: a copy, never the object's inode.
    assert not os.path.samefile(run / ".terraform.lock.hcl", obj / "examples/complete/.terraform.lock.hcl")
    # The earlier layout is gone: its module files (listed) and what was generated beside them.
    assert sorted(p.name for p in workdir.iterdir()) == [".atmos-module-files", "tree"]
    # The state path is the workdir's, written as Terraform running in the subdirectory reads it.
    written = json.loads((run / "backend.tf.json").read_text())["terraform"]["backend"]["local"]["path"]
    assert (run / written).resolve() == (workdir / backend["path"]).resolve()
    assert _plan_arg(job, run) == "../../../atmos.tfplan"
    assert (run / _plan_arg(job, run)).resolve() == (workdir / "atmos.tfplan").resolve()
    # Its declared and sensitive variables are the subdirectory's, remembered apart from the tree's.
    assert module_path(job) == workspace / "examples/complete"
    assert module_key(job) != module_key(_job(tmp_path, workspace, "", backend))


def test_a_glob_subdirectory_is_found_in_the_workspace_and_a_module_without_one_is_unchanged(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    for rel, text in LABEL.items():
        (src / f"label-1.0/{rel}").parent.mkdir(parents=True, exist_ok=True)
        (src / f"label-1.0/{rel}").write_text(text)
    with Store(tmp_path / "cache") as store:
        workspace = store.workspace("label", "dev", "naming/label")
        store.materialize(store.insert_tree(src), workspace)
    job = _job(tmp_path, workspace, "*/examples/complete", {"path": "x.tfstate"})
    assert run_dir(job) == Path(job.workdir) / "tree/label-1.0/examples/complete"
    flat = _job(tmp_path, workspace / "label-1.0", "", {"path": "../x.tfstate"})
    assert run_dir(flat) == Path(flat.workdir) and _plan_arg(flat, run_dir(flat)) == "atmos.tfplan"
    run = TerraformExecutor()._prepare(flat)
    assert run == Path(flat.workdir) and (run / "main.tf").is_file() and not (run / "tree").exists()
    assert json.loads((run / "backend.tf.json").read_text())["terraform"]["backend"]["local"] == {
        "path": "../x.tfstate"
    }
