"""Provider packages for the remote cache: the lock file read, Terraform's h1 hash, the package."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from atmos_tasks.kinds._tfproviders import Locked, h1_of, key, locked, pack, zip_h1

LOCK = """# This file is maintained automatically by "terraform init".
provider "registry.terraform.io/hashicorp/null" {
  version     = "2.1.2"
  constraints = "~> 2.1"
  hashes = [
    "h1:CFnENdqQu4g3LJNevA32aDxcUz2qGkRGQpFfkI8TCdE=",
    "zh:0000000000000000000000000000000000000000000000000000000000000000",
  ]
}

provider "registry.terraform.io/hashicorp/random" {
  version = "3.1.0"
}
"""


def test_the_lock_names_each_provider_its_version_and_hashes(tmp_path: Path) -> None:
    (tmp_path / ".terraform.lock.hcl").write_text(LOCK)
    assert locked(tmp_path / ".terraform.lock.hcl") == [
        Locked(
            "registry.terraform.io/hashicorp/null",
            "2.1.2",
            (
                "h1:CFnENdqQu4g3LJNevA32aDxcUz2qGkRGQpFfkI8TCdE=",
                "zh:0000000000000000000000000000000000000000000000000000000000000000",
            ),
        ),
        Locked("registry.terraform.io/hashicorp/random", "3.1.0", ()),
    ]
    assert Locked("registry.terraform.io/hashicorp/null", "2.1.2", ()).package_name("linux_amd64") == (
        "terraform-provider-null_2.1.2_linux_amd64.zip"
    )


def test_no_lock_or_a_broken_one_pins_nothing(tmp_path: Path) -> None:
    assert locked(tmp_path / "missing.hcl") == []
    (tmp_path / "broken.hcl").write_text('provider "x" {\n')
    assert locked(tmp_path / "broken.hcl") == []


def test_h1_is_go_dirhash_hash1() -> None:
    files = {"b/x": b"two", "a": b"one"}
    lines = "".join(f"{hashlib.sha256(files[n]).hexdigest()}  {n}\n" for n in sorted(files))
    expected = "h1:" + base64.b64encode(hashlib.sha256(lines.encode()).digest()).decode()
    assert h1_of(files) == expected


def test_a_package_is_one_blob_whoever_packs_it_and_hashes_as_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "provider"
    folder.mkdir()
    binary = folder / "terraform-provider-null_v2.1.2_x4"
    binary.write_bytes(b"\x7fELF fake")
    binary.chmod(0o755)
    first, second = tmp_path / "1.zip", tmp_path / "2.zip"
    h1 = pack(folder, first)
    binary.touch()  # another time: the same package
    assert pack(folder, second) == h1 == zip_h1(first)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        [info] = archive.infolist()
        assert (info.external_attr >> 16) & 0o777 == 0o755


def test_the_key_is_the_provider_version_platform_and_hash() -> None:
    null = Locked("registry.terraform.io/hashicorp/null", "2.1.2", ())
    assert key(null, "linux_amd64", "h1:a") != key(null, "linux_arm64", "h1:a")
    assert key(null, "linux_amd64", "h1:a") != key(null, "linux_amd64", "h1:b")
    assert key(null, "linux_amd64", "h1:a") == key(null, "linux_amd64", "h1:a")


def test_a_lock_naming_a_path_out_of_the_mirror_pins_nothing(tmp_path: Path) -> None:
    (tmp_path / "lock.hcl").write_text(
        'provider "registry.terraform.io/../../../etc" {\n  version = "1.0.0"\n}\n'
        'provider "registry.terraform.io/hashicorp/null" {\n  version = "../../x"\n}\n'
    )
    assert locked(tmp_path / "lock.hcl") == []


def test_a_package_too_big_or_damaged_raises_and_pull_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    import pytest

    from atmos_tasks.kinds import _tfproviders

    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x", b"\0" * (1 << 20))
    original = _tfproviders.MAX_UNPACKED
    _tfproviders.MAX_UNPACKED = 1 << 10
    try:
        with pytest.raises(ValueError, match="unpacks to more than"):
            zip_h1(big)
    finally:
        _tfproviders.MAX_UNPACKED = original
    damaged = tmp_path / "damaged.zip"
    data = bytearray(big.read_bytes())
    data[60:90] = b"\xff" * 30  # inside the deflated data
    damaged.write_bytes(bytes(data))
    with pytest.raises(Exception):  # noqa: B017 - zlib.error, BadZipFile: whatever zipfile raises
        zip_h1(damaged)

    class Cache:
        """The remote cache as `pull` uses it, serving the damaged package (a named stand-in: the
        registry's own behaviour is covered by tests/e2e/test_remote_cache.py)."""

        def __init__(self) -> None:
            self.notes: list[str] = []
            self.used: dict[str, str] = {}

        def lookup(self, kind: str, key: str) -> object:
            return object()

        def is_trusted(self, entry: object) -> bool:
            return True

        def fetch(self, entry: object, name: str, dest: Path) -> bool:
            dest.write_bytes(damaged.read_bytes())
            return True

    run = tmp_path / "run"
    run.mkdir()
    (run / ".terraform.lock.hcl").write_text(LOCK)
    cache = Cache()
    assert _tfproviders.pull(cache, run, None) == {}
    assert len(cache.notes) == 1 and "nothing readable" in cache.notes[0] and "refused" in cache.notes[0]
    assert not [p for p in run.rglob("*") if p.is_file() and p.name != ".terraform.lock.hcl"]
