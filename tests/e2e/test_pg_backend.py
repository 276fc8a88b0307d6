"""Shared Terraform state in a real PostgreSQL (Terraform's `pg` backend), used by several runners.

The stacks say `backend_type: pg`, with the connection string read from the environment
(`!env PG_STATE_CONN_STR`, a password in it) and one schema per component (a template of its
name): a schema holds one state per Terraform workspace, and every component runs in the default
one. The server is the
session's throwaway cluster (tests/postgres_env.py); what a test asserts about state it reads from
PostgreSQL itself with psql, not from atmos-tasks' output.

Every component is a `null_resource` whose provisioners append `create <name> <id> <run>` and
`destroy <name> <id>` to a log shared by all clones, so a test sees from the outside which
resources any runner created and destroyed: a resource created but neither destroyed since nor in
the final state is one whose state was lost.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from atmos_tasks.kinds.terraform import TerraformExecutor, TerraformJob
from tests.conftest import Repo
from tests.e2e.test_secrets import (
    assert_private,
    files_holding,
    git_everything,
    github_env,
    records_and_notes,
    without_mask_commands,
)
from tests.postgres_env import PgDatabase, PgServer

pytestmark = pytest.mark.terraform

# The tests that race runners run a few rounds in the default suite; `ATMOS_TASKS_SOAK=1` runs more.
SOAK = os.environ.get("ATMOS_TASKS_SOAK") == "1"
ROUNDS = 20 if SOAK else 2  # databases made at once by three runners' first init
RACES = 10 if SOAK else 1  # three runners' rollouts racing for one state

PROBE = """
variable "name" { type = string }
variable "run" { type = string }
variable "log" { type = string }
variable "pause" { type = number }

resource "null_resource" "probe" {
  triggers = { name = var.name, run = var.run, log = var.log }
  provisioner "local-exec" {
    command = "sleep ${var.pause}; echo create ${var.name} ${self.id} ${var.run} >> ${var.log}"
  }
  provisioner "local-exec" {
    when    = destroy
    command = "echo destroy ${self.triggers.name} ${self.id} >> ${self.triggers.log}"
  }
}

output "run" { value = var.run }
"""

NAMES = ("a", "b", "c")
# Each component its own schema, named by a Go template as Atmos renders backends.
STACK = """terraform:
  backend_type: pg
  backend:
    pg:
      conn_str: !env PG_STATE_CONN_STR
      schema_name: 'state_{{ .atmos_component }}'
"""


def manifest(log: Path, run: str, names: tuple[str, ...] = NAMES, pause: int | dict[str, int] = 0) -> str:
    """Probes `names`, each pausing `pause` seconds in its apply (or as `pause` maps it, else 0)."""
    pauses = pause if isinstance(pause, dict) else dict.fromkeys(names, pause)
    components = "".join(
        f"      {name}:\n        component: probe\n"
        f'        vars: {{ name: {name}, run: "{run}", log: "{log}", pause: {pauses.get(name, 0)} }}\n'
        for name in names
    )
    return (
        "deployment:\n  name: app\n  stacks: [shared]\n  components:\n    terraform:\n"
        + components
        + "  targets:\n    dev: {}\n"
    )


@dataclass
class Shared:
    """A bare remote every runner clones, a database their state shares, and the probes' log."""

    remote: Path
    db: PgDatabase
    log: Path
    env: dict[str, str]
    tmp: Path

    def clone(
        self,
        name: str,
        run: str | None = None,
        names: tuple[str, ...] = NAMES,
        pause: int | dict[str, int] = 0,
    ) -> Repo:
        """A runner: its own clone, its own `.atmos/`; with `run`, its own commit of the manifest."""
        path = self.tmp / name
        subprocess.run(["git", "clone", "-q", str(self.remote), str(path)], env=self.env, check=True)
        repo = Repo(path, self.env)
        if run is not None:
            repo.write("deployments/app.yaml", manifest(self.log, run, names, pause))
            repo.commit(f"{name}: run {run}")
        return repo

    def state(self, name: str) -> dict[str, Any] | None:
        """The component's state as PostgreSQL holds it (None: no state yet)."""
        if self.db.query(f"SELECT to_regclass('state_{name}.states') IS NULL") == "t":
            return None
        found = self.db.query(f"SELECT data FROM state_{name}.states WHERE name = 'default'")
        return json.loads(found) if found else None

    def deployed(self, name: str) -> tuple[str, str]:
        """(resource id, run) of the one probe the component's state holds; its output agrees."""
        state = self.state(name)
        assert state is not None, f"no state for {name}"
        [resource] = state["resources"]
        [instance] = resource["instances"]
        attributes = instance["attributes"]
        assert state["outputs"]["run"]["value"] == attributes["triggers"]["run"], state
        return attributes["id"], attributes["triggers"]["run"]

    def events(self) -> list[list[str]]:
        return [line.split() for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def living(self, name: str) -> set[str]:
        """Ids of the component's resources some runner created and none destroyed."""
        events = [e for e in self.events() if e[1] == name]
        return {e[2] for e in events if e[0] == "create"} - {e[2] for e in events if e[0] == "destroy"}


@pytest.fixture
def shared(tmp_path: Path, env: dict[str, str], pg_database: PgDatabase) -> Shared:
    log = tmp_path / "probes.log"
    env = {**env, "PG_STATE_CONN_STR": pg_database.conn_str}
    seed = Repo(tmp_path / "seed", env)
    seed.path.mkdir()
    seed.git("init", "-q", "-b", "main")
    seed.write("doit.cfg", "[GLOBAL]\nloader = atmos\n")
    seed.write(".gitignore", ".atmos/\n")
    seed.write("components/terraform/probe/main.tf", PROBE)
    seed.write("atmos.yaml", "templates:\n  settings:\n    enabled: true\n")
    seed.write("stacks/shared.yaml", STACK)
    seed.write("deployments/app.yaml", manifest(log, "seed"))
    seed.commit("Three probes whose state is in PostgreSQL")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], env=env, check=True)
    seed.git("remote", "add", "origin", str(remote))
    seed.git("push", "-q", "origin", "main")
    return Shared(remote, pg_database, log, env, tmp_path)


def start(repo: Repo, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "doit", *args],
        cwd=repo.path,
        env={**repo.env, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(runs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    done = []
    for run in runs:
        out, err = run.communicate(timeout=300)
        done.append((run.returncode, out + err))
    return done


def test_a_rollout_keeps_each_components_state_in_its_postgresql_schema(shared: Shared) -> None:
    repo = shared.clone("solo", run="r1", names=("a", "b"))
    proc = repo.doit("rollout:app:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("a", "b"):
        resource_id, run = shared.deployed(name)
        assert run == "r1" and shared.living(name) == {resource_id}
    assert shared.state("c") is None  # not in this deployment: no state, its table never made
    assert not (repo.path / ".atmos" / "state").exists()  # nothing kept locally
    schemas = (
        "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname LIKE 'state_%'"
    )
    assert shared.db.query(schemas) == "state_a,state_b"

    # Another clone, with nothing local, reads the same state: its plans find nothing to change.
    other = shared.clone("other", run="r1", names=("a", "b"))
    proc = other.doit("rollout:app:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("planned, no changes") == 2, proc.stdout
    assert [e[0] for e in shared.events()] == ["create", "create"]


def test_three_runners_apply_their_components_into_one_database_at_once(shared: Shared) -> None:
    """CI matrix jobs, one component each, without atmos-tasks' remote locks: only PostgreSQL's
    locks are between them. Their states are apart, but not their locks: the pg backend takes a
    database-wide advisory lock whenever it locks a state, and holds it while it creates one;
    before runners waited for locks, such jobs failed (`Already locked for workspace creation`).
    Each state ends up with its own runner's resource, and only that."""
    runners = [shared.clone(f"c{i}", run=f"c{i}", pause=1) for i in range(3)]
    results = finish(
        [start(repo, f"apply:app:dev:{name}") for repo, name in zip(runners, NAMES, strict=True)]
    )
    assert [code for code, _ in results] == [0, 0, 0], results
    for index, name in enumerate(NAMES):
        resource_id, run = shared.deployed(name)
        assert run == f"c{index}" and shared.living(name) == {resource_id}
    assert not any(e[0] == "destroy" for e in shared.events())


@pytest.mark.parametrize("round_", range(RACES))
def test_three_runners_racing_for_one_state_lose_nothing(shared: Shared, round_: int) -> None:
    """Three runners roll out their own commits of component `a` at once, with no remote lock to
    order them: Terraform's state lock and its check that a saved plan still matches the state are
    all there is. Each runner also plans two components of its own between planning `a` and
    applying it, so the runners' plans of `a` come before their applies. A runner's `a` either
    applies, or fails saying its plan is stale (another applied since it planned); never two
    applies over each other, never a resource lost from the state. Also while the state does not
    exist yet: Terraform cannot tell a plan made against no state is stale, and before
    atmos-tasks created the empty state first, every runner's `a` applied, each over the last."""
    runners = [
        shared.clone(f"c{i}", run=f"c{i}", names=("a", f"x{i}", f"y{i}"), pause={"a": 1}) for i in range(3)
    ]
    results = finish([start(repo, "rollout:app:dev") for repo in runners])
    applied = []
    for (code, text), repo in zip(results, runners, strict=True):
        assert "Traceback" not in text and "Error acquiring the state lock" not in text, text
        if "✓ terraform/a: applied" in text:
            applied.append(repo.path.name)
        else:
            assert code == 1 and "✗ terraform/a: apply failed" in text, text
            assert "Saved plan is stale" in text, text
    assert applied, results
    resource_id, run = shared.deployed("a")
    creates = [e for e in shared.events() if e[0] == "create" and e[1] == "a"]
    assert len(creates) == len(applied)  # a failed runner applied nothing
    assert run in applied and run == creates[-1][3]  # the last apply is what the state holds
    # Every resource a runner created was destroyed by the next apply, except the one in the state.
    assert shared.living("a") == {resource_id}


def _probe_job(root: Path, module: Path, conn_str: str, run: str, log: Path) -> TerraformJob:
    return TerraformJob(
        kind="terraform",
        deployment="app",
        target="dev",
        component="a",
        root=str(root),
        workdir=str(root / ".atmos" / "workdir" / "app" / "dev" / "a"),
        vars={"name": "a", "run": run, "log": str(log), "pause": 0},
        env={},
        static_key="-",
        module_dir=str(module),
        backend_type="pg",
        backend={"conn_str": conn_str, "schema_name": "state_a"},
    )


def test_runners_initialising_against_a_new_database_at_once_all_succeed(
    postgres_server: PgServer, tmp_path: Path
) -> None:
    """The first `terraform init` of each runner makes the pg backend's schema and table, with
    `CREATE … IF NOT EXISTS`, which PostgreSQL does not make safe against a concurrent one: a
    third to a half of such inits failed (`duplicate key value violates unique constraint`).
    Three runners (their own repository roots, so their own init locks) plan one component in a
    new database at once, a few times over."""
    module = tmp_path / "module"
    module.mkdir()
    (module / "main.tf").write_text(PROBE)
    for round_ in range(ROUNDS):
        database = f"init_{round_}_{uuid.uuid4().hex[:8]}"
        postgres_server.psql("postgres", f"CREATE DATABASE {database}")
        jobs = []
        for runner in range(3):
            root = tmp_path / f"round{round_}" / f"runner{runner}"
            jobs.append(
                _probe_job(
                    root,
                    module,
                    postgres_server.conn_str(database),
                    f"runner{runner}",
                    tmp_path / "probes.log",
                )
            )
        with ThreadPoolExecutor(len(jobs)) as pool:
            planned = list(pool.map(lambda job: TerraformExecutor().plan(job, {}, {}), jobs))
        assert [p["status"] for p in planned] == ["planned"] * 3, planned
        assert [p["changes"] for p in planned] == [{"add": 1, "change": 0, "destroy": 0}] * 3
        # Each plan was made against the one empty state (with a lineage) the runners created.
        tables = "SELECT count(*), count(DISTINCT name) FROM state_a.states"
        assert postgres_server.psql(database, tables) == "1|1"


def test_a_fresh_runner_plans_against_the_state_another_runner_left_and_never_replaces_it(
    postgres_server: PgServer, tmp_path: Path
) -> None:
    """The empty state a fresh runner pushes before its first plan is refused over a state that
    holds resources: the plan is made against that state (its lineage and serial), which stays."""
    module = tmp_path / "module"
    module.mkdir()
    (module / "main.tf").write_text(PROBE)
    database = f"kept_{uuid.uuid4().hex[:8]}"
    postgres_server.psql("postgres", f"CREATE DATABASE {database}")
    conn_str = postgres_server.conn_str(database)
    log = tmp_path / "probes.log"
    first = _probe_job(tmp_path / "runner1", module, conn_str, "one", log)
    executor = TerraformExecutor()
    planned = executor.plan(first, {}, {})
    assert planned["status"] == "planned", planned
    assert executor.apply(first, planned)["status"] == "applied"
    state_sql = "SELECT data FROM state_a.states"
    left = json.loads(postgres_server.psql(database, state_sql))
    assert left["resources"] and left["serial"] >= 1

    second = _probe_job(tmp_path / "runner2", module, conn_str, "two", log)
    replanned = executor.plan(second, {}, {})
    assert replanned["status"] == "planned", replanned
    assert replanned["changes"] == {"add": 1, "change": 0, "destroy": 1}  # the run's trigger changed
    from atmos_tasks.kinds.terraform import PLAN_FILE, plan_state

    assert plan_state(Path(second.workdir) / PLAN_FILE) == (left["lineage"], left["serial"])
    assert json.loads(postgres_server.psql(database, state_sql)) == left
    assert "cannot import state" in (Path(second.workdir) / "atmos-state-push.log").read_text()


@pytest.fixture
def lock_holder(shared: Shared) -> Iterator[subprocess.Popen[str]]:
    """A psql session, to take and release PostgreSQL advisory locks as another runner would."""
    holder = subprocess.Popen(
        shared.db.server.psql_argv(shared.db.name),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    yield holder
    if holder.poll() is None:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


def say(holder: subprocess.Popen[str], sql: str) -> None:
    assert holder.stdin is not None
    holder.stdin.write(sql + "\n")
    holder.stdin.flush()


def wait_for(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_held_state_lock_makes_a_rollout_wait_and_a_short_wait_fail_clearly(
    shared: Shared, lock_holder: subprocess.Popen[str]
) -> None:
    repo = shared.clone("solo", run="r1", names=("a",))
    proc = repo.doit("rollout:app:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    before = shared.state("a")
    # Terraform's pg backend locks a state with the advisory lock keyed by the state's row id.
    row = shared.db.query("SELECT id FROM state_a.states WHERE name = 'default'")
    say(lock_holder, f"SELECT pg_advisory_lock({row});")
    held = f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {row} AND granted"
    wait_for(lambda: shared.db.query(held) == "1", "the lock to be held")
    repo.write("deployments/app.yaml", manifest(shared.log, "r2", ("a",)))
    repo.commit("Run r2")

    short = repo.doit("rollout:app:dev", env={"ATMOS_TASKS_LOCK_WAIT": "1"})
    text = short.stdout + short.stderr
    assert short.returncode == 1, text
    assert "terraform plan failed (exit 1): another run holds the state lock (waited 1s" in text
    assert "Workspace is already locked" in text and "Traceback" not in text
    assert shared.state("a") == before  # untouched

    waiting = start(repo, "rollout:app:dev")
    time.sleep(2)
    assert waiting.poll() is None, waiting.communicate()  # still waiting for the lock
    assert shared.state("a") == before
    say(lock_holder, f"SELECT pg_advisory_unlock({row});")
    [(code, text)] = finish([waiting])
    assert code == 0, text
    resource_id, run = shared.deployed("a")
    assert run == "r2" and shared.living("a") == {resource_id}


def test_a_lock_held_for_a_moment_is_tried_again_at_once_not_after_terraforms_second(
    shared: Shared, lock_holder: subprocess.Popen[str]
) -> None:
    """Any lock of a state in a pg database takes the database's creation lock for a moment, and a
    runner creating a state holds it while it writes: other runners' plans and applies then find a
    lock taken. Terraform would try again after 1 s, 2 s…; atmos-tasks tries again within tens of
    milliseconds, and the step's log says so while it waits and after."""
    repo = shared.clone("quick", run="r1", names=("a",))
    proc = repo.doit("rollout:app:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    say(lock_holder, "SELECT pg_advisory_lock(-1);")  # as a runner creating a state holds it
    held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4294967295 AND granted"
    wait_for(lambda: shared.db.query(held) == "1", "the creation lock to be held")
    repo.write("deployments/app.yaml", manifest(shared.log, "r2", ("a",)))
    repo.commit("Run r2")
    log = repo.path / ".atmos/workdir/app/dev/a/atmos-plan.log"
    log.unlink()
    waiting = start(repo, "rollout:app:dev")
    wait_for(
        lambda: log.is_file() and "the state lock is busy: trying again" in log.read_text(), "a quick try"
    )
    assert shared.deployed("a")[1] == "r1"
    say(lock_holder, "SELECT pg_advisory_unlock(-1);")
    [(code, text)] = finish([waiting])
    assert code == 0, text
    assert shared.deployed("a")[1] == "r2"
    assert log.read_text().startswith("(the state lock was busy: tried again ")
    assert "Error acquiring the state lock" not in text


def test_the_conn_str_password_never_leaves(shared: Shared, tmp_path: Path) -> None:
    password = shared.db.server.password
    repo = shared.clone("solo", run="r1", names=("a",))
    github, summary = github_env(tmp_path)
    proc = repo.doit("rollout:app:dev", env=github)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"::add-mask::{password}" in proc.stdout.splitlines()  # GitHub hides it from the log too
    assert password not in without_mask_commands(out) and password not in summary.read_text()
    # Terraform got it: the password is required over TCP (tests/postgres_env.py).
    assert shared.deployed("a")[1] == "r1"

    # A connection string Terraform cannot parse: Terraform prints all of it in its error.
    broken = shared.db.conn_str.replace(f":{shared.db.server.port}/", ":notaport/")
    proc = repo.doit("rollout:app:dev", env={**github, "PG_STATE_CONN_STR": broken})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    shown = without_mask_commands(out)
    assert f"postgres://{shared.db.server.user}:***@127.0.0.1:notaport/" in shown
    assert password not in shown and password not in summary.read_text()

    described = repo.cli("describe", "app", "--target", "dev", "--format", "json")
    assert described.returncode == 0, described.stderr
    backend = json.loads(described.stdout)["targets"]["dev"]["components"]["a"]["backend"]
    assert backend["conn_str"] == shared.db.conn_str.replace(password, "***")
    assert backend["schema_name"] == "state_a"

    assert password not in records_and_notes(repo)
    assert password.encode() not in git_everything(repo)
    workdir = repo.path / ".atmos/workdir/app/dev/a"
    for log in workdir.glob("atmos-*.log"):
        assert password not in log.read_text(), log
    assert "***" in (workdir / "atmos-init.log").read_text()
    # What must hold it (the backend configuration Terraform reads and keeps) is its owner's only.
    holding = files_holding(repo, password)
    assert workdir / "backend.tf.json" in holding
    assert_private(holding)


def remote_records(remote: Path, env: dict[str, str]) -> dict[str, Any]:
    """What a remote records, comparable between two remotes of one commit: each component's ref
    (the commit it names), each tag's message without its time and actor, each note without its
    times, and the locks left."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=remote, env=env, capture_output=True, text=True, check=True
        ).stdout

    volatile = ("timestamp:", "deployed_by:", "metadata:")
    refs = dict(
        line.split()
        for line in git(
            "for-each-ref", "--format=%(refname) %(objectname)", "refs/atmos/deployments"
        ).splitlines()
    )
    tags = {}
    for line in git("for-each-ref", "--format=%(refname)", "refs/tags/atmos/").splitlines():
        name = line.rsplit("/", 1)[0]  # without its UTC time
        message = git("for-each-ref", "--format=%(contents)", line)
        kept = [
            row for row in message.splitlines() if not row.startswith(volatile) and not row.startswith("  ")
        ]
        tags.setdefault(name, []).append("\n".join(kept))
    notes = {}
    for ref in git("for-each-ref", "--format=%(refname)", "refs/notes/").splitlines():
        for listed in git("notes", "--ref", ref, "list").splitlines():
            _blob, commit = listed.split()
            text = git("notes", "--ref", ref, "show", commit)
            notes[f"{ref} {commit}"] = re.sub(r'"(timestamp|recorded_at|at|since)": "[^"]*"', "", text)
    locks = git("for-each-ref", "refs/atmos/locks/")
    return {"refs": refs, "tags": tags, "notes": notes, "locks": locks}


MATRIX_MANIFEST = """deployment:
  name: app
  stacks: [shared]
  components:
    terraform:
      a:
        component: probe
        vars: {{ name: a, run: m1, log: "{log}", pause: 1 }}
      b:
        component: probe
        metadata: {{ depends_on: ["terraform/a"] }}
        vars: {{ name: b, run: m1, log: "{log}", pause: 1 }}
      c:
        component: probe
        vars: {{ name: c, run: m1, log: "{log}", pause: 1 }}
  targets:
    dev: {{}}
"""


def test_matrix_jobs_on_separate_runners_leave_the_record_one_runner_leaves(
    shared: Shared, private_registry: Any, tmp_path: Path
) -> None:
    """CI as docs/ci.md runs it: `atmos-tasks matrix --waves` drives one runner per component, wave
    by wave (each its own clone and `.atmos/`), all sharing the bare remote, the registry (the remote
    cache) and PostgreSQL; a last runner records the rollout. The remote then holds the refs, tags
    and notes a single runner's rollout of the same commit leaves on a remote of its own (its state
    in a database made again empty after it): nothing lost, nothing doubled, no lock left."""
    cache = {"ATMOS_TASKS_CACHE": private_registry().url(f"matrix-{uuid.uuid4().hex}")}
    author = shared.clone("author")
    author.write("deployments/app.yaml", MATRIX_MANIFEST.format(log=shared.log))
    author.commit("b after a, c alone")
    author.git("push", "-q", "origin", "main")

    # One runner first, on a remote of its own (a copy of this one); then the database is made
    # again, empty, under the same name (the connection string is one of the inputs recorded).
    solo_remote = tmp_path / "solo.git"
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(shared.remote), str(solo_remote)], env=shared.env, check=True
    )
    subprocess.run(
        ["git", "clone", "-q", str(solo_remote), str(tmp_path / "solo")], env=shared.env, check=True
    )
    solo = Repo(tmp_path / "solo", shared.env)
    proc = solo.doit("rollout:app:dev", "--remote", "origin")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shared.db.server.psql("postgres", f"DROP DATABASE {shared.db.name} WITH (FORCE)")
    shared.db.server.psql("postgres", f"CREATE DATABASE {shared.db.name}")

    # The matrix: a runner per component, the waves one after another, a wave's runners at once.
    matrix = author.cli("matrix", "app", "--target", "dev", "--waves", "--format", "json")
    assert matrix.returncode == 0, matrix.stderr
    waves = json.loads(matrix.stdout)["waves"]
    assert [[e["component"] for e in wave] for wave in waves] == [["a", "c"], ["b"]]
    for wave in waves:
        runners = [shared.clone(f"job-{entry['component']}") for entry in wave]
        results = finish(
            [
                start(runner, entry["task"], "--remote", "origin", env=cache)
                for runner, entry in zip(runners, wave, strict=True)
            ]
        )
        assert [code for code, _ in results] == [0] * len(wave), results
    recorder = shared.clone("record")
    proc = recorder.doit("rollout:app:dev", "--remote", "origin", env=cache)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    assert remote_records(shared.remote, shared.env) == remote_records(solo_remote, shared.env)
    assert remote_records(shared.remote, shared.env)["locks"] == ""
    # Each probe created once per database (the log is shared by both), none destroyed.
    for name in ("a", "b", "c"):
        creates = [e for e in shared.events() if e[:2] == ["create", name]]
        assert len(creates) == 2, shared.events()
    assert not any(e[0] == "destroy" for e in shared.events())


def test_matrix_jobs_that_roll_out_their_share_record_it_and_the_last_runner_runs_no_terraform(
    shared: Shared, private_registry: Any
) -> None:
    """`rollout --component`: each matrix job applies and records its own components (under their
    locks only, so the jobs run at once); a last runner finds every component recorded at this
    commit and takes what each apply output from the remote cache: it plans, applies and reads
    nothing."""
    cache = {"ATMOS_TASKS_CACHE": private_registry().url(f"share-{uuid.uuid4().hex}")}
    author = shared.clone("author", run="r1")
    author.git("push", "-q", "origin", "main")
    jobs = [shared.clone(f"job-{name}") for name in ("a", "bc")]
    results = finish(
        [
            start(job, "rollout:app:dev", "--component", share, "--remote", "origin", env=cache)
            for job, share in zip(jobs, ("a", "b,c"), strict=True)
        ]
    )
    assert [code for code, _ in results] == [0, 0], results
    for name in NAMES:
        assert shared.deployed(name)[1] == "r1"
        assert len([e for e in shared.events() if e[:2] == ["create", name]]) == 1
    # Each job recorded its share, nothing else.
    assert "refs/atmos/deployments/app/dev/a" in results[0][1] and "dev/b" not in results[0][1]
    last = shared.clone("last")
    proc = last.doit("rollout:app:dev", "--remote", "origin", env=cache)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in NAMES:
        assert f"terraform/{name}: already runs this commit" in proc.stdout, proc.stdout
        assert not list((last.path / ".atmos/workdir/app/dev" / name).glob("atmos-*.log"))
    assert "its outputs from the remote cache" in proc.stdout
    assert remote_records(shared.remote, shared.env)["locks"] == ""
    # The jobs' shares wrote no SBOM of a part of the target; the last runner's whole rollout did.
    bom = json.loads(last.git("notes", "--ref=refs/notes/atmos/app/sbom", "show", "HEAD"))["targets"]["dev"]
    assert sorted(c["name"] for c in bom["components"] if c.get("type") != "library") == list(NAMES), bom
