"""The `container` kind's runtime: long-running containers on a Docker engine, rolled with health checks.

A component is `replicas` containers of one image, found again by their labels:

    atmos.deployment, atmos.target, atmos.component   which component they belong to
    atmos.inputs                                      the inputs hash they were started from
    atmos.commit, atmos.digest, atmos.replica         the Git commit, the image reference, 1..replicas

`plan` resolves the image (pinned by digest or image id; pulled when not local) and compares the
inputs hash with the labels of what runs. `apply` rolls: it starts every new replica next to the old
ones, waits until Docker reports each one healthy (or, without a health check, running for a second),
and only then stops and removes the old ones one by one, so the component is never without a healthy
replica. A replica that does not become healthy in `health_timeout` (or exits, or a cancelled run)
removes the new replicas and leaves the old ones running. Failures are values, never exceptions.

Each replica publishes each of `ports` on an ephemeral port of the engine's 127.0.0.1. Docker publishes
ports only for containers on a bridge network: on an engine without its default `bridge` (dockerd
`--bridge=none`) a component with ports must name a bridge `network`, and the plan says so.

`docker` is imported in the functions that use it: importing this module stays cheap.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from atmos_tasks.hashing import hash_json
from atmos_tasks.kinds import CompileContext, Health, Job, Kind, deferred_vars, workdir_of

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

    from atmos_tasks.manifest import ComponentRef
    from atmos_tasks.resolve import ResolveContext, ResolvedComponent

LABEL_DEPLOYMENT = "atmos.deployment"
LABEL_TARGET = "atmos.target"
LABEL_COMPONENT = "atmos.component"
LABEL_COMMIT = "atmos.commit"
LABEL_DIGEST = "atmos.digest"
LABEL_INPUTS = "atmos.inputs"
LABEL_REPLICA = "atmos.replica"

# Seconds an API call may take (a pull streams; this bounds the wait between its chunks).
ENGINE_TIMEOUT = 120
# Seconds a live health query waits for the engine.
HEALTH_QUERY_TIMEOUT = 10
# Seconds `docker stop` gives an old replica before it is killed.
STOP_TIMEOUT = 10
# Without a health check, a replica counts as healthy once it has run this long without a restart.
RUNNING_GRACE = 1.0
POLL_SECONDS = 0.1
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

_DIGEST = r"sha256:[0-9a-f]{64}"
_PINNED = re.compile(rf"^(?:(?P<name>[^@\s]+)@)?(?P<digest>{_DIGEST})$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*([KkMmGgTt]i?)?[Bb]?$")
_MEMORY_FACTOR = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period"}


@dataclass(frozen=True)
class ContainerJob(Job):
    """A container component on one target: what runs, how many, and how health is judged."""

    # `repo@sha256:<digest>` (or `repo@<image id>` for an image built here and not pushed); "" when
    # the `image` variable is bound to an image component (`bindings`).
    image: str = ""
    replicas: int = 1
    # Container TCP ports; each replica publishes each on an ephemeral port of 127.0.0.1.
    ports: tuple[int, ...] = ()
    command: tuple[str, ...] | None = None
    # The container's environment (`env` of the base class is not used by this kind).
    container_env: dict[str, str] = field(default_factory=dict)
    # Docker style: {test, interval, timeout, retries, start_period}; durations "1s", "500ms" or seconds.
    healthcheck: dict[str, Any] | None = None
    # Seconds `apply` waits for the new replicas to become healthy.
    health_timeout: float = 60.0
    cpu: float | None = None
    # 512 (MiB), "512Mi", "1Gi", "256m".
    memory: str | int | None = None
    # The Docker network the replicas join; None: the engine's default (`bridge`).
    network: str | None = None


class ContainerError(Exception):
    """A problem this kind reports as a failure value."""


class EngineUnavailable(ContainerError):
    pass


# --------------------------------------------------------------------------------------- conversions


def duration_ns(value: Any, what: str = "duration") -> int:
    """Nanoseconds of "1s", "500ms", "1m30s" or a number of seconds."""
    if isinstance(value, bool):
        raise ContainerError(f"{what}: {value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(number + unit for number, unit in parts) != text:
                raise ContainerError(
                    f"{what}: {value!r} is not a duration (for instance 1s, 500ms, 1m30s)"
                ) from None
            return round(sum(float(number) * _DURATION_NS[unit] for number, unit in parts))
    else:
        raise ContainerError(f"{what}: {value!r} is not a duration")
    if seconds < 0:
        raise ContainerError(f"{what}: {value!r} is negative")
    return round(seconds * 10**9)


def docker_healthcheck(spec: dict[str, Any]) -> dict[str, Any]:
    """The health check as the Docker API takes it: `test` as a list, durations in nanoseconds."""
    unknown = sorted(set(spec) - _HEALTHCHECK_KEYS)
    if unknown:
        raise ContainerError(
            f"healthcheck: unknown key(s) {', '.join(unknown)}; known: test, interval, "
            "timeout, retries, start_period"
        )
    test = spec.get("test")
    if isinstance(test, str) and test.strip():
        command = ["CMD-SHELL", test]
    elif isinstance(test, list | tuple) and test and all(isinstance(item, str) for item in test):
        command = list(test) if test[0] in ("CMD", "CMD-SHELL", "NONE") else ["CMD", *test]
    else:
        raise ContainerError("healthcheck.test must be a command: a string (run by the shell) or a list")
    found: dict[str, Any] = {"test": command}
    for key in ("interval", "timeout", "start_period"):
        if spec.get(key) is not None:
            ns = duration_ns(spec[key], f"healthcheck.{key}")
            if 0 < ns < 10**6:
                raise ContainerError(f"healthcheck.{key}: Docker needs at least 1ms, not {spec[key]!r}")
            found[key] = ns
    if spec.get("retries") is not None:
        retries = spec["retries"]
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ContainerError(f"healthcheck.retries: {retries!r} is not a count")
        found["retries"] = retries
    return found


def memory_bytes(value: str | int | None) -> int | None:
    """Bytes of a memory limit: a number is MiB; "512Mi", "1Gi", "256m" (Docker's) are binary units."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ContainerError(f"memory: {value!r} is not a size")
    if isinstance(value, int | float):
        amount, unit = float(value), "m"
    else:
        match = _MEMORY.match(str(value).strip())
        if not match:
            raise ContainerError(f"memory: {value!r} is not a size (for instance 512, 512Mi, 1Gi)")
        amount, unit = float(match.group(1)), (match.group(2) or "m")[0].lower()
    size = round(amount * _MEMORY_FACTOR[unit])
    if size < 6 * 2**20:
        raise ContainerError(f"memory: {value!r} is below Docker's minimum of 6 MiB")
    return size


def container_name(job: ContainerJob, inputs_hash: str, replica: int) -> str:
    raw = f"atmos-{job.deployment}-{job.target}-{job.component.replace('/', '-')}-{inputs_hash[:8]}-{replica}"
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", raw)


def _labels_filter(deployment: str, target: str, component: str) -> dict[str, list[str]]:
    return {
        "label": [
            f"{LABEL_DEPLOYMENT}={deployment}",
            f"{LABEL_TARGET}={target}",
            f"{LABEL_COMPONENT}={component}",
        ]
    }


def _failed(error: str) -> dict[str, Any]:
    return {"status": "failed", "error": error}


# -------------------------------------------------------------------------------------------- engine


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def engine_client(timeout: int = ENGINE_TIMEOUT) -> docker.DockerClient:
    """A client of the engine DOCKER_HOST names (the local socket without it), checked to answer.

    Raises EngineUnavailable with what to do."""
    try:
        import docker
        import docker.errors
    except ImportError as exc:
        raise EngineUnavailable(
            "the docker Python SDK is not installed (`pip install docker`); the container kind needs it"
        ) from exc
    try:
        client = docker.from_env(timeout=timeout, version="auto")
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(
            f"no Docker engine at {docker_host()}: {_reason(exc)}; start one or set DOCKER_HOST"
        ) from exc
    except Exception as exc:  # requests' connection errors, a malformed DOCKER_HOST
        raise EngineUnavailable(
            f"no Docker engine at {docker_host()}: {_reason(exc)}; start one or set DOCKER_HOST"
        ) from exc
    return client


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _containers(client: docker.DockerClient, deployment: str, target: str, component: str) -> list[Container]:
    found = client.containers.list(
        all=True, filters=_labels_filter(deployment, target, component), ignore_removed=True
    )
    return sorted(found, key=_order)


def _order(container: Container) -> tuple[int, str]:
    replica = (container.labels or {}).get(LABEL_REPLICA, "")
    return (int(replica) if replica.isdigit() else 0, container.name)


def _state(container: Container) -> dict[str, Any]:
    return dict(container.attrs.get("State") or {})


def _health_status(container: Container) -> str | None:
    """Docker's health status (starting, healthy, unhealthy); None without a health check."""
    health = _state(container).get("Health")
    return health.get("Status") if isinstance(health, dict) else None


def _is_healthy(container: Container) -> bool:
    state = _state(container)
    if state.get("Status") != "running":
        return False
    status = _health_status(container)
    return status is None or status == "healthy"


def _endpoints(containers: Iterable[Container]) -> dict[str, str]:
    """{name: "127.0.0.1:port"}; with several ports {"name:<container port>": …}."""
    found: dict[str, str] = {}
    for container in containers:
        ports = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
        published = []
        for key, bindings in sorted(ports.items(), key=lambda item: _port_number(item[0])):
            if not key.endswith("/tcp") or not bindings:
                continue
            binding = bindings[0]
            published.append(
                (_port_number(key), f"{binding.get('HostIp') or '127.0.0.1'}:{binding['HostPort']}")
            )
        for port, address in published:
            found[container.name if len(published) == 1 else f"{container.name}:{port}"] = address
    return found


def _port_number(key: str) -> int:
    number = key.split("/", 1)[0]
    return int(number) if number.isdigit() else 0


def _outputs(containers: list[Container], image: str) -> dict[str, Any]:
    return {
        "containers": [c.name for c in containers],
        "endpoints": _endpoints(containers),
        "image": image,
    }


# ---------------------------------------------------------------------------------------------- plan


def image_reference(
    job: ContainerJob, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]]
) -> str:
    """The image the job runs: a bound image component's, the rendered `image` variable, or `image`."""
    bound = job.bindings.get("image")
    if bound:
        built = images.get(bound) or {}
        ref = built.get("image")
        if not ref:
            raise ContainerError(f"the image component {bound!r} bound to `image` has no built image")
        return str(ref)
    if job.image_refs or job.output_refs:
        from atmos_tasks.templates import TemplateError

        try:
            rendered = deferred_vars(job, outputs, images).get("image")
        except TemplateError as exc:
            raise ContainerError(f"vars.{getattr(exc, 'keypath', '') or 'image'}: {exc}") from exc
        if rendered:
            return str(rendered)
    return job.image


def pinned_reference(ref: str) -> re.Match[str]:
    """`ref` split into name and digest; ContainerError unless it is pinned by digest or image id."""
    pinned = _PINNED.match(ref)
    if not pinned:
        raise ContainerError(
            f"image {ref!r} is not pinned by digest: use <repository>@sha256:<digest> (or an image id), "
            "so that what is planned is what runs"
        )
    return pinned


def _resolve_image(client: docker.DockerClient, ref: str) -> Any:
    """The local image `ref` names, pulled when it is not here yet."""
    import docker.errors

    pinned = pinned_reference(ref)
    try:
        return client.images.get(ref)
    except (docker.errors.ImageNotFound, docker.errors.NullResource):
        pass
    except docker.errors.APIError as exc:
        if exc.status_code != 404:
            raise
    # An image built here and never pushed is named <repository>@<image id>.
    try:
        return client.images.get(pinned.group("digest"))
    except docker.errors.ImageNotFound:
        pass
    if not pinned.group("name"):
        raise ContainerError(f"no image {ref} on the engine at {docker_host()}")
    try:
        return client.images.pull(ref)
    except docker.errors.APIError as exc:
        raise ContainerError(f"cannot pull {ref}: {_reason(exc)}") from exc


def container_spec(job: ContainerJob, image_id: str) -> dict[str, Any]:
    """What the replicas are made from, normalised: its hash is the component's inputs hash."""
    if job.replicas < 1:
        raise ContainerError(f"replicas must be at least 1, not {job.replicas}")
    for port in job.ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ContainerError(f"ports: {port!r} is not a TCP port")
    if job.cpu is not None and (isinstance(job.cpu, bool) or not job.cpu > 0):
        raise ContainerError(f"cpu: {job.cpu!r} is not a positive number of CPUs")
    if job.health_timeout <= 0:
        raise ContainerError(f"health_timeout: {job.health_timeout!r} is not a positive number of seconds")
    return {
        "image": image_id,
        "replicas": job.replicas,
        "ports": sorted(set(job.ports)),
        "command": list(job.command) if job.command is not None else None,
        "env": dict(sorted(job.container_env.items())),
        "healthcheck": docker_healthcheck(job.healthcheck) if job.healthcheck is not None else None,
        "cpu": job.cpu,
        "memory": memory_bytes(job.memory),
        "network": job.network,
    }


def _check_network(client: docker.DockerClient, job: ContainerJob) -> None:
    """The job's network exists, and ports are published only from a bridge-like network: say so
    before anything starts."""
    import docker.errors

    name = job.network or "bridge"
    if job.ports and (name in ("host", "none") or name.startswith("container:")):
        raise ContainerError(f"ports {_ports(job)} cannot be published from network {name!r}")
    if not (job.network or job.ports) or name in ("host", "none"):
        return
    try:
        client.networks.get(name)
    except docker.errors.NotFound:
        if job.network:
            raise ContainerError(f"the engine at {docker_host()} has no network {name!r}") from None
        raise ContainerError(
            f"the engine at {docker_host()} has no default `bridge` network (dockerd --bridge=none), so "
            f"ports {_ports(job)} cannot be published; name a bridge network for the component"
        ) from None


def _ports(job: ContainerJob) -> str:
    return ", ".join(str(p) for p in job.ports)


def _matches(containers: list[Container], inputs_hash: str, replicas: int) -> bool:
    return (
        len(containers) == replicas
        and all((c.labels or {}).get(LABEL_INPUTS) == inputs_hash for c in containers)
        and all(_state(c).get("Status") == "running" for c in containers)
    )


def _adoptable(job: ContainerJob, containers: list[Container], inputs_hash: str) -> list[Container]:
    """Running replicas of these very inputs under their own names (a run that stopped half-way)."""
    names = {container_name(job, inputs_hash, i) for i in range(1, job.replicas + 1)}
    return [
        c
        for c in containers
        if c.name in names
        and (c.labels or {}).get(LABEL_INPUTS) == inputs_hash
        and _state(c).get("Status") == "running"
        and _health_status(c) != "unhealthy"
    ]


def plan(
    job: ContainerJob, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Resolve the image and compare the inputs with what runs. Failures are values."""
    import docker.errors

    try:
        ref = image_reference(job, outputs, images)
        if not ref:
            return _failed(
                f"{job.component}: no image: set `image` (pinned by digest) or bind an image component"
            )
        pinned_reference(ref)
        client = engine_client()
    except ContainerError as exc:
        return _failed(f"{job.component}: {exc}")
    try:
        image = _resolve_image(client, ref)
        spec = container_spec(job, image.id)
        _check_network(client, job)
        inputs_hash = hash_json(spec)
        running = _containers(client, job.deployment, job.target, job.component)
    except ContainerError as exc:
        return _failed(f"{job.component}: {exc}")
    except docker.errors.DockerException as exc:
        return _failed(f"{job.component}: the engine at {docker_host()} refused: {_reason(exc)}")
    finally:
        client.close()
    has_changes = not _matches(running, inputs_hash, job.replicas)
    kept = len(_adoptable(job, running, inputs_hash)) if has_changes else len(running)
    return {
        "status": "planned",
        "has_changes": has_changes,
        "inputs_hash": inputs_hash,
        "image": ref,
        "image_id": image.id,
        "plan_id": uuid.uuid4().hex,
        "changes": {
            "add": job.replicas - kept if has_changes else 0,
            "destroy": len(running) - kept if has_changes else 0,
        },
    }


# --------------------------------------------------------------------------------------------- apply


def apply(job: ContainerJob, plan: dict[str, Any]) -> dict[str, Any]:
    """Roll the replicas to the plan: new ones healthy first, then the old ones go. Failures are values."""
    import docker.errors

    if plan.get("status") != "planned":
        return _failed(plan.get("error") or f"{job.component}: nothing was planned")
    inputs_hash = str(plan["inputs_hash"])
    try:
        client = engine_client()
    except ContainerError as exc:
        return _failed(f"{job.component}: {exc}")
    try:
        current = _containers(client, job.deployment, job.target, job.component)
        if _matches(current, inputs_hash, job.replicas):
            image = (current[0].labels or {}).get(LABEL_DIGEST, plan.get("image", ""))
            return {"status": "applied", "outputs": _outputs(current, image), "inputs_hash": inputs_hash}
        return _roll(client, job, plan, current)
    except ContainerError as exc:
        return _failed(f"{job.component}: {exc}")
    except docker.errors.DockerException as exc:
        return _failed(f"{job.component}: the engine at {docker_host()} refused: {_reason(exc)}")
    finally:
        client.close()


def _create_kwargs(job: ContainerJob, plan: dict[str, Any], replica: int) -> dict[str, Any]:
    inputs_hash = str(plan["inputs_hash"])
    spec = container_spec(job, str(plan["image_id"]))
    kwargs: dict[str, Any] = {
        "image": plan["image_id"],
        "name": container_name(job, inputs_hash, replica),
        "detach": True,
        "environment": spec["env"],
        "labels": {
            LABEL_DEPLOYMENT: job.deployment,
            LABEL_TARGET: job.target,
            LABEL_COMPONENT: job.component,
            LABEL_COMMIT: str((job.template_context.get("git") or {}).get("sha", "")),
            LABEL_DIGEST: str(plan.get("image", "")),
            LABEL_INPUTS: inputs_hash,
            LABEL_REPLICA: str(replica),
        },
        "restart_policy": {"Name": "unless-stopped"},
        # Docker's init as PID 1: a server that ignores SIGTERM as PID 1 (busybox httpd does) still
        # stops at once instead of after the stop timeout, and zombies are reaped.
        "init": True,
        "ports": {f"{port}/tcp": ("127.0.0.1", None) for port in spec["ports"]},
    }
    if spec["command"] is not None:
        kwargs["command"] = spec["command"]
    if spec["healthcheck"] is not None:
        kwargs["healthcheck"] = spec["healthcheck"]
    if spec["cpu"] is not None:
        kwargs["nano_cpus"] = round(spec["cpu"] * 10**9)
    if spec["memory"] is not None:
        kwargs["mem_limit"] = spec["memory"]
    if job.network:
        kwargs["network"] = job.network
    return kwargs


def _roll(
    client: docker.DockerClient, job: ContainerJob, plan: dict[str, Any], current: list[Container]
) -> dict[str, Any]:
    import docker.errors

    from atmos_tasks import cancel

    inputs_hash = str(plan["inputs_hash"])
    names = [container_name(job, inputs_hash, i) for i in range(1, job.replicas + 1)]
    adopted = {c.name: c for c in _adoptable(job, current, inputs_hash)}
    to_start = [(i, name) for i, name in enumerate(names, start=1) if name not in adopted]
    if cancel.requested():
        return _failed(f"cancelled ({cancel.requested()}) before {job.component}'s replicas started")

    # A container under a new replica's name is left from a run that stopped half-way: it goes first.
    for _, name in to_start:
        try:
            stale = client.containers.get(name)
        except docker.errors.NotFound:
            continue
        labels = stale.labels or {}
        owner = (labels.get(LABEL_DEPLOYMENT), labels.get(LABEL_TARGET), labels.get(LABEL_COMPONENT))
        if owner != (job.deployment, job.target, job.component):
            raise ContainerError(f"a container named {name} exists that is not one of this component's")
        stale.remove(force=True)

    created: list[Container] = []

    def start(replica: int) -> Container:
        container = client.containers.create(**_create_kwargs(job, plan, replica))
        created.append(container)
        container.start()
        return container

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(len(to_start), 4))) as pool:
            started = list(pool.map(start, [i for i, _ in to_start]))
    except (docker.errors.DockerException, ContainerError) as exc:
        _remove(created)
        return _failed(f"{job.component}: a new replica could not start: {_reason(exc)}")

    timeout = job.health_timeout if job.timeout is None else min(job.health_timeout, job.timeout)
    problem = _wait_healthy(started, timeout, job.component)
    if problem is not None:
        _remove(created)
        return _failed(problem)

    # Every new replica is healthy: only now do the old ones go, one at a time.
    keep = set(names)
    warnings = []
    for old in current:
        if old.name in keep:
            continue
        try:
            old.stop(timeout=STOP_TIMEOUT)
            old.remove(force=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.DockerException as exc:
            warnings.append(f"the old replica {old.name} could not be removed: {_reason(exc)}")
    final = [c for c in _containers(client, job.deployment, job.target, job.component) if c.name in keep]
    result: dict[str, Any] = {
        "status": "applied",
        "outputs": _outputs(final, str(plan.get("image", ""))),
        "inputs_hash": inputs_hash,
    }
    if warnings:
        result["warnings"] = warnings
    return result


def _wait_healthy(started: list[Container], timeout: float, component: str) -> str | None:
    """None once every container is healthy; otherwise why not (timeout, exit, cancellation)."""
    import docker.errors

    from atmos_tasks import cancel

    deadline = time.monotonic() + timeout
    running_since: dict[str, float] = {}
    while True:
        now = time.monotonic()
        waiting: list[Container] = []
        for container in started:
            try:
                container.reload()
            except docker.errors.NotFound:
                return f"{component}: the new replica {container.name} was removed while it started"
            state = _state(container)
            # Docker keeps the restart count beside State, not in it.
            restarts = int(container.attrs.get("RestartCount") or state.get("RestartCount") or 0)
            if state.get("Status") in ("exited", "dead", "restarting") or restarts:
                # A replica caught running again after a restart no longer shows its exit code.
                stopped = state.get("Status") in ("exited", "dead", "restarting")
                how = f"exited (code {state.get('ExitCode')})" if stopped else "exited and restarted"
                return (
                    f"{component}: the new replica {container.name} {how} "
                    f"before it became healthy: {_last_log_line(container)}"
                )
            status = _health_status(container)
            if state.get("Status") == "running" and status is None:
                since = running_since.setdefault(container.id, now)
                if now - since >= RUNNING_GRACE:
                    continue
            elif status == "healthy":
                continue
            waiting.append(container)
        if not waiting:
            return None
        if cancel.requested():
            return (
                f"cancelled ({cancel.requested()}) while {len(waiting)} of {len(started)} new replicas of "
                f"{component} were not healthy yet; the new replicas were removed, the old ones kept"
            )
        if now >= deadline:
            return (
                f"{component}: {len(waiting)} of {len(started)} new replicas did not become healthy "
                f"within {timeout:g}s: {_last_health_line(waiting[-1])}"
            )
        time.sleep(POLL_SECONDS)


def _last_health_line(container: Container) -> str:
    health = _state(container).get("Health")
    if not isinstance(health, dict):
        return f"{container.name} is {_state(container).get('Status', 'not running')}"
    log = health.get("Log") or []
    if not log:
        return f"{container.name}: no health check has finished yet"
    last = log[-1]
    lines = [line for line in str(last.get("Output") or "").splitlines() if line.strip()]
    said = lines[-1].strip() if lines else "(no output)"
    return f"{container.name}: health check exited {last.get('ExitCode')}: {said}"


def _last_log_line(container: Container) -> str:
    try:
        text = container.logs(tail=5).decode(errors="replace")
    except Exception:  # logs are a courtesy in an error message
        return "(no logs)"
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


def _remove(containers: Iterable[Container]) -> list[str]:
    import docker.errors

    removed = []
    for container in containers:
        try:
            container.remove(force=True)
            removed.append(container.name)
        except docker.errors.NotFound:
            removed.append(container.name)
        except docker.errors.DockerException:
            continue
    return removed


# ----------------------------------------------------------------------------------- reading, removing


def deployed_outputs(job: ContainerJob) -> dict[str, Any] | None:
    """The outputs of the running replicas; None when none runs (or the engine cannot be reached)."""
    import docker.errors

    try:
        client = engine_client()
    except ContainerError:
        return None
    try:
        running = [
            c
            for c in _containers(client, job.deployment, job.target, job.component)
            if _state(c).get("Status") == "running"
        ]
    except docker.errors.DockerException:
        return None
    finally:
        client.close()
    if not running:
        return None
    return _outputs(running, (running[-1].labels or {}).get(LABEL_DIGEST, ""))


def destroy(job: ContainerJob) -> dict[str, Any]:
    """Stop and remove every replica of the component."""
    import docker.errors

    try:
        client = engine_client()
    except ContainerError as exc:
        return _failed(f"{job.component}: {exc}")
    removed: list[str] = []
    try:
        for container in _containers(client, job.deployment, job.target, job.component):
            try:
                container.stop(timeout=STOP_TIMEOUT)
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
            removed.append(container.name)
    except docker.errors.DockerException as exc:
        return _failed(
            f"{job.component}: removing its containers failed: {_reason(exc)} (removed: {removed})"
        )
    finally:
        client.close()
    return {"status": "destroyed", "removed": removed}


def health(deployment: str, target: str, component: str) -> Health | None:
    """Live: how many of the component's containers Docker reports healthy, and where they answer."""
    import docker.errors

    try:
        client = engine_client(timeout=HEALTH_QUERY_TIMEOUT)
    except ContainerError as exc:
        return Health("unknown", detail=str(exc))
    try:
        containers = _containers(client, deployment, target, component)
    except docker.errors.DockerException as exc:
        return Health("unknown", detail=f"the engine at {docker_host()} refused: {_reason(exc)}")
    finally:
        client.close()
    total = len(containers)
    if not total:
        return Health("unknown", detail="not running")
    healthy = [c for c in containers if _is_healthy(c)]
    sick = [c for c in containers if c not in healthy]
    detail = "; ".join(f"{c.name}: {_health_status(c) or _state(c).get('Status', 'unknown')}" for c in sick)
    return Health(
        "healthy" if not sick else "unhealthy",
        healthy=len(healthy),
        total=total,
        detail=detail,
        endpoints=_endpoints(c for c in containers if _state(c).get("Status") == "running"),
    )


# ===================================================================================== compile time
# The manifest alone configures a container component (no Atmos stacks):
#
#   vars.image          a reference pinned by digest, or "{{ nixpack.<name>.image }}"; or none, and the
#                       image component whose labels the container's labels include is bound
#   vars.replicas       else the target context's `replicas`, else 1 (cpu and memory alike)
#   vars.ports, vars.command, vars.healthcheck, vars.health_timeout, vars.network
#   env:                the containers' environment

SETTINGS = (
    "image",
    "replicas",
    "ports",
    "command",
    "healthcheck",
    "health_timeout",
    "cpu",
    "memory",
    "network",
)
FROM_CONTEXT = ("replicas", "cpu", "memory")


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def cpus(value: Any) -> float | None:
    """A target's cpu (SPEC §3 context): 256 (ECS units, 1024 a CPU), 0.5 or "500m" (Kubernetes)."""
    if value is None:
        return None
    if isinstance(value, str) and value.endswith("m"):
        return float(value[:-1]) / 1000
    number = float(value)
    return number / 1024 if number >= 16 else number


def _checked(variables: dict[str, Any]) -> tuple[str, str, str] | None:
    """The first problem of the rendered settings: (key, message, hint); None when they hold."""
    replicas = _whole(variables.get("replicas", 1))
    if replicas is None or replicas < 0:
        return "replicas", f"must be a whole number, not {variables.get('replicas')!r}", "e.g. replicas: 2"
    ports = variables.get("ports", [])
    if not isinstance(ports, list) or any(not 0 < (_whole(p) or 0) < 65536 for p in ports):
        return "ports", f"must be a list of TCP ports, not {ports!r}", "e.g. ports: [8080]"
    command = variables.get("command")
    if command is not None and not (
        isinstance(command, str) or (isinstance(command, list) and all(isinstance(c, str) for c in command))
    ):
        return (
            "command",
            "must be a string or a list of strings",
            'e.g. command: ["python3", "-m", "http.server"]',
        )
    try:
        if variables.get("healthcheck") is not None:
            if not isinstance(variables["healthcheck"], dict):
                raise ContainerError("healthcheck must be a mapping")
            docker_healthcheck(variables["healthcheck"])
        if "health_timeout" in variables:
            duration_ns(variables["health_timeout"], "health_timeout")
        memory_bytes(variables.get("memory"))
        cpus(variables.get("cpu"))
    except (ContainerError, ValueError) as err:
        key = str(err).split(":", 1)[0].split(".", 1)[0].split(" ", 1)[0]
        key = key if key in SETTINGS else "healthcheck"
        return key, str(err), "e.g. healthcheck: {test: [CMD, …], interval: 1s, retries: 3}, memory: 512Mi"
    return None


def _pinned(image: Any) -> bool:
    return isinstance(image, str) and "@" in image and _PINNED.match(image) is not None


def resolve_component(rc: ResolveContext, ref: ComponentRef) -> ResolvedComponent:
    from atmos_tasks.errors import AtmosError, Problem
    from atmos_tasks.resolve import (
        ResolvedComponent,
        binding,
        check_sensitive,
        manifest_sections,
        referenced,
        render_sections,
    )

    manifest = rc.manifest
    base = manifest.component_keypath(ref)
    component = manifest.components()[ref]
    where = manifest.locate(base, at_key=True)

    def problem(key: str, message: str, hint: str) -> AtmosError:
        keypath = [*base, "vars", key] if key in component.vars else [*base, "vars"]
        return AtmosError([Problem(f"{ref}: vars.{key} {message}", manifest.locate(keypath), hint)])

    unknown = sorted(set(component.vars) - set(SETTINGS))
    if unknown:
        raise problem(unknown[0], "is not a setting of a container", f"use {', '.join(SETTINGS)}")
    sections = manifest_sections(manifest, ref)
    outputs, images = referenced(manifest, ref, where, list(sections.values()))
    rendered = render_sections(rc.config, ref, where, sections, rc.context, outputs, images)
    check_sensitive(ref, rendered["settings"], manifest.locate([*base, "settings"]))
    variables = rendered["vars"]
    bindings: dict[str, str] = {}
    if "image" not in component.vars:
        bound = binding(manifest, ref, component.metadata.labels, variables, rc.images, where)
        if bound is None:
            raise problem(
                "image",
                "is missing",
                'write image: <repository>@sha256:<digest> or image: "{{ nixpack.<name>.image }}", or give '
                "the container the labels of an image component of this deployment",
            )
        bindings["image"] = bound.name
        images = sorted(set(images) | {bound})
        variables["image"] = f"(image of {bound.name})"
    elif not images and not outputs and not _pinned(variables["image"]):
        raise problem(
            "image",
            f"{variables['image']!r} is not pinned by digest",
            "write <repository>@sha256:<digest> (what runs must not change under the same name), or bind an "
            'image component: image: "{{ nixpack.<name>.image }}"',
        )
    context = dict(manifest.model.targets[rc.target].context)
    for key in FROM_CONTEXT:
        if key not in variables and key in context:
            variables[key] = context[key]
    found = _checked(variables)
    if found is not None:
        raise problem(*found)
    variables["replicas"] = _whole(variables.get("replicas", 1))
    variables["ports"] = [_whole(p) for p in variables.get("ports", [])]
    return ResolvedComponent(
        deployment=manifest.name,
        target=rc.target,
        ref=ref,
        vars=variables,
        settings=rendered["settings"],
        env={k: str(v) for k, v in rendered["env"].items()},
        metadata=component.metadata.model_dump(),
        depends_on=sorted(set(manifest.dependencies(ref)) | set(outputs) | set(images)),
        vars_template=sections["vars"].value if (outputs or images) else {},
        output_refs=outputs,
        image_refs=images,
        bindings=bindings,
        provenance={name: sourced.prov for name, sourced in sections.items()},
    )


def make_job(cc: CompileContext, component: ResolvedComponent) -> ContainerJob:
    import shlex

    from atmos_tasks.manifest import duration_seconds

    config, resolved = cc.workspace.config, cc.resolved
    variables = component.vars
    workdir = workdir_of(config, resolved.deployment, resolved.target, component.name)
    command = variables.get("command")
    check = variables.get("healthcheck")
    timeout = component.metadata.get("timeout")
    return ContainerJob(
        kind=component.ref.type,
        deployment=resolved.deployment,
        target=resolved.target,
        component=component.name,
        root=str(config.work_root_path),
        workdir=workdir,
        vars=variables,
        env=component.env,
        static_key=hash_json({"vars": variables, "env": component.env, "bindings": component.bindings}),
        vars_template=component.vars_template,
        output_refs=tuple(r.name for r in component.output_refs),
        image_refs=tuple(r.name for r in component.image_refs),
        bindings=dict(component.bindings),
        # Always: the containers' labels name the commit they run.
        template_context=resolved.template_context,
        image="" if component.deferred else str(variables.get("image") or ""),
        replicas=int(variables.get("replicas", 1)),
        ports=tuple(int(p) for p in variables.get("ports", [])),
        command=(tuple(shlex.split(command)) if isinstance(command, str) else tuple(command))
        if command
        else None,
        container_env=dict(component.env),
        healthcheck=dict(check) if isinstance(check, dict) else None,
        health_timeout=duration_ns(variables.get("health_timeout", 60)) / 10**9,
        cpu=cpus(variables.get("cpu")),
        memory=variables.get("memory"),
        network=str(variables["network"]) if variables.get("network") else None,
        timeout=float(duration_seconds(timeout)) if isinstance(timeout, str) and timeout else None,
    )


# ============================================================================================= KIND


def _masked(job: ContainerJob, values: dict[str, Any]) -> dict[str, Any]:
    """The values with what `settings.sensitive` marks (`env.NAME`, vars) masked in any error: a
    replica's last log line may print its environment."""
    from atmos_tasks import secrets

    secrets.add(secrets.sensitive_values(job.sensitive, job.vars, job.container_env))
    if isinstance(values.get("error"), str):
        values = {**values, "error": secrets.mask(values["error"])}
    return values


class ContainerKind(Kind):
    name = "container"
    role = "deploy"
    summary = "long-running containers on a Docker engine, rolled with health checks"

    def resolve(self, rc: ResolveContext, ref: ComponentRef) -> ResolvedComponent | None:
        return resolve_component(rc, ref)

    def job(self, cc: CompileContext, component: ResolvedComponent) -> ContainerJob:
        return make_job(cc, component)

    def plan(
        self, job: Job, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        assert isinstance(job, ContainerJob)
        return _masked(job, plan(job, outputs, images))

    def apply(self, job: Job, plan: dict[str, Any]) -> dict[str, Any]:
        assert isinstance(job, ContainerJob)
        return _masked(job, apply(job, plan))

    def deployed_outputs(self, job: Job) -> dict[str, Any] | None:
        assert isinstance(job, ContainerJob)
        return deployed_outputs(job)

    def destroy(
        self, job: Job, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        assert isinstance(job, ContainerJob)
        return destroy(job)

    def health(self, deployment: str, target: str, component: str) -> Health | None:
        return health(deployment, target, component)


KIND = ContainerKind()
