"""The test Docker environment works for real: engine, classic builds, registry push/pull/delete, run.

Every image and tag made here is unique to the test and removed at its end, so runs can share the
long-lived engine and registry (see tests/docker_env.py).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import docker.errors
import pytest

if TYPE_CHECKING:
    from tests.docker_env import BaseImage, DockerEngine, Registry

# Registers the fixtures; a no-op once tests/conftest.py loads the same plugin (which also registers its CI
# stop hook in the xdist controller). The module's names are imported inside the tests, not here: an import
# before pytest registers the plugin would make pytest warn that it cannot rewrite its asserts.
pytest_plugins = ["tests.docker_env"]

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
# The loopback registry must not be asked through an HTTP(S)_PROXY of the environment.
NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def registry_manifest(registry: Registry, repo: str, reference: str) -> tuple[int, str | None]:
    """(HTTP status, Docker-Content-Digest) of GET /v2/<repo>/manifests/<reference>."""
    request = urllib.request.Request(
        f"{registry.url}/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_V2}
    )
    try:
        with NO_PROXY_OPENER.open(request, timeout=10) as resp:
            return resp.status, resp.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as err:
        return err.code, None


def delete_manifest(registry: Registry, repo: str, digest: str) -> int:
    request = urllib.request.Request(f"{registry.url}/v2/{repo}/manifests/{digest}", method="DELETE")
    try:
        with NO_PROXY_OPENER.open(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture
def unique_tag() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def build_context(tmp_path: Path, base_image: BaseImage) -> Path:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {base_image.ref}\nRUN echo hi > /x\nCMD cat /x\n")
    return context


@pytest.fixture
def cleanup_images(docker_sdk: docker.DockerClient) -> Iterator[list[str]]:
    """Image references to remove after the test (vfs keeps a full copy per layer: don't accumulate)."""
    refs: list[str] = []
    yield refs
    for ref in refs:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_sdk.images.remove(ref, force=True)


def test_engine_answers_version(docker_engine: DockerEngine, docker_sdk: docker.DockerClient) -> None:
    from tests.docker_env import INSTALL_HINT, engine_usable

    assert engine_usable(docker_engine.host)
    version = docker_sdk.version()
    assert version["ApiVersion"]
    assert docker_sdk.info()["Driver"] in ("overlay2", "vfs")  # overlay2 where the kernel mounts one
    # The CLI reaches the same engine through engine.env alone.
    assert docker_engine.cli, "no docker CLI on PATH. " + INSTALL_HINT
    proc = subprocess.run(
        [docker_engine.cli, "version", "--format", "{{.Server.Version}}"],
        env={**os.environ, **docker_engine.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == version["Version"]


@pytest.mark.parametrize("probe", range(4))
def test_engine_started_at_most_once_per_run(
    probe: int, docker_engine: DockerEngine, docker_env_run_id: str
) -> None:
    """Under xdist the probes land on several workers; all must see one daemon, started at most once."""
    from tests.docker_env import read_starts

    starts = [
        s
        for s in read_starts(docker_engine.base_dir)
        if s["what"] == "dockerd" and s["run"] == docker_env_run_id
    ]
    assert len(starts) <= 1, starts
    if docker_engine.pid is None:  # an external engine (ATMOS_TASKS_DOCKER_HOST): nothing was started
        assert not starts
        return
    pid_file = docker_engine.base_dir / "docker.pid"
    assert docker_engine.pid == int(pid_file.read_text())
    if starts:
        assert starts[0]["pid"] == docker_engine.pid


def test_build_push_digest_run_pull(
    docker_sdk: docker.DockerClient,
    registry: Registry,
    build_context: Path,
    unique_tag: str,
    cleanup_images: list[str],
) -> None:
    repo = "atmos-tasks-test/envcheck"
    remote = f"{registry.host}/{repo}"
    cleanup_images += [f"{repo}:{unique_tag}", f"{remote}:{unique_tag}"]

    # The SDK's build is the engine's classic builder (no BuildKit): RUN works without a network.
    image, _logs = docker_sdk.images.build(path=str(build_context), tag=f"{repo}:{unique_tag}", rm=True)
    assert docker_sdk.containers.run(image.id, remove=True) == b"hi\n"

    image.tag(remote, unique_tag)
    for chunk in docker_sdk.images.push(remote, unique_tag, stream=True, decode=True):
        assert "error" not in chunk, chunk
    image.reload()
    repo_digests = [d for d in image.attrs["RepoDigests"] if d.startswith(f"{remote}@")]
    assert len(repo_digests) == 1, image.attrs["RepoDigests"]
    engine_digest = repo_digests[0].split("@", 1)[1]

    status, registry_digest = registry_manifest(registry, repo, unique_tag)
    assert status == 200
    assert registry_digest == engine_digest

    # Gone locally, back from the registry: same image ID (same config), by tag and by digest.
    docker_sdk.images.remove(image.id, force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_sdk.images.get(image.id)
    pulled = docker_sdk.images.pull(remote, tag=unique_tag)
    assert pulled.id == image.id
    assert docker_sdk.images.pull(f"{remote}@{engine_digest}").id == image.id
    assert docker_sdk.containers.run(pulled.id, remove=True) == b"hi\n"

    # Deletes are enabled, so tests can clean the shared registry.
    assert delete_manifest(registry, repo, engine_digest) == 202
    assert registry_manifest(registry, repo, unique_tag)[0] == 404


def test_cli_classic_build_and_run(
    docker_engine: DockerEngine, build_context: Path, unique_tag: str, cleanup_images: list[str]
) -> None:
    """`docker build` with engine.env (DOCKER_BUILDKIT=0) works in a subprocess, whichever CLI is on PATH."""
    assert docker_engine.cli
    ref = f"atmos-tasks-test/cli:{unique_tag}"
    cleanup_images.append(ref)
    env = {**os.environ, **docker_engine.env}

    def docker_cli(*args: str) -> subprocess.CompletedProcess[str]:
        assert docker_engine.cli
        return subprocess.run(
            [docker_engine.cli, *args], env=env, capture_output=True, text=True, timeout=300
        )

    build = docker_cli("build", "-q", "-t", ref, str(build_context))
    assert build.returncode == 0, build.stderr
    run = docker_cli("run", "--rm", ref)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "hi\n"


def test_base_image_in_registry_and_runs(
    docker_sdk: docker.DockerClient, registry: Registry, base_image: BaseImage
) -> None:
    repo, tag = base_image.registry_ref.split("/", 1)[1].rsplit(":", 1)
    assert registry_manifest(registry, repo, tag) == (200, base_image.digest)
    assert base_image.size < 5_000_000
    out = docker_sdk.containers.run(
        base_image.ref,
        ["sh", "-c", "echo $0; cat /etc/passwd | head -1; which wget httpd sleep", "ok"],
        remove=True,
    )
    assert out.decode().splitlines() == [
        "ok",
        "root:x:0:0:root:/root:/bin/sh",
        "/bin/wget",
        "/bin/httpd",
        "/bin/sleep",
    ]


def test_python_base_image_runs(
    docker_sdk: docker.DockerClient, registry: Registry, python_base_image: BaseImage
) -> None:
    repo, tag = python_base_image.registry_ref.split("/", 1)[1].rsplit(":", 1)
    assert registry_manifest(registry, repo, tag) == (200, python_base_image.digest)
    out = docker_sdk.containers.run(
        python_base_image.ref,
        ["python3", "-c", "import json, sqlite3, ssl, sys; print(json.dumps(sys.version_info[:2]))"],
        remove=True,
    )
    assert out.decode().strip().startswith("[3, ")


def test_missing_dockerd_fails_with_install_hint(tmp_path: Path) -> None:
    from tests.docker_env import DockerEnvError, ensure_engine

    with pytest.raises(DockerEnvError, match=r"apt-get install -y docker\.io docker-registry busybox-static"):
        ensure_engine(tmp_path, "missing", dockerd_binary=str(tmp_path / "no-such-dockerd"))


def test_shared_dir_is_private() -> None:
    from tests.docker_env import docker_env_dir

    base = docker_env_dir()
    assert base.stat().st_mode & 0o077 == 0


def test_pruning_removes_built_images_and_keeps_the_base_images(
    docker_sdk: docker.DockerClient, build_context: Path, unique_tag: str, base_image: BaseImage
) -> None:
    """What a kept engine sheds at the end of a run; narrowed to this test's own images here, since
    other workers use the engine meanwhile."""
    from tests.docker_env import BUSYBOX_IMAGE, docker_env_dir, prune_test_images

    ref = f"atmos-tasks-test/prune:{unique_tag}"
    docker_sdk.images.build(path=str(build_context), tag=ref, rm=True)
    removed = prune_test_images(docker_env_dir(), select=lambda name: name == ref)
    assert removed == [ref]
    with pytest.raises(docker.errors.ImageNotFound):
        docker_sdk.images.get(ref)
    assert base_image.ref == BUSYBOX_IMAGE and docker_sdk.images.get(base_image.ref).id == base_image.id
