"""Runners sharing work through the remote cache, in Debian's docker-registry: a fresh clone that
fetches no module and applies the plans another runner made, and the faults — a registry stopped
mid-run, a damaged blob, two runners storing one key at once, a pull request's plan offered to a
protected target.

The example's module source is moved out of the checkout to one absolute path both clones name
(a relative `git::./.sources/…` is each checkout's own, so its identity differs between clones).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from atmos_tasks.remotecache import CacheSpec, Session
from tests.conftest import Repo
from tests.docker_env import Registry
from tests.registry_env import PrivateRegistry

TAKEN = "plan taken from the remote cache"
INDEPENDENT = ("ecr%2Fapi", "monitoring%2Falarms-api")  # planned in a preview of a fresh target


def shared_source(repo: Repo, tmp_path: Path) -> Path:
    """The module source at one absolute path, named so by the manifest (committed)."""
    sources = tmp_path / "sources"
    (repo.path / ".sources").rename(sources)
    text = (repo.path / "deployments/api.yaml").read_text()
    (repo.path / "deployments/api.yaml").write_text(
        text.replace('source: "git::./.sources/modules.git', f'source: "git::file://{sources}/modules.git')
    )
    repo.commit("The module source at a path every runner shares")
    return sources


def clone(repo: Repo, dest: Path) -> Repo:
    """Another runner: a clone of its own, with an empty .atmos/."""
    subprocess.run(["git", "clone", "-q", str(repo.path), str(dest)], check=True, env=repo.env)
    return Repo(dest, repo.env)


def cache_env(url: str, actor: str, **more: str) -> dict[str, str]:
    return {"ATMOS_TASKS_CACHE": url, "ATMOS_TASKS_ACTOR": actor, **more}


def out(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def plan_log(repo: Repo, target: str, component: str) -> str:
    return (repo.path / ".atmos/workdir/api" / target / component / "atmos-plan.log").read_text()


def values(repo: Repo, task: str) -> dict[str, Any]:
    """What doit saved for a task."""
    with sqlite3.connect(repo.path / ".atmos/doit.sqlite") as db:
        row = db.execute("select task_data from doit where task_id = ?", (task,)).fetchone()
    assert row is not None, task
    return dict(json.loads(row[0])["_values_:"])


def at_once(runners: dict[str, Repo], task: str, url: str) -> dict[str, str]:
    """The task run by each runner at the same moment, each under its own name: their outputs (all
    succeeded)."""
    started = {
        name: subprocess.Popen(
            [sys.executable, "-m", "doit", task],
            cwd=runner.path,
            env={**runner.env, **cache_env(url, name)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, runner in runners.items()
    }
    outputs = {name: proc.communicate(timeout=300)[0] for name, proc in started.items()}
    assert all(proc.returncode == 0 for proc in started.values()), outputs
    return outputs


def warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if "warning:" in line]


def test_a_fresh_clone_with_a_warm_cache_fetches_no_module_and_applies_the_plans_another_runner_made(
    repo: Repo, registry: Registry, tmp_path: Path
) -> None:
    url = f"oci://{registry.host}/e2e-cache/{uuid.uuid4().hex}"
    sources = shared_source(repo, tmp_path)
    # A pull request's job plans (a preview), pushing the module and each plan it makes.
    planned = repo.doit("plan:api:dev", env=cache_env(url, "runner-a"))
    assert planned.returncode == 0, out(planned)
    assert warnings(out(planned)) == []
    # The source is gone: a runner that fetched from it would fail.
    sources.rename(tmp_path / "sources-gone")
    runner = clone(repo, tmp_path / "runner-b")
    done = runner.doit("rollout:api:dev", env=cache_env(url, "runner-b"))
    assert done.returncode == 0, out(done)
    assert "Rollout complete" in done.stdout and warnings(out(done)) == []
    vendored = values(runner, "vendor:api:dev:monitoring/alarms-api")
    assert vendored["status"] == "vendored" and vendored["cache"] == {"vendor": "pulled"}
    for component in INDEPENDENT:
        log = plan_log(runner, "dev", component)
        assert log.startswith(TAKEN) and "by runner-a" in log, log
        assert "Terraform" not in log  # no `terraform plan` ran
    taken = values(runner, "plan:api:dev:ecr/api")
    assert taken["cache"]["plan"] == "reused" and taken["cache"]["made_by"]["by"] == "runner-a"
    # The progress line says whose plan it applies.
    planned_line = next(line for line in done.stdout.splitlines() if "terraform/ecr/api: planned" in line)
    assert "the plan from the remote cache, made by a run on refs/heads/main by runner-a at" in planned_line
    assert taken["changes"] == {"add": 1, "change": 0, "destroy": 0}
    # What depends on an apply was planned here (its inputs did not exist before), and stored.
    assert not plan_log(runner, "dev", "ecs%2Ftaskdef-api").startswith(TAKEN)
    assert values(runner, "plan:api:dev:ecs/taskdef-api")["cache"] == {"plan": "stored"}
    assert values(runner, "apply:api:dev:ecr/api")["status"] == "applied"


def kill_on_apply(repo: Repo, pid: int) -> None:
    """ecr/api's resource stops the registry when it is created: mid-run, once the cache was used."""
    repo.replace(
        "components/terraform/ecr/main.tf",
        'resource "null_resource" "repository" {\n',
        'resource "null_resource" "repository" {\n'
        f'  provisioner "local-exec" {{\n    command = "kill {pid}"\n  }}\n',
    )
    repo.commit("ecr/api stops the registry when it is applied")


def stored_tags(server: PrivateRegistry, repository: str) -> list[str]:
    """Tags, read from the registry's storage (it may be stopped)."""
    folder = server.data_dir / "docker/registry/v2/repositories" / repository / "_manifests/tags"
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def test_a_registry_stopped_mid_run_is_one_warning_and_the_rollout_completes_cold(
    repo: Repo, private_registry: Callable[..., PrivateRegistry], tmp_path: Path
) -> None:
    server = private_registry()
    shared_source(repo, tmp_path)
    kill_on_apply(repo, server.pid)
    # Two worker processes: the one warning is the run's, whichever process finds the cache down.
    done = repo.doit("-n", "2", "rollout:api:dev", env=cache_env(server.url("cache"), "runner-a"))
    assert done.returncode == 0, out(done)
    assert "Rollout complete" in done.stdout
    assert not server.alive()
    # Before it stopped, the cache was used: ecr/api's plan is in it.
    assert [t for t in stored_tags(server, "cache") if t.startswith("plan-")], stored_tags(server, "cache")
    found = warnings(out(done))
    assert len(found) == 1, found
    assert f"the remote cache {server.url('cache')} cannot be used" in found[0]
    assert "this run goes on without it" in found[0]
    for task in ("apply:api:dev:ecs/service-api", "apply:api:dev:monitoring/alarms-api"):
        assert values(repo, task)["status"] == "applied"


def test_a_damaged_blob_is_refused_and_the_module_fetched_from_its_source(
    repo: Repo, private_registry: Callable[..., PrivateRegistry], tmp_path: Path
) -> None:
    server = private_registry(basic_auth=True)
    url = server.url("cache")
    shared_source(repo, tmp_path)
    planned = repo.doit("plan:api:dev", env={**cache_env(url, "runner-a"), **server.env})
    assert planned.returncode == 0, out(planned)
    [vendor_tag] = [t for t in server.tags("cache") if t.startswith("vendor-")]
    manifest = server.manifest("cache", vendor_tag)
    entry = json.loads(manifest["annotations"]["org.atmos-tasks.cache.entry"])
    blob = server.blob_file(manifest["layers"][0]["digest"])
    damaged = bytearray(blob.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    blob.write_bytes(bytes(damaged))

    runner = clone(repo, tmp_path / "runner-b")
    done = runner.doit("rollout:api:dev", env={**cache_env(url, "runner-b"), **server.env})
    assert done.returncode == 0, out(done)
    found = warnings(out(done))
    assert len(found) == 1 and "monitoring/alarms-api" in found[0], found
    assert "the remote cache's vendor" in found[0] and "was refused" in found[0]
    vendored = values(runner, "vendor:api:dev:monitoring/alarms-api")
    assert vendored["status"] == "vendored" and "pulled" not in json.dumps(vendored.get("cache", {}))
    assert vendored["digest"] == entry["result"]["digest"]


def test_two_runners_storing_one_key_at_once_both_succeed_and_one_entry_stays(
    repo: Repo, registry: Registry, tmp_path: Path
) -> None:
    url = f"oci://{registry.host}/e2e-cache/{uuid.uuid4().hex}"
    shared_source(repo, tmp_path)
    runners = {name: clone(repo, tmp_path / name) for name in ("runner-b", "runner-c")}
    outputs = at_once(runners, "plan:api:dev", url)
    reader = Session(CacheSpec(url, None, str(tmp_path), False))
    plan_tags = [t for t in _tags(registry, url) if t.startswith("plan-")]
    assert len(plan_tags) == len(INDEPENDENT)
    for plan_tag in plan_tags:
        entry = reader.lookup("plan", plan_tag[len("plan-") :])
        assert entry is not None
        winner = entry.producer["by"]
        [other] = [name for name in runners if name != winner]
        component = entry.result["component"].split("/", 2)[2]
        took = plan_log(runners[other], "dev", component.replace("/", "%2F")).startswith(TAKEN)
        told = [
            line
            for line in warnings(outputs[other])
            if component in line and "this run's is ignored" in line and f"by {winner}" in line
        ]
        # The other runner either found the entry before planning, or planned too and was told.
        assert took != bool(told), (component, outputs)
    assert not [line for line in warnings("".join(outputs.values())) if "vendor" in line]


def _tags(registry: Registry, url: str) -> list[str]:
    from tests.docker_env import NO_PROXY_OPENER

    repository = url.split("/", 3)[3]
    with NO_PROXY_OPENER.open(f"{registry.url}/v2/{repository}/tags/list", timeout=5) as response:
        return sorted(json.loads(response.read()).get("tags") or [])


def test_a_pull_requests_plan_is_only_a_hint_for_a_protected_target(
    repo: Repo, registry: Registry, tmp_path: Path
) -> None:
    url = f"oci://{registry.host}/e2e-cache/{uuid.uuid4().hex}"
    shared_source(repo, tmp_path)
    pull_request = cache_env(url, "mallory", GITHUB_EVENT_NAME="pull_request", GITHUB_REF="refs/pull/7/merge")
    for target in ("staging", "dev"):
        planned = repo.doit(f"plan:api:{target}", env=pull_request)
        assert planned.returncode == 0, out(planned)
    assert all(t.startswith("pr-") for t in _tags(registry, url))

    runner = clone(repo, tmp_path / "main-runner")
    # dev has no promotion rule: the pull request's plans and module are taken as they are.
    dev = runner.doit("plan:api:dev", env=cache_env(url, "main-runner"))
    assert dev.returncode == 0, out(dev)
    assert warnings(out(dev)) == []
    for component in INDEPENDENT:
        log = plan_log(runner, "dev", component)
        assert log.startswith(TAKEN) and "pull request's run on refs/pull/7/merge by mallory" in log
    assert values(runner, "vendor:api:dev:monitoring/alarms-api")["cache"] == {"vendor": "pulled"}

    # staging is promoted from dev: protected. The pull request's entries are hints, not results —
    # its module answer too, though this runner's store took it for dev a moment ago.
    staging = runner.doit("plan:api:staging", env=cache_env(url, "main-runner"))
    assert staging.returncode == 0, out(staging)
    found = warnings(out(staging))
    assert len(found) == 3, found
    said = "\n".join(found)
    assert "made by a pull request's run on refs/pull/7/merge by mallory" in said
    assert said.count("not trusted for the protected target staging") == 2
    assert "planned again, the same changes" in said
    assert "module entry was made by a pull request's run" in said and "(the source agrees)" in said
    for component in INDEPENDENT:
        assert not plan_log(runner, "staging", component).startswith(TAKEN)
    assert (
        values(runner, "vendor:api:staging:monitoring/alarms-api").get("cache", {}).get("vendor") != "pulled"
    )
    # Its own plans are stored as a trusted run's, beside the pull request's.
    assert len([t for t in _tags(registry, url) if t.startswith("plan-")]) == len(INDEPENDENT)


def test_a_stored_plan_made_against_another_state_is_stale_and_planned_again(
    repo: Repo, registry: Registry, tmp_path: Path
) -> None:
    url = f"oci://{registry.host}/e2e-cache/{uuid.uuid4().hex}"
    shared_source(repo, tmp_path)
    runner = clone(repo, tmp_path / "runner-b")
    # runner-b deploys without the cache: its ecr/api state now exists.
    done = runner.doit("rollout:api:dev", env={"ATMOS_TASKS_CACHE": "none"})
    assert done.returncode == 0, out(done)
    # Another runner plans the same inputs against no state (a fresh clone), and stores that plan.
    planned = repo.doit("plan:api:dev", env=cache_env(url, "runner-a"))
    assert planned.returncode == 0, out(planned)
    forgot = runner.doit("forget", "plan:api:dev:ecr/api")
    assert forgot.returncode == 0, out(forgot)
    again = runner.doit("rollout:api:dev", env=cache_env(url, "runner-b"))
    assert again.returncode == 0, out(again)
    [stale] = [line for line in warnings(out(again)) if "ecr/api" in line]
    assert "made by a run on refs/heads/main by runner-a" in stale
    assert (
        "is stale: it was made against no state, the state is now state" in stale and "planned again" in stale
    )
    assert not plan_log(runner, "dev", "ecr%2Fapi").startswith(TAKEN)
    assert values(runner, "plan:api:dev:ecr/api")["has_changes"] is False  # planned here, against its state


def publish_api(repo: Repo, registry: Registry) -> None:
    """The example's api image pushed to the session's registry (the oci builder: no engine)."""
    repo.replace(
        "deployments/api.yaml",
        "image: { name: acme/api }",
        f"image: {{ name: acme/api-{uuid.uuid4().hex[:8]}, registry: '{registry.host}' }}",
    )
    repo.replace("deployments/api.yaml", "publish: false", "publish: true")
    repo.commit("Publish the api image")


def test_an_image_another_runner_built_is_taken_from_the_cache_by_a_runner_on_another_commit(
    repo: Repo, registry: Registry, tmp_path: Path
) -> None:
    """(A protected target never builds: its images come by promotion, from the record.)"""
    url = f"oci://{registry.host}/e2e-cache/{uuid.uuid4().hex}"
    publish_api(repo, registry)
    first = clone(repo, tmp_path / "runner-a")
    built = first.doit("build:api:dev", env=cache_env(url, "runner-a"))
    assert built.returncode == 0, out(built)
    made = values(first, "build:api:dev:api")
    assert made["reused"] is False and made["cache"] == {"build": "stored"}, made
    # Another commit, the image's source unchanged: its own builds note is empty, the cache is not.
    repo.write("README.md", "another commit\n")
    repo.commit("A commit that does not touch the image")
    second = clone(repo, tmp_path / "runner-b")
    taken = second.doit("build:api:dev", env=cache_env(url, "runner-b"))
    assert taken.returncode == 0, out(taken)
    assert warnings(out(taken)) == []
    reused = values(second, "build:api:dev:api")
    assert reused["reused"] is True and reused["digest"] == made["digest"]
    assert reused["cache"]["build"] == "reused" and reused["cache"]["made_by"]["by"] == "runner-a"
    assert "image from the remote cache, built by a run on refs/heads/main by runner-a" in taken.stdout
    # The commit's own builds note records the image, as for a build made here.
    note = json.loads(second.git("notes", "--ref=refs/notes/atmos/api/builds", "show", "HEAD"))["api"]
    assert note["digest"] == made["digest"]


def test_two_runners_building_one_key_differently_both_succeed_and_the_first_image_stays(
    repo: Repo, registry: Registry, tmp_path: Path
) -> None:
    """Two commits with the same image source: one build key, but each build is stamped with its
    commit's time (SOURCE_DATE_EPOCH), so the two digests differ — a task that is not deterministic."""
    url = f"oci://{registry.host}/e2e-cache/{uuid.uuid4().hex}"
    publish_api(repo, registry)
    older = clone(repo, tmp_path / "runner-a")
    repo.write("README.md", "another commit, a second later\n")
    subprocess.run(["sleep", "1.1"], check=True)
    repo.commit("A commit that does not touch the image")
    newer = clone(repo, tmp_path / "runner-b")
    outputs = at_once({"runner-a": older, "runner-b": newer}, "build:api:dev", url)
    [build_tag] = [t for t in _tags(registry, url) if t.startswith("build-")]
    kept = Session(CacheSpec(url, None, str(tmp_path), False)).lookup("build", build_tag[len("build-") :])
    assert kept is not None
    winner = kept.producer["by"]
    loser, loser_repo = ("runner-b", newer) if winner == "runner-a" else ("runner-a", older)
    theirs = values(loser_repo, "build:api:dev:api")
    told = [line for line in warnings(outputs[loser]) if "another build result for the same key" in line]
    # The other runner either found the entry before building (and took its image), or built its
    # own and was told that the entry stored first stays.
    if theirs["reused"]:
        assert theirs["digest"] == kept.result["digest"] and not told
    else:
        assert theirs["digest"] != kept.result["digest"], outputs
        assert told and f"stored first by a run on refs/heads/main by {winner}" in told[0], outputs
        assert "this run's is ignored (the task is not deterministic)" in told[0]


def test_a_runner_that_finds_the_commit_deployed_takes_each_recorded_apply_from_the_cache(
    repo: Repo, registry: Registry, tmp_path: Path
) -> None:
    """The record names each apply; the cache holds what it output. A fresh runner rolling out a
    commit another runner deployed (its records fetched from the remote) plans nothing, applies
    nothing, and reads no state: not one Terraform process."""
    url = f"oci://{registry.host}/e2e-cache/{uuid.uuid4().hex}"
    shared_source(repo, tmp_path)
    first = clone(repo, tmp_path / "runner-a")
    done = first.doit("rollout:api:dev", "--remote", "origin", env=cache_env(url, "runner-a"))
    assert done.returncode == 0, out(done)
    assert warnings(out(done)) == []
    assert [t for t in _tags(registry, url) if t.startswith("apply-")], _tags(registry, url)

    second = clone(repo, tmp_path / "runner-b")
    again = second.doit("rollout:api:dev", "--remote", "origin", env=cache_env(url, "runner-b"))
    assert again.returncode == 0, out(again)
    assert warnings(out(again)) == []
    for component in ("ecr/api", "ecs/taskdef-api", "ecs/service-api", "monitoring/alarms-api"):
        applied = values(second, f"apply:api:dev:{component}")
        assert applied["cache"] == {"apply": "reused"}, (component, applied)
        assert applied["outputs"] == values(first, f"apply:api:dev:{component}")["outputs"]
        assert f"terraform/{component}: already runs this commit" in again.stdout
        planned = values(second, f"plan:api:dev:{component}")
        assert planned["cache"]["made_by"]["by"] == "runner-a"
        # No Terraform ran: no workdir was prepared, no log written.
        workdir = second.path / ".atmos/workdir/api/dev" / component.replace("/", "%2F")
        assert not list(workdir.glob("atmos-*.log")) if workdir.exists() else True
    assert "its outputs from the remote cache" in again.stdout
    # A component whose outputs are not in the cache (a cache of its own, empty) reads its state.
    third = clone(repo, tmp_path / "runner-c")
    cold = third.doit("rollout:api:dev", "--remote", "origin", env=cache_env(f"{url}-empty", "runner-c"))
    assert cold.returncode == 0, out(cold)
    assert values(third, "apply:api:dev:ecr/api").get("cache") is None


PACKAGE = "terraform.d/plugins/registry.terraform.io/hashicorp/null/terraform-provider-null_2.1.2_{}.zip"


def no_providers_here(tmp_path: Path) -> dict[str, str]:
    """A runner whose Terraform has neither the bundled providers (a CLI configuration of its own,
    without provider_installation) nor a way to Terraform's registry (a proxy nobody answers)."""
    config = tmp_path / "user.terraformrc"
    config.write_text("disable_checkpoint = true\n")
    dead = "http://127.0.0.1:9"
    return {"TF_CLI_CONFIG_FILE": str(config), "HTTPS_PROXY": dead, "HTTP_PROXY": dead, "NO_PROXY": ""}


def test_a_runner_without_the_provider_installs_it_from_the_cache_by_the_lock_files_hash(
    repo: Repo, registry: Registry, tmp_path: Path
) -> None:
    from atmos_tasks.kinds._tfproviders import h1_of, platform

    url = f"oci://{registry.host}/e2e-cache/{uuid.uuid4().hex}"
    first = clone(repo, tmp_path / "runner-a")
    planned = first.doit("plan:api:dev:ecr/api", env=cache_env(url, "runner-a"))
    assert planned.returncode == 0, out(planned)
    assert values(first, "plan:api:dev:ecr/api")["cache"]["provider"] == "stored"
    assert [t for t in _tags(registry, url) if t.startswith("provider-")]
    # The module's lock file, committed: what a runner pulls by.
    lock = (first.path / ".atmos/workdir/api/dev/ecr%2Fapi/.terraform.lock.hcl").read_text()
    repo.write("components/terraform/ecr/.terraform.lock.hcl", lock)
    repo.commit("ecr: the provider lock")

    # Without the cache this runner cannot install the provider at all.
    offline = clone(repo, tmp_path / "runner-offline")
    failed = offline.doit(
        "plan:api:dev:ecr/api", env={**no_providers_here(tmp_path), "ATMOS_TASKS_CACHE": "none"}
    )
    assert failed.returncode != 0
    assert "terraform init failed" in out(failed) or "Failed to query available provider" in out(failed)

    second = clone(repo, tmp_path / "runner-b")
    taken = second.doit(
        "plan:api:dev:ecr/api", env={**no_providers_here(tmp_path), **cache_env(url, "runner-b")}
    )
    assert taken.returncode == 0, out(taken)
    assert warnings(out(taken)) == []
    assert values(second, "plan:api:dev:ecr/api")["cache"]["provider"] == "pulled"
    # The package went to the folder's implied mirror for init, and left it after: kept there, it
    # would hide every other version of the provider from the next init.
    workdir = second.path / ".atmos/workdir/api/dev/ecr%2Fapi"
    assert not (workdir / PACKAGE.format(platform())).exists()
    assert not (workdir / "terraform.d").exists()
    installed = workdir / ".terraform/providers/registry.terraform.io/hashicorp/null/2.1.2" / platform()
    assert h1_of({p.name: p.read_bytes() for p in installed.iterdir()}) in lock


def test_a_provider_package_the_lock_does_not_list_is_refused(
    repo: Repo, registry: Registry, tmp_path: Path
) -> None:
    import zipfile

    from atmos_tasks.kinds._tfproviders import MEDIA_TYPE, key, locked, platform

    url = f"oci://{registry.host}/e2e-cache/{uuid.uuid4().hex}"
    first = clone(repo, tmp_path / "runner-a")
    assert first.doit("plan:api:dev:ecr/api", env={"ATMOS_TASKS_CACHE": "none"}).returncode == 0
    lock_path = first.path / ".atmos/workdir/api/dev/ecr%2Fapi/.terraform.lock.hcl"
    repo.write("components/terraform/ecr/.terraform.lock.hcl", lock_path.read_text())
    repo.commit("ecr: the provider lock")
    # Someone stores a package of another provider build under the key the lock leads to.
    [provider] = locked(lock_path)
    bogus = tmp_path / "bogus.zip"
    with zipfile.ZipFile(bogus, "w") as archive:
        archive.writestr(f"terraform-provider-null_v{provider.version}_x4", b"#!/bin/sh\necho pwned\n")
    h1 = next(h for h in provider.hashes if h.startswith("h1:"))
    Session(CacheSpec(url, None, str(tmp_path), False)).store(
        "provider", key(provider, platform(), h1), {"h1": h1}, {"package": (bogus, MEDIA_TYPE)}
    )
    second = clone(repo, tmp_path / "runner-b")
    refused = second.doit("plan:api:dev:ecr/api", env={**no_providers_here(tmp_path), **cache_env(url, "b")})
    # Refused: init then has no way to the provider, and its failure says why the cache did not serve.
    assert refused.returncode == 1
    [said] = [
        line
        for line in out(refused).splitlines()
        if "package of registry.terraform.io/hashicorp/null" in line
    ]
    assert "which the lock does not list: refused, terraform init installs it" in said
    assert not (second.path / ".atmos/workdir/api/dev/ecr%2Fapi" / PACKAGE.format(platform())).exists()
