"""Images without a daemon: OCI image layouts for copy-only plans, and pushing them (SPEC §8).

A plan with no setup, install or build commands (`needs_daemon(plan)` is False) only copies files
onto a base image, which needs no container: the base's layers are reused as they are, the app
becomes one reproducible layer under the plan's workdir, and a config and manifest are written
beside them as an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`).

The base is either nothing (`base_image: scratch`), an OCI image layout directory, or a tarball
from `docker save` (either the classic `manifest.json` format or the OCI layout Docker 25+ writes).
Pulling from a registry is not done here: a site that wants `busybox` as the base saves or copies
it once (`docker save busybox:1.36 -o busybox.tar`, `skopeo copy docker://busybox:1.36 oci:busybox`).

Reproducibility: every timestamp is SOURCE_DATE_EPOCH, the layer tar is sorted with fixed owners
and modes, gzip headers carry no name and mtime 0, and JSON documents are canonical (sorted keys,
no whitespace). The same source and base give the same manifest digest on any machine with the
same zlib.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from atmos_tasks.images.errors import BuildError, build_failed
from atmos_tasks.images.planner import BuildPlan, needs_daemon
from atmos_tasks.images.sourcetree import iter_source, members_under, write_tar

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# Docker's layer media types name the same bytes as OCI's; an OCI manifest should use OCI's.
_LAYER_MEDIA = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": MEDIA_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": MEDIA_LAYER_TAR,
}
REF_NAME = "org.opencontainers.image.ref.name"
# The image-spec's config keys; Docker-only leftovers of a base (Hostname, Image, …) are dropped.
_CONFIG_KEYS = (
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "ArgsEscaped",
)
_PLATFORM_KEYS = ("architecture", "os", "os.version", "os.features", "variant")
DEFAULT_PLATFORM = {"architecture": "amd64", "os": "linux"}
CHUNK = 1 << 20

_REPOSITORY = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class OciImage:
    """A built image: where its layout is and the digests a registry will report for it."""

    layout: Path
    manifest_digest: str
    config_digest: str


# --- reading a base image -----------------------------------------------------------------------


class _Source(Protocol):
    def open(self, name: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...

    def exists(self, name: str) -> bool: ...


class _DirSource:
    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self, name: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        return open(self.root / name, "rb")

    def exists(self, name: str) -> bool:
        return (self.root / name).is_file()


class _TarSource:
    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        # Classic `docker save` writes a repeated layer once and links to it from the others.
        self.names = {
            m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile() or m.issym() or m.islnk()
        }

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        handle = self.tar.extractfile(self.names[name])
        assert handle is not None
        with handle:
            yield handle

    def exists(self, name: str) -> bool:
        return name in self.names


@dataclass(frozen=True)
class _BaseLayer:
    descriptor: Descriptor
    name: str  # inside the base source


@dataclass(frozen=True)
class _Base:
    config: dict[str, Any]
    layers: tuple[_BaseLayer, ...]
    digests: frozenset[str]  # the manifest's digest and any index's above it, to check a pin against


def _read_json(source: _Source, name: str, label: str) -> Any:
    if not source.exists(name):
        raise BuildError(
            f"base image {label} has no {name}: give an OCI image layout or a `docker save` tarball"
        )
    with source.open(name) as handle:
        try:
            return json.loads(handle.read())
        except ValueError as error:
            raise BuildError(f"base image {label}: {name} is not JSON ({error})") from None


def _blob_name(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def _platform_matches(descriptor: dict[str, Any]) -> bool:
    platform = descriptor.get("platform") or {}
    return all(platform.get(key, value) == value for key, value in DEFAULT_PLATFORM.items())


def _load_oci(source: _Source, label: str) -> _Base:
    document = _read_json(source, "index.json", label)
    seen: set[str] = set()
    while (
        document.get("mediaType", MEDIA_INDEX) in (MEDIA_INDEX, DOCKER_MANIFEST_LIST)
        and "manifests" in document
    ):
        candidates = [d for d in document["manifests"] if _platform_matches(d)]
        if not candidates:
            raise BuildError(f"base image {label} has no linux/amd64 manifest")
        descriptor = candidates[0]
        seen.add(descriptor["digest"])
        document = _read_json(source, _blob_name(descriptor["digest"]), label)
    config = _read_json(source, _blob_name(document["config"]["digest"]), label)
    layers = tuple(
        _BaseLayer(
            Descriptor(_LAYER_MEDIA.get(d["mediaType"], d["mediaType"]), d["digest"], d["size"]),
            _blob_name(d["digest"]),
        )
        for d in document.get("layers", [])
    )
    return _Base(config, layers, frozenset(seen))


def _load_docker_save(source: _Source, label: str) -> _Base:
    manifests = _read_json(source, "manifest.json", label)
    if not isinstance(manifests, list) or len(manifests) != 1:
        raise BuildError(f"base image {label} must hold exactly one image; save one with `docker save IMAGE`")
    entry = manifests[0]
    config = _read_json(source, entry["Config"], label)
    layers = []
    for name in entry["Layers"]:
        digest, size = _hash_member(source, name)
        layers.append(_BaseLayer(Descriptor(MEDIA_LAYER_TAR, digest, size), name))
    # Classic `docker save` has no manifest blob, so there is no digest to check a pin against.
    return _Base(config, tuple(layers), frozenset())


def _hash_member(source: _Source, name: str) -> tuple[str, int]:
    hasher, size = hashlib.sha256(), 0
    with source.open(name) as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return "sha256:" + hasher.hexdigest(), size


def _load(source: _Source, label: str) -> _Base:
    loader = _load_oci if source.exists("index.json") else _load_docker_save
    try:
        return loader(source, label)
    except (KeyError, TypeError, AttributeError) as error:
        raise BuildError(
            f"base image {label} is not a valid image layout or `docker save` ({error!r})"
        ) from None


@contextlib.contextmanager
def _open_base(path: Path) -> Iterator[tuple[_Source, _Base]]:
    label = str(path)
    if path.is_dir():
        source: _Source = _DirSource(path)
        yield source, _load(source, label)
    elif path.is_file():
        if not tarfile.is_tarfile(path):
            raise BuildError(f"base image {label} is not a tar archive: give a `docker save` tarball")
        with tarfile.open(path) as tar:
            tar_source = _TarSource(tar)
            yield tar_source, _load(tar_source, label)
    else:
        raise BuildError(
            f"base image {label} does not exist: give an OCI layout directory or a `docker save` tarball"
        )


# --- writing a layout ---------------------------------------------------------------------------


class _BlobWriter:
    """Writes blobs into a layout, verifying digests of copied ones on the way."""

    def __init__(self, layout: Path) -> None:
        self.directory = layout / "blobs" / "sha256"
        self.directory.mkdir(parents=True)

    def put(self, media_type: str, data: bytes) -> Descriptor:
        digest = sha256_digest(data)
        (self.directory / digest.removeprefix("sha256:")).write_bytes(data)
        return Descriptor(media_type, digest, len(data))

    def copy(self, source: _Source, layer: _BaseLayer) -> None:
        target = self.directory / layer.descriptor.digest.removeprefix("sha256:")
        hasher = hashlib.sha256()
        with source.open(layer.name) as handle, open(target, "wb") as out:
            while chunk := handle.read(CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        if "sha256:" + hasher.hexdigest() != layer.descriptor.digest:
            raise BuildError(
                f"base image layer {layer.name} does not match its digest {layer.descriptor.digest}"
            )

    def adopt(self, path: Path, media_type: str) -> Descriptor:
        digest, size = _hash_member(_DirSource(path.parent), path.name)
        os.replace(path, self.directory / digest.removeprefix("sha256:"))
        return Descriptor(media_type, digest, size)


@contextlib.contextmanager
def _staging(layout_dir: Path) -> Iterator[Path]:
    """A sibling temporary directory that replaces `layout_dir` only when complete."""
    layout_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{layout_dir.name}.", dir=layout_dir.parent))
    staging.chmod(0o755)
    try:
        yield staging
        if layout_dir.exists():
            # os.replace cannot replace a non-empty directory: move the old one aside first.
            trash = Path(tempfile.mkdtemp(prefix=f".{layout_dir.name}.old.", dir=layout_dir.parent))
            os.replace(layout_dir, trash / "layout")
            os.replace(staging, layout_dir)
            shutil.rmtree(trash)
        else:
            os.replace(staging, layout_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _merged_env(base_env: list[str], env: dict[str, str]) -> list[str]:
    """Base variables in their order with ours overriding them in place, then ours, sorted."""
    merged = [f"{k}={env[k]}" if (k := item.partition("=")[0]) in env else item for item in base_env]
    present = {item.partition("=")[0] for item in base_env}
    return merged + [f"{name}={env[name]}" for name in sorted(env) if name not in present]


def _image_config(plan: BuildPlan, base: _Base | None, diff_id: str, created: str) -> dict[str, Any]:
    base_config = base.config if base else {}
    inherited = base_config.get("config") or {}
    runtime = {key: inherited[key] for key in _CONFIG_KEYS if inherited.get(key) is not None}
    runtime["Env"] = _merged_env(list(inherited.get("Env") or []), plan.env)
    runtime["WorkingDir"] = plan.workdir
    if plan.start.cmd is not None:
        runtime["Cmd"] = list(plan.start.cmd)
    diff_ids = list((base_config.get("rootfs") or {}).get("diff_ids") or [])
    if base and len(diff_ids) != len(base.layers):
        raise BuildError(f"base image lists {len(diff_ids)} diff_ids for {len(base.layers)} layers")
    platform = {key: base_config[key] for key in _PLATFORM_KEYS if key in base_config} or DEFAULT_PLATFORM
    return {
        **platform,
        "created": created,
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": [*diff_ids, diff_id]},
        "history": [
            *(base_config.get("history") or []),
            {
                "created": created,
                "created_by": f"atmos-tasks: COPY {plan.copy.src} {plan.workdir} # {plan.provider}",
            },
        ],
    }


def _app_layer(plan: BuildPlan, source_dir: Path | str, staging: Path, epoch: int) -> tuple[Path, str]:
    """The app's files under the workdir as a tar.gz; returns its path and the uncompressed digest."""
    members = members_under(plan.workdir, iter_source(source_dir, plan.copy.exclude))
    tar_path, gz_path = staging / "layer.tar", staging / "layer.tar.gz"
    with open(tar_path, "wb") as handle:
        write_tar(members, handle, mtime=epoch)
    diff_id, _ = _hash_member(_DirSource(staging), tar_path.name)
    # filename="" and mtime=0 keep the file's name and the clock out of the gzip header.
    with (
        open(tar_path, "rb") as raw,
        open(gz_path, "wb") as out,
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz,
    ):
        shutil.copyfileobj(raw, gz, CHUNK)
    tar_path.unlink()
    return gz_path, diff_id


def build_layout(
    plan: BuildPlan,
    source_dir: Path | str,
    layout_dir: Path | str,
    *,
    base: Path | str | None = None,
    source_date_epoch: int = 0,
    ref_name: str | None = None,
) -> OciImage:
    """Build `plan` over `base` into an OCI image layout at `layout_dir` (replaced when complete).

    `base` is required unless the plan's base image is `scratch`; when the plan pins a digest and
    the base carries its manifest, the two must agree.
    """
    if needs_daemon(plan):
        raise BuildError(
            f"the {plan.provider} plan runs setup/install/build commands, which need a container: "
            "use the docker backend, or make the plan copy-only (install_cmd: [], build_cmd: [])"
        )
    if source_date_epoch < 0:
        raise BuildError(f"SOURCE_DATE_EPOCH must be a non-negative integer, got {source_date_epoch}")
    if base is None and plan.base_image.reference != "scratch":
        raise BuildError(
            f"the oci backend cannot pull {plan.base_image.pinned} without a daemon: set "
            "settings.nixpack.base_image_path to an OCI layout or `docker save` tarball of it, "
            "or set base_image: scratch"
        )
    created = rfc3339(source_date_epoch)
    with contextlib.ExitStack() as stack:
        base_image: _Base | None = None
        if base is not None:
            source, base_image = stack.enter_context(_open_base(Path(base)))
            _check_pin(plan, base_image, str(base))
        staging = stack.enter_context(_staging(Path(layout_dir)))
        blobs = _BlobWriter(staging)
        layers: list[Descriptor] = []
        if base_image is not None:
            for layer in base_image.layers:
                blobs.copy(source, layer)
                layers.append(layer.descriptor)
        layer_path, diff_id = _app_layer(plan, source_dir, staging, source_date_epoch)
        layers.append(blobs.adopt(layer_path, MEDIA_LAYER_GZIP))
        config = blobs.put(MEDIA_CONFIG, canonical_json(_image_config(plan, base_image, diff_id, created)))
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": config.to_dict(),
            "layers": [layer.to_dict() for layer in layers],
        }
        manifest_descriptor = blobs.put(MEDIA_MANIFEST, canonical_json(manifest))
        entry = manifest_descriptor.to_dict()
        if ref_name:
            entry["annotations"] = {REF_NAME: ref_name}
        (staging / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
        (staging / "index.json").write_bytes(
            canonical_json({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [entry]})
        )
    return OciImage(Path(layout_dir), manifest_descriptor.digest, config.digest)


def _check_pin(plan: BuildPlan, base: _Base, label: str) -> None:
    pinned = plan.base_image.digest
    if pinned and base.digests and pinned not in base.digests:
        raise BuildError(
            f"base image {label} is not {plan.base_image.pinned} (its digests: "
            f"{', '.join(sorted(base.digests))}); export the pinned image or update the pin"
        )


def read_manifest(layout_dir: Path | str, tag: str | None = None) -> tuple[str, bytes]:
    """(digest, bytes) of the layout's image manifest: the one annotated `tag`, else the only one."""
    layout = Path(layout_dir)
    index = _read_json(_DirSource(layout), "index.json", str(layout))
    manifests = index.get("manifests") or []
    chosen = [m for m in manifests if (m.get("annotations") or {}).get(REF_NAME) == tag] if tag else []
    if not chosen and len(manifests) == 1:
        chosen = manifests
    if len(chosen) != 1:
        raise BuildError(
            f"{layout}/index.json has {len(manifests)} manifests; name one with its ref.name tag"
        )
    digest = chosen[0]["digest"]
    data = (layout / _blob_name(digest)).read_bytes()
    if sha256_digest(data) != digest:
        raise BuildError(f"{layout}: manifest blob does not match its digest {digest}")
    return digest, data


# --- pushing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes


def _request(
    method: str,
    url: str,
    *,
    data: bytes | IO[bytes] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float,
) -> _Response:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return _Response(
                response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
            )
    except urllib.error.HTTPError as error:
        return _Response(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())
    except (urllib.error.URLError, OSError) as error:
        raise build_failed(f"cannot reach the registry at {url}: {error}; is it running?") from None


def _expect(response: _Response, statuses: tuple[int, ...], what: str) -> _Response:
    if response.status not in statuses:
        detail = response.body.decode(errors="replace").strip()[:300]
        raise build_failed(f"{what} failed: HTTP {response.status} {detail}")
    return response


def push_layout(
    layout_dir: Path | str,
    registry: str,
    repository: str,
    tag: str,
    insecure: bool = True,
    *,
    timeout: float = 60.0,
) -> str:
    """Push the layout's image to `registry/repository:tag` with the OCI distribution API.

    Blobs the registry already has are skipped (HEAD); the rest are uploaded monolithically
    (POST then PUT ?digest=). `insecure` speaks plain HTTP, for local registries; there is no
    authentication. Returns the registry's Docker-Content-Digest, which must equal the local one.
    """
    if not _REPOSITORY.fullmatch(repository):
        raise BuildError(f"repository {repository!r} is not a valid name (lowercase, e.g. team/api)")
    if not _TAG.fullmatch(tag):
        raise BuildError(f"tag {tag!r} is not valid: letters, digits, '_', '.', '-', up to 128 characters")
    layout = Path(layout_dir)
    digest, manifest_bytes = read_manifest(layout, tag)
    manifest = json.loads(manifest_bytes)
    base = f"{'http' if insecure else 'https'}://{registry}/v2/{repository}"
    target = f"{registry}/{repository}:{tag}"
    for descriptor in [manifest["config"], *manifest["layers"]]:
        blob = descriptor["digest"]
        head = _request("HEAD", f"{base}/blobs/{blob}", timeout=timeout)
        if head.status == 200:
            continue
        started = _expect(
            _request("POST", f"{base}/blobs/uploads/", data=b"", timeout=timeout),
            (202,),
            f"starting the upload of {blob} to {target}",
        )
        location = urllib.parse.urljoin(base + "/", started.headers.get("location", ""))
        separator = "&" if urllib.parse.urlparse(location).query else "?"
        path = layout / _blob_name(blob)
        with open(path, "rb") as body:
            _expect(
                _request(
                    "PUT",
                    f"{location}{separator}digest={urllib.parse.quote(blob)}",
                    data=body,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(path.stat().st_size),
                    },
                    timeout=timeout,
                ),
                (201, 204),
                f"uploading {blob} to {target}",
            )
    pushed = _expect(
        _request(
            "PUT",
            f"{base}/manifests/{tag}",
            data=manifest_bytes,
            headers={"Content-Type": manifest.get("mediaType", MEDIA_MANIFEST)},
            timeout=timeout,
        ),
        (201,),
        f"pushing the manifest to {target}",
    )
    remote = pushed.headers.get("docker-content-digest", "")
    if remote != digest:
        raise build_failed(
            f"{target} reports digest {remote or 'none'} for a manifest whose digest is {digest}"
        )
    return remote


MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json"
)


def manifest_exists(
    registry: str, repository: str, digest: str, *, plain_http: bool = False, timeout: float = 10.0
) -> bool:
    """Whether `registry/repository@digest` can be pulled (a HEAD of its manifest, no credentials):
    plain HTTP where the image was pushed so (`push_layout`) or for a loopback registry (as Docker
    speaks to it), else HTTPS. A registry that cannot be reached, or asks for credentials, answers
    False."""
    from atmos_tasks.remotecache import loopback

    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest) or not _REPOSITORY.fullmatch(repository):
        return False
    scheme = "http" if plain_http or loopback(registry) else "https"
    url = f"{scheme}://{registry}/v2/{repository}/manifests/{digest}"
    try:
        response = _request("HEAD", url, headers={"Accept": MANIFEST_TYPES}, timeout=timeout)
    except Exception:  # unreachable, or an answer that is not HTTP: not there for this run
        return False
    return response.status == 200 and response.headers.get("docker-content-digest", digest) == digest
