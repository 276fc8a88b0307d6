"""OCI image layouts without a daemon, and pushing them to a real registry."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from atmos_tasks.images.errors import BuildError
from atmos_tasks.images.oci import MEDIA_MANIFEST, build_layout, push_layout, read_manifest
from atmos_tasks.images.planner import make_plan
from tests.images.conftest import AppFactory, make_base_layout, make_docker_save, write_tree

EPOCH = 1_700_000_000


def _blob(layout: Path, digest: str) -> bytes:
    data = (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def _documents(layout: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    _, data = read_manifest(layout)
    manifest = json.loads(data)
    return manifest, json.loads(_blob(layout, manifest["config"]["digest"]))


def test_scratch_image_layout_is_complete_and_well_formed(app: AppFactory, tmp_path: Path) -> None:
    tree = app("static")
    (tree / "serve.sh").write_text("#!/bin/sh\n")
    (tree / "serve.sh").chmod(0o755)
    plan = make_plan(tree, {"base_image": "scratch", "env": {"PORT": "8080"}})
    image = build_layout(plan, tree, tmp_path / "layout", source_date_epoch=EPOCH, ref_name="v1")

    layout = tmp_path / "layout"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.manifest_digest
    assert index["manifests"][0]["annotations"] == {"org.opencontainers.image.ref.name": "v1"}
    manifest, config = _documents(layout)
    assert manifest["mediaType"] == MEDIA_MANIFEST
    assert manifest["config"]["digest"] == image.config_digest
    assert len(manifest["layers"]) == 1
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert config["config"] == {
        "Cmd": ["busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/app"],
        "Env": ["PORT=8080"],
        "WorkingDir": "/app",
    }
    assert config["history"][-1]["created"] == "2023-11-14T22:13:20Z"

    layer = _blob(layout, manifest["layers"][0]["digest"])
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert layer[4:8] == b"\0\0\0\0"  # gzip header mtime
    raw = gzip.decompress(layer)
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "app",
        "app/assets",
        "app/assets/site.css",
        "app/index.html",
        "app/serve.sh",
    ]
    assert {(m.mtime, m.uid, m.gid) for m in members} == {(EPOCH, 0, 0)}
    assert {m.name: m.mode for m in members}["app/serve.sh"] == 0o755
    assert {m.name: m.mode for m in members}["app/index.html"] == 0o644


def test_same_source_elsewhere_with_other_mtimes_gives_the_same_manifest_digest(
    app: AppFactory, tmp_path: Path
) -> None:
    base, _ = make_base_layout(tmp_path / "base")
    a, b = app("static", "a"), app("static", "elsewhere/b")
    for path in b.rglob("*"):
        os.utime(path, (42, 42))
    plan = make_plan(a)
    first = build_layout(plan, a, tmp_path / "out-a", base=base, source_date_epoch=EPOCH)
    second = build_layout(make_plan(b), b, tmp_path / "out-b", base=base, source_date_epoch=EPOCH)
    assert first.manifest_digest == second.manifest_digest
    assert first.config_digest == second.config_digest

    (b / "index.html").write_text("<p>new</p>")
    assert build_layout(plan, b, tmp_path / "out-c", base=base, source_date_epoch=EPOCH).manifest_digest != (
        first.manifest_digest
    )
    assert build_layout(
        plan, a, tmp_path / "out-d", base=base, source_date_epoch=EPOCH + 1
    ).manifest_digest != (first.manifest_digest)


def test_base_layers_come_first_and_base_config_is_inherited(app: AppFactory, tmp_path: Path) -> None:
    base, _ = make_base_layout(tmp_path / "base")
    base_manifest, base_config = _documents(base)
    tree = app("static")
    plan = make_plan(tree, {"env": {"PATH": "/app/bin:/bin", "PORT": "8080"}})
    build_layout(plan, tree, tmp_path / "layout", base=base, source_date_epoch=EPOCH)
    manifest, config = _documents(tmp_path / "layout")
    assert manifest["layers"][0] == base_manifest["layers"][0]
    assert len(manifest["layers"]) == 2
    assert config["rootfs"]["diff_ids"][0] == base_config["rootfs"]["diff_ids"][0]
    assert config["config"]["Env"] == ["PATH=/app/bin:/bin", "PORT=8080"]  # ours replace the base's in place
    assert config["history"][0] == base_config["history"][0]
    _blob(tmp_path / "layout", manifest["layers"][0]["digest"])


def test_docker_save_tarball_as_base_gives_the_same_layers_as_a_layout(
    app: AppFactory, tmp_path: Path
) -> None:
    saved = make_docker_save(tmp_path / "busybox.tar")
    tree = app("static")
    plan = make_plan(tree)
    build_layout(plan, tree, tmp_path / "layout", base=saved, source_date_epoch=EPOCH)
    manifest, config = _documents(tmp_path / "layout")
    base_layer = manifest["layers"][0]
    assert base_layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
    assert base_layer["digest"] == config["rootfs"]["diff_ids"][0]  # uncompressed: digest is the diff_id
    assert config["config"]["Cmd"][0] == "busybox"


def test_index_of_platforms_picks_linux_amd64_and_checks_the_pin(app: AppFactory, tmp_path: Path) -> None:
    base, index_digest = make_base_layout(tmp_path / "base", nested_index=True)
    tree = app("static")
    pinned = make_plan(tree).pin_base(index_digest)
    image = build_layout(pinned, tree, tmp_path / "layout", base=base, source_date_epoch=EPOCH)
    assert len(_documents(image.layout)[0]["layers"]) == 2
    wrong = make_plan(tree).pin_base("sha256:" + "1" * 64)
    with pytest.raises(BuildError, match="export the pinned image or update the pin"):
        build_layout(wrong, tree, tmp_path / "other", base=base)
    assert not (tmp_path / "other").exists()


def test_rebuilding_replaces_the_layout_whole(app: AppFactory, tmp_path: Path) -> None:
    tree = app("static")
    plan = make_plan(tree, {"base_image": "scratch"})
    first = build_layout(plan, tree, tmp_path / "layout")
    (tree / "index.html").write_text("<p>v2</p>")
    second = build_layout(plan, tree, tmp_path / "layout")
    blobs = {p.name for p in (tmp_path / "layout" / "blobs" / "sha256").iterdir()}
    assert first.manifest_digest.removeprefix("sha256:") not in blobs
    assert second.manifest_digest.removeprefix("sha256:") in blobs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layout", "static"]  # no staging left behind


def test_plans_that_run_commands_or_lack_a_base_are_refused(app: AppFactory, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="use the docker backend"):
        build_layout(make_plan(app("node")), app("node", "n2"), tmp_path / "x")
    tree = app("static")
    with pytest.raises(BuildError, match=r"cannot pull busybox:1\.36 without a daemon") as caught:
        build_layout(make_plan(tree), tree, tmp_path / "x")
    assert caught.value.exit_code == 2
    with pytest.raises(BuildError, match="does not exist"):
        build_layout(make_plan(tree), tree, tmp_path / "x", base=tmp_path / "nope.tar")
    (tmp_path / "not.tar").write_text("hello")
    with pytest.raises(BuildError, match="is not a tar archive"):
        build_layout(make_plan(tree), tree, tmp_path / "x", base=tmp_path / "not.tar")


def test_copy_only_python_plan_builds_without_a_daemon(app: AppFactory, tmp_path: Path) -> None:
    tree = app("python-requirements")
    write_tree(tree, {"__pycache__/app.cpython-312.pyc": ""})
    plan = make_plan(tree, {"install_cmd": [], "base_image": "scratch"})
    image = build_layout(plan, tree, tmp_path / "layout")
    manifest, config = _documents(image.layout)
    assert "PYTHONUNBUFFERED=1" in config["config"]["Env"]
    with tarfile.open(
        fileobj=io.BytesIO(gzip.decompress(_blob(image.layout, manifest["layers"][0]["digest"])))
    ) as tar:
        assert "app/__pycache__/app.cpython-312.pyc" not in tar.getnames()


# --- pushing to a real registry --------------------------------------------------------------------


def _get(url: str, accept: str | None = None) -> tuple[dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(response.headers.items()), response.read()


def test_push_to_a_registry_and_pull_back_the_same_digest(
    app: AppFactory, tmp_path: Path, registry_address: str
) -> None:
    base, _ = make_base_layout(tmp_path / "base")
    tree = app("static")
    image = build_layout(make_plan(tree), tree, tmp_path / "layout", base=base, source_date_epoch=EPOCH)

    digest = push_layout(image.layout, registry_address, "acme/status-page", "v1")
    assert digest == image.manifest_digest

    headers, body = _get(f"http://{registry_address}/v2/acme/status-page/manifests/v1", accept=MEDIA_MANIFEST)
    assert headers["Docker-Content-Digest"] == digest
    assert "sha256:" + hashlib.sha256(body).hexdigest() == digest
    manifest = json.loads(body)
    for descriptor in [manifest["config"], *manifest["layers"]]:
        _, blob = _get(f"http://{registry_address}/v2/acme/status-page/blobs/{descriptor['digest']}")
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == descriptor["digest"]
        assert len(blob) == descriptor["size"]

    # Pushing again (blobs now present) under another tag gives the same digest.
    assert push_layout(image.layout, registry_address, "acme/status-page", "latest") == digest
    _, by_digest = _get(
        f"http://{registry_address}/v2/acme/status-page/manifests/{digest}", accept=MEDIA_MANIFEST
    )
    assert by_digest == body


def test_push_names_are_checked_and_an_absent_registry_is_a_failed_build(
    app: AppFactory, tmp_path: Path
) -> None:
    tree = app("static")
    image = build_layout(make_plan(tree, {"base_image": "scratch"}), tree, tmp_path / "layout")
    with pytest.raises(BuildError, match="is not a valid name") as bad:
        push_layout(image.layout, "127.0.0.1:1", "Acme/API", "v1")
    assert bad.value.exit_code == 2
    with pytest.raises(BuildError, match="tag 'v1 beta' is not valid"):
        push_layout(image.layout, "127.0.0.1:1", "acme/api", "v1 beta")
    with pytest.raises(BuildError, match="cannot reach the registry") as failed:
        push_layout(image.layout, "127.0.0.1:1", "acme/api", "v1", timeout=2)
    assert failed.value.exit_code == 1


def test_oci_layout_saved_as_a_tarball_is_a_base_too(app: AppFactory, tmp_path: Path) -> None:
    base, digest = make_base_layout(tmp_path / "base")
    with tarfile.open(tmp_path / "base.tar", "w") as tar:
        tar.add(base, arcname=".")  # Docker 25+ `docker save` writes this shape, with ./ names
    tree = app("static")
    plan = make_plan(tree).pin_base(digest)
    from_tar = build_layout(plan, tree, tmp_path / "a", base=tmp_path / "base.tar", source_date_epoch=EPOCH)
    from_dir = build_layout(plan, tree, tmp_path / "b", base=base, source_date_epoch=EPOCH)
    assert from_tar.manifest_digest == from_dir.manifest_digest


def test_symbolic_links_ship_as_links(app: AppFactory, tmp_path: Path) -> None:
    tree = app("static")
    (tree / "latest.html").symlink_to("index.html")
    image = build_layout(make_plan(tree, {"base_image": "scratch"}), tree, tmp_path / "layout")
    manifest, _ = _documents(image.layout)
    with tarfile.open(
        fileobj=io.BytesIO(gzip.decompress(_blob(image.layout, manifest["layers"][0]["digest"])))
    ) as tar:
        link = tar.getmember("app/latest.html")
    assert link.issym() and link.linkname == "index.html"


def test_read_manifest_by_tag(app: AppFactory, tmp_path: Path) -> None:
    tree = app("static")
    image = build_layout(make_plan(tree, {"base_image": "scratch"}), tree, tmp_path / "layout", ref_name="v7")
    assert read_manifest(image.layout, "v7")[0] == image.manifest_digest
    assert read_manifest(image.layout, "other")[0] == image.manifest_digest  # the only one
    index = json.loads((image.layout / "index.json").read_text())
    index["manifests"].append(
        dict(index["manifests"][0], annotations={"org.opencontainers.image.ref.name": "v8"})
    )
    (image.layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(BuildError, match="has 2 manifests"):
        read_manifest(image.layout, "v9")


def test_docker_save_with_a_linked_repeated_layer(app: AppFactory, tmp_path: Path) -> None:
    saved = make_docker_save(tmp_path / "busybox.tar", repeat_layer=True)
    tree = app("static")
    image = build_layout(make_plan(tree), tree, tmp_path / "layout", base=saved, source_date_epoch=EPOCH)
    manifest, config = _documents(image.layout)
    assert len(manifest["layers"]) == 3
    assert manifest["layers"][0] == manifest["layers"][1]
    assert len(config["rootfs"]["diff_ids"]) == 3


def test_a_malformed_base_layout_is_bad_input(app: AppFactory, tmp_path: Path) -> None:
    base, _ = make_base_layout(tmp_path / "base")
    (base / "index.json").write_text('{"manifests": [{"platform": {"os": "linux"}}]}')
    tree = app("static")
    with pytest.raises(BuildError, match="is not a valid image layout") as caught:
        build_layout(make_plan(tree), tree, tmp_path / "layout", base=base)
    assert caught.value.exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BuildError, match=r"has no manifest\.json"):
        build_layout(make_plan(tree), tree, tmp_path / "layout", base=empty)
