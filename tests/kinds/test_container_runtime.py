"""The `container` kind's Docker runtime, on the real test engine (tests/docker_env.py): no mocks.

Images are made here FROM the offline busybox base image (one metadata instruction each, ~1 s) and
named `<repository>@<image id>`, as a build that was not pushed names them. The Python server runs
the python base image itself, by its registry digest: with the engine's vfs driver a build FROM it
commits a full copy of its 120 MB per instruction (~16 s). Every server answers with `$GREETING`, so a
response shows which environment a replica runs with.

Publishing: the test engine runs dockerd with `--bridge=none --iptables=false --userland-proxy=false`.
Without the default bridge a container gets only loopback and Docker publishes nothing, so these tests
put the replicas on a bridge network of their own (`network`). Docker then does allocate each replica
its ephemeral 127.0.0.1 port (and holds it open) but, with neither iptables NAT nor the userland proxy,
nothing forwards it to the container: the tests check the endpoints against what Docker reports, and
reach the servers at their address on the test network. On an engine that forwards (a stock dockerd
named by `ATMOS_TASKS_DOCKER_HOST`: a probe container asks it) the endpoints are asked too.

Each test has its own deployment name, so runs and xdist workers never see each other's containers;
a finalizer removes what a test started.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import pytest

from atmos_tasks import cancel
from atmos_tasks.kinds import container as runtime
from atmos_tasks.kinds.container import ContainerJob

if TYPE_CHECKING:
    from tests.docker_env import BaseImage, DockerEngine, Registry

# Registers the fixtures (a no-op under tests/conftest.py, which loads the same plugin); its names are
# imported inside functions so that pytest can rewrite this module's asserts.
pytest_plugins = ["tests.docker_env"]

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
COMPONENT = "web/api"

# Shell-form CMDs: `sh` is PID 1 and exits on SIGTERM (a server as PID 1 would ignore it, and every
# stop of an old replica would wait out the 10 s stop timeout).
SERVE_BUSYBOX = (
    "mkdir -p /www; echo \"$GREETING\" > /www/index.html; trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"
)
SERVE_PYTHON = (
    "mkdir -p /www; echo \"$GREETING\" > /www/index.html; cd /www; trap 'exit 0' TERM; "
    "python3 -m http.server 8080 & wait"
)
BUSYBOX_HEALTH = {
    "test": ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"],
    "interval": "250ms",
    "timeout": "2s",
    "retries": 3,
}
PYTHON_HEALTH = {
    "test": ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/')"],
    "interval": 0.3,
    "timeout": "3s",
    "retries": 5,
}


@dataclass(frozen=True)
class Images:
    web: str  # busybox httpd, no HEALTHCHECK of its own
    python_web: str  # the python base image, pinned by its registry digest (runs SERVE_PYTHON)
    broken: str  # busybox httpd whose image HEALTHCHECK always fails
    network: str  # a bridge network the replicas join
    forwards: bool  # the engine forwards published 127.0.0.1 ports


@pytest.fixture(autouse=True)
def engine_env(docker_engine: DockerEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in docker_engine.env.items():
        monkeypatch.setenv(key, value)


def _engine_forwards_ports(client: docker.DockerClient, network: str, web: str) -> bool:
    """Whether a published 127.0.0.1 port reaches its container on this engine."""
    from tests.docker_env import _DOCKERD_FLAGS

    if not os.environ.get("ATMOS_TASKS_DOCKER_HOST"):
        # The fixtures' own dockerd: neither NAT rules nor the userland proxy forward anything.
        return not {"--iptables=false", "--userland-proxy=false"} <= set(_DOCKERD_FLAGS)
    # Someone else's engine: ask it.
    probe = client.containers.run(
        web.split("@", 1)[1],
        detach=True,
        network=network,
        ports={"8080/tcp": ("127.0.0.1", None)},
        environment={"GREETING": "probe"},
    )
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            probe.reload()
            bindings = probe.attrs["NetworkSettings"]["Ports"].get("8080/tcp") or []
            if bindings:
                with contextlib.suppress(OSError):
                    return get(f"http://127.0.0.1:{bindings[0]['HostPort']}/", timeout=1) == "probe"
            time.sleep(0.2)
        return False
    finally:
        probe.remove(force=True)


@pytest.fixture(scope="module")
def images(
    docker_sdk: docker.DockerClient, base_image: BaseImage, python_base_image: BaseImage
) -> Iterator[Images]:
    run = uuid.uuid4().hex[:10]
    # One instruction each: with the vfs driver every instruction commits a full copy of the image.
    recipes = {
        "web": f"FROM {base_image.ref}\nCMD {SERVE_BUSYBOX}\n",
        "broken": f"FROM atmos-tests/container-web:{run}\n"
        "HEALTHCHECK --interval=200ms --timeout=1s --retries=1 CMD exit 1\n",
    }
    refs = {}
    tags = []
    network = docker_sdk.networks.create(f"atmos-tests-{run}", driver="bridge")
    try:
        for name, dockerfile in recipes.items():
            tag = f"atmos-tests/container-{name}:{run}"
            image, _ = docker_sdk.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
            tags.append(tag)
            refs[name] = f"atmos-tests/container-{name}@{image.id}"
        # The python base image itself, by its registry digest (a build FROM it takes ~16 s here).
        python_web = python_base_image.repo_digest
        forwards = _engine_forwards_ports(docker_sdk, network.name, refs["web"])
        yield Images(refs["web"], python_web, refs["broken"], network.name, forwards)
    finally:
        with contextlib.suppress(docker.errors.APIError):
            network.remove()
        for tag in tags:
            with contextlib.suppress(docker.errors.APIError):
                docker_sdk.images.remove(tag, force=True)


@pytest.fixture
def deployment(docker_sdk: docker.DockerClient) -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    for leftover in docker_sdk.containers.list(all=True, filters={"label": f"atmos.deployment={name}"}):
        with contextlib.suppress(docker.errors.APIError):
            leftover.remove(force=True)


def job(deployment: str, image: str, images: Images | None = None, **fields: Any) -> ContainerJob:
    defaults: dict[str, Any] = {
        "replicas": 2,
        "ports": (8080,),
        "network": images.network if images else None,
        "healthcheck": BUSYBOX_HEALTH,
        "health_timeout": 30.0,
        "container_env": {"GREETING": "one"},
    }
    return ContainerJob(
        kind="container",
        deployment=deployment,
        target="dev",
        component=COMPONENT,
        root=".",
        workdir=".",
        vars={},
        env={},
        static_key="",
        template_context={"git": {"sha": "c0ffee"}},
        image=image,
        **{**defaults, **fields},
    )


def labelled(client: docker.DockerClient, deployment: str, **filters: str) -> list[Any]:
    found = client.containers.list(
        all=True, filters={"label": f"atmos.deployment={deployment}", **filters}, ignore_removed=True
    )
    return sorted(found, key=lambda c: c.name)


def address(container: Any, network: str) -> str:
    container.reload()
    return str(container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"])


def get(url: str, timeout: float = 5) -> str:
    with NO_PROXY.open(url, timeout=timeout) as resp:
        return resp.read().decode().strip()


def rolled(the_job: ContainerJob) -> dict[str, Any]:
    plan = runtime.plan(the_job, {}, {})
    assert plan["status"] == "planned", plan
    applied = runtime.apply(the_job, plan)
    assert applied["status"] == "applied", applied
    return applied


# ------------------------------------------------------------------------------------------- tests


def test_two_replicas_roll_out_healthy_labelled_and_answer(
    images: Images, deployment: str, docker_sdk: docker.DockerClient
) -> None:
    the_job = job(
        deployment,
        images.python_web,
        images,
        command=("sh", "-c", SERVE_PYTHON),
        healthcheck=PYTHON_HEALTH,
        cpu=0.5,
        memory="64Mi",
    )
    plan = runtime.plan(the_job, {}, {})
    assert plan["status"] == "planned", plan
    assert plan["has_changes"] is True
    assert plan["changes"] == {"add": 2, "destroy": 0}
    assert plan["image"] == images.python_web
    assert plan["image_id"] == docker_sdk.images.get(images.python_web).id
    assert re.fullmatch(r"[0-9a-f]{32}", plan["plan_id"])

    applied = runtime.apply(the_job, plan)
    assert applied["status"] == "applied", applied
    h = plan["inputs_hash"]
    assert applied["inputs_hash"] == h
    names = [f"atmos-{deployment}-dev-web-api-{h[:8]}-{i}" for i in (1, 2)]
    outputs = applied["outputs"]
    assert outputs["containers"] == names
    assert outputs["image"] == images.python_web

    running = labelled(docker_sdk, deployment)
    assert [c.name for c in running] == names
    published = {}
    for i, container in enumerate(running, start=1):
        assert container.status == "running"
        assert container.attrs["State"]["Health"]["Status"] == "healthy"
        assert {k: v for k, v in container.labels.items() if k.startswith("atmos.")} == {
            "atmos.deployment": deployment,
            "atmos.target": "dev",
            "atmos.component": COMPONENT,
            "atmos.commit": "c0ffee",
            "atmos.digest": images.python_web,
            "atmos.inputs": h,
            "atmos.replica": str(i),
        }
        host = container.attrs["HostConfig"]
        assert host["RestartPolicy"]["Name"] == "unless-stopped"
        assert host["NanoCpus"] == 500_000_000
        assert host["Memory"] == 64 * 2**20
        assert container.attrs["Config"]["Healthcheck"]["Interval"] == 300_000_000
        assert "GREETING=one" in container.attrs["Config"]["Env"]
        binding = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]
        published[container.name] = f"127.0.0.1:{binding['HostPort']}"
    assert outputs["endpoints"] == published
    assert len(set(published.values())) == 2

    health = runtime.health(deployment, "dev", COMPONENT)
    assert health is not None
    assert (health.state, health.healthy, health.total) == ("healthy", 2, 2)
    assert health.endpoints == published
    assert health.shown() == "✓ healthy (2/2)"
    assert runtime.deployed_outputs(the_job) == outputs

    for container in running:
        assert get(f"http://{address(container, images.network)}:8080/") == "one"
    if images.forwards:
        for endpoint in published.values():
            assert get(f"http://{endpoint}/") == "one"


def test_a_change_rolls_the_replicas_without_a_moment_without_a_healthy_one(
    images: Images, deployment: str, docker_sdk: docker.DockerClient, docker_engine: DockerEngine
) -> None:
    first = job(deployment, images.web, images)
    rolled(first)
    old = {c.id for c in labelled(docker_sdk, deployment)}
    assert len(old) == 2

    second = replace(first, container_env={"GREETING": "two"})
    plan = runtime.plan(second, {}, {})
    assert plan["status"] == "planned" and plan["has_changes"] is True, plan
    assert plan["changes"] == {"add": 2, "destroy": 2}

    samples: list[tuple[int, int]] = []
    stop = threading.Event()

    def probe() -> None:
        client = docker.DockerClient(base_url=docker_engine.host, version="auto", timeout=30)
        label = {"label": f"atmos.deployment={deployment}"}
        try:
            while not stop.is_set():
                healthy = client.containers.list(filters={**label, "health": "healthy"}, sparse=True)
                total = client.containers.list(all=True, filters=label, sparse=True)
                samples.append((len(healthy), len(total)))
                stop.wait(0.1)
        finally:
            client.close()

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    try:
        applied = runtime.apply(second, plan)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert applied["status"] == "applied", applied

    assert len(samples) >= 5, samples
    assert min(healthy for healthy, _ in samples) >= 1, samples
    # The new replicas ran next to the old ones before any old one went.
    assert max(total for _, total in samples) == 4, samples

    now = labelled(docker_sdk, deployment)
    assert len(now) == 2
    assert not old & {c.id for c in now}
    assert {c.labels["atmos.inputs"] for c in now} == {plan["inputs_hash"]}
    assert all(c.status == "running" for c in now)
    assert [get(f"http://{address(c, images.network)}:8080/") for c in now] == ["two", "two"]
    health = runtime.health(deployment, "dev", COMPONENT)
    assert health is not None and (health.state, health.healthy, health.total) == ("healthy", 2, 2)


def test_replicas_that_never_become_healthy_fail_the_apply_and_the_old_ones_keep_running(
    images: Images, deployment: str, docker_sdk: docker.DockerClient
) -> None:
    good = job(deployment, images.web, images)
    rolled(good)
    before = {c.id for c in labelled(docker_sdk, deployment)}

    # The broken image's own HEALTHCHECK (exit 1) applies: the job names none.
    broken = replace(good, image=images.broken, healthcheck=None, health_timeout=3.0)
    plan = runtime.plan(broken, {}, {})
    assert plan["status"] == "planned" and plan["has_changes"] is True, plan
    started = time.monotonic()
    applied = runtime.apply(broken, plan)
    took = time.monotonic() - started

    assert applied["status"] == "failed", applied
    assert applied["error"].startswith(f"{COMPONENT}: 2 of 2 new replicas did not become healthy within 3s: ")
    assert "health check exited 1" in applied["error"]
    assert 3.0 <= took < 30.0
    after = labelled(docker_sdk, deployment)
    assert {c.id for c in after} == before
    assert all(c.labels["atmos.inputs"] != plan["inputs_hash"] for c in after)
    health = runtime.health(deployment, "dev", COMPONENT)
    assert health is not None and (health.state, health.healthy, health.total) == ("healthy", 2, 2)
    assert [get(f"http://{address(c, images.network)}:8080/") for c in after] == ["one", "one"]


def test_a_replica_that_exits_fails_at_once_and_is_removed(
    images: Images, deployment: str, docker_sdk: docker.DockerClient
) -> None:
    # No health check at all: a replica counts once it has run for a second; this one exits first.
    crashing = job(
        deployment, images.web, images, healthcheck=None, command=("sh", "-c", "echo boom >&2; exit 3")
    )
    plan = runtime.plan(crashing, {}, {})
    assert plan["status"] == "planned", plan
    started = time.monotonic()
    applied = runtime.apply(crashing, plan)
    # Long before its 30 s health_timeout.
    assert time.monotonic() - started < 20.0
    assert applied["status"] == "failed", applied
    assert "exited" in applied["error"] and "before it became healthy: boom" in applied["error"], applied
    assert labelled(docker_sdk, deployment) == []

    # Without a health check, running for a second is healthy enough.
    serving = replace(crashing, command=None)
    assert rolled(serving)["outputs"]["containers"]
    health = runtime.health(deployment, "dev", COMPONENT)
    assert health is not None and (health.state, health.healthy, health.total) == ("healthy", 2, 2)


def test_a_cancelled_run_stops_waiting_and_removes_the_new_replicas(
    images: Images, deployment: str, docker_sdk: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    never = job(deployment, images.broken, images, healthcheck=None, health_timeout=60.0, replicas=1)
    plan = runtime.plan(never, {}, {})
    assert plan["status"] == "planned", plan
    cancelled = threading.Event()
    monkeypatch.setattr(cancel, "requested", lambda: "SIGTERM" if cancelled.is_set() else None)
    timer = threading.Timer(1.5, cancelled.set)
    timer.start()
    started = time.monotonic()
    try:
        applied = runtime.apply(never, plan)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 20.0  # not its 60 s health_timeout
    assert applied["status"] == "failed"
    assert applied["error"].startswith("cancelled (SIGTERM)"), applied
    assert labelled(docker_sdk, deployment) == []


def test_an_unchanged_job_plans_no_changes_and_applies_nothing(
    images: Images, deployment: str, docker_sdk: docker.DockerClient
) -> None:
    the_job = job(deployment, images.web, images)
    first = rolled(the_job)
    before = {c.id: c.attrs["State"]["StartedAt"] for c in labelled(docker_sdk, deployment)}

    plan = runtime.plan(the_job, {}, {})
    assert plan["status"] == "planned", plan
    assert plan["has_changes"] is False
    assert plan["changes"] == {"add": 0, "destroy": 0}
    assert plan["inputs_hash"] == first["inputs_hash"]
    again = runtime.apply(the_job, plan)
    assert again == {"status": "applied", "outputs": first["outputs"], "inputs_hash": first["inputs_hash"]}
    assert {c.id: c.attrs["State"]["StartedAt"] for c in labelled(docker_sdk, deployment)} == before

    # The same settings written another way are the same inputs.
    same = replace(the_job, healthcheck={**BUSYBOX_HEALTH, "interval": 0.25, "timeout": "2000ms"})
    assert runtime.plan(same, {}, {})["has_changes"] is False
    # A stopped replica is a change (it is replaced).
    labelled(docker_sdk, deployment)[0].stop(timeout=1)
    assert runtime.plan(the_job, {}, {})["has_changes"] is True


def test_destroy_removes_every_replica_and_health_then_says_not_running(
    images: Images, deployment: str, docker_sdk: docker.DockerClient
) -> None:
    the_job = job(deployment, images.web, images)
    names = rolled(the_job)["outputs"]["containers"]
    destroyed = runtime.destroy(the_job)
    assert destroyed == {"status": "destroyed", "removed": names}
    assert labelled(docker_sdk, deployment) == []
    health = runtime.health(deployment, "dev", COMPONENT)
    assert health is not None
    assert (health.state, health.healthy, health.total, health.detail) == ("unknown", 0, 0, "not running")
    assert runtime.deployed_outputs(the_job) is None
    plan = runtime.plan(the_job, {}, {})
    assert plan["has_changes"] is True and plan["changes"] == {"add": 2, "destroy": 0}


def test_an_image_not_pinned_by_digest_is_a_failed_plan(images: Images, deployment: str) -> None:
    tag_only = job(deployment, "atmos-tests/container-web:latest", images)
    plan = runtime.plan(tag_only, {}, {})
    assert plan["status"] == "failed"
    assert plan["error"] == (
        f"{COMPONENT}: image 'atmos-tests/container-web:latest' is not pinned by digest: use "
        "<repository>@sha256:<digest> (or an image id), so that what is planned is what runs"
    )
    bound = replace(tag_only, image="", bindings={"image": "api"})
    assert "not pinned by digest" in runtime.plan(bound, {}, {"api": {"image": "acme/api:v1"}})["error"]
    assert runtime.plan(replace(tag_only, image=""), {}, {})["error"] == (
        f"{COMPONENT}: no image: set `image` (pinned by digest) or bind an image component"
    )
    assert runtime.apply(tag_only, plan) == plan


def test_a_bound_image_component_names_the_image(images: Images, deployment: str) -> None:
    bound = job(deployment, "", images, bindings={"image": "api"})
    plan = runtime.plan(bound, {}, {"api": {"image": images.web, "digest": images.web.split("@")[1]}})
    assert plan["status"] == "planned", plan
    assert (plan["image"], plan["image_id"]) == (images.web, images.web.split("@")[1])
    missing = runtime.plan(bound, {}, {})
    assert missing["status"] == "failed"
    assert "the image component 'api' bound to `image` has no built image" in missing["error"]


def test_a_digest_not_on_the_engine_is_pulled_from_its_registry(
    deployment: str, docker_sdk: docker.DockerClient, base_image: BaseImage, registry: Registry
) -> None:
    from tests.docker_env import push_image

    local = f"atmos-tests/container-pulled:{deployment}"
    dockerfile = f"FROM {base_image.ref}\nLABEL test.run={deployment}\nCMD {SERVE_BUSYBOX}\n"
    image, _ = docker_sdk.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=local, rm=True)
    remote, digest = push_image(docker_sdk, local, registry)
    pinned = f"{remote.rsplit(':', 1)[0]}@{digest}"
    try:
        docker_sdk.images.remove(image.id, force=True)
        with pytest.raises(docker.errors.ImageNotFound):
            docker_sdk.images.get(image.id)
        plan = runtime.plan(job(deployment, pinned, None, ports=()), {}, {})
        assert plan["status"] == "planned", plan
        assert (plan["image"], plan["image_id"]) == (pinned, image.id)
        assert docker_sdk.images.get(image.id).id == image.id
    finally:
        for ref in (local, remote, pinned, image.id):
            with contextlib.suppress(docker.errors.APIError):
                docker_sdk.images.remove(ref, force=True)


def test_ports_need_a_network_that_can_publish(
    images: Images, deployment: str, docker_sdk: docker.DockerClient
) -> None:
    plan = runtime.plan(job(deployment, images.web, None), {}, {})
    try:
        docker_sdk.networks.get("bridge")
    except docker.errors.NotFound:
        # This engine (dockerd --bridge=none): a replica would get loopback only, and no port.
        assert plan["status"] == "failed"
        assert (
            "has no default `bridge` network (dockerd --bridge=none), so ports 8080 cannot" in plan["error"]
        )
    else:
        assert plan["status"] == "planned", plan
    assert runtime.plan(job(deployment, images.web, None, network="host"), {}, {})["error"] == (
        f"{COMPONENT}: ports 8080 cannot be published from network 'host'"
    )
    assert runtime.plan(job(deployment, images.web, None, ports=()), {}, {})["status"] == "planned"
    assert runtime.plan(job(deployment, images.web, None, network="atmos-tests-nowhere"), {}, {})[
        "error"
    ] == (f"{COMPONENT}: the engine at {os.environ['DOCKER_HOST']} has no network 'atmos-tests-nowhere'")


def test_an_unreachable_engine_is_a_failure_value(
    images: Images, deployment: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = f"unix://{tmp_path}/no.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    plan = runtime.plan(job(deployment, images.web, images), {}, {})
    assert plan["status"] == "failed"
    assert plan["error"].startswith(f"{COMPONENT}: no Docker engine at {host}: ")
    assert plan["error"].endswith("; start one or set DOCKER_HOST")
    health = runtime.health(deployment, "dev", COMPONENT)
    assert health is not None and health.state == "unknown"
    assert health.detail.startswith(f"no Docker engine at {host}")
    assert runtime.destroy(job(deployment, images.web, images))["status"] == "failed"
    assert runtime.deployed_outputs(job(deployment, images.web, images)) is None


def test_a_sensitive_value_a_crashing_replica_prints_is_masked_in_the_failure(
    images: Images, deployment: str, docker_sdk: docker.DockerClient
) -> None:
    leaky = job(
        deployment,
        images.web,
        images,
        healthcheck=None,
        replicas=1,
        container_env={"API_TOKEN": "s3cr3t-t0ken-value"},
        sensitive=("env.API_TOKEN",),
        command=("sh", "-c", 'echo "token is $API_TOKEN" >&2; exit 3'),
    )
    plan = runtime.KIND.plan(leaky, {}, {})
    assert plan["status"] == "planned", plan
    applied = runtime.KIND.apply(leaky, plan)
    assert applied["status"] == "failed", applied
    assert "token is" in applied["error"] and "s3cr3t-t0ken-value" not in applied["error"], applied
    assert labelled(docker_sdk, deployment) == []
