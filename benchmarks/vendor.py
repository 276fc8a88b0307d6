"""Vendoring benchmark: a warm store against `git clone --depth 1`, each beside its floor, and the
disk the store saves on a realistic set of module versions.

    python benchmarks/vendor.py [--files 1000] [--repeat 9] [--dir DIR]

Speed. Builds a throwaway bare Git repository holding one Terraform module of `--files` small
files in nested folders, then measures in one run, the contenders' runs interleaved (a burst of
load on a shared machine slows all of them alike), medians of `--repeat`:

  (a) warm-cache materialisation: the index lookup that finds the module's object (no network)
      plus linking it into a fresh workspace (a hard link per top-level file, a link per top-level
      folder, after a walk checking the object's names and types) — what vendoring costs once a
      version is cached;
  (b) `git clone --depth 1 file://…` of the same repository, the cheapest way to get it without
      the store;
  (c) for reference, the layout the store used before: every folder re-created and every file
      hard-linked (one metadata write per entry, which is why (a) no longer does it).

Each of (a) and (b) is shown beside a floor, work it cannot do with less of, measured the same way
and required to come out below it (a floor above its operation is a broken measurement: exit 1):

  floor of (a): the system calls (a) cannot skip, issued bare from Python with nothing around
      them: list each folder of the object once (open, getdents, close: the walk it checks names
      and types with) and make the workspace's own entries (one folder, its hard links and folder
      links, one rename into place). No index lookup, no locks, no checks after linking;
  floor of (b): `cp -r` of the module's tree (GNU cp, C): any way of getting an independent copy
      reads and writes every file at least once; a clone also packs, transfers and inflates them.

(c) has no floor of its own: it is nothing but the `mkdir` and `link` calls a floor would time.
Goal: (a) at least 20× faster than (b).

Disk. Generates release histories like real modules' (several modules of different sizes, eight
releases each, a release changing a few files, adding or removing one now and then: most files
identical from one version to the next), then vendors deployments whose targets run different
releases (dev on the latest or the one before, staging a release behind dev or level with it, prod
up to two behind staging), into a fresh store. It measures objects plus workspaces, each inode once
(folder links followed), against every workspace as an independent copy, in apparent bytes and in
allocated blocks: the saving reported is what this layout measures, not a number the layout fixes.
It also counts what sharing identical files across versions would save on top (the store shares
whole versions, not files). Goal: each distinct version is stored once and workspaces add no file
bytes (the store's bytes equal the distinct versions' trees), with the accounting agreeing with
`Store.stats()`.

The last line of output is one JSON object with the figures and each goal (`goal_…_met`); the
exit code is 1 when one is missed.
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
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vendor_cache import Store, VendorEntry, iter_tree, tree_digest

SPEEDUP_GOAL = 20
# The disk set: module → files in its first release; releases per module; deployments vendoring them.
MODULES = {"vpc": 60, "ecs-service": 240, "rds": 110, "alarms": 30}
RELEASES = 8
DEPLOYMENTS = 6
TARGETS = ("dev", "staging", "prod")
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


def write_module(root: Path, count: int, seed: int = 7) -> list[str]:
    """A components repository shaped like Cloud Posse's: one folder of ~9 files per component, every
    third with a nested submodule, plus docs; about six files per directory. Returns the paths."""
    rng = random.Random(seed)
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
    return paths[:count]


def release_history(work: Path, bare: Path, files: int, seed: int) -> list[str]:
    """A module's Git history of RELEASES tagged releases, as modules are released: each release
    rewrites a few files (about 4%), now and then adds a file or two to a component or removes one;
    everything else is the previous release's. Returns the tags, oldest first."""
    rng = random.Random(seed)
    paths = write_module(work, files, seed)
    git("init", "-q", "-b", "main", cwd=work)
    tags = []
    for release in range(RELEASES):
        if release:
            for rel in rng.sample(paths, max(1, len(paths) * 4 // 100)):
                kind = "md" if rel.endswith(".md") else "tf"
                (work / rel).write_text(terraform_text(rng, kind, rng.randrange(10**6)))
            if rng.random() < 0.5:
                folder = Path(rng.choice(paths)).parent
                for _ in range(rng.randint(1, 2)):
                    rel = str(folder / f"feature_{release}_{rng.randrange(1000)}.tf")
                    (work / rel).write_text(terraform_text(rng, "tf", release))
                    paths.append(rel)
            if rng.random() < 0.25 and len(paths) > 10:
                gone = paths.pop(rng.randrange(5, len(paths)))  # never the root README/main/variables…
                (work / gone).unlink()
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", f"release {release}", cwd=work)
        tags.append(f"v1.{release}.0")
        git("tag", tags[-1], cwd=work)
    git("clone", "-q", "--bare", str(work), str(bare), cwd=work.parent)
    return tags


def release_files(bare: Path, tag: str) -> list[tuple[str, int]]:
    """The files of a release as Git holds them, (blob id, size) each: an account of its bytes that
    owes nothing to the store."""
    out = subprocess.run(
        ["git", "ls-tree", "-r", "-l", tag], cwd=bare, env=GIT_ENV, check=True, capture_output=True, text=True
    ).stdout
    files = []
    for line in out.splitlines():
        _mode, kind, blob, size = line.partition("\t")[0].split()
        if kind == "blob":
            files.append((blob, int(size)))
    return files


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


def floor_of_materialise(
    source: Path, dest: Path, folders: list[str], top_dirs: list[str], top_files: list[str]
) -> None:
    """The system calls (a) cannot skip, bare: list every folder of the object once (as its name and
    type check does), then make the workspace's own entries and rename it into place."""
    for rel in (".", *folders):
        fd = os.open(source / rel, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            with os.scandir(fd) as scan:
                for _ in scan:
                    pass
        finally:
            os.close(fd)
    build = dest.with_name(dest.name + ".build")
    os.mkdir(build)
    up = os.path.relpath(source, dest)
    src_fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY)
    dst_fd = os.open(build, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in top_dirs:
            os.symlink(f"{up}/{name}", name, dir_fd=dst_fd)
        for name in top_files:
            os.link(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False)
    finally:
        os.close(src_fd)
        os.close(dst_fd)
    os.rename(build, dest)


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


@dataclass(frozen=True)
class DiskSet:
    workspaces: int
    releases_used: int
    objects: int
    used: int  # the store: objects and workspaces, each inode once (apparent bytes)
    used_blocks: int
    copies: int  # every workspace as an independent copy
    copies_blocks: int
    distinct_bytes: int  # the files of each distinct release in use, from Git
    per_file_bytes: int  # the same, each distinct file once


def disk_set(tmp_path: Path) -> DiskSet:
    """Vendor the deployments of the disk set into a fresh store; what it holds against copies."""
    rng = random.Random(11)
    sources: dict[str, tuple[Path, list[str]]] = {}
    for seed, (module, files) in enumerate(MODULES.items()):
        bare = tmp_path / "modules" / f"{module}.git"
        tags = release_history(tmp_path / "histories" / module, bare, files, seed)
        sources[module] = (bare, tags)
    plan: list[tuple[str, str, str, str]] = []  # deployment, target, module, release
    for number in range(DEPLOYMENTS):
        for module in rng.sample(sorted(MODULES), rng.randint(2, len(MODULES))):
            dev = RELEASES - 1 - rng.choice((0, 0, 1))
            staging = max(0, dev - rng.choice((0, 1)))
            prod = max(0, staging - rng.choice((0, 1, 2)))
            tags = sources[module][1]
            for target, release in zip(TARGETS, (dev, staging, prod), strict=True):
                plan.append((f"app{number}", target, module, tags[release]))
    with Store(tmp_path / "disk") as store:
        for deployment, target, module, tag in plan:
            bare = sources[module][0]
            store.vendor(deployment, target, VendorEntry(module, f"file://{bare}?ref={{{{ version }}}}", tag))
        stats = store.stats()
        workspaces = [store.workspace(d, t, m) for d, t, m, _ in plan]
        used, used_blocks = unique_inode_bytes(store.objects_dir, *workspaces)
        copies = copies_blocks = 0
        for workspace in workspaces:
            one, one_blocks = unique_inode_bytes(workspace)
            copies += one
            copies_blocks += one_blocks
        objects = len(store.objects())
    # Independent account of what the store should hold: each distinct release once, from Git.
    releases = sorted({(module, tag) for _, _, module, tag in plan})
    distinct_bytes, unique_blobs = 0, dict[str, int]()
    for module, tag in releases:
        for blob, size in release_files(sources[module][0], tag):
            distinct_bytes += size
            unique_blobs[blob] = size
    assert used == stats.disk_bytes and copies == stats.workspace_bytes, "the store's own accounting agrees"
    return DiskSet(
        workspaces=len(workspaces),
        releases_used=len(releases),
        objects=objects,
        used=used,
        used_blocks=used_blocks,
        copies=copies,
        copies_blocks=copies_blocks,
        distinct_bytes=distinct_bytes,
        per_file_bytes=sum(unique_blobs.values()),
    )


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
        plain = tmp_path / "plain"  # the module's files alone, what (b)'s floor copies
        plain.mkdir()
        write_module(plain, args.files)
        work = tmp_path / "work"
        shutil.copytree(plain, work)
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
            source = store.object_path(digest)
            files = [rel for rel, _ in iter_tree(source)]
            folders = sorted({str(p) for rel in files for p in Path(rel).parents if str(p) != "."})
            top_dirs = [rel for rel in folders if "/" not in rel]
            top_files = [rel for rel in files if "/" not in rel]

            def warm(run: int) -> None:
                found = store.fetch(entry)
                assert found.from_cache
                store.materialize(found.digest, tmp_path / "warm" / str(run))

            def warm_floor(run: int) -> None:
                floor_of_materialise(source, tmp_path / "bare" / str(run), folders, top_dirs, top_files)

            def vendor(run: int) -> None:
                assert not store.vendor("bench", f"t{run}", entry).fetched

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

            def copy(run: int) -> None:
                subprocess.run(["cp", "-r", str(plain), str(tmp_path / "copy" / str(run))], check=True)

            for folder in ("bare", "copy"):
                (tmp_path / folder).mkdir()
            materialize_s, floor_a_s, vendor_s, clone_s, floor_b_s, full_s = medians(
                [warm, warm_floor, vendor, clone, copy, full], args.repeat
            )
            warm0 = tmp_path / "warm" / "0"
            assert (
                tree_digest(warm0, follow_dir_links=True) == tree_digest(tmp_path / "clone" / "0") == digest
            )
            assert tree_digest(tmp_path / "bare" / "0", follow_dir_links=True) == digest
            assert tree_digest(tmp_path / "full" / "0") == digest
            made = entries_made(warm0)
            directories = sum(1 for _ in os.walk(tmp_path / "full" / "0"))
            one_copy, one_copy_blocks = unique_inode_bytes(warm0)

        disk = disk_set(tmp_path)

    speedup = clone_s / materialize_s
    full_speedup = clone_s / full_s
    used, copies, distinct, per_file = disk.used, disk.copies, disk.distinct_bytes, disk.per_file_bytes
    used_blocks, copies_blocks = disk.used_blocks, disk.copies_blocks
    saved_pct = 100 * (1 - used / copies)
    saved_blocks_pct = 100 * (1 - used_blocks / copies_blocks)
    per_file_pct = 100 * (1 - per_file / copies)
    goals = {
        "goal_speedup_met": speedup >= SPEEDUP_GOAL,
        "goal_each_version_stored_once_met": used == distinct and disk.objects == disk.releases_used,
        "goal_floor_a_below_a_met": floor_a_s <= materialize_s,
        "goal_floor_b_below_b_met": floor_b_s <= clone_s,
    }
    rows = [
        ("filesystem", filesystem),
        (
            "module",
            f"{args.files} files in {directories} directories, {one_copy / 1024:.0f} KiB "
            f"({one_copy_blocks / 1024:.0f} KiB on disk)",
        ),
        ("cold fetch into the store (git, once)", f"{cold:.3f} s"),
        (f"(a) warm materialise, median of {args.repeat}", f"{materialize_s * 1000:.1f} ms"),
        ("    what (a) writes", made),
        (
            f"    floor: list its {directories} folders, make these entries, rename",
            f"{floor_a_s * 1000:.1f} ms  ({materialize_s / floor_a_s:.1f}x under (a))",
        ),
        ("    vendor() into a fresh target (+ lock write)", f"{vendor_s * 1000:.1f} ms"),
        (f"(b) git clone --depth 1 file://, median of {args.repeat}", f"{clone_s * 1000:.1f} ms"),
        (
            "    floor: cp -r of the module's tree",
            f"{floor_b_s * 1000:.1f} ms  ({clone_s / floor_b_s:.1f}x under (b))",
        ),
        ("speedup (b)/(a)", f"{speedup:.1f}x  (goal >= {SPEEDUP_GOAL}x)"),
        (f"(c) every folder made, every file linked, median of {args.repeat}", f"{full_s * 1000:.1f} ms"),
        ("    speedup (b)/(c), for reference", f"{full_speedup:.1f}x"),
        (
            "disk set",
            f"{len(MODULES)} modules x {RELEASES} releases; {disk.workspaces} workspaces "
            f"({DEPLOYMENTS} deployments x {len(TARGETS)} targets, 2-4 modules each) on "
            f"{disk.releases_used} releases",
        ),
        ("    as independent copies", f"{copies / 1024:.0f} KiB ({copies_blocks / 1024:.0f} KiB on disk)"),
        (
            f"    the store: {disk.objects} objects + workspaces",
            f"{used / 1024:.0f} KiB ({used_blocks / 1024:.0f} KiB on disk)",
        ),
        ("    distinct releases' files, from Git", f"{distinct / 1024:.0f} KiB"),
        ("    disk saved by the store", f"{saved_pct:.1f}%  ({saved_blocks_pct:.1f}% on disk)"),
        (
            "    files shared across releases too (not done)",
            f"{per_file / 1024:.0f} KiB: {per_file_pct:.1f}% saved",
        ),
    ]
    width = max(len(label) for label, _ in rows)
    print("vendor_cache benchmark")
    print("-" * (width + 40))
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print("-" * (width + 40))
    for name, met in goals.items():
        print(f"{name[5:-4]}: {'met' if met else 'MISSED'}")
    print(
        json.dumps(
            {
                "benchmark": "vendor",
                "files": args.files,
                "dir": str(tmp_path.parent),
                "directories": directories,
                "repeat": args.repeat,
                "materialize_s": round(materialize_s, 5),
                "materialize_floor_s": round(floor_a_s, 5),
                "vendor_s": round(vendor_s, 5),
                "git_clone_s": round(clone_s, 5),
                "git_clone_floor_s": round(floor_b_s, 5),
                "full_tree_s": round(full_s, 5),
                "full_tree_speedup": round(full_speedup, 1),
                "speedup": round(speedup, 1),
                "speedup_goal": SPEEDUP_GOAL,
                "disk_workspaces": disk.workspaces,
                "disk_releases_used": disk.releases_used,
                "disk_copies_bytes": copies,
                "disk_store_bytes": used,
                "disk_distinct_release_bytes": distinct,
                "disk_saved_pct": round(saved_pct, 1),
                "disk_saved_blocks_pct": round(saved_blocks_pct, 1),
                "disk_per_file_sharing_saved_pct": round(per_file_pct, 1),
                **goals,
                "goal_met": all(goals.values()),
            }
        )
    )
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    shutil.which("git") or sys.exit("git is needed for this benchmark")
    sys.exit(main())
