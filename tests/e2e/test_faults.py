"""Fault injection: a rollout killed at every Git write of its record step, and at random moments of
vendor and apply, then run again, leaves a consistent repository, remote, Terraform state and
vendor store. Real Git, real Terraform, a real bare remote; nothing is mocked.

How a kill is placed. The rollout runs with a `git` wrapper first on its PATH (the real binary's
path written into it). The wrapper numbers every write command (`update-ref`, `hash-object -w`,
`mktree`, `commit-tree`, `push`, `tag`, `notes` other than `show`/`list`; a fetch is not counted),
logs every call, and at a chosen write stops itself (SIGSTOP) just before or just after running the
real Git. The test then freezes the rollout's whole process tree (doit, its workers, Terraform in
its own session, the wrapper) and either SIGKILLs all of it — a real kill — or copies the
repository (and the remote) with `cp -a` and lets the run go on: the copy is byte for byte what a
SIGKILL at that moment leaves on disk, so one run yields a killed state at every write. The record
step's writes are the ones after its read of the target's refs and tags (the last such read of a
run); with a remote, the release of the run's locks comes last. Random moments of vendor and
apply: the test reads the progress lines as they are printed and, when a component starts
`vendoring` or `applying`, kills the tree after a random delay within how long that step took in an
undisturbed run.

After each kill the same rollout runs again without faults (with a remote, after `atmos-tasks
unlock` when the killed run left its locks there) and must exit 0; then:

* `git fsck --strict --no-dangling` is clean, here and in the remote. Dangling objects are expected
  after a kill (tag objects, blobs, trees and notes commits written before their ref moved) and are
  not errors;
* every ref peels to a commit; every `atmos/…` tag is an annotated tag of a commit and parses
  (`parse_message`, `parse_rollout`, an unlock tag's JSON);
* each component's ref is on HEAD with exactly one record of HEAD behind it (no half-written
  record, nothing recorded twice);
* every note of every notes ref is a JSON object; HEAD's `builds` note has `api`, its `sbom` note
  a CycloneDX document for the target; no `refs/notes/atmos-scratch/*` ref is left;
* `terraform state pull` reads each component's state, with resources;
* `atmos-tasks vendor status` and `vendor pull --frozen --verify` find the module intact;
* with a remote, its records and notes equal the local ones;
* one more run of the rollout records nothing and moves no ref.

Default and soak. By default (one to one and a half minutes on two cores) the record step of a
second rollout (per-component tags, a target rollout tag, the builds and SBOM notes of a new
commit) is killed after each of its writes and before the first, through copies, and once more by
a real kill at a random one of them; with `--remote origin`, before each push (the leased push of
the records, the SBOM and builds notes' pushes, the release of the locks) and after the records';
and once each at a random moment of vendor and of apply. `ATMOS_TASKS_SOAK=1` (a quarter of an
hour) kills for real at every write of the whole run, before and after it, of first and second
rollouts, local and with a remote, and at a dozen random moments of vendor and apply per setting.
`ATMOS_TASKS_FAULT_SEED` fixes the random choices (each failure message prints the seed).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from atmos_tasks.gitrepo import GitRepo
from atmos_tasks.kinds.terraform import terraform_binary
from atmos_tasks.tracking import leaf, parse_message, parse_rollout, read_records, ref_name
from tests.conftest import isolated_env

SOAK = os.environ.get("ATMOS_TASKS_SOAK", "") not in ("", "0")
SEED = int(os.environ.get("ATMOS_TASKS_FAULT_SEED") or random.SystemRandom().randrange(1 << 30))
COMPONENTS = ("ecr/api", "api", "ecs/taskdef-api", "ecs/service-api", "monitoring/alarms-api")
REAL_GIT = shutil.which("git") or "/usr/bin/git"
# Killed cases re-run at once (each in its own copy): a rollout waits on Terraform about half the time.
PARALLEL = 4

WRAPPER = r"""#!/bin/sh
# git as a rollout under fault injection sees it: counts and logs writes, pauses where told.
real='@REAL@'
dir='@DIR@'
sub=
skip=0
for arg in "$@"; do
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  case "$arg" in
    -C|-c) skip=1 ;;
    -*) ;;
    *) sub="$arg"; break ;;
  esac
done
write=0
case "$sub" in
  update-ref|mktree|commit-tree|push) write=1 ;;
  hash-object) case " $* " in *" -w "*) write=1 ;; esac ;;
  tag) case " $* " in *" -l "*|*" --list "*|*" -v "*) ;; *) write=1 ;; esac ;;
  notes) case " $* " in
      *" add "*|*" append "*|*" copy "*|*" edit "*|*" merge "*|*" remove "*|*" prune "*) write=1 ;;
    esac ;;
esac
line=$(printf '%s' "$*" | tr '\n\t' '  ')
if [ "$write" = 0 ]; then
  printf 'R\t-\t%s\n' "$line" >> "$dir/log"
  exec "$real" "$@"
fi
exec 9>>"$dir/count.lock"
flock 9
n=$(( $(cat "$dir/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$dir/count"
printf 'W\t%s\t%s\n' "$n" "$line" >> "$dir/log"
flock -u 9
exec 9>&-
pause() {
  if grep -q -x -e "$n:$1" -e "all" "$dir/points" 2>/dev/null; then
    printf '%s %s %s\n' "$$" "$n" "$1" > "$dir/paused.tmp"
    mv "$dir/paused.tmp" "$dir/paused"
    kill -STOP $$
  fi
}
pause before
"$real" "$@"
code=$?
pause after
exit $code
"""


# --- processes -------------------------------------------------------------------------------------


def _parents() -> dict[int, int]:
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        found[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def _tree(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def _signal(pids: set[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def freeze(root: int) -> set[int]:
    """SIGSTOP a process and every descendant, including ones in sessions of their own (Terraform)."""
    frozen: set[int] = set()
    while True:
        new = _tree(root) - frozen
        if not new:
            return frozen
        _signal(new, signal.SIGSTOP)
        frozen |= new


def kill_tree(root: int) -> None:
    _signal(freeze(root), signal.SIGKILL)


def _stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except OSError:
        return True


# --- runs ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """A Git write of a rollout: its number in the run, its command line, and whether it is the record's."""

    number: int
    argv: str
    record: bool

    def label(self, phase: str) -> str:
        return f"{phase} write {self.number} (git {self.argv[:90]})"

    @property
    def subcommand(self) -> str:
        """`update-ref` of `-c core.warnAmbiguousRefs=false update-ref --stdin`, as the wrapper reads it."""
        words = self.argv.split()
        while words and words[0].startswith("-"):
            words = words[2:] if words[0] in ("-c", "-C") else words[1:]
        return words[0] if words else ""


@dataclass(frozen=True)
class Setting:
    name: str
    remote: bool
    second: bool  # the rollout of a new commit after a first one (else the first rollout)

    def args(self) -> list[str]:
        return ["rollout:api:dev", *(["--remote", "origin"] if self.remote else [])]


class Faults:
    """The wrapper's folder for one run: its `bin/git`, the write counter, the log, the pause points."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "bin").mkdir(parents=True)
        git = folder / "bin" / "git"
        git.write_text(WRAPPER.replace("@REAL@", REAL_GIT).replace("@DIR@", str(folder)))
        git.chmod(0o755)
        (folder / "points").write_text("")

    def env(self, env: dict[str, str]) -> dict[str, str]:
        return {**env, "PATH": f"{self.folder / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"}

    def pause_at(self, points: list[str]) -> None:
        (self.folder / "points").write_text("".join(p + "\n" for p in points))

    def writes(self) -> list[Point]:
        """Every write of the run, marked when it belongs to the record step."""
        lines = [line.split("\t", 2) for line in (self.folder / "log").read_text().splitlines()]
        reads = [
            i
            for i, (kind, _, argv) in enumerate(lines)
            if kind == "R" and argv.startswith("for-each-ref") and "refs/tags/atmos/rollouts/" in argv
        ]
        start = reads[-1] if reads else len(lines)
        return [Point(int(n), argv, i > start) for i, (kind, n, argv) in enumerate(lines) if kind == "W"]

    def paused(self) -> tuple[int, int, str] | None:
        path = self.folder / "paused"
        if not path.exists():
            return None
        pid, number, phase = path.read_text().split()
        return int(pid), int(number), phase

    def resume(self) -> None:
        (self.folder / "paused").unlink()


def rollout(
    root: Path,
    env: dict[str, str],
    args: list[str],
    faults: Faults | None = None,
    at_pause: Callable[[int, str], bool] | None = None,
    kill_after: tuple[str, float] | None = None,
) -> tuple[int | None, str]:
    """`doit <args>` in `root`; None for a run this killed.

    `at_pause(number, phase)` is called with the process tree frozen; True kills it there.
    `kill_after=(pattern, delay)` kills it `delay` seconds after a progress line matches.
    """
    run_env = faults.env(env) if faults else env
    proc = subprocess.Popen(
        [sys.executable, "-m", "doit", *args],
        cwd=root,
        env=run_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    killed = threading.Event()

    def kill() -> None:
        if proc.poll() is None:
            killed.set()
            kill_tree(proc.pid)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if kill_after and not killed.is_set() and re.search(kill_after[0], line):
                timer = threading.Timer(kill_after[1], kill)
                timer.daemon = True
                timer.start()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        found = faults.paused() if faults else None
        if found is None:
            time.sleep(0.005)
            continue
        pid, number, phase = found
        while not _stopped(pid):
            time.sleep(0.001)
        frozen = freeze(proc.pid)
        try:
            assert at_pause is not None and faults is not None
            stop_here = at_pause(number, phase)
        except BaseException:
            kill()
            raise
        if stop_here:
            kill()
            break
        faults.resume()
        _signal(frozen, signal.SIGCONT)
    if proc.poll() is None and not killed.is_set():
        kill()
        pytest.fail(f"doit {' '.join(args)} ran past 600 s in {root}")
    proc.wait()
    reader.join(timeout=30)
    return (None if killed.is_set() else proc.returncode), "".join(output)


def git(root: Path, *args: str, input: str | None = None) -> str:
    proc = subprocess.run(
        [REAL_GIT, *args], cwd=root, input=input, capture_output=True, text=True, env=_git_env()
    )
    assert proc.returncode == 0, f"git {' '.join(args)} in {root}: {proc.stderr}"
    return proc.stdout


def _git_env() -> dict[str, str]:
    """The test's own Git calls read no user or system configuration."""
    found = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return found | {"LC_ALL": "C", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def cli(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atmos_tasks.cli", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def copy(source: Path, dest: Path) -> Path:
    """`cp -a`: keeps the vendor store's hard links and the workdirs' symlinks as they are."""
    subprocess.run(["cp", "-a", str(source), str(dest)], check=True)
    return dest


# --- invariants ------------------------------------------------------------------------------------


def refs(root: Path, *prefixes: str) -> dict[str, str]:
    out = git(root, "for-each-ref", "--format=%(refname) %(objectname)", *prefixes)
    return dict(line.split(" ", 1) for line in out.splitlines() if line)


def durable_refs(root: Path) -> dict[str, str]:
    """Every ref but the local copies of the remote's locks and notes (each run fetches them)."""
    return {
        ref: sha
        for ref, sha in refs(root).items()
        if not ref.startswith(("refs/atmos/locks/", "refs/notes/atmos-remote/"))
    }


def assert_git_consistent(root: Path) -> None:
    """fsck, every ref on a commit, every atmos tag parses, every note JSON, no scratch ref."""
    proc = subprocess.run(
        [REAL_GIT, "fsck", "--strict", "--no-dangling", "--no-progress"],
        cwd=root,
        capture_output=True,
        text=True,
        env=_git_env(),
    )
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), (
        f"git fsck in {root}: {proc.stdout}{proc.stderr}"
    )
    every = refs(root)
    peeled = git(root, "cat-file", "--batch-check", input="".join(f"{r}^{{commit}}\n" for r in every))
    for ref, line in zip(every, peeled.splitlines(), strict=True):
        assert line.split()[1:2] == ["commit"], f"{ref} is not on a commit in {root}: {line}"
    rows = git(
        root,
        "for-each-ref",
        "--format=%(refname)%00%(objecttype)%00%(*objecttype)%00%(contents)%1e",
        "refs/tags/atmos/",
    )
    for row in rows.split("\x1e\n"):
        if not row:
            continue
        name, kind, peeled_kind, contents = row.split("\x00", 3)
        tag = name.removeprefix("refs/tags/")
        assert (kind, peeled_kind) == ("tag", "commit"), f"{tag}: a {kind} of a {peeled_kind}"
        parts = tag.split("/")
        if parts[1] == "deployments":
            record = parse_message(contents, tag)
            assert record is not None, f"{tag} does not parse:\n{contents}"
            assert (record.deployment, record.target, leaf(record.component)) == tuple(parts[2:5]), tag
        elif parts[1] == "rollouts":
            assert parse_rollout(contents, tag), f"{tag} does not parse:\n{contents}"
        elif parts[1] == "unlocks":
            assert contents.startswith("atmos-tasks unlock\n\n"), tag
            assert isinstance(json.loads(contents.split("\n\n", 1)[1]).get("reason"), str), tag
        else:
            pytest.fail(f"an atmos tag nothing writes: {tag}")
    assert not refs(root, "refs/notes/atmos-scratch/"), f"scratch refs left in {root}"
    for ref in refs(root, "refs/notes/"):
        blobs = [
            line.split()[2]
            for line in git(root, "ls-tree", "-r", ref).splitlines()
            if line.split()[1] == "blob"
        ]
        for blob in blobs:
            text = git(root, "cat-file", "blob", blob)
            try:
                document = json.loads(text)
            except ValueError:
                pytest.fail(f"a note of {ref} in {root} is not JSON: {text[:200]!r}")
            assert isinstance(document, dict), f"a note of {ref} in {root} is not a JSON object"


def assert_recorded(root: Path, head: str) -> None:
    """Each component's ref is on HEAD, with exactly one record of HEAD; HEAD's notes are there."""
    states = read_records(GitRepo(root), "api", "dev")
    for component in COMPONENTS:
        state = states.get(("api", "dev", component))
        assert state is not None and state.git_sha == head, f"{ref_name('api', 'dev', component)} not on HEAD"
        of_head = [r for r in state.history if r.git_sha == head]
        assert len(of_head) == 1 and of_head[0].status == "success", (
            f"{component}: {len(of_head)} records of HEAD: {[r.tag for r in of_head]}"
        )
    builds = json.loads(git(root, "notes", "--ref=refs/notes/atmos/api/builds", "show", head))
    assert builds["api"]["digest"].startswith("sha256:"), builds
    sbom = json.loads(git(root, "notes", "--ref=refs/notes/atmos/api/sbom", "show", head))
    assert sbom["targets"]["dev"]["bomFormat"] == "CycloneDX", list(sbom["targets"])


def assert_state_readable(root: Path, env: dict[str, str]) -> None:
    binary = terraform_binary("terraform")
    workdirs = sorted((root / ".atmos" / "workdir" / "api" / "dev").iterdir())
    assert [w.name for w in workdirs] == sorted(leaf(c) for c in COMPONENTS if c != "api"), workdirs

    def pull(workdir: Path) -> None:
        # A vendored module runs in its subdirectory of the tree the workdir keeps (tree/<subdir>).
        runs_in = next((p.parent for p in sorted(workdir.rglob("backend.tf.json"))), workdir)
        proc = subprocess.run(
            [binary, "state", "pull"], cwd=runs_in, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, f"terraform state pull in {workdir}: {proc.stderr}"
        state = json.loads(proc.stdout)
        assert state["lineage"] and state["resources"], f"{workdir}: an empty state"

    with ThreadPoolExecutor(len(workdirs)) as pool:
        list(pool.map(pull, workdirs))


def assert_vendor_clean(root: Path, env: dict[str, str]) -> None:
    proc = cli(root, env, "vendor", "status", "--deployment", "api", "--target", "dev", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)
    assert entry["lock_matches"] and entry["object_present"] and entry["workspace_intact"], entry
    assert entry["object_damage"] == [], entry
    proc = cli(root, env, "vendor", "pull", "--frozen", "--verify", "--deployment", "api", "--target", "dev")
    assert proc.returncode == 0 and "warning" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def assert_remote_agrees(root: Path, remote: Path) -> None:
    assert_git_consistent(remote)
    for prefix in ("refs/atmos/deployments/", "refs/tags/atmos/", "refs/notes/atmos/"):
        assert refs(root, prefix) == refs(remote, prefix), f"{prefix}: local and remote differ"
    assert not refs(remote, "refs/atmos/locks/"), "the remote still holds locks"


def recover_and_check(case: Path, setting: Setting, env: dict[str, str], head: str, what: str) -> None:
    """Run the killed rollout again, then every invariant; failures name the kill and the seed."""
    root, remote = case / "repo", case / "remote.git"
    try:
        if setting.remote and refs(remote, "refs/atmos/locks/"):
            # The killed run's locks outlive it (until they expire): break them, as its operator would.
            proc = cli(
                root, env, "unlock", "api", "--target", "dev", "--remote", "origin", "--reason", "killed"
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr
        code, out = rollout(root, env, setting.args())
        assert code == 0, f"the re-run exited {code}:\n{out}"
        assert_git_consistent(root)
        assert_recorded(root, head)
        if setting.remote:
            assert_remote_agrees(root, remote)
        assert_state_readable(root, env)
        assert_vendor_clean(root, env)
        before = durable_refs(root)
        code, out = rollout(root, env, setting.args())
        assert code == 0 and "Nothing to record" in out, f"a further run exited {code}:\n{out}"
        assert durable_refs(root) == before, "a further run moved refs"
    except AssertionError as err:
        raise AssertionError(f"[{setting.name}, killed {what}, ATMOS_TASKS_FAULT_SEED={SEED}] {err}") from err


def check_all(
    jobs: list[tuple[str, Callable[[], Path]]], setting: Setting, env: dict[str, str], head: str
) -> None:
    """Each job leaves a killed case (a copy, or a run it killed); re-run and check each, some at once."""

    def one(job: tuple[str, Callable[[], Path]]) -> str | None:
        what, make = job
        try:
            case = make()
            recover_and_check(case, setting, env, head, what)
        except AssertionError as err:
            return str(err)
        shutil.rmtree(case, ignore_errors=True)
        return None

    with ThreadPoolExecutor(PARALLEL) as pool:
        failures = [f for f in pool.map(one, jobs) if f]
    assert not failures, f"{len(failures)} of {len(jobs)} killed runs did not recover:\n\n" + "\n\n".join(
        failures
    )


# --- settings --------------------------------------------------------------------------------------


class Baselines:
    """Per worker, once: the example ready for a setting's faulted rollout (first or second, with or
    without a remote), in `<folder>/repo` and `<folder>/remote.git`."""

    def __init__(self, folder: Path, template: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.template = template
        self.env = env
        self.made: dict[tuple[bool, bool], Path] = {}
        self.first_output: dict[bool, str] = {}  # what an undisturbed first rollout printed
        self.lock = threading.Lock()

    def get(self, setting: Setting) -> Path:
        key = (setting.remote, setting.second)
        with self.lock:
            if key not in self.made:
                self.made[key] = self._make(setting)
            return self.made[key]

    def _make(self, setting: Setting) -> Path:
        case = (
            self.folder
            / f"{'remote' if setting.remote else 'local'}-{'second' if setting.second else 'first'}"
        )
        case.mkdir()
        root = copy(self.template, case / "repo")
        if setting.remote:
            git(case, "clone", "--bare", "-q", str(root), "remote.git")
            git(root, "remote", "add", "origin", "../remote.git")
        if setting.second:
            code, out = rollout(root, self.env, setting.args())
            assert code == 0, out
            self.first_output[setting.remote] = out
            taskdef = root / "stacks/catalog/ecs/taskdef-api.yaml"
            taskdef.write_text(
                taskdef.read_text().replace("log_retention_days: 14", "log_retention_days: 30")
            )
            git(
                root,
                "-c",
                "user.name=Ada Tester",
                "-c",
                "user.email=ada@example.com",
                "commit",
                "-qam",
                "30 days",
            )
        return case


@pytest.fixture(scope="session")
def baselines(tmp_path_factory: pytest.TempPathFactory, example_template: Path, home: Path) -> Baselines:
    return Baselines(tmp_path_factory.mktemp("fault-baselines"), example_template, isolated_env(home))


@pytest.fixture
def rng() -> random.Random:
    return random.Random(SEED)


LOCAL_SECOND = Setting("local, second rollout", remote=False, second=True)
REMOTE_SECOND = Setting("--remote origin, second rollout", remote=True, second=True)
LOCAL_FIRST = Setting("local, first rollout", remote=False, second=False)
REMOTE_FIRST = Setting("--remote origin, first rollout", remote=True, second=False)
SETTINGS = [LOCAL_SECOND, REMOTE_SECOND, LOCAL_FIRST, REMOTE_FIRST]


def sweep(
    case: Path, setting: Setting, env: dict[str, str], folder: Path, copies: bool = True
) -> tuple[list[Point], list[tuple[Path, str]], str]:
    """One run of the case's rollout, its writes logged; with `copies`, paused before and after each
    write for a copy of the case as a kill there leaves it.

    Returns the writes, the copies (folder, label) and HEAD."""
    work = copy(case, folder / "run")
    faults = Faults(folder / "faults")
    faults.pause_at(["all"] if copies else [])
    made: list[tuple[Path, int, str]] = []

    def at_pause(number: int, phase: str) -> bool:
        made.append((copy(work, folder / f"{phase}-{number}"), number, phase))
        return False

    code, out = rollout(work / "repo", env, setting.args(), faults, at_pause)
    assert code == 0, out
    head = git(work / "repo", "rev-parse", "HEAD").strip()
    shutil.rmtree(work)
    points = {p.number: p for p in faults.writes()}
    return list(points.values()), [(path, points[n].label(phase)) for path, n, phase in made], head


def chosen(
    copies: list[tuple[Path, str]], keep: Callable[[str], bool]
) -> list[tuple[str, Callable[[], Path]]]:
    """The copies to check, as jobs; the others are removed."""
    kept: list[tuple[str, Callable[[], Path]]] = []
    for path, label in copies:
        if keep(label):
            kept.append((label, functools.partial(Path, path)))
        else:
            shutil.rmtree(path, ignore_errors=True)
    return kept


def real_kill(
    case: Path, setting: Setting, env: dict[str, str], folder: Path, point: Point, phase: str
) -> tuple[str, Callable[[], Path]]:
    """A job: a copy of the case whose rollout is SIGKILLed at a write."""

    def make() -> Path:
        work = copy(case, folder)
        faults = Faults(folder.with_name(folder.name + "-faults"))
        faults.pause_at([f"{point.number}:{phase}"])
        code, out = rollout(work / "repo", env, setting.args(), faults, lambda _n, _p: True)
        assert code is None, f"the rollout was not killed at {point.label(phase)}:\n{out}"
        return work

    return ("for real " + point.label(phase), make)


def killed_during(
    case: Path, setting: Setting, env: dict[str, str], folder: Path, component: str, doing: str, delay: float
) -> tuple[str, Callable[[], Path]]:
    """A job: a copy of the case whose rollout is SIGKILLed `delay` seconds into a step (sooner when
    a faster run finished first)."""
    what = f"{delay:.2f}s into {doing} {component}"

    def make() -> Path:
        pattern = rf"terraform/{re.escape(component)}: {doing}$"
        wait, out = delay, ""
        for _attempt in range(4):
            shutil.rmtree(folder, ignore_errors=True)
            work = copy(case, folder)
            code, out = rollout(work / "repo", env, setting.args(), kill_after=(pattern, wait))
            if code is None:
                return work
            wait /= 4
        pytest.fail(f"never killed {what}:\n{out}")

    return (what, make)


# --- tests -----------------------------------------------------------------------------------------


@pytest.mark.terraform
@pytest.mark.parametrize("setting", SETTINGS if SOAK else [LOCAL_SECOND], ids=lambda s: s.name)
def test_killed_at_each_write_of_the_record_step_a_rerun_finishes(
    setting: Setting, baselines: Baselines, env: dict[str, str], tmp_path: Path, rng: random.Random
) -> None:
    case = baselines.get(setting)
    points, copies, head = sweep(case, setting, env, tmp_path, copies=not SOAK)
    record = [p for p in points if p.record]
    # Tags and refs (hash-object, update-ref); the builds and SBOM notes (hash-object, mktree,
    # commit-tree, update-ref each).
    assert len(record) >= 6 and {p.subcommand for p in record} >= {"hash-object", "update-ref"}, points
    if SOAK:
        # Real kills at every write of the whole run (build notes, locks, records, notes), before and after.
        jobs = [
            real_kill(case, setting, env, tmp_path / f"kill-{phase}-{p.number}", p, phase)
            for p in points
            for phase in ("before", "after")
        ]
    else:
        labels = {record[0].label("before")} | {p.label("after") for p in record}
        jobs = chosen(copies, lambda label: label in labels)
        jobs.append(
            real_kill(
                case, setting, env, tmp_path / "kill", rng.choice(record), rng.choice(("before", "after"))
            )
        )
    check_all(jobs, setting, env, head)


@pytest.mark.terraform
def test_killed_at_each_push_with_a_remote_the_rerun_agrees_with_it(
    baselines: Baselines, env: dict[str, str], tmp_path: Path
) -> None:
    setting = REMOTE_SECOND
    case = baselines.get(setting)
    points, copies, head = sweep(case, setting, env, tmp_path)
    pushes = [p for p in points if p.record and p.subcommand == "push"]
    # The leased push of the records, the SBOM note's, the builds note's, the release of the locks:
    # killed before each (what it pushes is only here; at the last, the locks are held), and after
    # the records' (on the remote, not here yet).
    assert len(pushes) >= 4 and pushes[-1] == points[-1], points
    labels = {p.label("before") for p in pushes} | {pushes[0].label("after")}
    check_all(chosen(copies, lambda label: label in labels), setting, env, head)


@pytest.mark.terraform
@pytest.mark.parametrize(
    "setting", [LOCAL_FIRST, REMOTE_FIRST] if SOAK else [LOCAL_FIRST], ids=lambda s: s.name
)
def test_killed_at_random_moments_of_vendor_and_apply_a_rerun_finishes(
    setting: Setting, baselines: Baselines, env: dict[str, str], tmp_path: Path, rng: random.Random
) -> None:
    case = baselines.get(setting)
    head = git(case / "repo", "rev-parse", "HEAD").strip()
    # How long each step took in an undisturbed first rollout (the one the second rollouts follow).
    baselines.get(Setting(setting.name, setting.remote, second=True))
    took = {
        (component, "vendoring" if verb == "vendored" else "applying"): float(seconds)
        for component, verb, seconds in re.findall(
            r"terraform/(\S+): (vendored|applied)\b.*\((\d+\.\d)s\)", baselines.first_output[setting.remote]
        )
    }
    vendoring = [step for step in took if step[1] == "vendoring"]
    applying = [step for step in took if step[1] == "applying"]
    assert len(vendoring) == 1 and len(applying) == 4, took
    # The vendoring, an apply, then (soak) any of them.
    steps = [
        vendoring[0],
        rng.choice(applying),
        *(rng.choice(sorted(took)) for _ in range(10 if SOAK else 0)),
    ]
    jobs = [
        killed_during(
            case,
            setting,
            env,
            tmp_path / f"kill-{index}",
            component,
            doing,
            rng.uniform(0, took[(component, doing)]),
        )
        for index, (component, doing) in enumerate(steps)
    ]
    check_all(jobs, setting, env, head)
