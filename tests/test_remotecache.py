"""The remote cache against a real registry (Debian's docker-registry): entries stored and read
back, blobs verified, basic auth, a registry that is down, two runners writing one key."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from atmos_tasks.remotecache import CacheSpec, Entry, Session, is_pull_request, producer, tag, trusted
from tests.docker_env import Registry
from tests.registry_env import PrivateRegistry

KEY = "ab" * 32


def spec(url: str, root: Path, *, protected: bool = False) -> CacheSpec:
    return CacheSpec(
        configured=url, flag=None, root=str(root), protected=protected, git_sha="c0ffee", branch="main"
    )


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "ATMOS_TASKS_CACHE",
        "ATMOS_TASKS_CACHE_USERNAME",
        "ATMOS_TASKS_CACHE_PASSWORD",
        "GITHUB_EVENT_NAME",
        "CI_MERGE_REQUEST_ID",
        "ATMOS_TASKS_PULL_REQUEST",
        "GITHUB_REF",
        "CI_COMMIT_REF_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("ATMOS_TASKS_ACTOR", "runner-1")


# -- which cache, and whom an entry may serve (no registry) ------------------------------------------


def test_flag_wins_over_the_environment_which_wins_over_atmos_yaml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configured = CacheSpec("oci://a/config", None, str(tmp_path), False)
    assert configured.url() == "oci://a/config"
    monkeypatch.setenv("ATMOS_TASKS_CACHE", "oci://b/env")
    assert configured.url() == "oci://b/env"
    assert CacheSpec("oci://a/config", "oci://c/flag", str(tmp_path), False).url() == "oci://c/flag"
    monkeypatch.setenv("ATMOS_TASKS_CACHE", "none")
    assert configured.url() is None
    assert CacheSpec("oci://a/config", "oci://c/flag", str(tmp_path), False).url() == "oci://c/flag"
    assert CacheSpec("oci://a/config", "off", str(tmp_path), False).url() is None
    monkeypatch.delenv("ATMOS_TASKS_CACHE")
    assert CacheSpec(None, None, str(tmp_path), False).url() is None
    assert not Session(CacheSpec(None, None, str(tmp_path), False)).active


def test_pull_requests_are_told_from_the_ci_environment() -> None:
    assert is_pull_request({"GITHUB_EVENT_NAME": "pull_request"})
    assert is_pull_request({"GITHUB_EVENT_NAME": "pull_request_target"})
    assert is_pull_request({"CI_MERGE_REQUEST_ID": "17"})
    assert is_pull_request({"ATMOS_TASKS_PULL_REQUEST": "1"})
    assert not is_pull_request({"GITHUB_EVENT_NAME": "push", "CI_COMMIT_REF_NAME": "main"})
    made = producer(
        CacheSpec(None, None, "/", False, "c0ffee", "main"),
        {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/7/merge", "GITHUB_ACTOR": "mallory"},
    )
    assert (made["ref"], made["by"], made["pull_request"], made["sha"]) == (
        "refs/pull/7/merge",
        "mallory",
        True,
        "c0ffee",
    )


def test_a_protected_target_trusts_only_entries_that_say_they_are_no_pull_requests() -> None:
    assert trusted({"pull_request": True}, protected=False)
    assert trusted({"pull_request": False}, protected=True)
    assert not trusted({"pull_request": True}, protected=True)
    assert not trusted({}, protected=True)
    assert tag("plan", KEY, False) == f"plan-{KEY}"
    assert tag("plan", KEY, True) == f"pr-plan-{KEY}"


# -- against the shared registry (plain HTTP on 127.0.0.1) ----------------------------------------------


def test_an_entry_is_stored_read_back_and_its_blob_verified(registry: Registry, tmp_path: Path) -> None:
    url = f"oci://{registry.host}/remotecache-test/{uuid.uuid4().hex}"
    plan = write(tmp_path / "plan.bin", b"a plan\n" * 100)
    session = Session(spec(url, tmp_path))
    session.store("plan", KEY, {"has_changes": True}, {"plan": (plan, "application/octet-stream")})
    assert session.notes == [] and session.used == {"plan": "stored"}

    reader = Session(spec(url, tmp_path))
    entry = reader.lookup("plan", KEY)
    assert entry is not None and entry.result == {"has_changes": True}
    assert entry.producer["by"] == "runner-1" and entry.producer["pull_request"] is False
    assert entry.producer["ref"] == "refs/heads/main" and entry.producer["sha"] == "c0ffee"
    assert reader.fetch(entry, "plan", tmp_path / "pulled.bin")
    assert (tmp_path / "pulled.bin").read_bytes() == plan.read_bytes()
    assert reader.lookup("plan", "cd" * 32) is None and reader.notes == []


def test_a_different_result_under_a_stored_key_is_ignored_with_a_warning(
    registry: Registry, tmp_path: Path
) -> None:
    url = f"oci://{registry.host}/remotecache-test/{uuid.uuid4().hex}"
    first = Session(spec(url, tmp_path))
    first.store("plan", KEY, {"has_changes": True}, {"plan": (write(tmp_path / "1", b"one"), "x/y")})
    same = Session(spec(url, tmp_path))
    same.store("plan", KEY, {"has_changes": True}, {"plan": (write(tmp_path / "2", b"one"), "x/y")})
    assert same.notes == [] and same.used == {}
    second = Session(spec(url, tmp_path))
    second.store("plan", KEY, {"has_changes": False}, {"plan": (write(tmp_path / "3", b"two"), "x/y")})
    assert second.used == {"plan": "ignored"}
    assert (
        len(second.notes) == 1 and "stored first by a run on refs/heads/main by runner-1" in second.notes[0]
    )
    assert "it stays, this run's is ignored" in second.notes[0]
    entry = Session(spec(url, tmp_path)).lookup("plan", KEY)
    assert entry is not None and entry.result == {"has_changes": True}


def test_two_runners_writing_one_key_at_once_keep_one_entry_and_the_other_is_warned(
    registry: Registry, tmp_path: Path
) -> None:
    """No compare-and-swap exists on tags: the write is checked before and read back after, so of two
    runners writing at the same moment one result stays and the other runner says it was ignored."""
    for round_ in range(4):
        url = f"oci://{registry.host}/remotecache-test/{uuid.uuid4().hex}"
        sessions = [Session(spec(url, tmp_path)) for _ in range(2)]
        start = threading.Barrier(2)
        files = [write(tmp_path / f"r{round_}-{index}", f"result {index}".encode()) for index in range(2)]

        def push(session: Session, index: int, data: Path, start: threading.Barrier = start) -> None:
            start.wait()
            session.store("plan", KEY, {"runner": index}, {"plan": (data, "x/y")})

        threads = [threading.Thread(target=push, args=(sessions[i], i, files[i])) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        entry = Session(spec(url, tmp_path)).lookup("plan", KEY)
        assert entry is not None
        kept = entry.result["runner"]
        assert sessions[kept].notes == [] and sessions[kept].used == {"plan": "stored"}
        assert sessions[1 - kept].used == {"plan": "ignored"}, (sessions[0].notes, sessions[1].notes)
        assert "it stays, this run's is ignored" in sessions[1 - kept].notes[0]


# -- registries of the test's own: basic auth, damage, down -----------------------------------------


def test_basic_auth_with_credentials_from_the_environment_or_dockers_config(
    private_registry: Callable[..., PrivateRegistry], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = private_registry(basic_auth=True)
    url = server.url("cache")
    monkeypatch.setenv("ATMOS_TASKS_CACHE_USERNAME", str(server.user))
    monkeypatch.setenv("ATMOS_TASKS_CACHE_PASSWORD", str(server.password))
    session = Session(spec(url, tmp_path / "env"))
    session.store("vendor", KEY, {"digest": "d" * 64}, {"object": (write(tmp_path / "o", b"tar"), "x/y")})
    assert session.notes == [] and session.used == {"vendor": "stored"}
    assert server.tags("cache") == [f"vendor-{KEY}"]

    # As `docker login` leaves it: $DOCKER_CONFIG/config.json, auths.<registry>.auth.
    monkeypatch.delenv("ATMOS_TASKS_CACHE_USERNAME")
    monkeypatch.delenv("ATMOS_TASKS_CACHE_PASSWORD")
    config = tmp_path / "docker-config" / "config.json"
    config.parent.mkdir()
    auth = base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
    config.write_text(json.dumps({"auths": {server.host: {"auth": auth}}}))
    reader = Session(spec(url, tmp_path / "docker"))
    entry = reader.lookup("vendor", KEY)
    assert entry is not None and reader.fetch(entry, "object", tmp_path / "pulled")
    assert (tmp_path / "pulled").read_bytes() == b"tar" and reader.notes == []

    # Wrong credentials: the cache is not used, said once.
    config.write_text(
        json.dumps({"auths": {server.host: {"auth": base64.b64encode(b"ci-runner:wrong").decode()}}})
    )
    refused = Session(spec(url, tmp_path / "wrong"))
    assert refused.lookup("vendor", KEY) is None
    assert len(refused.notes) == 1 and "refused the credentials (HTTP 401)" in refused.notes[0]
    assert not refused.active


def test_a_damaged_or_truncated_blob_is_refused(
    private_registry: Callable[..., PrivateRegistry], tmp_path: Path
) -> None:
    server = private_registry()
    url = server.url("cache")
    Session(spec(url, tmp_path)).store(
        "plan", KEY, {"has_changes": True}, {"plan": (write(tmp_path / "p", b"the plan" * 64), "x/y")}
    )
    reader = Session(spec(url, tmp_path))
    entry = reader.lookup("plan", KEY)
    assert isinstance(entry, Entry)
    stored = server.blob_file(entry.blobs["plan"].digest)
    stored.write_bytes(b"the plXn" + stored.read_bytes()[8:])
    assert not reader.fetch(entry, "plan", tmp_path / "pulled")
    assert not (tmp_path / "pulled").exists()
    assert (
        len(reader.notes) == 1
        and "was refused" in reader.notes[0]
        and "hashing to sha256:" in reader.notes[0]
    )
    stored.write_bytes(b"the plan")
    assert not reader.fetch(entry, "plan", tmp_path / "pulled")
    assert "arrived as 8 bytes" in reader.notes[1]


def test_a_cache_that_is_down_is_one_warning_and_then_left_alone(
    private_registry: Callable[..., PrivateRegistry], tmp_path: Path
) -> None:
    import time

    server = private_registry()
    server.stop()
    first = Session(spec(server.url("cache"), tmp_path))
    started = time.monotonic()
    assert first.lookup("plan", KEY) is None
    assert time.monotonic() - started < 5  # no sleeping retries
    assert len(first.notes) == 1 and "cannot be used" in first.notes[0] and "without it" in first.notes[0]
    # Every later use in the same run (any process of it) is silent and does not wait.
    later = Session(spec(server.url("cache"), tmp_path))
    assert not later.active and later.lookup("plan", KEY) is None
    later.store("plan", KEY, {}, {})
    assert later.notes == []
    # A URL that names no cache is the same one warning.
    wrong = Session(spec("https://registry.example/cache", tmp_path / "wrong-url"))
    assert wrong.lookup("plan", KEY) is None and wrong.lookup("vendor", KEY) is None
    assert len(wrong.notes) == 1 and "use oci://<registry>/<repository>" in wrong.notes[0]


# -- configuration ---------------------------------------------------------------------------------


def test_atmos_yaml_names_the_cache_and_a_bad_url_is_bad_input(tmp_path: Path) -> None:
    from atmos_tasks.config import load_config
    from atmos_tasks.errors import AtmosError

    (tmp_path / "atmos.yaml").write_text("cache:\n  url: oci://ghcr.io/acme/atmos-cache\n")
    assert load_config(tmp_path).cache_url == "oci://ghcr.io/acme/atmos-cache"
    (tmp_path / "atmos.yaml").write_text("base_path: .\n")
    assert load_config(tmp_path).cache_url is None
    (tmp_path / "atmos.yaml").write_text("cache:\n  url: https://ghcr.io/acme\n")
    with pytest.raises(AtmosError) as refused:
        load_config(tmp_path)
    [problem] = refused.value.problems
    assert "cache.url must be a URL oci://<registry>/<repository>" in problem.message
    assert problem.render().startswith("atmos.yaml:2:")


def test_the_cache_option_of_rollout_plan_and_build_tasks() -> None:
    from atmos_tasks.invocation import from_argv

    for task in ("rollout:api:dev", "plan:api:dev", "build:api:dev", "apply:api:dev:ecr/api"):
        invocation = from_argv([task, "--cache", "oci://127.0.0.1:5000/cache"])
        assert invocation.problems == [], task
        assert invocation.options_for("api", "dev").cache == "oci://127.0.0.1:5000/cache"
    assert from_argv(["rollout:api:dev"]).options_for("api", "dev").cache is None


def test_compiling_and_a_task_without_a_cache_import_no_registry_client(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; import atmos_tasks.graph, atmos_tasks.vendoring, atmos_tasks.kinds.terraform;"
        "from atmos_tasks.remotecache import CacheSpec, Session;"
        f"s = Session(CacheSpec(None, None, {str(tmp_path)!r}, False)); s.lookup('plan', 'a' * 64);"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('oras', 'requests', 'jsonschema')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_cache_this_run_may_only_read_is_read_and_the_refused_writes_said_once(
    private_registry: Callable[..., PrivateRegistry], tmp_path: Path
) -> None:
    """A pull request from a fork has a pull-only token: the cache serves it, and what it made stays
    on its runner."""
    writable = private_registry()
    plan = write(tmp_path / "plan", b"the plan")
    Session(spec(writable.url("cache"), tmp_path / "w")).store(
        "plan", KEY, {"has_changes": True}, {"plan": (plan, "x/y")}
    )
    writable.stop()
    mirror = private_registry(read_only=True, base=writable.data_dir.parent)
    url = mirror.url("cache")
    session = Session(spec(url, tmp_path / "r"))
    session.store("plan", "cd" * 32, {"has_changes": False}, {"plan": (plan, "x/y")})
    assert len(session.notes) == 1 and "does not take this run's results" in session.notes[0]
    assert "HTTP 405" in session.notes[0]
    entry = session.lookup("plan", KEY)
    assert entry is not None and session.fetch(entry, "plan", tmp_path / "pulled") and session.active
    later = Session(spec(url, tmp_path / "r"))
    later.store("plan", "ef" * 32, {}, {"plan": (plan, "x/y")})
    assert later.notes == [] and later.lookup("plan", KEY) is not None
    assert mirror.tags("cache") == [f"plan-{KEY}"]


def test_an_entry_of_the_wrong_shape_is_no_entry() -> None:
    def manifest(result: object, producer: object) -> dict[str, object]:
        data = {"format": 1, "kind": "apply", "key": KEY, "result": result, "producer": producer}
        return {"annotations": {"org.atmos-tasks.cache.entry": json.dumps(data)}, "layers": []}

    assert Entry.from_manifest(manifest({"outputs": {}}, {"by": "x"}), "sha256:1") is not None
    for result, made_by in (([], {}), ("outputs", {}), ({}, None), ({}, ["x"])):
        assert Entry.from_manifest(manifest(result, made_by), "sha256:1") is None


def test_results_taken_as_done_anywhere_are_only_those_of_runs_that_were_no_pull_requests(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Builds and applies: a pull request's entry is never read, even for an unprotected target
    (an image a builds note records travels on by promotion; an apply's outputs are not checked)."""
    url = f"oci://{registry.host}/remotecache-test/{uuid.uuid4().hex}"
    monkeypatch.setenv("ATMOS_TASKS_PULL_REQUEST", "1")
    Session(spec(url, tmp_path)).store("apply", KEY, {"outputs": {"id": "forged"}}, {})
    monkeypatch.delenv("ATMOS_TASKS_PULL_REQUEST")
    reader = Session(spec(url, tmp_path))
    assert reader.lookup("apply", KEY) is not None  # a plan's lookup reads it (a hint, or for dev)
    assert reader.lookup_trusted("apply", KEY) is None
    Session(spec(url, tmp_path)).store("apply", KEY, {"outputs": {"id": "real"}}, {})
    found = Session(spec(url, tmp_path)).lookup_trusted("apply", KEY)
    assert found is not None and found.result == {"outputs": {"id": "real"}}
