"""Vendoring benchmark: a warm store against `git clone --depth 1`, and the disk hard links save.

    python benchmarks/vendor.py [--files 1000] [--repeat 9] [--dir DIR]

Builds a throwaway bare Git repository holding one Terraform module of `--files` small files in
nested folders, then measures in one run:

  (a) warm-cache materialisation: the index lookup that finds the module's object (no network)
      plus linking it into a fresh workspace (a hard link per top-level file, a link per top-level
      folder, then a walk checking every file is reachable) — what vendoring costs once a version
      is cached;
  (b) `git clone --depth 1 file://…` of the same repository, the cheapest way to get it without
      the store;
  (c) for reference, the layout the store used before: every folder re-created and every file
      hard-linked (one metadata write per entry, which is why (a) no longer does it).

Each is repeated and the median reported; goal: (a) at least 20× faster than (b). Then three
targets are vendored on one version and the bytes of objects + workspaces (each inode counted
once, folder links followed) are compared with three independent copies; goal: at least 60%
saved. The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vendor_cache import Store, VendorEntry, iter_tree, tree_digest

SPEEDUP_GOAL = 20
DISK_GOAL_PCT = 60
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def terraform_text(rng: random.Random, kind: str, index: int) -> str:
    if kind == "md":
        lines = [f"# Module part {index}", "", "Creates the resources of this part.", ""]
        lines += [f'| `input_{i}` | string | `"default-{i}"` |' for i in range(rng.randint(5, 25))]
        return "\n".join(lines) + "\n"
    blocks = []
    for i in range(rng.randint(3, 20)):
        blocks.append(
            f'variable "{kind}_{index}_{i}" {{\n  description = "Setting {i} of part {index}"\n'
            f'  type        = string\n  default     = "{rng.randrange(10**6):06d}"\n}}\n'
        )
    return "\n".join(blocks)


def write_module(root: Path, count: int) -> int:
    """A components repository shaped like Cloud Posse's: one folder of ~9 files per component, every
    third with a nested submodule, plus docs; about six files per directory."""
    rng = random.Random(7)
    paths = ["README.md", "main.tf", "variables.tf", "outputs.tf", "versions.tf", "docs/conventions.md"]
    component_files = (
        "main.tf",
        "variables.tf",
        "outputs.tf",
        "providers.tf",
        "versions.tf",
        "context.tf",
        "remote-state.tf",
        "README.md",
        "default.auto.tfvars",
    )
    number = 0
    while len(paths) < count:
        base = f"components/service-{number:03d}"
        paths += [f"{base}/{name}" for name in component_files]
        if number % 3 == 0:
            paths += [f"{base}/modules/iam/{n}.tf" for n in ("main", "variables", "outputs", "versions")]
        number += 1
    for index, rel in enumerate(paths[:count]):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(terraform_text(rng, "md" if rel.endswith(".md") else "tf", index))
    return count


def medians(actions: list[Callable[[int], object]], repeat: int) -> list[float]:
    """Median seconds of each action; runs are interleaved so that a burst of load on a shared machine
    slows every contender alike instead of one of them."""
    times: list[list[float]] = [[] for _ in actions]
    for run in range(repeat):
        for action, spent in zip(actions, times, strict=True):
            start = time.perf_counter()
            action(run)
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def unique_inode_bytes(*roots: Path) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) of the files reached under `roots` (folder links followed),
    each inode counted once."""
    seen: dict[tuple[int, int], os.stat_result] = {}
    for root in roots:
        for _, info in iter_tree(root, follow_dir_links=True):
            seen[(info.st_dev, info.st_ino)] = info
    return sum(i.st_size for i in seen.values()), sum(i.st_blocks * 512 for i in seen.values())


def full_tree(source: Path, dest: Path, folders: list[str], files: list[str]) -> None:
    """(c), as the store did it: from the object's listing, one mkdir per folder and one hard link
    per file, each relative to the two trees' open descriptors."""
    dest.mkdir(parents=True)
    src_fd, dst_fd = (
        os.open(source, os.O_RDONLY | os.O_DIRECTORY),
        os.open(dest, os.O_RDONLY | os.O_DIRECTORY),
    )
    try:
        for rel in folders:
            os.mkdir(rel, dir_fd=dst_fd)
        for rel in files:
            os.link(rel, rel, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    finally:
        os.close(src_fd)
        os.close(dst_fd)


def entries_made(workspace: Path) -> str:
    """What (a) writes: the workspace's own entries, without following its folder links."""
    with os.scandir(workspace) as scan:
        entries = list(scan)
    links = sum(1 for e in entries if e.is_symlink())
    return f"1 folder, {len(entries) - links} hard links, {links} folder links"


def describe_filesystem(path: Path) -> str:
    """Where `path` lives and on what kind of mount (from /proc/mounts, where available): results depend on it."""
    mount, kind = "?", "?"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, point, fstype, *_ = line.split()
            if path.resolve().is_relative_to(point) and (mount == "?" or len(point) > len(mount)):
                mount, kind = point, fstype
    except OSError:
        pass
    return f"{path.parent} ({kind} mounted on {mount})"


def probe_metadata_costs(directory: Path, count: int = 100) -> tuple[float, float]:
    """Mean microseconds of one mkdir and one hard link here: a materialisation is little else, so
    these explain (a) on a given machine better than anything in vendor_cache does."""
    directory.mkdir()
    start = time.perf_counter()
    for index in range(count):
        (directory / f"d{index}").mkdir()
    mkdir_us = (time.perf_counter() - start) / count * 1e6
    (directory / "f").write_text("x")
    start = time.perf_counter()
    for index in range(count):
        os.link(directory / "f", directory / f"d{index}" / "f")
    link_us = (time.perf_counter() - start) / count * 1e6
    return mkdir_us, link_us


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where to put the repository, store and clones (default: $TMPDIR)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vendor-bench-", dir=args.dir) as tmp:
        tmp_path = Path(tmp)
        filesystem = describe_filesystem(tmp_path)
        # Metadata latency drifts on a shared disk: the median of five probes.
        probes = [probe_metadata_costs(tmp_path / f"probe{n}") for n in range(5)]
        mkdir_us = statistics.median(p[0] for p in probes)
        link_us = statistics.median(p[1] for p in probes)
        work = tmp_path / "work"
        work.mkdir()
        write_module(work, args.files)
        git("init", "-q", "-b", "main", cwd=work)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", "module", cwd=work)
        git("tag", "v1.0.0", cwd=work)
        bare = tmp_path / "module.git"
        git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
        entry = VendorEntry("big", f"file://{bare}?ref={{{{ version }}}}", "v1.0.0")

        with Store(tmp_path / "cache") as store:
            cold_start = time.perf_counter()
            digest = store.fetch(entry).digest
            cold = time.perf_counter() - cold_start
            assert digest == tree_digest(work), "the store holds exactly the module"

            def warm(run: int) -> None:
                found = store.fetch(entry)
                assert found.from_cache
                store.materialize(found.digest, tmp_path / "warm" / str(run))

            def vendor(run: int) -> None:
                assert not store.vendor("bench", f"t{run}", entry).fetched

            files = [rel for rel, _ in iter_tree(store.object_path(digest))]
            folders = sorted({str(p) for rel in files for p in Path(rel).parents if str(p) != "."})

            def full(run: int) -> None:
                found = store.fetch(entry)
                full_tree(store.object_path(found.digest), tmp_path / "full" / str(run), folders, files)

            def clone(run: int) -> None:
                git(
                    "clone",
                    "-q",
                    "--depth",
                    "1",
                    f"file://{bare}",
                    str(tmp_path / "clone" / str(run)),
                    cwd=tmp_path,
                )

            materialize_s, vendor_s, clone_s, full_s = medians([warm, vendor, clone, full], args.repeat)
            warm0 = tmp_path / "warm" / "0"
            assert (
                tree_digest(warm0, follow_dir_links=True) == tree_digest(tmp_path / "clone" / "0") == digest
            )
            assert tree_digest(tmp_path / "full" / "0") == digest
            made = entries_made(warm0)
            directories = sum(1 for _ in os.walk(tmp_path / "full" / "0"))
        # What the filesystem alone charges for (c): one mkdir per directory, one link per file.
        floor_s = (directories * mkdir_us + args.files * link_us) / 1e6

        # Disk: a fresh store, one version, three targets.
        with Store(tmp_path / "disk") as store:
            for target in ("dev", "staging", "prod"):
                store.vendor("bench", target, entry)
            stats = store.stats()
            workspaces = [store.workspace("bench", t, "big") for t in ("dev", "staging", "prod")]
            used, used_blocks = unique_inode_bytes(store.objects_dir, *workspaces)
            one_copy, one_copy_blocks = unique_inode_bytes(workspaces[0])
            # Independent accounting must agree with the store's own.
            assert used == stats.disk_bytes and 3 * one_copy == stats.workspace_bytes
            copies, copies_blocks = 3 * one_copy, 3 * one_copy_blocks

    speedup = clone_s / materialize_s
    full_speedup = clone_s / full_s
    saved_pct = 100 * (1 - used / copies)
    saved_blocks_pct = 100 * (1 - used_blocks / copies_blocks)
    rows = [
        ("filesystem", filesystem),
        ("cost of one mkdir / one hard link here", f"{mkdir_us:.0f} us / {link_us:.0f} us"),
        (
            "module",
            f"{args.files} files in {directories} directories, {one_copy / 1024:.0f} KiB "
            f"({one_copy_blocks / 1024:.0f} KiB on disk)",
        ),
        ("cold fetch into the store (git, once)", f"{cold:.3f} s"),
        (f"(a) warm materialise, median of {args.repeat}", f"{materialize_s * 1000:.1f} ms"),
        ("    what (a) writes", made),
        ("    vendor() into a fresh target (+ lock write)", f"{vendor_s * 1000:.1f} ms"),
        (f"(b) git clone --depth 1 file://, median of {args.repeat}", f"{clone_s * 1000:.1f} ms"),
        ("speedup (b)/(a)", f"{speedup:.1f}x  (goal >= {SPEEDUP_GOAL}x)"),
        (f"(c) every folder made, every file linked, median of {args.repeat}", f"{full_s * 1000:.1f} ms"),
        ("    its syscall floor: mkdirs + links alone", f"{floor_s * 1000:.1f} ms"),
        ("    speedup (b)/(c), for reference", f"{full_speedup:.1f}x"),
        (
            "3 targets, one version: objects+workspaces",
            f"{used / 1024:.0f} KiB ({used_blocks / 1024:.0f} KiB on disk)",
        ),
        ("3 independent copies", f"{copies / 1024:.0f} KiB ({copies_blocks / 1024:.0f} KiB on disk)"),
        ("disk saved", f"{saved_pct:.1f}%  ({saved_blocks_pct:.1f}% on disk; goal >= {DISK_GOAL_PCT}%)"),
    ]
    width = max(len(label) for label, _ in rows)
    print("vendor_cache benchmark")
    print("-" * (width + 40))
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print("-" * (width + 40))
    goal_met = speedup >= SPEEDUP_GOAL and saved_pct >= DISK_GOAL_PCT
    print(
        json.dumps(
            {
                "benchmark": "vendor",
                "files": args.files,
                "dir": str(tmp_path.parent),
                "fs_mkdir_us": round(mkdir_us, 1),
                "fs_link_us": round(link_us, 1),
                "directories": directories,
                "syscall_floor_s": round(floor_s, 5),
                "repeat": args.repeat,
                "materialize_s": round(materialize_s, 5),
                "vendor_s": round(vendor_s, 5),
                "git_clone_s": round(clone_s, 5),
                "full_tree_s": round(full_s, 5),
                "full_tree_speedup": round(full_speedup, 1),
                "speedup": round(speedup, 1),
                "speedup_goal": SPEEDUP_GOAL,
                "disk_saved_pct": round(saved_pct, 1),
                "disk_saved_blocks_pct": round(saved_blocks_pct, 1),
                "disk_goal_pct": DISK_GOAL_PCT,
                "goal_met": goal_met,
            }
        )
    )
    return 0 if goal_met else 1


if __name__ == "__main__":
    shutil.which("git") or sys.exit("git is needed for this benchmark")
    sys.exit(main())
