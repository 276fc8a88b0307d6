"""The `docker` backend (SPEC §8): build a plan through the Docker SDK, push, run its tests.

The build context is the reproducible tar of `dockerfile.build_context`; the classic builder runs
it with `SOURCE_DATE_EPOCH`. The digest of a pushed image is the registry's manifest digest, as
the push reports it; an image that is not pushed is identified by its local image ID.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atmos_tasks.images.dockerfile import build_context
from atmos_tasks.images.errors import build_failed
from atmos_tasks.images.planner import BuildPlan

PING_TIMEOUT = 3


@dataclass(frozen=True)
class DockerImage:
    image_id: str
    digest: str | None  # the registry's manifest digest, when pushed


def client() -> Any:
    import docker

    return docker.from_env(timeout=600)


def engine_available() -> bool:
    """Whether a Docker engine answers (DOCKER_HOST or the default socket)."""
    try:
        import docker

        probe = docker.from_env(timeout=PING_TIMEOUT)
        try:
            return bool(probe.ping())
        finally:
            probe.close()
    except Exception:
        return False


def _build_log(lines: list[dict[str, Any]]) -> str:
    text = "".join(str(line.get("stream", "")) for line in lines)
    tail = [line for line in text.splitlines() if line.strip()][-15:]
    return "\n".join(tail)


def build(plan: BuildPlan, source_dir: Path, reference: str, source_date_epoch: int) -> str:
    """Build `plan` and tag it `reference`; returns the local image ID."""
    import docker.errors

    engine = client()
    context = build_context(source_dir, plan, source_date_epoch=source_date_epoch)
    lines: list[dict[str, Any]] = []
    try:
        for chunk in engine.api.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            tag=reference,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            buildargs={"SOURCE_DATE_EPOCH": str(source_date_epoch)},
        ):
            lines.append(chunk)
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise build_failed(
                    f"docker build of {reference} failed: {detail.strip()}\n{_build_log(lines)}"
                )
        return str(engine.images.get(reference).id)
    except docker.errors.APIError as err:
        raise build_failed(f"docker build of {reference} failed: {err.explanation or err}") from None
    finally:
        engine.close()


def push(reference: str) -> str:
    """Push `reference` (registry/repository:tag); returns the registry's manifest digest."""
    import docker.errors

    repository, _, tag = reference.rpartition(":")
    engine = client()
    digest = None
    try:
        for chunk in engine.api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise build_failed(f"push of {reference} failed: {detail}")
            aux = chunk.get("aux") or {}
            if aux.get("Digest"):
                digest = aux["Digest"]
    except docker.errors.APIError as err:
        raise build_failed(f"push of {reference} failed: {err.explanation or err}") from None
    finally:
        engine.close()
    if not digest:
        raise build_failed(f"push of {reference} reported no digest")
    return str(digest)


@dataclass(frozen=True)
class TestRun:
    passed: bool
    exit_code: int
    output: str
    junit: list[str]


def run_tests(image: str, command: list[str]) -> TestRun:
    """Run `command` in `image` with no network; JUnit XML written to $ATMOS_TEST_RESULTS is kept."""
    import docker.errors

    engine = client()
    container = None
    try:
        try:
            engine.images.get(image)
        except docker.errors.ImageNotFound:
            # Built before and not in this engine (another runner built it, or it was removed
            # since): the registry has it when it was pushed.
            _pull(engine, image)
        container = engine.containers.create(
            image,
            command=command,
            network_mode="none",
            environment={"ATMOS_TEST_RESULTS": "/atmos-test-results"},
        )
        container.put_archive("/", _empty_dir("atmos-test-results"))
        container.start()
        result = container.wait(timeout=1800)
        output = container.logs(stdout=True, stderr=True).decode(errors="replace")
        junit = _collect_junit(container)
        code = int(result.get("StatusCode", 1))
        return TestRun(code == 0, code, output, junit)
    except docker.errors.APIError as err:
        raise build_failed(f"tests in {image} could not run: {err.explanation or err}") from None
    finally:
        if container is not None:
            container.remove(force=True)
        engine.close()


def _pull(engine: Any, image: str) -> None:
    """Pull `image` (registry/repository@digest or :tag) into the engine, or say why it cannot run."""
    import docker.errors

    try:
        engine.images.pull(image)
    except docker.errors.APIError as err:
        raise build_failed(
            f"tests in {image} could not run: the image is not in this engine and pulling it failed: "
            f"{err.explanation or err}"
        ) from None


def _empty_dir(name: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = 0o777
        archive.addfile(info)
    return buffer.getvalue()


def _collect_junit(container: Any) -> list[str]:
    """JUnit XML the tests wrote under /atmos-test-results (copied out of the stopped container)."""
    import docker.errors

    try:
        stream, _ = container.get_archive("/atmos-test-results")
    except docker.errors.NotFound:
        return []
    data = b"".join(stream)
    found = []
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.endswith(".xml"):
                handle = archive.extractfile(member)
                if handle is not None:
                    found.append(handle.read().decode(errors="replace"))
    return found
