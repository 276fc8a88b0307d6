"""A real Docker engine, a real registry and offline base images for the test suite.

Nothing here pulls from Docker Hub (this machine and CI reach only package registries). The pieces:

* ``docker_engine``: a private ``dockerd`` (Debian's ``docker.io``) listening on a unix socket in a
  directory shared by every pytest-xdist worker of a run and by later runs:
  ``/tmp/atmos-tasks-docker-<uid>`` (override: ``ATMOS_TASKS_DOCKER_DIR``). A file lock makes exactly
  one process start it; everyone else reuses it while ``/_ping`` answers. It is left running after the
  run, emptied of what the run built (base images kept; two runs at once on one machine should each
  set their own ``ATMOS_TASKS_DOCKER_DIR``), so the next run reuses it in milliseconds — except under
  CI (``CI`` set), where the xdist controller stops it at the end of the session so no daemon
  outlives the job. ``ATMOS_TASKS_DOCKER_KEEP=1``
  or ``0`` overrides that choice. ``ATMOS_TASKS_DOCKER_HOST`` points the fixtures at an engine you
  already run instead (it must share this machine's loopback, for the registry).
* ``registry``: Debian's ``docker-registry`` (distribution 2.8) on ``127.0.0.1:<free port>``, plain HTTP,
  filesystem storage in the shared directory, deletes enabled. Docker trusts 127.0.0.0/8 registries
  over HTTP by default, so no ``--insecure-registry`` is needed.
* ``base_image``: ``atmos-tasks/busybox:test``, a ~2 MB image imported from a tarball of Debian's
  static busybox with a symlink per applet, built once per engine and pushed to the registry.
* ``python_base_image``: ``atmos-tasks/python:test``, a Debian minbase rootfs with ``python3`` made by
  ``debootstrap`` from the same Debian mirror apt uses (~50 s once per engine, ~117 MB), pushed too.

Wiring: ``pytest_plugins = ["tests.docker_env"]`` in tests/conftest.py (preferred: that also registers the
CI stop hook in the xdist controller), or ``from tests.docker_env import *`` there (exports the fixtures
and the ``pytest_sessionfinish`` hook; merge it with any hook of the same name the conftest defines).
Subprocesses reach the engine with ``env={**os.environ, **docker_engine.env}``; SDK code with
``docker_client(docker_engine)`` or ``docker.from_env()`` under that env (both negotiate API 1.41).

Stop everything by hand with ``python -m tests.docker_env stop`` (``status`` and ``start`` exist too;
``start`` prints ``export DOCKER_HOST=…`` lines for a shell).

Install the system side with ``.ci/docker-setup.sh`` (root): ``docker.io docker-registry busybox-static
debootstrap``; the ``docker`` Python SDK comes from PyPI. When something is missing the fixtures
fail (never skip) with the command that installs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from filelock import FileLock

if TYPE_CHECKING:
    import docker

__all__ = [
    "BUSYBOX_IMAGE",
    "INSTALL_HINT",
    "NO_PROXY_OPENER",
    "PYTHON_IMAGE",
    "BaseImage",
    "DockerEngine",
    "DockerEnvError",
    "Registry",
    "base_image",
    "docker_client",
    "docker_engine",
    "docker_env_dir",
    "docker_env_run_id",
    "docker_sdk",
    "engine_usable",
    "ensure_base_image",
    "ensure_engine",
    "ensure_python_image",
    "ensure_registry",
    "push_image",
    "pytest_sessionfinish",
    "python_base_image",
    "read_starts",
    "registry",
    "stop_environment",
]

INSTALL_HINT = (
    "Install the test Docker environment as root with `.ci/docker-setup.sh`, i.e. "
    "`apt-get update && apt-get install -y docker.io docker-registry busybox-static debootstrap`, "
    "and the Python SDK with `pip install docker`."
)

BUSYBOX_IMAGE = "atmos-tasks/busybox:test"
PYTHON_IMAGE = "atmos-tasks/python:test"
_T = TypeVar("_T")

# Bumped whenever an image recipe changes, so images cached in a long-lived engine are rebuilt.
RECIPE_LABEL = "org.atmos-tasks.recipe"
_BUSYBOX_RECIPE_VERSION = "1"
_PYTHON_RECIPE_VERSION = "1"

ENGINE_START_TIMEOUT = 60.0
REGISTRY_START_TIMEOUT = 20.0
# A first python image build takes ~50 s here; other workers wait on the lock meanwhile.
IMAGE_LOCK_TIMEOUT = 900.0
STOP_TIMEOUT = 30.0
# A live engine that does not answer /_ping for this long is taken as wedged and replaced. Generous, so that
# one busy with other workers' vfs copies is never killed under them.
WEDGED_AFTER = 20.0
# Daemon logs are appended to across restarts; past this size the old one is moved to <name>.1.
LOG_ROTATE_BYTES = 20 * 1024 * 1024

# Flags, and why each is there:
#   --storage-driver           overlay2 where the kernel mounts an overlay on the data root's filesystem
#                              (ext4, xfs: layers are shared, a build step costs what it changes), else vfs,
#                              which works on any filesystem (an overlay root, tmpfs) but copies every layer
#                              whole: a python image's build took 40 s with it, 10 s with overlay2.
#   --iptables=false, --ip-forward=false, --ip-masq=false
#                              never touch the host's firewall or sysctls (no NAT is wanted or possible).
#   --bridge=none              no docker0 bridge: containers get only loopback (there is no internet anyway).
#   --userland-proxy=false     no docker-proxy processes (no published ports without a bridge anyway).
#   --config-file <dir>/daemon.json
#                              an empty config, so a machine's /etc/docker/daemon.json (e.g. "hosts") cannot
#                              conflict with our flags.
#   --log-level warn           the info level logs every gRPC state change; errors are still in dockerd.log.
# dockerd supervises its own containerd under --exec-root (or reuses a system one at
# /run/containerd/containerd.sock); the cgroupfs driver is the default without systemd and works with the
# hybrid cgroup v1 hierarchy here, so no --exec-opt is needed.
_DOCKERD_FLAGS = (
    "--iptables=false",
    "--ip-forward=false",
    "--ip-masq=false",
    "--bridge=none",
    "--userland-proxy=false",
    "--log-level=warn",
)

# AF_UNIX socket paths are limited to 108 bytes (sun_path), NUL included.
_MAX_SOCKET_PATH = 107


class DockerEnvError(RuntimeError):
    """The test Docker environment could not be provided; the message says why and what to do."""


@dataclass(frozen=True)
class DockerEngine:
    """A running engine. Pass ``env`` to subprocesses (``{**os.environ, **engine.env}``)."""

    host: str  # e.g. unix:///tmp/atmos-tasks-docker-0/docker.sock
    env: dict[str, str]  # DOCKER_HOST, DOCKER_BUILDKIT=0, DOCKER_CONFIG (an empty client config)
    base_dir: Path
    pid: int | None  # None for an external engine (ATMOS_TASKS_DOCKER_HOST)
    started_here: bool  # this process started it (False: reused a running one)
    startup_seconds: float  # time this process spent making it available
    cli: str | None  # the docker CLI on PATH, if any (any client >= API 1.41 works)


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:<port>, to prefix repositories with
    port: int
    url: str  # http://127.0.0.1:<port>
    pid: int
    data_dir: Path


@dataclass(frozen=True)
class BaseImage:
    ref: str  # local tag, e.g. atmos-tasks/busybox:test (usable in FROM)
    id: str  # sha256:… image ID (config digest)
    registry_ref: str  # 127.0.0.1:<port>/atmos-tasks/busybox:test
    digest: str  # sha256:… manifest digest in the registry
    size: int  # bytes, as the engine reports it
    build_seconds: float  # 0.0 when an up-to-date image was reused

    @property
    def repo_digest(self) -> str:
        return f"{self.registry_ref.rsplit(':', 1)[0]}@{self.digest}"


@dataclass
class _Timer:
    start: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return time.monotonic() - self.start


# ---------------------------------------------------------------------------------------------- paths


def docker_env_dir() -> Path:
    """The directory shared by all workers and runs of this user, created private (0700)."""
    path = Path(os.environ.get("ATMOS_TASKS_DOCKER_DIR") or f"/tmp/atmos-tasks-docker-{os.getuid()}")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    # A fixed name in /tmp could have been planted by another user: refuse to run a root daemon there.
    st = path.lstat()
    if not path.is_dir() or path.is_symlink() or st.st_uid != os.getuid():
        raise DockerEnvError(
            f"{path} is not a directory owned by uid {os.getuid()}; remove it or set "
            "ATMOS_TASKS_DOCKER_DIR to another directory"
        )
    return path


def _find_binary(*names: str) -> str | None:
    # /usr/sbin is not on a non-root PATH, and dockerd lives there.
    extra = os.pathsep.join(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])
    search = os.pathsep.join([os.environ.get("PATH", ""), extra])
    for name in names:
        found = shutil.which(name, path=search)
        if found:
            return found
    return None


# ------------------------------------------------------------------------------------------ processes


def _process_cmdline(pid: int) -> str | None:
    """The command line of a live (non-zombie) process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # The state follows the parenthesised command name, which may itself hold spaces or parentheses.
        if stat[stat.rindex(")") + 2] in "ZX":
            return None
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return None


def _owned_pid(pid_file: Path, must_contain: str) -> int | None:
    """The pid in pid_file if that process is alive and is ours (its command line names our files).

    The check guards against pid reuse: a stale pid file must never make us signal a stranger.
    """
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    cmdline = _process_cmdline(pid)
    return pid if cmdline is not None and must_contain in cmdline else None


def _spawn_daemon(argv: list[str], log_file: Path) -> int:
    """Start argv detached (own session, stdio on log_file) and return its pid.

    A throwaway `sh` backgrounds the daemon and exits, so the daemon is reparented to init at once: it is
    never a zombie child of a pytest worker, triggers no "subprocess still running" ResourceWarning, and
    holds no pipe of ours that could keep a CI job waiting.
    """
    script = '"$@" >>"$0" 2>&1 </dev/null & echo $!'
    proc = subprocess.run(
        ["sh", "-c", script, str(log_file), *argv],
        capture_output=True,
        text=True,
        start_new_session=True,
        check=True,
        timeout=30,
    )
    return int(proc.stdout.strip())


def _terminate(pid: int, must_contain: str, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, wait, then SIGKILL — only if pid is still the process we mean."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        cmdline = _process_cmdline(pid)
        if cmdline is None or must_contain not in cmdline:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _process_cmdline(pid) is None:
                return
            time.sleep(0.1)


def _rotate_log(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > LOG_ROTATE_BYTES:
            path.replace(path.with_name(path.name + ".1"))


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _record_start(base: Path, what: str, pid: int, run_id: str, seconds: float) -> None:
    """Append to starts.jsonl: lets tests (and people) see how often daemons are really started."""
    entry = {"what": what, "pid": pid, "run": run_id, "time": time.time(), "seconds": round(seconds, 3)}
    with (base / "starts.jsonl").open("a") as fh:
        fh.write(json.dumps(entry) + "\n")


def read_starts(base: Path) -> list[dict[str, Any]]:
    try:
        text = (base / "starts.jsonl").read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------- engine


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        self.sock = sock


def engine_usable(host: str, timeout: float = 3.0) -> bool:
    """True if the engine at host (unix://… or tcp://…) answers GET /_ping with OK.

    Uses only the standard library, so it works before the docker SDK is installed.
    """
    try:
        conn: http.client.HTTPConnection
        if host.startswith("unix://"):
            conn = _UnixHTTPConnection(host[len("unix://") :], timeout)
        elif host.startswith(("tcp://", "http://")):
            conn = http.client.HTTPConnection(host.split("://", 1)[1], timeout=timeout)
        else:
            return False
        try:
            conn.request("GET", "/_ping")
            resp = conn.getresponse()
            return resp.status == 200 and resp.read().strip() == b"OK"
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return False


def _wait_usable(host: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not engine_usable(host, timeout=min(3.0, timeout)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _client_env(base: Path, host: str) -> dict[str, str]:
    config_dir = base / "client-config"
    config_dir.mkdir(exist_ok=True)
    config = config_dir / "config.json"
    if not config.exists():
        # An empty client config: no credential helper of the developer's (e.g. "desktop") gets in the way.
        config.write_text("{}\n")
    # DOCKER_BUILDKIT=0: the engine's BuildKit runs RUN steps on the default bridge network, which
    # --bridge=none removes ("network bridge not found"); the classic builder (what the docker SDK uses)
    # works. A newer CLI without the buildx plugin falls back to the classic builder anyway.
    return {"DOCKER_HOST": host, "DOCKER_BUILDKIT": "0", "DOCKER_CONFIG": str(config_dir)}


def _external_engine(host: str, base: Path) -> DockerEngine:
    timer = _Timer()
    if not engine_usable(host, timeout=10):
        raise DockerEnvError(
            f"ATMOS_TASKS_DOCKER_HOST={host} does not answer /_ping. Unset it to let the "
            "tests start their own engine, or start that engine."
        )
    return _engine(base, host, None, started_here=False, seconds=timer.elapsed())


def _engine(base: Path, host: str, pid: int | None, started_here: bool, seconds: float) -> DockerEngine:
    env = _client_env(base, host)
    cli = _find_binary("docker")
    return DockerEngine(host, env, base, pid, started_here=started_here, startup_seconds=seconds, cli=cli)


def storage_driver(base: Path) -> str:
    """overlay2 when an overlay mounts under `base` (what dockerd's overlay2 needs), else vfs."""
    import subprocess
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="overlay-probe-", dir=base))
    parts = {name: scratch / name for name in ("lower", "upper", "work", "merged")}
    try:
        for folder in parts.values():
            folder.mkdir()
        (parts["lower"] / "probe").write_text("lower\n")
        options = f"lowerdir={parts['lower']},upperdir={parts['upper']},workdir={parts['work']}"
        mounted = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(parts["merged"])],
            capture_output=True,
            timeout=10,
            check=False,
        )
        if mounted.returncode != 0:
            return "vfs"
        try:
            (parts["merged"] / "probe").write_text("upper\n")
            works = (parts["upper"] / "probe").read_text() == "upper\n"
        finally:
            subprocess.run(["umount", str(parts["merged"])], capture_output=True, timeout=10, check=False)
        return "overlay2" if works else "vfs"
    except (OSError, subprocess.SubprocessError):
        return "vfs"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def ensure_engine(base: Path, run_id: str = "", dockerd_binary: str | None = None) -> DockerEngine:
    """Return the engine rooted at base, starting it if no healthy one runs. Safe across processes."""
    timer = _Timer()
    dockerd = dockerd_binary or _find_binary("dockerd")
    if dockerd is None or not os.access(dockerd, os.X_OK):
        raise DockerEnvError(
            f"dockerd not found ({dockerd_binary or 'not on PATH nor in /usr/sbin'}). " + INSTALL_HINT
        )
    if os.geteuid() != 0:
        raise DockerEnvError(
            "dockerd needs root here (rootless mode is not set up). Run the tests as root, "
            "or set ATMOS_TASKS_DOCKER_HOST to an engine you run."
        )
    sock = base / "docker.sock"
    if len(str(sock)) > _MAX_SOCKET_PATH:
        raise DockerEnvError(
            f"{sock} is longer than a unix socket path may be; use a shorter ATMOS_TASKS_DOCKER_DIR"
        )
    host = f"unix://{sock}"
    pid_file = base / "docker.pid"
    data_root = base / "data"
    # dockerd's command line names our data root; that identifies our daemon among processes.
    marker = f"--data-root {data_root}"

    with FileLock(str(base / "engine.lock"), timeout=ENGINE_START_TIMEOUT * 2):
        pid = _owned_pid(pid_file, marker)
        if pid is not None and _wait_usable(host, WEDGED_AFTER):
            return _engine(base, host, pid, started_here=False, seconds=timer.elapsed())
        if pid is not None:
            # Alive but silent for WEDGED_AFTER seconds (we only ever leave it running once it answered):
            # wedged. Replace it rather than fail every run until someone notices.
            _terminate(pid, marker)
        # dockerd refuses to start while its pid file names a live process; a stale socket is only confusing.
        # A leftover managed containerd is killed by dockerd itself (exec/containerd/containerd.pid).
        for stale in (pid_file, sock):
            stale.unlink(missing_ok=True)
        daemon_json = base / "daemon.json"
        daemon_json.write_text("{}\n")
        log_file = base / "dockerd.log"
        _rotate_log(log_file)
        argv = [
            dockerd,
            f"--storage-driver={storage_driver(base)}",
            *_DOCKERD_FLAGS,
            f"--config-file={daemon_json}",
            "-H",
            host,
            "--data-root",
            str(data_root),
            "--exec-root",
            str(base / "exec"),
            "--pidfile",
            str(pid_file),
        ]
        log_offset = log_file.stat().st_size if log_file.exists() else 0
        spawned = _spawn_daemon(argv, log_file)
        deadline = time.monotonic() + ENGINE_START_TIMEOUT
        while not engine_usable(host, timeout=1):
            if _process_cmdline(spawned) is None or time.monotonic() > deadline:
                _terminate(spawned, marker)
                with log_file.open(errors="replace") as fh:
                    fh.seek(log_offset)
                    log = "\n".join(fh.read().splitlines()[-25:])
                raise DockerEnvError(
                    f"dockerd did not come up within {ENGINE_START_TIMEOUT:.0f} s "
                    f"({' '.join(argv)}). Its log ({log_file}):\n{log}"
                )
            time.sleep(0.1)
        seconds = timer.elapsed()
        _record_start(base, "dockerd", spawned, run_id, seconds)
        return _engine(base, host, spawned, started_here=True, seconds=seconds)


def docker_client(engine: DockerEngine, timeout: int = 600) -> docker.DockerClient:
    """A docker SDK client for engine. version='auto': the SDK's default API (1.45) is newer than 1.41."""
    try:
        import docker
    except ImportError as exc:
        hint = "The docker Python SDK is missing: `pip install 'docker>=7'`. "
        raise DockerEnvError(hint + INSTALL_HINT) from exc
    return docker.DockerClient(base_url=engine.host, version="auto", timeout=timeout)


# ----------------------------------------------------------------------------------------- registry


# Loopback registries must never go through an HTTP(S)_PROXY of the environment (Go skips proxies for
# loopback by itself; urllib does not unless no_proxy says so).
NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _registry_usable(port: int, timeout: float = 2.0) -> bool:
    try:
        with NO_PROXY_OPENER.open(f"http://127.0.0.1:{port}/v2/", timeout=timeout) as resp:
            api_version = resp.headers.get("Docker-Distribution-Api-Version")
            return resp.status == 200 and api_version == "registry/2.0"
    except (OSError, http.client.HTTPException):
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As Go's net.Listen (the registry's) does: a port with connections in TIME_WAIT counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _registry_config(data_dir: Path, port: int) -> str:
    # A fixed http.secret only silences a warning (it signs upload state across replicas; we have one).
    return f"""\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data_dir}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: atmos-tasks-test-registry
"""


def ensure_registry(base: Path, run_id: str = "", registry_binary: str | None = None) -> Registry:
    """Return the registry of base, starting it (on a free loopback port) if none answers."""
    timer = _Timer()
    binary = registry_binary or _find_binary("docker-registry", "registry")
    if binary is None:
        raise DockerEnvError("docker-registry not found. " + INSTALL_HINT)
    config = base / "registry.yml"
    pid_file = base / "registry.pid"
    state_file = base / "registry.json"
    data_dir = base / "registry-data"
    marker = str(config)

    with FileLock(str(base / "registry.lock"), timeout=REGISTRY_START_TIMEOUT * 6):
        try:
            port = int(json.loads(state_file.read_text())["port"])
        except (OSError, ValueError, KeyError):
            port = 0
        pid = _owned_pid(pid_file, marker)
        if pid is not None and port and _registry_usable(port):
            return Registry(
                host=f"127.0.0.1:{port}",
                port=port,
                url=f"http://127.0.0.1:{port}",
                pid=pid,
                data_dir=data_dir,
            )
        if pid is not None:
            _terminate(pid, marker)
        data_dir.mkdir(exist_ok=True)
        log_file = base / "registry.log"
        _rotate_log(log_file)
        errors: list[str] = []
        # Keep the old port when it is free (clients may have remembered it); another process can grab a
        # port between our probe and the registry's bind, hence the retries.
        for _attempt in range(5):
            if not port or not _port_free(port):
                port = _free_port()
            config.write_text(_registry_config(data_dir, port))
            spawned = _spawn_daemon([binary, "serve", str(config)], log_file)
            pid_file.write_text(f"{spawned}\n")
            deadline = time.monotonic() + REGISTRY_START_TIMEOUT
            while not _registry_usable(port, timeout=1):
                if _process_cmdline(spawned) is None or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            else:
                state_file.write_text(json.dumps({"port": port, "pid": spawned}) + "\n")
                _record_start(base, "registry", spawned, run_id, timer.elapsed())
                return Registry(
                    host=f"127.0.0.1:{port}",
                    port=port,
                    url=f"http://127.0.0.1:{port}",
                    pid=spawned,
                    data_dir=data_dir,
                )
            _terminate(spawned, marker)
            errors.append(f"port {port}: {_log_tail(log_file, 5)}")
            port = 0
        raise DockerEnvError("docker-registry did not come up:\n" + "\n".join(errors))


# ------------------------------------------------------------------------------------------- images


def push_image(client: docker.DockerClient, local_ref: str, registry: Registry) -> tuple[str, str]:
    """Tag local_ref as <registry>/<repo>:<tag>, push it, return (registry_ref, manifest digest)."""
    repo, tag = local_ref.rsplit(":", 1)
    remote_repo = f"{registry.host}/{repo}"
    image = client.images.get(local_ref)
    image.tag(remote_repo, tag)
    for chunk in client.images.push(remote_repo, tag, stream=True, decode=True):
        if "error" in chunk:
            raise DockerEnvError(f"push of {remote_repo}:{tag} failed: {chunk['error']}")
    image.reload()
    for repo_digest in image.attrs.get("RepoDigests") or []:
        name, _, digest = repo_digest.partition("@")
        if name == remote_repo:
            return f"{remote_repo}:{tag}", digest
    raise DockerEnvError(
        f"pushed {remote_repo}:{tag} but the engine reports no digest for it: "
        f"{image.attrs.get('RepoDigests')}"
    )


def _check_import(result: Any, ref: str) -> None:
    """The import API answers 200 even when it fails, with the error in its JSON stream."""
    text = result if isinstance(result, str) else json.dumps(result)
    if '"error"' in text or "errorDetail" in text:
        raise DockerEnvError(f"docker import of {ref} failed: {text[:2000]}")


def _existing_image(client: docker.DockerClient, ref: str, recipe: str) -> Any | None:
    import docker.errors

    try:
        image = client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    return image if labels.get(RECIPE_LABEL) == recipe else None


def _is_static_elf(path: Path) -> bool:
    """True if path is a 64-bit little-endian ELF without a PT_INTERP (dynamic loader) program header.

    Debian's plain `busybox` package is dynamically linked and would give an image whose every command
    fails with a misleading "no such file or directory"; `busybox-static` is what we need.
    """
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return False
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    pt_interp = 3
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != pt_interp for i in range(phnum))


def _busybox_binary() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        path = Path(candidate)
        if path.is_file() and _is_static_elf(path):
            return path
    raise DockerEnvError("no statically linked busybox in /bin or /usr/bin. " + INSTALL_HINT)


def _busybox_rootfs_tar(busybox: Path) -> bytes:
    """A rootfs tarball: /bin/busybox plus a symlink per applet, /etc/passwd and the usual directories.

    Fixed owners and mtimes make the layer (and its diff ID) identical on every machine with the same busybox.
    """
    listing = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True)
    applets = listing.stdout.split()
    buf = io.BytesIO()
    mtime = 1_700_000_000

    def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, mtime, 0, 0
        info.linkname = link
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data) if data else None)

    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory, mode in [
            ("bin", 0o755),
            ("sbin", 0o755),
            ("usr", 0o755),
            ("usr/bin", 0o755),
            ("usr/sbin", 0o755),
            ("etc", 0o755),
            ("root", 0o700),
            ("tmp", 0o1777),
            ("var", 0o755),
            ("var/tmp", 0o1777),
            ("home", 0o755),
            ("proc", 0o755),
            ("sys", 0o755),
            ("dev", 0o755),
        ]:
            add(directory, tarfile.DIRTYPE, mode)
        add("bin/busybox", tarfile.REGTYPE, 0o755, busybox.read_bytes())
        for applet in sorted(set(applets) - {"busybox"}):
            add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox")
        # Scripts with `#!/usr/bin/env sh` must work too.
        add("usr/bin/env", tarfile.SYMTYPE, 0o777, link="/bin/busybox")
        add(
            "etc/passwd",
            tarfile.REGTYPE,
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        add("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\nnogroup:x:65534:\n")
    return buf.getvalue()


def _image_result(client: docker.DockerClient, ref: str, registry: Registry, seconds: float) -> BaseImage:
    registry_ref, digest = push_image(client, ref, registry)
    image = client.images.get(ref)
    return BaseImage(
        ref=ref,
        id=image.id,
        registry_ref=registry_ref,
        digest=digest,
        size=int(image.attrs.get("Size") or 0),
        build_seconds=seconds,
    )


def _image_lock(base: Path, ref: str) -> FileLock:
    """One lock per image, so a worker importing busybox never waits for another's 50 s python build."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", ref)
    return FileLock(str(base / f"image-{name}.lock"), timeout=IMAGE_LOCK_TIMEOUT)


def ensure_base_image(client: docker.DockerClient, base: Path, registry: Registry) -> BaseImage:
    """atmos-tasks/busybox:test, imported once per engine (and per busybox version), pushed to registry."""
    timer = _Timer()
    busybox = _busybox_binary()
    recipe = f"{_BUSYBOX_RECIPE_VERSION}:{hashlib.sha256(busybox.read_bytes()).hexdigest()}"
    with _image_lock(base, BUSYBOX_IMAGE):
        built = 0.0
        if _existing_image(client, BUSYBOX_IMAGE, recipe) is None:
            repo, tag = BUSYBOX_IMAGE.rsplit(":", 1)
            result = client.api.import_image_from_data(
                _busybox_rootfs_tar(busybox),
                repository=repo,
                tag=tag,
                changes=[
                    "ENV PATH=/bin:/usr/bin:/sbin:/usr/sbin",
                    'CMD ["sh"]',
                    f"LABEL {RECIPE_LABEL}={recipe}",
                ],
            )
            _check_import(result, BUSYBOX_IMAGE)
            built = timer.elapsed()
        # Pushing is idempotent and cheap (~0.2 s): it keeps the image present even in a new registry.
        return _image_result(client, BUSYBOX_IMAGE, registry, built)


def _debian_release() -> tuple[str, str]:
    """(suite, mirror) for debootstrap: the host's codename and the mirror apt already uses."""
    suite = "bookworm"
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME=") and line.split("=", 1)[1].strip('"'):
                suite = line.split("=", 1)[1].strip('"')
    mirror = os.environ.get("ATMOS_TASKS_DEBIAN_MIRROR", "")
    if not mirror:
        sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
        for path in sources:  # deb822 format
            with contextlib.suppress(OSError):
                for stanza in re.split(r"\n\s*\n", path.read_text()):
                    fields = dict(re.findall(r"^([\w-]+):\s*(.*)$", stanza, re.MULTILINE))
                    if suite in fields.get("Suites", "").split() and fields.get("URIs"):
                        mirror = fields["URIs"].split()[0]
                        break
            if mirror:
                break
    if not mirror:
        lists = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
        for path in lists:
            with contextlib.suppress(OSError):
                for line in path.read_text().splitlines():
                    match = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line.strip())
                    if match and match.group(2) == suite:
                        mirror = match.group(1)
                        break
            if mirror:
                break
    return suite, mirror or "http://deb.debian.org/debian"


def _mounts_below(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    with open("/proc/self/mounts") as fh:
        points = [line.split()[1].encode().decode("unicode_escape") for line in fh]
    return [p for p in points if p.startswith(prefix)]


def _remove_tree(path: Path) -> None:
    """rmtree that first unmounts what debootstrap may have left mounted (proc, sys, a bind of /dev).

    Never recurse into a mount: with a bind-mounted /dev that would delete the host's device nodes.
    """
    if not path.exists():
        return
    for point in sorted(_mounts_below(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    left = _mounts_below(path)
    if left:
        raise DockerEnvError(f"cannot remove {path}: still mounted: {left}")
    shutil.rmtree(path, ignore_errors=True)


# What debootstrap leaves that a test image does not need: .debs, apt lists, docs, man pages, locales.
_PYTHON_ROOTFS_TRIM = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
    "usr/share/info",
    "var/log",
)


PYTHON_PACKAGES = "python3,python3-venv,python-is-python3"


def ensure_python_image(client: docker.DockerClient, base: Path, registry: Registry) -> BaseImage:
    """atmos-tasks/python:test: a Debian minbase with python3 (and venv, `python`), once per engine.

    `python3-venv` and `python-is-python3` make the planner's default Python plan
    (`python -m venv`, `pip install -r requirements.txt`) run as it would on the official image.

    Needs root, debootstrap and the Debian mirror (a package registry, so reachable here and in CI).
    """
    timer = _Timer()
    debootstrap = _find_binary("debootstrap")
    if debootstrap is None:
        raise DockerEnvError("debootstrap not found. " + INSTALL_HINT)
    if os.geteuid() != 0:
        raise DockerEnvError("debootstrap needs root to build the python base image")
    suite, mirror = _debian_release()
    # The mirror is not part of the recipe: any mirror serves the same suite.
    recipe = f"{_PYTHON_RECIPE_VERSION}:debootstrap-minbase:{suite}:{PYTHON_PACKAGES}"
    with _image_lock(base, PYTHON_IMAGE):
        if _existing_image(client, PYTHON_IMAGE, recipe) is not None:
            return _image_result(client, PYTHON_IMAGE, registry, 0.0)
        work = base / f"build-python-{os.getpid()}"
        _remove_tree(work)
        work.mkdir()
        rootfs, tarball, log_file = work / "rootfs", work / "rootfs.tar", base / "debootstrap.log"
        try:
            with log_file.open("w") as log:
                proc = subprocess.run(
                    [
                        debootstrap,
                        "--variant=minbase",
                        f"--include={PYTHON_PACKAGES}",
                        suite,
                        str(rootfs),
                        mirror,
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                    timeout=IMAGE_LOCK_TIMEOUT - 60,
                    check=False,
                )
            if proc.returncode != 0:
                raise DockerEnvError(
                    f"debootstrap {suite} from {mirror} failed (exit {proc.returncode}); "
                    f"{log_file}:\n{_log_tail(log_file)}"
                )
            for mount in _mounts_below(rootfs):
                subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
            for rel in _PYTHON_ROOTFS_TRIM:
                target = rootfs / rel
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                    target.mkdir()
            # The engine makes /dev per container; device nodes in a layer are useless (and need mknod).
            subprocess.run(
                ["tar", "--numeric-owner", "--exclude=./dev/*", "-C", str(rootfs), "-cf", str(tarball), "."],
                check=True,
                capture_output=True,
            )
            repo, tag = PYTHON_IMAGE.rsplit(":", 1)
            result = client.api.import_image(
                src=str(tarball),
                repository=repo,
                tag=tag,
                changes=[
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "ENV LANG=C.UTF-8",
                    'CMD ["python3"]',
                    f"LABEL {RECIPE_LABEL}={recipe}",
                ],
            )
            _check_import(result, PYTHON_IMAGE)
        finally:
            _remove_tree(work)
        return _image_result(client, PYTHON_IMAGE, registry, timer.elapsed())


# ---------------------------------------------------------------------------------------------- stop


def stop_environment(base: Path) -> list[str]:
    """Stop the registry and the engine of base (and dockerd's containerd). Returns what was stopped."""
    stopped = []
    registry_pid = _owned_pid(base / "registry.pid", str(base / "registry.yml"))
    if registry_pid is not None:
        _terminate(registry_pid, str(base / "registry.yml"))
        stopped.append(f"docker-registry (pid {registry_pid})")
    marker = f"--data-root {base / 'data'}"
    engine_pid = _owned_pid(base / "docker.pid", marker)
    if engine_pid is not None:
        # A graceful SIGTERM stops containers and the supervised containerd; after a SIGKILL, containerd
        # would be left behind, so it is ended by its own pid file.
        _terminate(engine_pid, marker)
        stopped.append(f"dockerd (pid {engine_pid})")
    containerd_pid = _owned_pid(base / "exec" / "containerd" / "containerd.pid", str(base / "exec"))
    if containerd_pid is not None:
        _terminate(containerd_pid, str(base / "exec"))
        stopped.append(f"containerd (pid {containerd_pid})")
    # dockerd bind-mounts its data root onto itself (to make it a private mount); after a SIGKILL that mount
    # outlives it. Harmless for a restart (it is reused, not stacked) but it makes `rm -rf <dir>` fail.
    if _owned_pid(base / "docker.pid", marker) is None:
        for point in sorted(_mounts_below(base), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return stopped


def _keep_running() -> bool:
    keep = os.environ.get("ATMOS_TASKS_DOCKER_KEEP", "").strip().lower()
    if keep:
        return keep not in ("0", "false", "no")
    return os.environ.get("CI", "").strip().lower() in ("", "0", "false", "no")


def prune_test_images(base: Path, select: Callable[[str], bool] | None = None) -> list[str]:
    """Remove what the tests built from a kept engine, keeping the base images (they take up to a
    minute to make). With the vfs storage driver every layer is a full copy: without this, each run
    left ~1.2 GB and ~50,000 inodes behind in the data root, and after a few runs inode allocation
    on that disk slowed tenfold. `select` narrows it to the references it accepts (and then leaves
    containers alone), so a test can prune its own images while other workers use the engine.
    Returns the references removed."""
    host = f"unix://{base / 'docker.sock'}"
    if not engine_usable(host):
        return []
    import docker
    import docker.errors

    client = docker.DockerClient(base_url=host, version="1.41", timeout=120)
    removed = []
    try:
        if select is None:
            client.containers.prune()
        for image in client.images.list():
            # Images built FROM a base inherit its recipe label: keep by name, not by label.
            if any(tag.endswith((BUSYBOX_IMAGE, PYTHON_IMAGE)) for tag in image.tags):
                continue
            for ref in image.tags or [image.id]:
                if select is not None and not select(ref):
                    continue
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(ref, force=True)
                    removed.append(ref)
        if select is None:
            client.images.prune(filters={"dangling": True})
        return removed
    finally:
        client.close()


SETUP_SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "docker-setup.sh"
# The report's browser tests: Chromium, chromedriver, Graphviz and npm (tests/browser_env.py).
BROWSER_SETUP_SCRIPT = SETUP_SCRIPT.with_name("browser-setup.sh")
RUN_VARIABLE = "ATMOS_TASKS_TEST_RUN"


def pytest_configure(config: pytest.Config) -> None:
    """Once per run, in the xdist controller before any worker starts: install what the test
    environment lacks, so the README's test command alone works on a fresh machine.

    `.ci/docker-setup.sh` is idempotent and answers in milliseconds when all is present. Not run
    when the engine is someone else's (``ATMOS_TASKS_DOCKER_HOST``) or when the user opted out
    (``ATMOS_TASKS_NO_SETUP=1``): then a missing piece fails the fixtures with the install hint.
    """
    if hasattr(config, "workerinput") or os.environ.get("ATMOS_TASKS_DOCKER_HOST"):
        return
    # Which run this is, for its workers too (they inherit the environment): only a run that used
    # the engine prunes it at the end, so a run without Docker tests leaves another run's images alone.
    os.environ.setdefault(RUN_VARIABLE, uuid.uuid4().hex)
    if os.environ.get("ATMOS_TASKS_NO_SETUP") == "1":
        return
    for script in (SETUP_SCRIPT, BROWSER_SETUP_SCRIPT):
        if not script.is_file():
            continue
        proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)
        if proc.returncode != 0:
            # The fixtures fail with the install hint; say here why the automatic set-up did not do it.
            sys.stderr.write(f"test set-up: {script.name} failed:\n{proc.stdout}{proc.stderr}\n")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Once the whole run is over (in the xdist controller, not in a worker): under CI, stop the
    daemons; otherwise prune what the run built and leave the engine running for the next run."""
    if hasattr(session.config, "workerinput"):
        return
    if os.environ.get("ATMOS_TASKS_DOCKER_HOST"):
        return  # not ours to stop
    used = docker_env_dir() / "used" / os.environ.get(RUN_VARIABLE, "-")
    if not used.exists():
        return  # this run never asked for the engine: another run may be using it
    # Housekeeping must never turn a finished run into an error.
    with contextlib.suppress(Exception):
        used.unlink()
        if _keep_running():
            prune_test_images(docker_env_dir())
        else:
            stop_environment(docker_env_dir())


# ------------------------------------------------------------------------------------------ fixtures


def _or_fail(provide: Callable[..., _T], *args: Any) -> _T:
    """provide(*args), or a pytest failure (never a skip) whose message says what to install or do."""
    try:
        return provide(*args)
    except DockerEnvError as exc:
        message = str(exc)
    # Outside the except block: no "during handling of the above exception" noise around the message.
    pytest.fail(f"Test Docker environment unavailable: {message}", pytrace=False)


@pytest.fixture(scope="session")
def docker_env_run_id(request: pytest.FixtureRequest) -> str:
    """One id per pytest run, the same in every xdist worker (xdist's testrunuid)."""
    workerinput = getattr(request.config, "workerinput", None)
    if workerinput and workerinput.get("testrunuid"):
        return str(workerinput["testrunuid"])
    return uuid.uuid4().hex


def _engine_for_tests(run_id: str) -> DockerEngine:
    base = docker_env_dir()
    external = os.environ.get("ATMOS_TASKS_DOCKER_HOST")
    return _external_engine(external, base) if external else ensure_engine(base, run_id)


@pytest.fixture(scope="session")
def docker_engine(docker_env_run_id: str) -> DockerEngine:
    """The shared engine: started once across workers and runs, reused while healthy."""
    engine = _or_fail(_engine_for_tests, docker_env_run_id)
    marker = docker_env_dir() / "used" / os.environ.get(RUN_VARIABLE, "-")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return engine


@pytest.fixture(scope="session")
def docker_sdk(docker_engine: DockerEngine) -> Iterator[docker.DockerClient]:
    """A docker SDK client on the shared engine, for the session."""
    client = _or_fail(docker_client, docker_engine)
    yield client
    client.close()


@pytest.fixture(scope="session")
def registry(docker_engine: DockerEngine, docker_env_run_id: str) -> Registry:
    """The shared plain-HTTP registry on 127.0.0.1 (depends on the engine only so that it can push)."""
    return _or_fail(ensure_registry, docker_engine.base_dir, docker_env_run_id)


@pytest.fixture(scope="session")
def base_image(docker_sdk: docker.DockerClient, docker_engine: DockerEngine, registry: Registry) -> BaseImage:
    """atmos-tasks/busybox:test (sh, echo, cat, sleep, wget, httpd: every busybox applet), also pushed."""
    return _or_fail(ensure_base_image, docker_sdk, docker_engine.base_dir, registry)


@pytest.fixture(scope="session")
def python_base_image(
    docker_sdk: docker.DockerClient, docker_engine: DockerEngine, registry: Registry
) -> BaseImage:
    """atmos-tasks/python:test (Debian minbase + python3), built once per engine (~50 s), also in registry."""
    return _or_fail(ensure_python_image, docker_sdk, docker_engine.base_dir, registry)


# ----------------------------------------------------------------------------------------------- cli


def _main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    base = docker_env_dir()
    if command == "start":
        engine = ensure_engine(base, "cli")
        reg = ensure_registry(base, "cli")
        for key, value in engine.env.items():
            print(f"export {key}={value}")
        print(f"# registry: {reg.host}; engine pid {engine.pid}")
        return 0
    if command == "stop":
        print("\n".join(f"stopped {what}" for what in stop_environment(base)) or "nothing was running")
        return 0
    if command == "status":
        host = f"unix://{base / 'docker.sock'}"
        engine_pid = _owned_pid(base / "docker.pid", f"--data-root {base / 'data'}")
        registry_pid = _owned_pid(base / "registry.pid", str(base / "registry.yml"))
        try:
            port = int(json.loads((base / "registry.json").read_text())["port"])
        except (OSError, ValueError, KeyError):
            port = 0
        print(f"dir:      {base}")
        print(f"engine:   {host} pid={engine_pid} usable={engine_usable(host)}")
        print(f"registry: 127.0.0.1:{port} pid={registry_pid} usable={bool(port) and _registry_usable(port)}")
        return 0
    print("usage: python -m tests.docker_env [start|stop|status]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
