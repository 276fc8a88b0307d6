"""Several CI jobs at once on one remote: clones of one bare repository roll out at the same time.

Every component is a real Terraform `null_resource` whose `local-exec` writes `start` and `end`
lines (with the time and the clone) to one log shared by all clones, so the tests see, from the
outside, when each apply really ran. State is each clone's own: only atmos-tasks' locks on the
remote can keep two applies of one component apart.

Rounds: a few in the default suite; `ATMOS_TASKS_SOAK=1` runs many more.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Repo

ROUNDS = 6 if os.environ.get("ATMOS_TASKS_SOAK") == "1" else 1

PROBE = """
variable "name" { type = string }
variable "run" { type = string }
variable "log" { type = string }
variable "pause" { type = number }
resource "null_resource" "probe" {
  triggers = { run = var.run }
  provisioner "local-exec" {
    command = "sh ${path.module}/probe.sh ${var.name} ${var.log} ${var.pause}"
  }
}
output "run" { value = var.run }
"""
# Appends `start|end <name> <time> <clone>` around a pause; both lines are atomic appends.
PROBE_SH = """echo "start $1 $(date +%s.%N) $PROBE_CLONE" >> "$2"
sleep "$3"
echo "end $1 $(date +%s.%N) $PROBE_CLONE" >> "$2"
"""


def manifest(
    log: Path, run: str, pause: int = 2, extra: str = "", pauses: dict[str, int] | None = None
) -> str:
    components = "".join(
        f"      {name}:\n        component: probe\n"
        f'        vars: {{ name: "{{{{ target.name }}}}/{name}", run: "{run}", log: "{log}", '
        f"pause: {(pauses or {}).get(name, pause)} }}\n"
        for name in ("a", "b", "c")
    )
    return (
        "deployment:\n  name: app\n  components:\n    terraform:\n"
        + components
        + extra
        + "  targets:\n    dev: {}\n    qa: {}\n"
    )


@dataclass
class Interval:
    component: str
    start: float
    end: float
    clone: str


def intervals(log: Path) -> list[Interval]:
    starts: dict[tuple[str, str], float] = {}
    found = []
    for line in log.read_text().splitlines() if log.exists() else []:
        what, name, when, clone = line.split()
        if what == "start":
            starts[(name, clone)] = float(when)
        else:
            found.append(Interval(name, starts.pop((name, clone)), float(when), clone))
    return found


def overlap(a: Interval, b: Interval) -> bool:
    return a.start < b.end and b.start < a.end


@dataclass
class Shared:
    remote: Path
    seed: Repo
    log: Path
    env: dict[str, str]
    tmp: Path

    def clone(self, name: str) -> Repo:
        path = self.tmp / name
        subprocess.run(["git", "clone", "-q", str(self.remote), str(path)], env=self.env, check=True)
        repo = Repo(path, {**self.env, "PROBE_CLONE": name})
        repo.git("config", "user.email", f"{name}@example.com")
        return repo

    def remote_git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.remote, env=self.env, capture_output=True, text=True, check=True
        ).stdout

    def locks(self) -> list[str]:
        return [line for line in self.remote_git("for-each-ref", "refs/atmos/locks/").splitlines() if line]

    def history(self, target: str) -> list[dict]:
        """What the remote records, read by a fresh clone (every tag, not only the ones a clone has)."""
        reader = self.tmp / f"reader-{time.monotonic_ns()}"
        subprocess.run(["git", "clone", "-q", str(self.remote), str(reader)], env=self.env, check=True)
        repo = Repo(reader, self.env)
        repo.git("fetch", "-q", "origin", "+refs/atmos/*:refs/atmos/*", "+refs/tags/*:refs/tags/*")
        proc = repo.cli("history", "app", "--target", target, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)["rollouts"]


@pytest.fixture
def shared(tmp_path: Path, env: dict[str, str]) -> Shared:
    log = tmp_path / "applies.log"
    seed = Repo(tmp_path / "seed", env)
    seed.path.mkdir()
    seed.git("init", "-q", "-b", "main")
    seed.write("doit.cfg", "[GLOBAL]\nloader = atmos\n")
    seed.write(".gitignore", ".atmos/\n")
    seed.write("components/terraform/probe/main.tf", PROBE)
    seed.write("components/terraform/probe/probe.sh", PROBE_SH)
    seed.write("deployments/app.yaml", manifest(log, "0"))
    seed.commit("A deployment of three probes")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], env=env, check=True)
    seed.git("remote", "add", "origin", str(remote))
    seed.git("push", "-q", "origin", "main")
    return Shared(remote, seed, log, env, tmp_path)


def start(repo: Repo, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "doit", *args],
        cwd=repo.path,
        env={**repo.env, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(runs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    done = []
    for run in runs:
        out, err = run.communicate(timeout=300)
        done.append((run.returncode, out + err))
    return done


def assert_never_two_at_once(found: list[Interval]) -> None:
    by_component: dict[str, list[Interval]] = {}
    for interval in found:
        by_component.setdefault(interval.component, []).append(interval)
    for name, applies in by_component.items():
        applies.sort(key=lambda i: i.start)
        for first, second in itertools.pairwise(applies):
            assert not overlap(first, second), f"{name} applied by {first.clone} and {second.clone} at once"


def wait_for(condition, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_three_clones_deploying_the_same_commit_apply_it_once(shared: Shared, round_: int) -> None:
    shared.seed.write("deployments/app.yaml", manifest(shared.log, f"same-{round_}"))
    head = shared.seed.commit("A new run")
    shared.seed.git("push", "-q", "origin", "main")
    clones = [shared.clone(f"c{i}") for i in range(3)]
    results = finish([start(c, "rollout:app:dev", "--remote", "origin") for c in clones])
    assert [code for code, _ in results] == [0, 0, 0], results
    found = intervals(shared.log)
    assert sorted(i.component for i in found) == ["dev/a", "dev/b", "dev/c"]  # each applied once
    assert_never_two_at_once(found)
    # The others waited, then found the commit running and applied nothing.
    assert sum("already runs this commit" in text for _, text in results) == 2, results
    at_head = [r for r in shared.history("dev") if r["git_sha"] == head]
    assert len(at_head) == 1 and sorted(at_head[0]["components"]) == ["a", "b", "c"]
    assert {c["changes"] for c in at_head[0]["components"].values()} == {"applied"}
    assert shared.locks() == []


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_three_clones_deploying_different_commits_take_turns(shared: Shared, round_: int) -> None:
    clones = [shared.clone(f"c{i}") for i in range(3)]
    heads = {}
    for repo in clones:
        repo.write("deployments/app.yaml", manifest(shared.log, f"{repo.path.name}-{round_}", pause=1))
        heads[repo.path.name] = repo.commit(f"{repo.path.name}'s change")
    results = finish([start(c, "rollout:app:dev", "--remote", "origin") for c in clones])
    assert [code for code, _ in results] == [0, 0, 0], results
    found = intervals(shared.log)
    assert len(found) == 9  # every clone applied every component: each run's own commit
    assert_never_two_at_once(found)
    history = shared.history("dev")
    for clone, head in heads.items():
        runs = [r for r in history if r["git_sha"] == head]
        assert len(runs) == 1, (clone, history)  # recorded once, nothing lost
        assert sorted(runs[0]["components"]) == ["a", "b", "c"]
        assert {c["changes"] for c in runs[0]["components"].values()} == {"applied"}
    # Each ran after the one before it: the recorded order is the order of the applies.
    order = [i.clone for i in sorted(found, key=lambda i: i.start) if i.component == "dev/a"]
    newest_first = [next(c for c, h in heads.items() if h == r["git_sha"]) for r in history[:3]]
    assert newest_first == order[::-1]
    assert shared.locks() == []


def test_disjoint_components_and_other_targets_run_at_once(shared: Shared) -> None:
    one, two, three = (shared.clone(f"c{i}") for i in range(3))
    for repo in (one, two, three):
        repo.write("deployments/app.yaml", manifest(shared.log, "parallel", pause=4))
    for repo in (one, two, three):
        repo.commit("Parallel work")
    results = finish(
        [
            start(one, "apply:app:dev:a", "--remote", "origin"),  # CI matrix jobs: one component each
            start(two, "apply:app:dev:b", "--remote", "origin"),
            start(three, "rollout:app:qa", "--remote", "origin"),  # another target
        ]
    )
    assert [code for code, _ in results] == [0, 0, 0], results
    found = {i.component: i for i in intervals(shared.log)}
    assert overlap(found["dev/a"], found["dev/b"]), found
    assert overlap(found["dev/a"], found["qa/a"]) or overlap(found["dev/b"], found["qa/a"]), found
    assert shared.locks() == []


def test_a_waiting_run_gives_up_naming_the_holder(shared: Shared) -> None:
    one, two = shared.clone("c1"), shared.clone("c2")
    for repo in (one, two):
        repo.write("deployments/app.yaml", manifest(shared.log, repo.path.name, pause=3))
        repo.commit("A change")
    holder = start(one, "rollout:app:dev", "--remote", "origin")
    wait_for(lambda: shared.locks() != [], "c1 to take its locks")
    waiting = two.doit("rollout:app:dev", "--remote", "origin", env={"ATMOS_TASKS_LOCK_WAIT": "1"})
    assert waiting.returncode == 3, waiting.stdout + waiting.stderr
    assert "locked by c1@example.com" in waiting.stderr and "atmos-tasks unlock app" in waiting.stderr
    assert "Traceback" not in waiting.stderr
    [(code, text)] = finish([holder])
    assert code == 0, text
    assert [i.clone for i in intervals(shared.log)] == ["c1", "c1", "c1"]  # c2 applied nothing
    assert shared.locks() == []


def test_a_dead_runs_lock_is_broken_with_a_recorded_reason_or_expires(shared: Shared) -> None:
    one, two = shared.clone("c1"), shared.clone("c2")
    for repo in (one, two):
        repo.write("deployments/app.yaml", manifest(shared.log, repo.path.name, pause=3))
        repo.commit("A change")
    dead = start(one, "rollout:app:dev", "--remote", "origin")
    wait_for(lambda: shared.locks() != [], "c1 to take its locks")
    os.killpg(dead.pid, signal.SIGKILL)  # the runner dies: nothing releases its locks
    dead.communicate()
    assert len(shared.locks()) == 3
    refused = two.doit("rollout:app:dev", "--remote", "origin", env={"ATMOS_TASKS_LOCK_WAIT": "0"})
    assert refused.returncode == 3 and "locked by c1@example.com" in refused.stderr

    broken = two.cli("unlock", "app", "--target", "dev", "--reason", "runner c1 died", "--remote", "origin")
    assert broken.returncode == 0, broken.stderr
    assert "Unlocked terraform/a, terraform/b, terraform/c on app/dev" in broken.stdout
    assert shared.locks() == []
    [tag] = shared.remote_git("tag", "-l", "atmos/unlocks/app/dev/*").split()
    message = shared.remote_git("cat-file", "tag", tag)
    assert '"reason": "runner c1 died"' in message and '"by": "c2@example.com"' in message
    assert '"who": "c1@example.com"' in message
    proceeds = two.doit("rollout:app:dev", "--remote", "origin")
    assert proceeds.returncode == 0, proceeds.stdout + proceeds.stderr

    # A lock that is not renewed expires: the next run takes it over without anyone breaking it.
    one.git("pull", "-q", "--no-rebase", "-X", "theirs", "origin", "main")
    one.write("deployments/app.yaml", manifest(shared.log, "later", pause=3))
    one.commit("Later")
    dead = start(one, "rollout:app:dev", "--remote", "origin", env={"ATMOS_TASKS_LOCK_TTL": "2"})
    wait_for(lambda: shared.locks() != [], "c1 to take its locks again")
    os.killpg(dead.pid, signal.SIGKILL)
    dead.communicate()
    two.git("pull", "-q", "--no-rebase", "origin", "main")
    after = two.doit("rollout:app:dev", "--remote", "origin")
    assert after.returncode == 0, after.stdout + after.stderr
    assert shared.locks() == []


@pytest.mark.parametrize("how", ["SIGTERM to the run", "Ctrl-C to the process group under doit -n 2"])
def test_a_cancelled_run_stops_terraform_records_what_finished_and_releases(shared: Shared, how: str) -> None:
    one = shared.clone("c1")
    one.write("deployments/app.yaml", manifest(shared.log, "cancel", pause=6, pauses={"a": 1}))
    head = one.commit("A change")
    parallel = how.endswith("-n 2")
    run = start(one, *(["-n", "2"] if parallel else []), "rollout:app:dev", "--remote", "origin")
    wait_for(lambda: any(i.component == "dev/a" for i in intervals(shared.log)), "a to be applied")
    wait_for(lambda: "start dev/b" in shared.log.read_text(), "b's apply to start")
    if parallel:
        os.killpg(run.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches every process of the group
    else:
        os.kill(run.pid, signal.SIGTERM)  # what CI sends on cancel
    [(code, text)] = finish([run])
    assert code == 1, text
    assert f"cancelled ({'SIGINT' if parallel else 'SIGTERM'})" in text and "Traceback" not in text
    assert shared.locks() == []  # released
    history = shared.history("dev")
    at_head = next(r for r in history if r["git_sha"] == head)
    statuses = {name: c["status"] for name, c in at_head["components"].items()}
    if parallel:
        # Terraform lets an operation in flight finish before it stops: whichever were running may
        # have completed (recorded as success) or been stopped (failed); nothing else is recorded.
        assert set(statuses.values()) <= {"success", "failed"} and statuses, statuses
    else:
        assert statuses["a"] == "success" and statuses["b"] == "failed" and "c" not in statuses, statuses
    # Terraform was stopped, not killed: what it wrote is whole and its lock is released. A component
    # stopped while still planning (under -n 2) is recorded failed before it ever wrote a state.
    for name, status in statuses.items():
        state = one.path / f".atmos/state/app/dev/{name}.tfstate"
        if status == "success" or state.exists():
            assert json.loads(state.read_text())["version"] == 4, name
        assert not (state.parent / f".{name}.tfstate.lock.info").exists()  # Terraform's state lock
    again = one.doit("rollout:app:dev", "--remote", "origin")
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_component_past_its_timeout_is_stopped(shared: Shared) -> None:
    repo = shared.clone("solo")
    text = manifest(shared.log, "solo", pause=1, pauses={"c": 60})
    component = "      c:\n        component: probe\n"
    repo.write(
        "deployments/app.yaml", text.replace(component, component + "        metadata: { timeout: 8s }\n")
    )
    repo.commit("c may take a second")
    started = time.monotonic()
    proc = repo.doit("rollout:app:dev", env={"ATMOS_TASKS_STOP_GRACE": "2"})
    assert time.monotonic() - started < 50, "c was not stopped"
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # Each Terraform run of c is bounded (on a loaded machine even its init may be the one stopped).
    assert re.search(
        r"terraform (init|plan|apply) ran past its metadata.timeout of 8s and was stopped", proc.stdout
    )
    assert "terraform/a: applied" in proc.stdout and "terraform/b: applied" in proc.stdout
    assert sorted(repo.refs("refs/atmos/deployments/app/dev/")) == [
        "refs/atmos/deployments/app/dev/a",
        "refs/atmos/deployments/app/dev/b",
    ]
    assert "(failed)" in proc.stdout and "/dev/c/" in proc.stdout


def test_a_clone_that_deployed_before_plans_again_after_another_deployed_since(shared: Shared) -> None:
    """What one clone's doit database calls up to date holds only while the target still runs what
    that clone last applied. With state shared between runners (here one local state file for both
    clones), rolling X out again after another runner deployed Y must apply X again."""
    state = shared.tmp / "shared-state" / "a.tfstate"
    backend = f'        backend_type: local\n        backend: {{ local: {{ path: "{state}" }} }}\n'
    one, two = shared.clone("c1"), shared.clone("c2")
    heads = {}
    for repo, run in ((one, "x"), (two, "y")):
        text = manifest(shared.log, run, pause=0)
        repo.write("deployments/app.yaml", text.replace("      b:\n", backend + "      b:\n", 1))
        heads[run] = repo.commit(f"Run {run}")
    for repo in (one, two, one):
        proc = repo.doit("rollout:app:dev", "--remote", "origin")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    applies = [i.clone for i in intervals(shared.log) if i.component == "dev/a"]
    assert applies == ["c1", "c2", "c1"]
    deployed = json.loads(state.read_text())["resources"][0]["instances"][0]["attributes"]["triggers"]
    assert deployed == {"run": "x"}
    newest = shared.history("dev")[0]
    assert newest["git_sha"] == heads["x"] and newest["components"]["a"]["changes"] == "applied"


def test_a_run_that_cannot_renew_its_locks_stops_before_they_expire(shared: Shared) -> None:
    """The remote stops answering one run: it cannot renew its locks, so it stops (its Terraform
    killed before the locks can expire) and records nothing; the next run takes over after expiry."""
    one, two = shared.clone("c1"), shared.clone("c2")
    for repo, pause in ((one, 30), (two, 0)):  # c1's apply outlasts its locks; c2's is quick
        repo.write(
            "deployments/app.yaml", manifest(shared.log, repo.path.name, pause=pause, pauses={"b": 0, "c": 0})
        )
        repo.commit("A change")
    ttl = 6
    run = start(one, "rollout:app:dev", "--remote", "origin", env={"ATMOS_TASKS_LOCK_TTL": str(ttl)})
    wait_for(lambda: shared.locks() != [], "c1 to take its locks")
    taken = time.monotonic()
    one.git("remote", "set-url", "--push", "origin", str(shared.tmp / "gone.git"))  # pushes now fail
    [(code, text)] = finish([run])
    stopped = time.monotonic()
    assert code == 1, text
    assert "could not be renewed" in text and "Traceback" not in text
    assert stopped - taken < ttl + 5, "c1 outlived its locks"
    # Its apply was stopped, not finished (under load it may be stopped before its apply began,
    # when the log is not written at all).
    assert not shared.log.exists() or "end dev/a" not in shared.log.read_text()
    assert [r for r in shared.history("dev") if r["git_sha"] == one.head()] == []  # nothing recorded
    proc = two.doit("rollout:app:dev", "--remote", "origin", env={"ATMOS_TASKS_LOCK_WAIT": "60"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
