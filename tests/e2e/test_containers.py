"""The bundled `hello` deployment on a real Docker engine: a `container` component running the image a
`nixpack` component builds, driven through `doit` and `atmos-tasks` as a user would.

The test engine runs without a default bridge (`dockerd --bridge=none`), so the replicas join a
bridge network of the test's own (`vars.network`); everything else is the example as shipped.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Repo
from tests.docker_env import BaseImage, DockerEngine

LABEL = "atmos.deployment"


def replicas(client: Any, network: str, **filters: Any) -> list[Any]:
    return list(client.containers.list(filters={"label": f"{LABEL}=hello", "network": network, **filters}))


def healthy_count(client: Any, network: str) -> int:
    # Sparse: the listing inspects nothing, so a replica removed meanwhile cannot fail it (the
    # reload below skips it); a full listing inspects each one and raised NotFound in the thread.
    found = client.containers.list(
        all=True, sparse=True, filters={"label": f"{LABEL}=hello", "network": network}
    )
    count = 0
    for container in found:
        try:
            container.reload()
        except Exception:
            continue  # removed while we looked
        if (container.attrs.get("State", {}).get("Health") or {}).get("Status") == "healthy":
            count += 1
    return count


class Probe:
    """Samples the number of healthy replicas every 50 ms while a rollout runs."""

    def __init__(self, client: Any, network: str) -> None:
        self.client = client
        self.network = network
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(healthy_count(self.client, self.network))
            time.sleep(0.05)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def web(repo: Repo, docker_engine: DockerEngine, docker_sdk: Any, base_image: BaseImage) -> Iterator[Repo]:
    """The example with the test engine, its base image under the name the example uses, and a
    bridge network for the replicas; every container of the deployment is removed afterwards."""
    repo.env = {**repo.env, **docker_engine.env}
    docker_sdk.images.get(base_image.ref).tag("atmos-example/busybox", "local")
    network = docker_sdk.networks.create(f"atmos-e2e-{uuid.uuid4().hex[:8]}", driver="bridge")
    repo.replace(
        "deployments/hello.yaml",
        "          ports: [8080]",
        f"          network: {network.name}\n          ports: [8080]",
    )
    repo.replace("deployments/hello.yaml", "interval: 1s", "interval: 300ms")
    repo.commit("The test engine's network")
    repo.network = network.name  # type: ignore[attr-defined]
    yield repo
    # Only this test's replicas (other workers may run the same deployment at the same time).
    for container in docker_sdk.containers.list(all=True, filters={"network": network.name}):
        container.remove(force=True)
    network.remove()


def status_of(repo: Repo, *extra: str) -> dict[str, Any]:
    proc = repo.cli("status", "hello", "--target", "dev", "--format", "json", *extra)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout)["hello"]["dev"])


def test_containers_roll_with_health_fail_safely_roll_back_and_are_destroyed(
    web: Repo, docker_sdk: Any
) -> None:
    net = web.network  # type: ignore[attr-defined]
    first = web.head()
    proc = web.doit("rollout:hello:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert healthy_count(docker_sdk, net) == 2
    status = status_of(web)
    assert status["web"]["type"] == "container" and status["web"]["status"] == "success"
    assert (
        status["web"]["health"]["state"] == "healthy"
        and status["web"]["health"]["shown"] == "✓ healthy (2/2)"
    )
    assert len(set(status["web"]["health"]["endpoints"].values())) == 2  # one host port per replica
    table = web.cli("status", "hello", "--target", "dev")
    assert "✓ healthy (2/2)" in table.stdout, table.stdout
    assert "health" not in status_of(web, "--no-health")["web"]
    first_image = status["web"]["image"]
    first_ids = {c.id for c in replicas(docker_sdk, net)}
    # Labelled by what runs: the engine itself answers which commit and image each replica is.
    labels = docker_sdk.containers.get(next(iter(first_ids))).labels
    assert labels["atmos.commit"] == first and labels["atmos.target"] == "dev"

    # Nothing changed: no new containers.
    again = web.doit("rollout:hello:dev")
    assert again.returncode == 0, again.stdout + again.stderr
    assert {c.id for c in replicas(docker_sdk, net)} == first_ids

    # A change rolls the replicas with never fewer than one healthy.
    web.replace("services/web/index.html", "Hello from web", "Hello again from web")
    web.commit("A new page")
    with Probe(docker_sdk, net) as probe:
        rolled = web.doit("rollout:hello:dev")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert probe.samples and min(probe.samples) >= 1, probe.samples
    now = {c.id for c in replicas(docker_sdk, net)}
    assert len(now) == 2 and not now & first_ids
    second_image = status_of(web)["web"]["image"]
    assert second_image != first_image

    # A broken image (its health check fails): the component fails, the old replicas keep serving.
    web.git("rm", "-q", "services/web/health.txt")
    web.replace("deployments/hello.yaml", "health_timeout: 60s", "health_timeout: 4s")
    web.commit("The health page is gone")
    with Probe(docker_sdk, net) as probe:
        broken = web.doit("rollout:hello:dev")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "did not become healthy" in broken.stdout + broken.stderr
    assert min(probe.samples) >= 1, probe.samples
    assert {c.id for c in replicas(docker_sdk, net)} == now
    failed = web.tag_message(web.tags("atmos/deployments/hello/dev/web/")[-1])
    assert "status: failed" in failed
    assert status_of(web)["web"]["health"]["state"] == "healthy"

    # Rolled back to the first commit: its recorded image, no build.
    back = web.doit("rollout:hello:dev", "--git-sha", first)
    assert back.returncode == 0, back.stdout + back.stderr
    assert "built" not in back.stdout.replace("image reused", "")
    state = status_of(web)["web"]
    assert state["git_sha"] == first and state["image"] == first_image and state["status"] == "rollback"
    assert state["health"]["shown"] == "✓ healthy (2/2)"

    # Destroyed, and recorded.
    gone = web.cli("destroy", "hello", "--target", "dev", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert docker_sdk.containers.list(all=True, filters={"label": f"{LABEL}=hello", "network": net}) == []
    assert status_of(web)["web"]["status"] == "destroyed"
    assert "status: destroyed" in web.tag_message(web.tags("atmos/deployments/hello/dev/web/")[-1])
    assert "refs/atmos/deployments/hello/dev/web" not in web.refs()


def test_an_image_named_by_tag_alone_is_refused_before_anything_runs(web: Repo) -> None:
    web.replace(
        "deployments/hello.yaml",
        "          ports: [8080]",
        "          image: acme/web:latest\n          ports: [8080]",
    )
    web.commit("An image by tag")
    proc = web.cli("validate", "hello")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "is not pinned by digest" in proc.stderr and "deployments/hello.yaml:" in proc.stderr
    run = web.doit("rollout:hello:dev")
    assert run.returncode == 2 and web.refs() == {}
