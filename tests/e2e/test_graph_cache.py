"""The graph cache serves a no-op rollout its task graph, and never a stale one.

One small repository per test (two Terraform components, real Terraform), with the cache on. Each
kind of input a compilation reads outside the commit gets a test: change it, and the next run
compiles (and the change takes effect); leave everything alone, and the next run is served from the
cache. The rest of the suite runs with ATMOS_TASKS_GRAPH_CACHE=verify, which compiles every time and
fails when a graph the cache holds for the same key differs from the compiled one.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import Repo

MODULE = 'variable "label" {\n  type = string\n}\noutput "label" {\n  value = var.label\n}\n'


@pytest.fixture
def small(tmp_path: Path, env: dict[str, str]) -> Repo:
    repo = Repo(tmp_path / "small", {**env, "ATMOS_TASKS_GRAPH_CACHE": "on", "LABEL_SUFFIX": "one"})
    repo.write(
        "atmos.yaml",
        "components:\n  terraform:\n    base_path: components/terraform\n"
        'stacks:\n  base_path: stacks\n  included_paths: ["deploy/*"]\n  name_pattern: "{stage}"\n'
        "templates:\n  settings:\n    enabled: true\n    sprig:\n      enabled: true\n"
        "yaml_functions:\n  exec:\n    enabled: true\n",
    )
    repo.write("dodo.py", "from atmos_tasks.dodo import *  # noqa: F403\n")
    repo.write(
        ".gitignore", ".atmos/\n__pycache__/\nlocal/\ncomponents/terraform/b/ignored.auto.tfvars.json\n"
    )
    repo.write("local/extra.yaml", "suffix: first\n")
    repo.write(
        "stacks/deploy/dev.yaml",
        "vars:\n  stage: dev\n"
        "components:\n  terraform:\n    a:\n      vars:\n        label: !env LABEL_SUFFIX\n"
        "    b:\n      vars:\n        label: !include local/extra.yaml .suffix\n",
    )
    repo.write("components/terraform/a/main.tf", MODULE)
    repo.write("components/terraform/b/main.tf", MODULE)
    repo.write(
        "deployments/app.yaml",
        "deployment:\n  name: app\n  components:\n    terraform:\n      a: {}\n      b: {}\n"
        "  targets:\n    dev:\n      stacks: [deploy/dev]\n",
    )
    repo.git("init", "-q", "-b", "main")
    repo.commit("small")
    first = rollout(repo)
    assert graph(first) == "compiled"
    return repo


def rollout(repo: Repo, *args: str, env: dict[str, str] | None = None) -> str:
    proc = repo.doit("rollout:app:dev", *args, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def graph(output: str) -> str:
    """compiled, cached, or settled (cached, and answered from the last rollout's check)."""
    found = re.search(
        r"Rollout complete in [\d.]+s \(task graph [\d.]+s, (cached|compiled)(, settled)?(?:, \d+ of \d+ "
        r"components as resolved before)?\)",
        output,
    )
    assert found, output
    return "settled" if found.group(2) else found.group(1)


def applied(output: str) -> set[str]:
    return set(re.findall(r"terraform/(\w+): applied", output))


def test_a_no_op_rollout_is_served_from_the_cache(small: Repo) -> None:
    out = rollout(small)
    assert graph(out) == "cached"
    assert applied(out) == set()
    (entry,) = (small.path / ".atmos/cache/graphs").glob("*.pickle")
    # The graph holds the components' variables (sensitive ones too): its owner's only.
    assert entry.stat().st_mode & 0o077 == 0


def test_an_environment_variable_read_by_env_is_in_the_key(small: Repo) -> None:
    assert graph(rollout(small)) == "cached"
    out = rollout(small, env={"LABEL_SUFFIX": "two"})
    assert graph(out) == "compiled"
    assert applied(out) == {"a"}
    assert graph(rollout(small, env={"LABEL_SUFFIX": "two"})) == "cached"


def test_an_ignored_included_file_is_in_the_key(small: Repo) -> None:
    small.write("local/extra.yaml", "suffix: second\n")
    out = rollout(small)
    assert graph(out) == "compiled"
    assert applied(out) == {"b"}


def test_an_ignored_file_in_a_module_folder_is_in_the_key(small: Repo) -> None:
    small.write("components/terraform/b/ignored.auto.tfvars.json", '{"label": "from-tfvars"}\n')
    out = rollout(small)
    assert graph(out) == "compiled"
    assert "b" in applied(out) or "terraform/b: planned" in out


def test_a_commit_changes_the_key(small: Repo) -> None:
    small.replace("components/terraform/a/main.tf", "value = var.label", 'value = "${var.label}!"')
    small.commit("a changes")
    out = rollout(small)
    assert graph(out) == "compiled"
    assert applied(out) == {"a"}
    assert graph(rollout(small)) == "cached"


def test_uncommitted_changes_are_in_the_key_by_content(small: Repo) -> None:
    small.replace("components/terraform/a/main.tf", "value = var.label", 'value = "${var.label}?"')
    out = rollout(small, "--allow-dirty")
    assert graph(out) == "compiled"
    assert graph(rollout(small, "--allow-dirty")) == "cached"
    # Same path still dirty, other content: a new key.
    small.replace("components/terraform/a/main.tf", "?", "!")
    out = rollout(small, "--allow-dirty")
    assert graph(out) == "compiled"
    assert applied(out) == {"a"}


def test_the_command_line_is_in_the_key(small: Repo) -> None:
    proc = small.doit("apply:app:dev:a")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert graph(rollout(small)) == "cached"


def test_a_template_reading_the_clock_is_never_cached(small: Repo) -> None:
    clock = "  year: '{{ now | date \"2006\" }}'\n"
    small.replace("stacks/deploy/dev.yaml", "  stage: dev\n", "  stage: dev\n" + clock)
    small.commit("a clock")
    assert graph(rollout(small)) == "compiled"
    assert graph(rollout(small)) == "compiled"


def test_exec_is_never_cached(small: Repo) -> None:
    small.replace("stacks/deploy/dev.yaml", "  stage: dev\n", "  stage: dev\n  host: !exec echo builder\n")
    small.commit("a command")
    assert graph(rollout(small)) == "compiled"
    assert graph(rollout(small)) == "compiled"


def test_a_damaged_entry_is_a_miss(small: Repo) -> None:
    for entry in (small.path / ".atmos/cache/graphs").glob("*.pickle"):
        entry.write_bytes(entry.read_bytes()[:40])
    assert graph(rollout(small)) == "compiled"
    # Stored again; that run checked every component and changed nothing: the next one settles.
    assert graph(rollout(small)) == "settled"


def test_an_entry_others_may_write_is_never_loaded(small: Repo) -> None:
    """A graph entry readable or writable by others (committed and checked out, or another user's)
    is not unpickled: the graph is compiled and stored again, its owner's only."""
    (entry,) = (small.path / ".atmos/cache/graphs").glob("*.pickle")
    entry.chmod(0o664)
    assert graph(rollout(small)) == "compiled"
    assert entry.stat().st_mode & 0o077 == 0


def test_the_cache_can_be_turned_off(small: Repo) -> None:
    assert graph(rollout(small, env={"ATMOS_TASKS_GRAPH_CACHE": "off"})) == "compiled"


def test_verify_mode_catches_a_stale_entry(small: Repo) -> None:
    """An entry whose inputs still match but whose graph differs (as if an input were missing from
    the key) is reported, not run."""
    (entry,) = (small.path / ".atmos/cache/graphs").glob("*.pickle")
    stored = pickle.loads(entry.read_bytes())
    tasks = pickle.loads(stored.tasks)
    for task in tasks:
        if task.get("basename") == "plan" and task.get("name") == "app:dev:a":
            job = task["actions"][0][1][0]
            task["actions"][0][1][0] = dataclasses.replace(job, vars={"label": "stale"})
    stored.tasks = pickle.dumps(tasks)
    entry.write_bytes(pickle.dumps(stored))
    proc = small.doit("rollout:app:dev", env={"ATMOS_TASKS_GRAPH_CACHE": "verify"})
    assert proc.returncode == 1
    assert "the graph cache holds a graph that differs" in proc.stderr


def test_a_cache_that_cannot_be_written_is_no_error(small: Repo) -> None:
    folder = small.path / ".atmos/cache/graphs"
    shutil.rmtree(folder)
    folder.write_text("not a folder")  # (permissions would not stop root)
    out = rollout(small)
    assert graph(out) == "compiled"
    assert graph(rollout(small)) == "compiled"


def settled_run(repo: Repo) -> str:
    """A no-op that checks every component (and leaves the mark), then one answered from it."""
    assert graph(rollout(repo)) == "cached"
    out = rollout(repo)
    assert graph(out) == "settled"
    return out


def test_a_rollout_that_changed_nothing_settles_the_next_one(small: Repo) -> None:
    out = settled_run(small)
    (mark,) = (small.path / ".atmos/cache/settled").glob("*.json")
    # The record's answer carries the applies' outputs (sensitive ones too): its owner's only.
    assert mark.stat().st_mode & 0o077 == 0
    assert "all 2 components up to date" in out
    assert "Nothing to record: app → dev already runs" in out
    assert "plan up to date" not in out  # no component's tasks were walked
    refs = small.refs()
    assert graph(rollout(small)) == "settled"
    assert small.refs() == refs


def test_a_missing_plan_file_unsettles(small: Repo) -> None:
    settled_run(small)
    (small.path / ".atmos/workdir/app/dev/a/atmos.tfplan").unlink()
    out = rollout(small)
    assert graph(out) == "cached"
    assert "terraform/a: planned" in out


def test_a_forgotten_task_unsettles(small: Repo) -> None:
    settled_run(small)
    proc = small.doit("forget", "plan:app:dev:b")
    assert proc.returncode == 0, proc.stderr
    out = rollout(small)
    assert graph(out) == "cached"
    assert "terraform/b: planned" in out


def test_a_change_to_the_records_unsettles(small: Repo) -> None:
    settled_run(small)
    small.git("update-ref", "-d", "refs/atmos/deployments/app/dev/a")
    out = rollout(small)
    assert graph(out) == "cached"
    assert "refs/atmos/deployments/app/dev/a" in small.refs()


def test_single_tasks_and_job_summaries_walk_every_component(small: Repo, tmp_path: Path) -> None:
    settled_run(small)
    proc = small.doit("apply:app:dev:a")
    assert proc.returncode == 0 and "settled" not in proc.stdout, proc.stdout
    summary = tmp_path / "summary.md"
    out = rollout(small, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert graph(out) == "cached"
    assert summary.read_text().count("up to date") == 2  # a row per component


def test_always_execute_walks_every_component(small: Repo) -> None:
    settled_run(small)
    proc = small.doit("-a", "rollout:app:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "terraform/a: planned" in proc.stdout and "settled" not in proc.stdout


def test_another_database_walks_every_component(small: Repo, tmp_path: Path) -> None:
    """The mark watches .atmos/doit.sqlite: a run told to use another database never settles."""
    database = tmp_path / "other.db"
    for _ in range(3):
        proc = small.doit("run", "--db-file", str(database), "rollout:app:dev")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "settled" not in proc.stdout
    database.unlink()
    proc = small.doit("run", "--db-file", str(database), "rollout:app:dev")
    assert "terraform/a: planned" in proc.stdout, proc.stdout


# --- the resolve memo: a new commit resolves again only the components whose inputs changed ----------


def deployed_label(repo: Repo, name: str) -> str:
    """The `label` output in the component's Terraform state: what was really applied."""
    state = json.loads((repo.path / f".atmos/state/app/dev/{name}.tfstate").read_text())
    return str(state["outputs"]["label"]["value"])


def reused(output: str) -> int:
    found = re.search(r", (\d+) of \d+ components as resolved before\)", output)
    return int(found.group(1)) if found else 0


def change_module(repo: Repo, name: str, value: str) -> None:
    repo.write(
        f"components/terraform/{name}/main.tf", MODULE.replace("var.label", f'"{value}-${{var.label}}"')
    )
    repo.commit(f"change {name}")


def test_a_commit_changing_one_module_resolves_only_that_component(small: Repo) -> None:
    change_module(small, "b", "v2")
    out = rollout(small)
    assert graph(out) == "compiled" and reused(out) == 1
    assert applied(out) == {"b"}
    memo = small.path / ".atmos/cache/resolved/app--dev.pickle"
    assert memo.stat().st_mode & 0o077 == 0  # the components' variables: its owner's only
    # Checked against a fresh resolution of every component served from the memo.
    change_module(small, "b", "v3")
    verified = rollout(small, env={"ATMOS_TASKS_GRAPH_CACHE": "verify"})
    assert applied(verified) == {"b"}


def test_a_component_resolves_again_when_an_environment_variable_it_read_changed(small: Repo) -> None:
    change_module(small, "b", "v2")
    out = rollout(small, env={"LABEL_SUFFIX": "two"})
    assert reused(out) == 0
    assert applied(out) == {"a", "b"}
    assert deployed_label(small, "a") == "two"


def test_a_component_resolves_again_when_a_file_it_included_changed(small: Repo) -> None:
    small.write("local/extra.yaml", "suffix: second\n")
    change_module(small, "a", "v2")
    out = rollout(small)
    assert reused(out) == 0
    assert applied(out) == {"a", "b"}


def test_a_component_reading_the_commit_is_never_reused(small: Repo) -> None:
    small.replace(
        "deployments/app.yaml",
        "      a: {}\n",
        '      a:\n        vars:\n          label: "{{ git.short_sha }}"\n',
    )
    first = small.commit("a reads the commit")
    assert applied(rollout(small)) == {"a"}
    assert deployed_label(small, "a") == first[:7]
    change_module(small, "b", "v2")
    second = small.git("rev-parse", "HEAD").strip()
    out = rollout(small)
    assert reused(out) == 0  # b changed; a read the commit
    assert applied(out) == {"a", "b"}
    assert deployed_label(small, "a") == second[:7]


def test_a_damaged_memo_resolves_everything(small: Repo) -> None:
    change_module(small, "b", "v2")
    rollout(small)
    memo = small.path / ".atmos/cache/resolved/app--dev.pickle"
    memo.write_bytes(memo.read_bytes()[:30])
    change_module(small, "b", "v3")
    out = rollout(small)
    assert reused(out) == 0 and applied(out) == {"b"}
    change_module(small, "b", "v4")
    assert reused(rollout(small)) == 1


def test_a_vendor_entry_in_a_file_vendor_yaml_imports_is_not_missed(small: Repo) -> None:
    """vendor.yaml's imports are read below what the compilation observes: the memo keys on every
    vendor entry read, so a new one for a component makes it resolve (and vendor) again."""
    small.write(
        "modules/b2/main.tf",
        'variable "label" {\n  type = string\n}\noutput "label" {\n  value = "VENDORED"\n}\n',
    )
    header = "apiVersion: atmos/v1\nkind: AtmosVendorConfig\nspec:\n"
    small.write("vendor.yaml", header + "  imports: [vendor/extra]\n  sources: []\n")
    small.write("vendor/extra.yaml", header + "  sources: []\n")
    small.commit("vendor files")
    rollout(small)
    small.write("vendor/extra.yaml", header + "  sources:\n    - component: b\n      source: ../modules/b2\n")
    small.commit("vendor b through the imported file")
    out = rollout(small)
    assert reused(out) == 0
    assert deployed_label(small, "b") == "VENDORED"


def test_an_include_through_a_link_resolves_again_when_the_link_is_repointed(small: Repo) -> None:
    small.write("shared/one.yaml", "suffix: one\n")
    small.write("shared/two.yaml", "suffix: two\n")
    (small.path / "shared/current.yaml").symlink_to("one.yaml")
    small.replace(
        "stacks/deploy/dev.yaml", "!include local/extra.yaml .suffix", "!include shared/current.yaml .suffix"
    )
    small.commit("b includes through a link")
    rollout(small)
    assert deployed_label(small, "b") == "one"
    (small.path / "shared/current.yaml").unlink()
    (small.path / "shared/current.yaml").symlink_to("two.yaml")
    small.commit("repoint the link")
    out = rollout(small)
    assert applied(out) == {"b"} and deployed_label(small, "b") == "two"


def test_the_time_zone_is_in_the_memo_key(small: Repo) -> None:
    small.replace("stacks/deploy/dev.yaml", "label: !env LABEL_SUFFIX", "label: '{{ date \"15:04 MST\" 0 }}'")
    small.commit("a's label is a date in the local zone")
    rollout(small, env={"TZ": "UTC"})
    assert deployed_label(small, "a") == "00:00 UTC"
    change_module(small, "b", "v2")
    rollout(small, env={"TZ": "Asia/Tokyo"})
    assert deployed_label(small, "a") == "09:00 JST"


def test_a_protected_target_keeps_no_memo(small: Repo) -> None:
    """What is resolved for a target with a promotion rule (its secrets) is never kept on disk."""
    prod = "    prod:\n      stacks: [deploy/dev]\n      promotion:\n        from: dev\n"
    small.replace(
        "deployments/app.yaml", "      stacks: [deploy/dev]\n", "      stacks: [deploy/dev]\n" + prod
    )
    small.commit("prod, promoted from dev")
    assert small.doit("list", env={"LABEL_SUFFIX": "hunter2-secret"}).returncode == 0
    kept = small.path / ".atmos/cache/resolved"
    assert (kept / "app--dev.pickle").exists() and not (kept / "app--prod.pickle").exists()
    # dev's memo and graph hold dev's value (as its Terraform state does): their owner's only.
    for path in (small.path / ".atmos").rglob("*"):
        if path.is_file() and b"hunter2-secret" in path.read_bytes():
            assert path.stat().st_mode & 0o077 == 0, path
