"""The remote cache's OCI backend: entries as OCI artifacts in any registry, through oras-py.

An entry is an image manifest whose annotation `org.atmos-tasks.cache.entry` holds the entry (kind,
key, result, producer) and whose layers are its files (a vendored object's tar, a plan file), each
named by the title annotation; its tag is the entry's kind and key (`remotecache.tag`).

oras-py does the registry protocol (blob uploads, manifests, Docker's config.json and its
credential helpers, token exchange); this module adds what a cache needs on top of it:

- requests time out, and are not retried for minutes (oras-py's `do_request` retries an unreachable
  registry five times, sleeping up to 83 s): a registry that does not answer is `CacheUnreachable`
  at once, and the run goes on cold;
- Basic challenges (a registry behind htpasswd) are answered as well as Bearer ones;
- every blob pulled is checked against its digest and size before it is used (`CacheDamaged`);
- writing a tag checks first and reads it back a moment after: an entry stored before stays, and
  of two runners writing one tag at the same moment one entry stays and the other runner is told
  (`put`).

Credentials, first found: `ATMOS_TASKS_CACHE_USERNAME` and `ATMOS_TASKS_CACHE_PASSWORD`; else Docker's
`config.json` (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): `auths.<registry>.auth`,
`credHelpers` and `credsStore`, as `docker login` leaves them.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

from atmos_tasks.remotecache import (
    ENTRY_ANNOTATION,
    Blob,
    CacheDamaged,
    CacheDenied,
    CacheUnreachable,
    Entry,
    loopback,
)


def _import_oras_without_jsonschema() -> None:
    """oras-py imports jsonschema when it is imported, to validate what it writes (this module
    writes its manifests itself); with jsonschema's format checkers installed (cyclonedx's
    `json-validation` pulls them in) that import compiles a grammar for 2 to 4 s, in every process
    that uses the cache. oras-py is imported with a stand-in whose `validate` imports the real
    jsonschema when called; every other importer gets the real module."""
    if "jsonschema" in sys.modules:
        return
    stand_in = types.ModuleType("jsonschema")

    def validate(*args: Any, **kwargs: Any) -> Any:
        return importlib.import_module("jsonschema").validate(*args, **kwargs)

    stand_in.validate = validate  # type: ignore[attr-defined]
    sys.modules["jsonschema"] = stand_in
    try:
        importlib.import_module("oras.provider")
    finally:
        if sys.modules.get("jsonschema") is stand_in:
            del sys.modules["jsonschema"]


_import_oras_without_jsonschema()

import oras.provider  # noqa: E402
import oras.utils  # noqa: E402
import requests  # noqa: E402

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = ", ".join([MANIFEST_TYPE, "application/vnd.docker.distribution.manifest.v2+json"])
CONFIG_TYPE = "application/vnd.atmos-tasks.cache.config.v1+json"
TITLE = "org.opencontainers.image.title"
# Every entry's config is the empty JSON object.
EMPTY_CONFIG_DIGEST = "sha256:" + hashlib.sha256(b"{}").hexdigest()
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
# Seconds between writing a tag and reading it back (`put`).
SETTLE = 0.2
CHUNK = 1 << 16


def parse_url(url: str) -> tuple[str, str, bool]:
    """(registry host, repository, plain HTTP) of `oci://host/repo` or `oci+http://host/repo`."""
    scheme, _, rest = url.partition("://")
    host, _, repository = rest.partition("/")
    repository = repository.strip("/")
    if not host or not repository:
        raise ValueError(f"cache URL {url!r}: use oci://<registry>/<repository>")
    return host, repository, scheme == "oci+http" or loopback(host)


def _settle() -> float:
    try:
        return max(0.0, float(os.environ.get("ATMOS_TASKS_CACHE_SETTLE", SETTLE)))
    except ValueError:
        return SETTLE


def _timeout() -> tuple[float, float]:
    try:
        read = float(os.environ.get("ATMOS_TASKS_CACHE_TIMEOUT", READ_TIMEOUT))
    except ValueError:
        read = READ_TIMEOUT
    return (min(CONNECT_TIMEOUT, read), read)


class _Registry(oras.provider.Registry):
    """oras-py's client with time-outs, no sleeping retries, and Basic as well as Bearer auth."""

    def __init__(self, host: str, plain_http: bool) -> None:
        super().__init__(hostname=host, insecure=plain_http, auth_backend="token")
        if plain_http and loopback(host):
            # A loopback registry is never reached through the environment's proxy.
            self.session.trust_env = False
        self.timeout = _timeout()
        self._authorization: str | None = None
        self._basic: str | None = None
        user, password = (
            os.environ.get("ATMOS_TASKS_CACHE_USERNAME"),
            os.environ.get("ATMOS_TASKS_CACHE_PASSWORD"),
        )
        if user and password:
            self._basic = base64.b64encode(f"{user}:{password}".encode()).decode()

    def load_credentials(self, container: Any) -> None:
        if self._basic is not None:
            return
        docker_config = os.environ.get("DOCKER_CONFIG")
        path = Path(docker_config) / "config.json" if docker_config else None
        self.auth.load_configs(
            container, configs=[str(path)] if path is not None and path.is_file() else None
        )
        self._basic = getattr(self.auth, "_basic_auth", None)

    def do_request(  # type: ignore[override]
        self,
        url: str,
        method: str = "GET",
        data: Any = None,
        headers: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        headers = dict(headers or {})
        for attempt in range(2):
            if self._authorization:
                headers["Authorization"] = self._authorization
            try:
                response = self.session.request(
                    method,
                    url,
                    data=data,
                    json=json,
                    headers=headers,
                    stream=stream,
                    verify=self._tls_verify,
                    timeout=self.timeout,
                )
            except requests.RequestException as err:
                raise CacheUnreachable(f"{type(err).__name__}: {_reason(err)}") from None
            if response.status_code >= 500:
                raise CacheUnreachable(f"{method} {url}: HTTP {response.status_code}")
            if response.status_code != 401 or attempt:
                if response.status_code in (401, 403):
                    raise CacheDenied(
                        f"the registry refused the credentials (HTTP {response.status_code}); set "
                        "ATMOS_TASKS_CACHE_USERNAME and ATMOS_TASKS_CACHE_PASSWORD, or docker login"
                    )
                return response
            self._authorization = self._answer(response, headers)
            if self._authorization is None:
                raise CacheDenied("the registry asks for credentials and none are configured")
        raise AssertionError("unreachable")

    def _answer(self, challenge: requests.Response, headers: dict[str, str]) -> str | None:
        """The Authorization header that answers a 401: Basic with the credentials, or a token."""
        scheme = challenge.headers.get("Www-Authenticate", "").split(" ", 1)[0].lower()
        if scheme == "basic":
            return f"Basic {self._basic}" if self._basic else None
        if self._basic:
            self.auth._basic_auth = self._basic  # type: ignore[attr-defined]
        try:
            answered, changed = self.auth.authenticate_request(challenge, dict(headers), refresh=True)
        except requests.RequestException as err:
            raise CacheUnreachable(f"token exchange failed: {_reason(err)}") from None
        return answered.get("Authorization") if changed else None


def _reason(err: Exception) -> str:
    text = str(err)
    # urllib3's messages nest the whole request in the reason; its last part says what happened.
    return text.rsplit(": ", 1)[-1].rstrip(")'\"") if len(text) > 160 else text


class OciBackend:
    def __init__(self, url: str) -> None:
        self.host, self.repository, plain_http = parse_url(url)
        self.registry = _Registry(self.host, plain_http)
        self.container = self.registry.get_container(f"{self.host}/{self.repository}")
        self.registry.load_credentials(self.container)
        self.prefix = "http" if plain_http else "https"

    def _manifest_url(self, reference: str) -> str:
        return f"{self.prefix}://{self.container.manifest_url(reference)}"

    def _manifest(self, reference: str) -> tuple[dict[str, Any], str] | None:
        response = self.registry.do_request(self._manifest_url(reference), "GET", headers={"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        self.registry._check_200_response(response)
        return response.json(), response.headers.get("Docker-Content-Digest", "")

    def get(self, tag: str) -> Entry | None:
        found = self._manifest(tag)
        return Entry.from_manifest(*found) if found is not None else None

    def blob(self, blob: Blob, dest: Path) -> None:
        algorithm, _, expected = blob.digest.partition(":")
        if algorithm != "sha256":
            raise CacheDamaged(f"blob {blob.digest}: only sha256 digests are accepted")
        hasher, size = hashlib.sha256(), 0
        url = f"{self.prefix}://{self.container.get_blob_url(blob.digest)}"
        with self.registry.do_request(url, "GET", stream=True) as response:
            if response.status_code == 404:
                raise CacheDamaged(f"blob {blob.digest} is missing from the registry")
            self.registry._check_200_response(response)
            with open(dest, "wb") as out:
                try:
                    for chunk in response.iter_content(CHUNK):
                        hasher.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                except requests.RequestException as err:
                    raise CacheUnreachable(f"{type(err).__name__}: {_reason(err)}") from None
        if size != blob.size or hasher.hexdigest() != expected:
            raise CacheDamaged(
                f"blob {blob.digest} arrived as {size} bytes hashing to sha256:{hasher.hexdigest()} "
                f"(expected {blob.size} bytes)"
            )

    def put(self, tag: str, entry: Entry, files: dict[str, Path]) -> Entry | None:
        existing = self.get(tag)
        if existing is not None:
            return existing
        layers = []
        for name, path in sorted(files.items()):
            blob = entry.blobs[name]
            layer = {
                "mediaType": blob.media_type,
                "digest": blob.digest,
                "size": blob.size,
                "annotations": {TITLE: name},
            }
            self._written(self.registry.upload_blob(str(path), self.container, layer))
            layers.append(layer)
        config = {"mediaType": CONFIG_TYPE, "digest": EMPTY_CONFIG_DIGEST, "size": 2}
        if not self.registry.blob_exists(config, self.container):
            self._put_config(config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": config,
            "layers": layers,
            "annotations": {ENTRY_ANNOTATION: entry.annotation()},
        }
        # Checked again just before writing: the window in which another runner's entry is
        # overwritten is one round trip (the registry protocol has no compare-and-swap on tags).
        existing = self.get(tag)
        if existing is not None:
            return existing
        body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        mine = "sha256:" + hashlib.sha256(body).hexdigest()
        response = self.registry.do_request(
            self._manifest_url(tag), "PUT", data=body, headers={"Content-Type": MANIFEST_TYPE}
        )
        if response.status_code == 405:
            self._written(response)
        if response.status_code not in (200, 201, 202):
            # Another runner's write of the same tag at the same moment can make the registry
            # refuse ours (distribution answers 400 while it links the other manifest): whatever
            # holds the tag now stays.
            time.sleep(_settle())
            found = self._manifest(tag)
            if found is not None and found[1] != mine:
                return Entry.from_manifest(*found)
            raise ValueError(f"PUT {tag}: HTTP {response.status_code} {response.text[:200]}")
        # Read back once every runner that checked before our write has written too (a check and
        # its write are a few milliseconds apart): the tag then holds the last of them, and each
        # other writer sees that its entry is not the one that stays.
        time.sleep(_settle())
        found = self._manifest(tag)
        if found is not None and found[1] and found[1] != mine:
            return Entry.from_manifest(*found)
        return None

    def _written(self, response: requests.Response) -> None:
        """A write's answer: a registry (or a mirror) that takes no writes refuses this run's results."""
        if response.status_code == 405:
            raise CacheDenied("the registry takes no writes (HTTP 405)")
        self.registry._check_200_response(response)

    def _put_config(self, config: dict[str, Any]) -> None:
        """The empty JSON object `{}` every entry names as its config."""
        start = self.registry.do_request(
            f"{self.prefix}://{self.container.upload_blob_url()}", "POST", headers={"Content-Length": "0"}
        )
        self._written(start)
        location = self.registry._get_location(start, self.container)
        url = oras.utils.append_url_params(location, {"digest": config["digest"]})
        done = self.registry.do_request(
            url, "PUT", data=b"{}", headers={"Content-Type": "application/octet-stream"}
        )
        self.registry._check_200_response(done)
