"""The lock file: a readable round trip, field-by-field mismatch reports, and clear errors when unusable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vendor_cache import LockedComponent, LockError, VendorEntry, VendorLock, read_lock, write_lock
from vendor_cache.lockfile import parse_lock

DIGEST = "ab" * 32


def test_round_trip_keeps_every_field_and_the_template(tmp_path: Path) -> None:
    lock = VendorLock(
        {
            "vpc": LockedComponent("github.com/o/r.git//vpc?ref={{ version }}", "1.10", DIGEST, "c" * 40),
            "ecs/service": LockedComponent("./svc", None, DIGEST, None, ("**/*.tf",), ("**/examples",)),
        }
    )
    path = tmp_path / "t" / ".vendor-lock.yaml"
    write_lock(path, lock)
    assert read_lock(path) == lock
    text = path.read_text()
    assert parse_lock(text, path) == lock
    assert text.startswith("# Written by vendor_cache")
    assert "version: '1.10'" in text or 'version: "1.10"' in text
    assert [p.name for p in path.parent.iterdir()] == [".vendor-lock.yaml"]


def test_a_missing_lock_is_empty(tmp_path: Path) -> None:
    assert read_lock(tmp_path / "none.yaml") == VendorLock()


def test_differences_name_each_field() -> None:
    locked = LockedComponent("src?ref={{ version }}", "v1", DIGEST)
    assert locked.matches(VendorEntry("vpc", "src?ref={{ version }}", "v1"))
    changed = VendorEntry("vpc", "src?ref={{ version }}", "v2", excluded_paths=["docs/**"])
    assert locked.differences(changed) == [
        "version: lock has 'v1', manifest has 'v2'",
        "excluded_paths: lock has [], manifest has ['docs/**']",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "schema: 2\ncomponents: {}\n",
        "components: [\n",
        "schema: 1\ncomponents:\n  vpc: {source: x, digest: nothex}\n",
        "schema: 1\ncomponents:\n  vpc: {digest: " + DIGEST + "}\n",
    ],
)
def test_unusable_locks_are_bad_input_with_a_way_out(tmp_path: Path, text: str) -> None:
    path = tmp_path / ".vendor-lock.yaml"
    path.write_text(text)
    with pytest.raises(LockError) as raised:
        read_lock(path)
    assert str(path) in str(raised.value)
    assert raised.value.exit_code == 2
    assert "delete it and run vendor pull" in str(raised.value)


def test_a_lock_another_writer_replaced_or_edited_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / ".vendor-lock.yaml"
    first = VendorLock({"vpc": LockedComponent("./vpc", None, DIGEST)})
    write_lock(path, first)
    assert read_lock(path) == first
    # Another process's lock, renamed over ours (a new file): read, not the one this process wrote.
    other = tmp_path / "other.yaml"
    other.write_text(path.read_text().replace("./vpc", "./net"))
    other.replace(path)
    assert read_lock(path).components["vpc"].source == "./net"
    # Edited in place (the same file): read again too.
    path.write_text(path.read_text().replace("./net", "./subnets"))
    assert read_lock(path).components["vpc"].source == "./subnets"
    # The same file, the same size, the same modification time (a coarse timestamp tick): still read.
    before = path.stat()
    path.write_text(path.read_text().replace("ab" * 32, "cd" * 32))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_ino == before.st_ino
    assert read_lock(path).components["vpc"].digest == "cd" * 32
    path.unlink()
    assert read_lock(path) == VendorLock()
