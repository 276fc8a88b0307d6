"""The `vendor:` action in one process: its store stays open from one task to the next (one
index connection), and a task of another store closes it."""

from __future__ import annotations

from pathlib import Path

from atmos_tasks import vendoring
from atmos_tasks.vendoring import VendorSpec, vendor_component
from vendor_cache import Store, VendorEntry, read_lock


def _module(base: Path, name: str) -> Path:
    folder = base / name
    folder.mkdir(parents=True)
    (folder / "main.tf").write_text(f'variable "{name}" {{}}\n')
    return folder


def test_a_process_keeps_its_store_open_between_vendor_tasks(tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    first_store, second_store = tmp_path / "store-a", tmp_path / "store-b"
    specs = [
        VendorSpec(str(first_store), "api", "dev", VendorEntry(name, str(_module(modules, name))), name)
        for name in ("vpc", "dns")
    ]
    done = [vendor_component(spec) for spec in specs]
    assert [d["status"] for d in done] == ["vendored", "vendored"], done
    (kept,) = vendoring._open_store.values()
    index = kept._index
    assert index is not None  # opened by the first task, used by the second
    assert sorted(read_lock(Store(first_store).lock_path("api", "dev")).components) == ["dns", "vpc"]

    other = VendorSpec(str(second_store), "api", "dev", specs[0].entry, "vpc")
    assert vendor_component(other)["status"] == "vendored"
    assert kept._index is None  # closed: this process now vendors into the other store
    (now,) = vendoring._open_store.values()
    assert now.root == second_store
