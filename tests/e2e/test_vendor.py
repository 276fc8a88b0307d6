"""Vendoring through rollouts and `atmos-tasks vendor`, from the example's real bare Git repository."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from tests.conftest import ROOT, Repo
from tests.vendor_cache.conftest import HttpServer

NONPROD = '        version: "1.3.0"\n'


def status(repo: Repo, *args: str) -> list[dict]:
    proc = repo.cli("vendor", "status", *args, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def by_target(rows: list[dict]) -> dict[str, dict]:
    return {row["target"]: row for row in rows}


def add_qa_target(repo: Repo) -> None:
    repo.replace(
        "deployments/api.yaml",
        "    staging:\n",
        "    qa:\n      labels: { tier: nonprod }\n      stacks: [deploy/dev]\n"
        "      context: { cpu: 256, memory: 512, replicas: 1 }\n    staging:\n",
    )


def test_targets_get_their_versions_and_one_version_is_stored_once(repo: Repo) -> None:
    add_qa_target(repo)
    repo.commit("A qa target")
    pulled = repo.cli("vendor", "pull")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert "4 component(s) vendored" in pulled.stdout
    rows = by_target(status(repo))
    assert {t: r["version"] for t, r in rows.items()} == {
        "dev": "1.3.0",
        "qa": "1.3.0",
        "staging": "1.3.0",
        "prod": "1.2.5",
    }
    assert rows["dev"]["locked_digest"] == rows["qa"]["locked_digest"] == rows["staging"]["locked_digest"]
    assert rows["prod"]["locked_digest"] != rows["dev"]["locked_digest"]
    assert all(r["lock_matches"] and r["object_present"] and r["workspace_intact"] for r in rows.values())
    assert rows["prod"]["locked_commit"] and rows["dev"]["locked_commit"] != rows["prod"]["locked_commit"]
    stats = json.loads(repo.cli("vendor", "stats", "--format", "json").stdout)
    # Three targets on 1.3.0 and one on 1.2.5: two objects, four workspaces linked into them.
    assert stats["objects"] == 2 and stats["workspaces"] == 4
    assert stats["saved_bytes"] > 0 and stats["disk_bytes"] == stats["object_bytes"]
    # The workspace shows the source's whole tree; the module is its folder `alarms` (`//alarms`).
    workspace = (
        repo.path / ".atmos/vendor-cache/deployments/api/dev/terraform/monitoring/alarms-api/alarms/main.tf"
    )
    other = (
        repo.path / ".atmos/vendor-cache/deployments/api/qa/terraform/monitoring/alarms-api/alarms/main.tf"
    )
    assert os.path.samefile(workspace, other)  # the same object, linked twice
    assert not os.access(workspace, os.W_OK) or os.geteuid() == 0
    assert workspace.stat().st_mode & 0o222 == 0  # read-only


def test_a_module_version_change_replans_only_the_components_that_use_it(repo: Repo) -> None:
    assert repo.doit("rollout:api:dev").returncode == 0
    # alarms 1.3.0 calls its submodule modules/alarm. The workspace is the source's whole tree, its
    # folder `alarms` (the `//alarms` of the source) a link to the store; Terraform ran in that
    # folder of a copy of the tree under the workdir, real folders holding hard links to the same files.
    workspace = repo.path / ".atmos/vendor-cache/deployments/api/dev/terraform/monitoring/alarms-api"
    assert (workspace / "alarms").is_symlink()
    (workdir,) = (repo.path / ".atmos/workdir/api/dev").glob("*alarms-api*")
    module = workdir / "tree/alarms"
    assert (module / "modules/alarm").is_dir() and not (workdir / "tree/alarms").is_symlink()
    assert os.path.samefile(module / "modules/alarm/main.tf", workspace / "alarms/modules/alarm/main.tf")
    assert (module / ".terraform").is_dir() and (module / "backend.tf.json").is_file()
    assert (module / "monitoring-alarms-api.auto.tfvars.json").is_file()
    assert (workdir / "atmos-plan.log").is_file() and (workdir / "atmos.tfplan").is_file()
    state = json.loads((repo.path / ".atmos/state/api/dev/monitoring/alarms-api.tfstate").read_text())
    assert len(state["outputs"]["alarm_names"]["value"]) == 3
    repo.replace("deployments/api.yaml", NONPROD, '        version: "1.2.5"\n')
    repo.commit("Back to alarms 1.2.5 everywhere")
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.findall(r"terraform/(\S+): vendored", proc.stdout) == ["monitoring/alarms-api"]
    assert re.findall(r"terraform/(\S+): planned", proc.stdout) == ["monitoring/alarms-api"]
    state = json.loads((repo.path / ".atmos/state/api/dev/monitoring/alarms-api.tfstate").read_text())
    assert state["outputs"]["module_version"]["value"] == "1.2.5"
    tag = repo.tags("atmos/deployments/api/dev/monitoring%2Falarms-api/")[-1]
    assert "changes: applied" in repo.tag_message(tag)


def test_frozen_vendoring_works_without_the_source_and_a_stale_lock_is_an_error(repo: Repo) -> None:
    assert repo.cli("vendor", "pull").returncode == 0
    shutil.rmtree(repo.path / ".sources")  # the network source is gone
    frozen = repo.cli("vendor", "pull", "--frozen")
    assert frozen.returncode == 0, frozen.stdout + frozen.stderr
    assert repo.doit("rollout:api:dev").returncode == 0  # locked: no fetch needed
    repo.replace("deployments/api.yaml", NONPROD, '        version: "1.2.4"\n')
    repo.commit("A version nobody pulled")
    stale = repo.cli("vendor", "pull", "--frozen", "--target", "dev")
    assert stale.returncode == 2
    assert "deployments/api.yaml:20:9: component 'monitoring/alarms-api' no longer matches" in stale.stderr
    assert "version: lock has '1.3.0', manifest has '1.2.4'" in stale.stderr
    assert "Traceback" not in stale.stderr
    failed = repo.doit("rollout:api:dev")
    assert failed.returncode == 1  # without the source, a new version cannot be vendored
    assert "✗ terraform/monitoring/alarms-api: vendor failed" in failed.stdout
    # Where the entry is written, what is wrong, how to fix it; shown once, not again by plan and apply.
    assert re.search(
        r"deployments/api\.yaml:20:9: git could not fetch \S+/\.sources/modules\.git", failed.stdout
    )
    assert failed.stdout.count("could not fetch") == 1
    assert "plan not attempted, vendor failed" in failed.stdout
    assert "apply not attempted, plan failed" in failed.stdout
    tag = repo.tags("atmos/deployments/api/dev/monitoring%2Falarms-api/")[-1]
    assert "status: failed" in repo.tag_message(tag)


def test_verify_evicts_a_corrupted_object_and_fetches_it_again(repo: Repo) -> None:
    assert repo.cli("vendor", "pull", "--target", "dev").returncode == 0
    digest = status(repo, "--target", "dev")[0]["locked_digest"]
    objects = repo.path / ".atmos/vendor-cache/objects" / digest
    victim = next(p for p in sorted(objects.rglob("*.tf")))
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[0] ^= 0xFF
    victim.write_bytes(bytes(data))
    verified = repo.cli("vendor", "pull", "--target", "dev", "--verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "fetched" in verified.stdout
    assert status(repo, "--target", "dev")[0]["locked_digest"] == digest
    assert (objects / victim.relative_to(objects)).read_bytes()[0] == data[0] ^ 0xFF


def test_clean_is_a_dry_run_unless_forced(repo: Repo) -> None:
    assert repo.cli("vendor", "pull").returncode == 0
    repo.replace("deployments/api.yaml", NONPROD, '        version: "1.2.5"\n')
    repo.commit("Everyone on 1.2.5")
    assert repo.cli("vendor", "pull").returncode == 0
    dry = json.loads(repo.cli("vendor", "clean", "--format", "json").stdout)
    assert dry["dry_run"] is True and len(dry["objects"]) == 1
    assert json.loads(repo.cli("vendor", "stats", "--format", "json").stdout)["objects"] == 2
    forced = json.loads(repo.cli("vendor", "clean", "--force", "--format", "json").stdout)
    assert forced["dry_run"] is False and forced["objects"] == dry["objects"]
    assert json.loads(repo.cli("vendor", "stats", "--format", "json").stdout)["objects"] == 1
    assert not Path(repo.path / ".atmos/vendor-cache/objects" / dry["objects"][0]).exists()


def test_an_unsafe_archive_is_bad_input_and_writes_nothing(repo: Repo, tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "alarms.tar.gz", "w:gz") as tar:
        for name in ("main.tf", "../escape.tf"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"# x"))
    server = HttpServer(served)
    try:
        repo.replace(
            "deployments/api.yaml",
            '"git::./.sources/modules.git//alarms?ref=v{{ version }}"',
            f'"{server.url("alarms.tar.gz")}"',
        )
        repo.commit("Alarms from an archive")
        pulled = repo.cli("vendor", "pull", "--target", "dev")
    finally:
        server.stop()
    assert pulled.returncode == 2, pulled.stdout + pulled.stderr
    assert "member '../escape.tf': `..` in the path" in pulled.stderr
    assert "alarms.tar.gz" in pulled.stderr and "Traceback" not in pulled.stderr
    cache = repo.path / ".atmos/vendor-cache"
    assert not any((cache / "objects").glob("*")) if (cache / "objects").exists() else True
    assert not (repo.path / "escape.tf").exists() and not (tmp_path / "escape.tf").exists()
    assert not (cache / "deployments/api/dev/.vendor-lock.yaml").exists()
    assert not (cache / "deployments/api/dev/terraform/monitoring/alarms-api").exists()


def test_a_pull_shows_progress_on_a_terminal_only(repo: Repo) -> None:
    piped = repo.cli("vendor", "pull", "--target", "prod")
    assert piped.returncode == 0 and "checkout" not in piped.stdout and "\x1b[" not in piped.stdout
    main, side = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "atmos_tasks.cli", "vendor", "pull", "--target", "dev"],
        cwd=repo.path,
        env={**repo.env, "COLUMNS": "120"},
        stdin=side,
        stdout=side,
        stderr=side,
    )
    os.close(side)
    shown = b""
    with contextlib.suppress(OSError):  # EIO once the process has closed the terminal
        while chunk := os.read(main, 65536):
            shown += chunk
    os.close(main)
    assert proc.wait(timeout=120) == 0
    text = shown.decode(errors="replace")
    assert "fetch monitoring/alarms-api" in text and "checkout monitoring/alarms-api" in text
    assert "materialize .atmos/vendor-cache/deployments/api/dev/terraform/monitoring/alarms-api" in text
    assert "\x1b[?25l" in text  # a live display (cursor hidden while it runs)
    assert "api/dev terraform/monitoring/alarms-api 1.3.0" in text and "1 component(s) vendored" in text


def test_a_cache_ttl_picks_up_a_moved_branch_in_rollouts(repo: Repo, tmp_path: Path) -> None:
    repo.replace("deployments/api.yaml", "  vendor:\n", "  vendor:\n    cache: { ttl: 3s }\n")
    pinned = 'alarms?ref=v{{ version }}"\n        version: "1.3.0"'
    repo.replace("deployments/api.yaml", pinned, 'alarms?ref=main"')
    repo.commit("Dev follows the modules' main branch, asking again every 3s")
    assert repo.doit("rollout:api:dev").returncode == 0
    vendored_by = time.monotonic()  # the vendor task ran between these two instants
    work = tmp_path / "modules"
    repo.run("git", "clone", "-q", str(repo.path / ".sources/modules.git"), str(work))
    (work / "alarms/extra.tf").write_text('output "extra" {\n  value = "new on main"\n}\n')
    repo.run("git", "add", "-A", cwd=work)
    assert repo.run("git", "commit", "-q", "-m", "extra output", cwd=work).returncode == 0
    assert repo.run("git", "push", "-q", "origin", "main", cwd=work).returncode == 0

    # Within the ttl the lock answers (tests/vendor_cache/test_git.py); once it has passed:
    time.sleep(max(0.0, vendored_by + 3.5 - time.monotonic()))
    later = repo.doit("rollout:api:dev")
    assert later.returncode == 0, later.stdout + later.stderr
    assert re.findall(r"terraform/(\S+): vendored", later.stdout) == ["monitoring/alarms-api"]
    assert re.findall(r"terraform/(\S+): applied", later.stdout) == ["monitoring/alarms-api"]
    state = json.loads((repo.path / ".atmos/state/api/dev/monitoring/alarms-api.tfstate").read_text())
    assert state["outputs"]["extra"]["value"] == "new on main"


def test_vendor_commands_reject_unknown_targets_and_bad_durations(repo: Repo) -> None:
    one = repo.cli("vendor", "status", "--deployment", "api", "--target", "nope")
    assert one.returncode == 2 and "deployment 'api' has no target 'nope'" in one.stderr
    assert "targets: dev, staging, prod" in one.stderr and "Traceback" not in one.stderr
    anyone = repo.cli("vendor", "pull", "--target", "nope")
    assert anyone.returncode == 2 and "no deployment has a target 'nope'" in anyone.stderr
    duration = repo.cli("vendor", "clean", "--older-than", "7x")
    assert duration.returncode == 2 and "not a duration: '7x'" in duration.stderr
    assert "Traceback" not in anyone.stderr + duration.stderr


def test_relative_sources_in_a_vendor_file_start_at_that_file(repo: Repo) -> None:
    text = (repo.path / "deployments/api.yaml").read_text()
    start, end = text.index("    components:\n      - source:"), text.index("  components:\n    nixpack:")
    repo.write("deployments/api.yaml", text[:start] + "    manifest: vendor/modules.yaml\n\n" + text[end:])
    shutil.copytree(ROOT / "examples/.module-sources/alarms/1.2.5", repo.path / "vendor/alarms-1.2.5")
    repo.write(
        "vendor/modules.yaml",
        "apiVersion: atmos/v1\nkind: AtmosVendorConfig\nspec:\n  sources:\n"
        "    - component: alarms\n      source: ./alarms-{{ version }}\n      version: 1.2.5\n",
    )
    repo.commit("Alarms from a vendor file, relative to it")
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [row] = status(repo, "--target", "dev")
    assert row["source"] == "./alarms-{{ version }}" and row["version"] == "1.2.5"
    state = json.loads((repo.path / ".atmos/state/api/dev/monitoring/alarms-api.tfstate").read_text())
    assert state["outputs"]["module_version"]["value"] == "1.2.5"


def test_a_source_whose_version_is_missing_is_bad_input_everywhere(repo: Repo) -> None:
    text = (repo.path / "deployments/api.yaml").read_text()
    repo.write("deployments/api.yaml", text.replace('        version: "1.3.0"\n', "", 1))
    repo.commit("Forget the alarms version for nonprod")
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "modules.git//alarms" in t)
    source = "git::./.sources/modules.git//alarms?ref=v{{ version }}"
    message = f"deployments/api.yaml:{line}:9: source '{source}'"
    for proc in (
        repo.cli("describe", "api", "--target", "dev", "--format", "json"),
        repo.cli("validate", "api"),
        repo.doit("rollout:api:dev"),
    ):
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2, out
        assert message in out and "uses {{ version }} but the entry has no version" in out
        assert "Traceback" not in out
    assert repo.refs() == {} and not (repo.path / ".atmos/vendor-cache/objects").exists()


def test_a_rollout_with_verify_repairs_a_tampered_object_and_says_so(repo: Repo) -> None:
    assert repo.doit("rollout:api:dev").returncode == 0
    digest = status(repo, "--target", "dev")[0]["locked_digest"]
    obj = repo.path / ".atmos/vendor-cache/objects" / digest
    workspace = repo.path / ".atmos/vendor-cache/deployments/api/dev/terraform/monitoring/alarms-api"

    def tamper() -> None:
        (obj / "alarms").chmod(0o755)
        (obj / "alarms/context.tf").unlink()
        (obj / "alarms/context.tf").symlink_to("/etc/passwd")
        (obj / "alarms").chmod(0o555)

    tamper()
    damage = "alarms/context.tf: a symlink to /etc/passwd, where a file belongs"
    assert status(repo, "--target", "dev")[0]["object_damage"] == [damage]
    table = repo.cli("vendor", "status", "--target", "dev")
    # The module's folder in the workspace is a link to the object's: it shows the damage too.
    row = [
        "!",
        "api",
        "dev",
        "terraform/monitoring/alarms-api",
        "1.3.0",
        digest[:12],
        f"workspace not intact, object damaged: {damage}",
    ]
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["OK", "DEPLOYMENT", "TARGET", "COMPONENT", "VERSION", "DIGEST", "PROBLEMS"]
    assert row in [re.split(r"  +", line, maxsplit=6) for line in lines[1:]], table.stdout

    rolled = repo.doit("rollout:api:dev", "--verify")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert (
        f"! terraform/monitoring/alarms-api: warning: object {digest} was damaged ({damage}): "
        "evicted and fetched again"
    ) in rolled.stdout
    assert "✓ terraform/monitoring/alarms-api: planned, no changes" in rolled.stdout  # the same module
    context = workspace / "alarms/context.tf"
    assert context.is_file() and not context.is_symlink()
    assert os.path.samefile(context, obj / "alarms/context.tf")
    assert not os.path.samefile(context, "/etc/passwd")
    assert status(repo, "--target", "dev")[0]["object_damage"] == []
    again = repo.doit("rollout:api:dev", "--verify")
    assert again.returncode == 0 and "warning" not in again.stdout

    # The environment variable asks the same of every rollout, and so does the CLI's rollout;
    # `vendor pull --verify` says it too.
    tamper()
    by_env = repo.doit("rollout:api:dev", env={**repo.env, "ATMOS_TASKS_VERIFY": "1"})
    assert by_env.returncode == 0 and f"warning: object {digest} was damaged ({damage})" in by_env.stdout
    tamper()
    by_cli = repo.cli("rollout", "api", "--target", "dev", "--verify")
    assert by_cli.returncode == 0 and f"warning: object {digest} was damaged ({damage})" in by_cli.stdout
    tamper()
    pulled = repo.cli("vendor", "pull", "--target", "dev", "--verify")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert (
        f"! warning: api/dev terraform/monitoring/alarms-api: object {digest} was damaged ({damage})"
        in pulled.stdout
    )
    tamper()
    frozen = repo.cli("vendor", "pull", "--target", "dev", "--frozen", "--verify")
    assert frozen.returncode == 2
    assert f"locked object {digest} is damaged ({damage}), now evicted," in frozen.stderr
