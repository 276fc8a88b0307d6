"""Terraform provider packages in the remote cache, by the lock file's hashes.

A runner that installed a provider (from Terraform's registry, a mirror, the bundled providers)
stores its package — the zip Terraform reads from a packed filesystem mirror — under the
provider's address, version, platform and `h1:` hash, the one `.terraform.lock.hcl` records.
Before its own `terraform init`, a runner whose module folder holds a lock file (or whose workdir
kept one) pulls each locked provider the cache holds into a mirror `init` reads first: it never
downloads it. Each package pulled is checked twice: against its blob digest (as every blob), and
against the lock — the `h1:` hash of what the zip holds must be one the lock lists, the check
`init` makes too.

Where Terraform finds the pulled packages: the filesystem mirror of this tool's own CLI
configuration (`cli_config`), or, under a CLI configuration of the user's own that sets no
`provider_installation`, the implied mirror `terraform.d/plugins` of the folder Terraform runs in.
A configuration with its own `provider_installation` is left alone: its providers come from where
it says.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCK = ".terraform.lock.hcl"
MEDIA_TYPE = "application/zip"
# 1980-01-01, the earliest time a zip entry holds: one package is one blob whoever packs it.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Locked:
    address: str  # registry.terraform.io/hashicorp/null
    version: str
    hashes: tuple[str, ...]

    @property
    def type(self) -> str:
        return self.address.rsplit("/", 1)[-1]

    def package_name(self, platform: str) -> str:
        return f"terraform-provider-{self.type}_{self.version}_{platform}.zip"


def platform() -> str:
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{sys.platform}_{arch}"


def _unquoted(value: Any) -> str:
    text = str(value)
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def locked(path: Path) -> list[Locked]:
    """The providers a lock file pins; none when there is no lock, or it cannot be read."""
    try:
        from atmos_tasks import hcl

        data = hcl.load(path.read_text(), ("provider",))
    except Exception:  # no lock, or one Terraform would refuse too: nothing to pull
        return []
    found = []
    for block in data.get("provider", []):
        for address, body in block.items():
            if not isinstance(body, dict) or not isinstance(body.get("version"), str):
                continue
            hashes = tuple(_unquoted(h) for h in body.get("hashes", []) or [])
            name, version = _unquoted(address), _unquoted(body.get("version", ""))
            if _ADDRESS.fullmatch(name) and _VERSION.fullmatch(version) and ".." not in version:
                found.append(Locked(name, version, hashes))
    return found


def h1_of(files: dict[str, bytes]) -> str:
    """Terraform's `h1:` hash of a package's files (Go's dirhash Hash1)."""
    summary = hashlib.sha256()
    for name in sorted(files):
        summary.update(f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n".encode())
    return "h1:" + base64.b64encode(summary.digest()).decode()


def _folder_files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# A provider package is tens to hundreds of megabytes: one that unpacks to more is refused unread.
MAX_UNPACKED = 2 << 30
# What a lock may name: `host[:port]/namespace/type` and a version, nothing that walks out of a folder.
_ADDRESS = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]+)?/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+")
_VERSION = re.compile(r"[0-9A-Za-z.+-]+")


def zip_h1(path: Path) -> str:
    """The `h1:` hash of what a package holds (its files hashed as they stream out)."""
    with zipfile.ZipFile(path) as archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        if sum(info.file_size for info in infos) > MAX_UNPACKED:
            raise ValueError(f"it unpacks to more than {MAX_UNPACKED >> 20} MiB")
        summary = hashlib.sha256()
        for info in sorted(infos, key=lambda i: i.filename):
            digest = hashlib.sha256()
            with archive.open(info) as member:
                while chunk := member.read(1 << 20):
                    digest.update(chunk)
            summary.update(f"{digest.hexdigest()}  {info.filename}\n".encode())
    return "h1:" + base64.b64encode(summary.digest()).decode()


def pack(folder: Path, dest: Path) -> str:
    """The installed package folder as a zip (names sorted, no times, executables 0755); its h1."""
    files = _folder_files(folder)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, ZIP_TIME)
            mode = 0o755 if os.access(folder / name, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return h1_of(files)


def key(provider: Locked, where: str, h1: str) -> str:
    from atmos_tasks.hashing import hash_json

    return hash_json(["provider", provider.address, provider.version, where, h1])


def uses_implied_mirror() -> bool:
    """A CLI configuration of the user's own that sets no `provider_installation`: Terraform then
    reads the implied mirror `terraform.d/plugins` of the folder it runs in."""
    named = os.environ.get("TF_CLI_CONFIG_FILE")
    path = Path(named).expanduser() if named else Path.home() / ".terraformrc"
    try:
        return "provider_installation" not in path.read_text()
    except OSError:
        return False


def pull(session: Any, run: Path, mirror: Path | None) -> dict[str, Path]:
    """Each provider the run folder's lock pins and the cache holds, placed where `init` finds it
    (`mirror`: this tool's CLI configuration's; None: the implied `terraform.d/plugins`): the
    addresses pulled, and where each package went. Whatever cannot be had is left to `init`."""
    where = platform()
    into = mirror if mirror is not None else implied_mirror(run)
    pulled: dict[str, Path] = {}
    for provider in locked(run / LOCK):
        dest = into / provider.address / provider.package_name(where)
        if dest.is_file() and _held(dest) in provider.hashes:
            continue
        entry = next(
            (
                found
                for h1 in provider.hashes
                if h1.startswith("h1:")
                for found in [session.lookup("provider", key(provider, where, h1))]
                if found is not None
            ),
            None,
        )
        if entry is None or not session.is_trusted(entry):
            continue
        partial = into / f".{provider.package_name(where)}.{os.getpid()}.pull"
        try:
            partial.parent.mkdir(parents=True, exist_ok=True)
            if not session.fetch(entry, "package", partial):
                continue
            try:
                found = zip_h1(partial)
            except Exception as err:  # a damaged zip, a zip bomb, a method zipfile cannot read
                found = f"nothing readable ({type(err).__name__}: {err})"
            if found not in provider.hashes:
                session.notes.append(
                    f"the remote cache's package of {provider.address} {provider.version} holds {found}, "
                    "which the lock does not list: refused, terraform init installs it"
                )
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, dest)
            pulled[provider.address] = dest
        finally:
            partial.unlink(missing_ok=True)
    if pulled:
        session.used["provider"] = "pulled"
    return pulled


def _held(path: Path) -> str:
    try:
        return zip_h1(path)
    except Exception:
        return ""


def implied_mirror(run: Path) -> Path:
    return run / "terraform.d" / "plugins"


def forget_pulled(run: Path, pulled: list[Path]) -> None:
    """The packages put in a folder's implied mirror, once `init` read them: left there, they would
    hide every other version of their provider from `init` (it asks no registry for a provider an
    implied mirror holds)."""
    for path in pulled:
        path.unlink(missing_ok=True)
        for folder in path.parents:
            if folder == run or not folder.is_relative_to(run):
                break
            with contextlib.suppress(OSError):
                folder.rmdir()


def push(session: Any, run: Path, skip: set[str]) -> None:
    """Store each provider `init` installed that the cache lacks (not those in `skip`, just pulled)."""
    where = platform()
    for provider in locked(run / LOCK):
        if provider.address in skip:
            continue
        folder = run / ".terraform" / "providers" / provider.address / provider.version / where
        if not folder.is_dir():
            continue
        h1 = h1_of(_folder_files(folder.resolve()))
        if h1 not in provider.hashes or session.lookup("provider", key(provider, where, h1)) is not None:
            continue
        package = run / ".terraform" / f".{provider.package_name(where)}.{os.getpid()}"
        try:
            pack(folder.resolve(), package)
            result = {"address": provider.address, "version": provider.version, "platform": where, "h1": h1}
            session.store("provider", key(provider, where, h1), result, {"package": (package, MEDIA_TYPE)})
        finally:
            package.unlink(missing_ok=True)
