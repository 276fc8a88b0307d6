"""Real processes: simultaneous pulls share one object, and a pull killed by SIGKILL leaves no trace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.vendor_cache.conftest import VPC_V1, HttpServer, ModuleRepo, python, tar_gz
from vendor_cache import Store, VendorEntry, read_lock

# argv: store root, source, component, start flag, barrier dir ("" for none), pause phase ("" for none),
# paused flag. The barrier makes each puller, its object staged, spin until the other's is staged too,
# so both publish at the same moment. The pause parks the puller mid-phase for a SIGKILL.
PULL = """
import json, os, sys, time
from pathlib import Path
from vendor_cache import Store, VendorEntry

root, source, component, start, barrier, pause, paused = sys.argv[1:8]

def wait_for(check):
    deadline = time.monotonic() + 30
    while not check():
        if time.monotonic() > deadline:
            sys.exit("timed out")
        time.sleep(0.005)

def progress(event):
    if barrier and event.phase == "insert" and event.done == event.total:
        Path(barrier, str(os.getpid())).touch()
        deadline = time.monotonic() + 30
        while len(os.listdir(barrier)) < 2 and time.monotonic() < deadline:
            pass
    if pause and event.phase == pause and event.done and event.total and event.done < event.total:
        Path(paused).write_text(str(os.getpid()))
        time.sleep(60)

wait_for(lambda: Path(start).exists())
with Store(root) as store:
    done = store.vendor("api", "dev", VendorEntry(component, source), progress=progress)
print(json.dumps({"digest": done.digest, "fetched": done.fetched}))
"""


def start_pull(
    root: Path, source: str, flags: Path, component: str = "vpc", barrier: str = "", pause: str = ""
) -> subprocess.Popen[str]:
    return python(
        PULL, str(root), source, component, str(flags / "go"), barrier, pause, str(flags / "paused")
    )


def finish(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return dict(json.loads(out))


def test_two_processes_pulling_one_source_both_succeed_with_one_fetch(
    tmp_path: Path, module_repo: ModuleRepo
) -> None:
    root = tmp_path / "cache"
    source = f"{module_repo.url}//modules/vpc?ref=v1.0.0"
    procs = [start_pull(root, source, tmp_path) for _ in range(2)]
    (tmp_path / "go").touch()
    results = [finish(p) for p in procs]
    assert results[0]["digest"] == results[1]["digest"]
    # The second waited on the source lock, then found the first one's work done.
    assert sorted(bool(r["fetched"]) for r in results) == [False, True]
    with Store(root) as store:
        assert store.objects() == [results[0]["digest"]]
        assert list((root / "tmp").iterdir()) == []


def test_two_processes_publishing_the_same_tree_at_once_keep_one_copy(
    tmp_path: Path, module_repo: ModuleRepo, http_server: HttpServer
) -> None:
    tar_gz(http_server.directory / "m.tar.gz", VPC_V1)
    root = tmp_path / "cache"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        start_pull(root, f"{module_repo.url}//modules/vpc?ref=v1.0.0", tmp_path, "vpc", str(barrier)),
        start_pull(root, http_server.url("m.tar.gz") + "//modules/vpc", tmp_path, "vpc-copy", str(barrier)),
    ]
    (tmp_path / "go").touch()
    results = [finish(p) for p in procs]
    assert results[0]["digest"] == results[1]["digest"]
    assert all(r["fetched"] for r in results)
    with Store(root) as store:
        assert store.objects() == [results[0]["digest"]]
        assert list((root / "tmp").iterdir()) == []
        assert sorted(read_lock(store.lock_path("api", "dev")).components) == ["vpc", "vpc-copy"]


@pytest.mark.parametrize("phase", ["download", "insert"])
def test_a_pull_killed_mid_way_leaves_no_object_and_the_next_pull_succeeds(
    tmp_path: Path, http_server: HttpServer, phase: str
) -> None:
    # Incompressible bulk makes the download several chunks long, so the kill lands inside it.
    files = {**VPC_V1, "modules/vpc/blob.txt": os.urandom(200_000).hex()}
    tar_gz(http_server.directory / "m.tar.gz", files)
    root = tmp_path / "cache"
    source = http_server.url("m.tar.gz") + "//modules/vpc"
    proc = start_pull(root, source, tmp_path, pause=phase)
    (tmp_path / "go").touch()
    deadline = time.monotonic() + 30
    while not (tmp_path / "paused").exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the pull never reached the pause"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    with Store(root) as store:
        assert store.objects() == []
        assert [p.name for p in (root / "objects").glob("*")] == []
        leftovers = list((root / "tmp").iterdir())
        assert len(leftovers) == 1 and leftovers[0].name.startswith(".vendor-tmp-")
        assert not store.workspace("api", "dev", "vpc").exists()

        done = store.vendor("api", "dev", VendorEntry("vpc", source))
        assert done.fetched and store.objects() == [done.digest]
        assert (done.module / "blob.txt").read_text() == files["modules/vpc/blob.txt"]
        assert store.clean().temporary == tuple(leftovers)
        store.clean(dry_run=False)
        assert list((root / "tmp").iterdir()) == []
        assert store.objects() == [done.digest]
