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
import hashlib
import os
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
        import hcl2

        data = hcl2.loads(path.read_text())
    except Exception:  # no lock, or one Terraform would refuse too: nothing to pull
        return []
    found = []
    for block in data.get("provider", []):
        for address, body in block.items():
            if not isinstance(body, dict):
                continue
            hashes = tuple(_unquoted(h) for h in body.get("hashes", []) or [])
            found.append(Locked(_unquoted(address), _unquoted(body.get("version", "")), hashes))
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


def zip_h1(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        return h1_of({info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()})


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


def pull(session: Any, run: Path, mirror: Path | None) -> list[str]:
    """Each provider the run folder's lock pins and the cache holds, placed where `init` finds it
    (`mirror`: this tool's CLI configuration's; None: the implied `terraform.d/plugins`): the
    addresses pulled. Whatever cannot be had is left to `init`."""
    where = platform()
    into = mirror if mirror is not None else run / "terraform.d" / "plugins"
    pulled = []
    for provider in locked(run / LOCK):
        dest = into / provider.address / provider.package_name(where)
        if dest.is_file() and zip_h1(dest) in provider.hashes:
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
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.{os.getpid()}")
        if not session.fetch(entry, "package", partial):
            continue
        try:
            found = zip_h1(partial)
        except (OSError, zipfile.BadZipFile, ValueError) as err:
            found = f"unreadable ({err})"
        if found not in provider.hashes:
            partial.unlink(missing_ok=True)
            session.notes.append(
                f"the remote cache's package of {provider.address} {provider.version} holds {found}, which "
                f"the lock does not list: refused, terraform init installs it"
            )
            continue
        os.replace(partial, dest)
        pulled.append(provider.address)
    if pulled:
        session.used["provider"] = "pulled"
    return pulled


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
