"""Registries of a test's own, for the remote cache's tests: Debian's `docker-registry` (the one
`tests/docker_env.py` runs for the whole session), started here per test with its own storage, so
that a test may stop it, damage what it stores, or put it behind basic auth (htpasswd, bcrypt).

The shared session registry (`docker_env.registry`) serves tests that only read and write; these
serve the tests that break things. A registry starts in well under a second and is stopped when
its test ends.
"""

from __future__ import annotations

import http.client
import json
import secrets
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.docker_env import (
    INSTALL_HINT,
    NO_PROXY_OPENER,
    _find_binary,
    _free_port,
    _process_cmdline,
    _spawn_daemon,
    _terminate,
)

START_TIMEOUT = 20.0


@dataclass
class PrivateRegistry:
    host: str  # 127.0.0.1:<port>
    data_dir: Path
    config: Path
    pid: int
    user: str | None = None
    password: str | None = None

    def url(self, repository: str) -> str:
        """The remote cache's URL of a repository here (loopback: plain HTTP)."""
        return f"oci://{self.host}/{repository}"

    @property
    def env(self) -> dict[str, str]:
        """The credentials as the remote cache reads them from the environment."""
        if self.user is None or self.password is None:
            return {}
        return {"ATMOS_TASKS_CACHE_USERNAME": self.user, "ATMOS_TASKS_CACHE_PASSWORD": self.password}

    def stop(self) -> None:
        _terminate(self.pid, str(self.config), timeout=10)

    def alive(self) -> bool:
        return _process_cmdline(self.pid) is not None

    def _get(self, path: str, accept: str = "application/json") -> bytes:
        """A GET with plain HTTP (and the credentials)."""
        import base64
        import urllib.request

        request = urllib.request.Request(f"http://{self.host}{path}", headers={"Accept": accept})
        if self.user is not None:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with NO_PROXY_OPENER.open(request, timeout=5) as response:
            return bytes(response.read())

    def tags(self, repository: str) -> list[str]:
        try:
            return sorted(json.loads(self._get(f"/v2/{repository}/tags/list")).get("tags") or [])
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return []
            raise

    def manifest(self, repository: str, reference: str) -> dict[str, Any]:
        return dict(
            json.loads(
                self._get(
                    f"/v2/{repository}/manifests/{reference}", "application/vnd.oci.image.manifest.v1+json"
                )
            )
        )

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps a blob's bytes (distribution's filesystem layout)."""
        algorithm, hexdigest = digest.split(":", 1)
        return self.data_dir / "docker/registry/v2/blobs" / algorithm / hexdigest[:2] / hexdigest / "data"


def _answers(host: str) -> bool:
    try:
        with NO_PROXY_OPENER.open(f"http://{host}/v2/", timeout=1):
            return True
    except urllib.error.HTTPError as err:
        return err.code == 401  # up, behind basic auth
    except (OSError, http.client.HTTPException):
        return False


def start_registry(base: Path, *, basic_auth: bool = False, read_only: bool = False) -> PrivateRegistry:
    """A `docker-registry` on a free loopback port storing under `base`; with `basic_auth`, behind
    an htpasswd file with one user and a random password; with `read_only`, in distribution's
    read-only maintenance mode (every write refused)."""
    import time

    binary = _find_binary("docker-registry", "registry")
    if binary is None:
        pytest.fail("docker-registry not found. " + INSTALL_HINT, pytrace=False)
    base.mkdir(parents=True, exist_ok=True)
    data = base / "data"
    user = password = None
    auth = ""
    if basic_auth:
        import bcrypt

        user, password = "ci-runner", secrets.token_urlsafe(12)
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        (base / "htpasswd").write_text(f"{user}:{hashed}\n")
        auth = f"auth:\n  htpasswd:\n    realm: atmos-tasks-test\n    path: {base / 'htpasswd'}\n"
    for _attempt in range(5):
        port = _free_port()
        config = base / "registry.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n"
            + ("  maintenance:\n    readonly:\n      enabled: true\n" if read_only else "")
            + f"http:\n  addr: 127.0.0.1:{port}\n  secret: atmos-tasks-test-registry\n{auth}"
        )
        pid = _spawn_daemon([binary, "serve", str(config)], base / "registry.log")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and _process_cmdline(pid) is not None:
            if _answers(f"127.0.0.1:{port}"):
                return PrivateRegistry(f"127.0.0.1:{port}", data, config, pid, user, password)
            time.sleep(0.05)
        _terminate(pid, str(config), timeout=5)
    pytest.fail(
        f"docker-registry did not come up: {(base / 'registry.log').read_text()[-2000:]}", pytrace=False
    )


@pytest.fixture
def private_registry(tmp_path: Path) -> Iterator[Callable[..., PrivateRegistry]]:
    """`private_registry(basic_auth=False, read_only=False, base=None)`: a registry of the test's own
    (storing under `base`, to serve what another one stored), stopped when the test ends."""
    started: list[PrivateRegistry] = []

    def start(
        *, basic_auth: bool = False, read_only: bool = False, base: Path | None = None
    ) -> PrivateRegistry:
        where = base or tmp_path / f"registry-{len(started)}"
        registry = start_registry(where, basic_auth=basic_auth, read_only=read_only)
        started.append(registry)
        return registry

    yield start
    for registry in started:
        registry.stop()
