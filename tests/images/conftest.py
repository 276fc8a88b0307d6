"""Fixture apps, hand-made base images, and the address of the real test registry."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.docker_env import Registry

FIXTURES = Path(__file__).resolve().parent / "fixtures"
APPS = FIXTURES / "apps"


AppFactory = Callable[..., Path]


@pytest.fixture
def app(tmp_path: Path) -> AppFactory:
    """Copy a fixture app into a fresh directory, so tests may change it."""

    def copy(name: str, dest: str | None = None) -> Path:
        target = tmp_path / (dest or name)
        shutil.copytree(APPS / name, target, symlinks=True)
        return target

    return copy


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _layer_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


BASE_CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs"}],
}


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_base_layout(root: Path, nested_index: bool = False) -> tuple[Path, str]:
    """A one-layer busybox-like base as an OCI layout, written without the code under test.

    Returns the layout and the digest a pin would name (the manifest's, or the index's above it).
    """
    layer_tar = _layer_tar({"bin/busybox": b"\x7fELF not really busybox\n"})
    layer = gzip.compress(layer_tar, mtime=0)
    config = json.dumps(
        {**BASE_CONFIG, "rootfs": {"type": "layers", "diff_ids": [_sha256(layer_tar)]}}
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _sha256(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    documents = [layer, config, manifest]
    top = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": _sha256(manifest),
        "size": len(manifest),
    }
    if nested_index:
        arm = dict(top, digest="sha256:" + "0" * 64, platform={"architecture": "arm64", "os": "linux"})
        amd = dict(top, platform={"architecture": "amd64", "os": "linux"})
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [arm, amd],
            }
        ).encode()
        documents.append(index)
        top = {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": _sha256(index),
            "size": len(index),
        }
    for data in documents:
        (blobs / _sha256(data).removeprefix("sha256:")).write_bytes(data)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return root, str(top["digest"])


def make_docker_save(path: Path, repeat_layer: bool = False) -> Path:
    """A classic `docker save` tarball: manifest.json, a config, and uncompressed layers.

    With `repeat_layer`, a second identical layer is stored as a symlink, as Docker does.
    """
    layer = _layer_tar({"bin/busybox": b"\x7fELF not really busybox\n"})
    layers = ["abc123/layer.tar", "def456/layer.tar"] if repeat_layer else ["abc123/layer.tar"]
    rootfs = {"type": "layers", "diff_ids": [_sha256(layer)] * len(layers)}
    config = json.dumps({**BASE_CONFIG, "rootfs": rootfs}).encode()
    config_name = _sha256(config).removeprefix("sha256:") + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["busybox:1.36"], "Layers": layers}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in ((config_name, config), (layers[0], layer), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if repeat_layer:
            link = tarfile.TarInfo(layers[1])
            link.type = tarfile.SYMTYPE
            link.linkname = "../abc123/layer.tar"
            tar.addfile(link)
    return path


# --- a real registry ----------------------------------------------------------------------------


@pytest.fixture
def registry_address(registry: Registry) -> str:
    """`host:port` of the test registry (tests/docker_env.py: Debian's docker-registry on 127.0.0.1)."""
    return registry.host
