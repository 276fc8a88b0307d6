"""The release journey: promote, approve, diff, roll back — and every refusal, with real Terraform."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Repo, make_repo

COMPONENTS = ["api", "ecr/api", "ecs/service-api", "ecs/taskdef-api", "monitoring/alarms-api"]


@pytest.fixture(scope="session")
def dev_and_staging(example_template: Path, tmp_path_factory: pytest.TempPathFactory, home: Path) -> Path:
    """The example with dev rolled out and promoted to staging, made once and copied per test."""
    from tests.conftest import isolated_env

    repo = make_repo(example_template, tmp_path_factory.mktemp("deployed") / "repo", isolated_env(home))
    assert repo.doit("rollout:api:dev").returncode == 0
    proc = repo.doit("rollout:api:staging", "--promote-from", "dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return repo.path


@pytest.fixture
def deployed(dev_and_staging: Path, tmp_path: Path, env: dict[str, str]) -> Repo:
    return make_repo(dev_and_staging, tmp_path / "repo", env)


def status(repo: Repo, *args: str) -> dict:
    proc = repo.cli("status", "api", *args, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def target_commit(repo: Repo, target: str) -> str:
    shas = {entry["git_sha"] for entry in status(repo)["api"][target].values()}
    assert len(shas) == 1
    return shas.pop()


def test_the_release_journey(deployed: Repo) -> None:
    first = deployed.head()
    first_subject = deployed.git("log", "-1", "--format=%s", first)
    assert target_commit(deployed, "staging") == first
    # prod needs one manual approval: given ahead of time by a reviewer.
    approve = deployed.cli(
        "approve", "api", "--target", "prod", env={"ATMOS_TASKS_ACTOR": "reviewer@example.com"}
    )
    assert approve.returncode == 0, approve.stderr
    assert first[:7] in approve.stdout
    prod = deployed.doit("rollout:api:prod", "--promote-from", "staging")
    assert prod.returncode == 0, prod.stdout + prod.stderr
    assert "Promoting api from staging to prod" in prod.stdout
    assert re.search(r"✓ nixpack/api: image reused sha256:[0-9a-f]{12} \(", prod.stdout), prod.stdout
    everything = status(deployed)["api"]
    assert {t: {c["git_sha"] for c in comps.values()} for t, comps in everything.items()} == {
        "dev": {first},
        "staging": {first},
        "prod": {first},
    }
    assert {c["promoted_from"] for c in everything["prod"].values()} == {"staging"}
    tag = everything["prod"]["ecr/api"]["tag"]
    message = deployed.tag_message(tag)
    assert "promoted_from: staging" in message and '"approver": "reviewer@example.com"' in message

    # A change reaches dev and staging, not prod.
    deployed.replace("stacks/catalog/ecs/taskdef-api.yaml", "container_port: 8080", "container_port: 9090")
    deployed.replace(
        "deployments/api.yaml",
        "context: { cpu: 512, memory: 1024, replicas: 2 }",
        "context: { cpu: 768, memory: 1024, replicas: 3 }",
    )
    deployed.write("docs/notes.md", "Nothing any component is configured or built from.\n")
    second = deployed.commit("Serve on 9090; bigger staging")
    assert deployed.doit("rollout:api:dev").returncode == 0
    promoted = deployed.cli("rollout", "api", "--target", "staging", "--promote-from", "dev")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr

    diff = json.loads(
        deployed.cli(
            "diff", "api", "--from-target", "prod", "--to-target", "staging", "--format", "json"
        ).stdout
    )
    assert diff["from"]["git_sha"] == first and diff["to"]["git_sha"] == second
    assert diff["to"]["subject"] == "Serve on 9090; bigger staging"
    assert diff["commits"] == {"behind": 1, "ahead": 0}
    assert sorted(n for n, c in diff["components"].items() if c["changed"]) == COMPONENTS
    assert (
        diff["components"]["api"]["kind"] == "nixpack"
        and diff["components"]["ecr/api"]["kind"] == "terraform"
    )
    changes = {item["key"]: item for item in diff["configuration"]}
    assert changes["context.cpu"] == {
        "key": "context.cpu",
        "component": None,
        "kind": None,
        "from": 1024,
        "to": 768,
        "change": "decreased",
    }
    assert changes["context.replicas"]["change"] == "decreased"
    assert changes["ecs/taskdef-api.vars.container_port"] == {
        "key": "ecs/taskdef-api.vars.container_port",
        "component": "ecs/taskdef-api",
        "kind": "terraform",
        "from": 8080,
        "to": 9090,
        "change": "increased",
    }
    # prod pins the older release of the vendored alarms module (deployments/api.yaml, by tier label).
    assert changes["monitoring/alarms-api.module.version"] == {
        "key": "monitoring/alarms-api.module.version",
        "component": "monitoring/alarms-api",
        "kind": "terraform",
        "from": "1.2.5",
        "to": "1.3.0",
        "change": "changed",
    }
    code = json.loads(
        deployed.cli(
            "diff",
            "api",
            "--from-target",
            "prod",
            "--to-target",
            "staging",
            "--show-code",
            "--format",
            "json",
        ).stdout
    )["code"]
    # Limited to the paths the components are configured and built from: docs/notes.md is not one.
    assert code["commits"] == 1 and code["files_changed"] == 2 and code["added"] == 2 and code["deleted"] == 2
    assert {f["path"] for f in code["files"]} == {
        "deployments/api.yaml",
        "stacks/catalog/ecs/taskdef-api.yaml",
    }
    assert code["log"] == [{"git_sha": second, "subject": "Serve on 9090; bigger staging", "side": "to"}]
    assert {"deployments/api.yaml", "components/terraform/ecr", "services/api"} <= set(code["paths"])
    assert "docs/notes.md" not in code["paths"]
    table = deployed.cli(
        "diff", "api", "--from-target", "prod", "--to-target", "staging", "--show-code"
    ).stdout
    assert "↓ 1 commit(s) behind" in table and "↓ decreased" in table
    assert re.search(r"^    KEY +prod +staging +CHANGE$", table, re.M), table
    assert re.search(
        r"^    terraform/ecs/taskdef-api\.vars\.container_port +8080 +9090 +↑ increased$", table, re.M
    ), table
    assert re.search(
        rf"^    nixpack/api +{first[:7]} sha256:[0-9a-f]{{12}} +{second[:7]} sha256:", table, re.M
    )
    assert re.search(rf"^    {second[:7]}  Serve on 9090; bigger staging +staging$", table, re.M), table
    assert re.search(r"^    stacks/catalog/ecs/taskdef-api\.yaml +\+1 +-1$", table, re.M), table
    # A commit on its own is read as the other side's target would run it: only real changes show.
    by_sha = json.loads(
        deployed.cli("diff", "api", "--from-sha", first, "--to-target", "staging", "--format", "json").stdout
    )
    assert by_sha["from"]["as_target"] == "staging" and by_sha["from"]["target"] is None
    assert {c["from"]["git_sha"] for c in by_sha["components"].values()} == {first}
    assert {item["key"]: item["change"] for item in by_sha["configuration"]} == {
        "context.cpu": "increased",  # staging's context, before and after the commit
        "context.replicas": "increased",
        "ecs/taskdef-api.vars.cpu": "increased",
        "ecs/taskdef-api.vars.container_port": "increased",
        "ecs/service-api.vars.replicas": "increased",
    }

    # prod moves to the second commit, then rolls back to the first.
    approved = deployed.doit("rollout:api:prod", "--promote-from", "staging", "--approve")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert target_commit(deployed, "prod") == second
    # Approvals hold on every route into prod, a rollback included: `first` was approved for prod.
    rollback = deployed.doit("rollout:api:prod", "--git-sha", first[:10])
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert "Rolling back api on prod" in rollback.stdout
    assert target_commit(deployed, "prod") == first
    assert {c["status"] for c in status(deployed, "--target", "prod")["api"]["prod"].values()} == {"rollback"}
    history = json.loads(deployed.cli("history", "api", "--target", "prod", "--format", "json").stdout)[
        "rollouts"
    ]
    assert [(r["git_sha"], r["status"]) for r in history] == [
        (first, "rollback"),
        (second, "success"),
        (first, "success"),
    ]
    assert history[0]["rollback_of"] == second and history[1]["promoted_from"] == "staging"
    assert [r["subject"] for r in history] == [first_subject, "Serve on 9090; bigger staging", first_subject]
    shown = deployed.cli("history", "api", "--target", "prod").stdout
    assert re.search(r"^  WHEN +COMMIT +SUBJECT +BY +STATUS +SIGNATURE +NOTES$", shown, re.M), shown
    assert re.search(
        rf"^  \S+ \S+  {second[:7]}  Serve on 9090; bigger staging  .*promoted from staging$", shown, re.M
    )
    # One line per component, by its display name.
    assert len(re.findall(r"^    terraform/ecr/api +⟲ rollback +(?:none|applied)$", shown, re.M)) == 1, shown
    assert len(re.findall(r"^    nixpack/api +✓ success +(?:none|applied)$", shown, re.M)) == 2, shown

    # Targets in promotion order (not alphabetically), components by their display name, images by digest.
    assert list(status(deployed)["api"]) == ["dev", "staging", "prod"]
    table = deployed.cli("status", "api", "--no-health").stdout
    assert re.search(r"^  TARGET +COMPONENT +COMMIT +IMAGE +DEPLOYED +STATUS +BY +SIGNATURE$", table, re.M), (
        table
    )
    assert re.findall(r"^  (dev|staging|prod) ", table, re.M) == ["dev", "staging", "prod"], table
    digest = status(deployed)["api"]["prod"]["api"]["image"].split("@")[1][:19]
    assert re.search(rf"^  prod +nixpack/api +{first[:7]}  {digest}  ", table, re.M), table
    assert re.search(r"^ +terraform/ecs/service-api  ", table, re.M) and not re.search(
        r"^ +ecr/api ", table, re.M
    )
    # Promotions and the rollback reuse the image the dev rollout built: nothing is rebuilt.
    # (The service's source never changed, so later promotions find the same image already in place.)
    assert "nixpack/api: reusing the recorded image" in prod.stdout
    for run in (prod, approved, rollback):
        assert "building" not in run.stdout
        assert re.search(r"nixpack/api: (image reused|image up to date)", run.stdout)


def test_a_component_added_later_is_not_promoted(deployed: Repo) -> None:
    deployed.write("components/terraform/extra/main.tf", 'resource "null_resource" "x" {}\n')
    deployed.replace(
        "deployments/api.yaml",
        "    terraform:\n",
        "    terraform:\n      extra/cron: {component: extra}\n",
    )
    deployed.commit("A component added after the dev rollout")
    for run in (
        lambda: deployed.doit("rollout:api:staging", "--promote-from", "dev"),
        lambda: deployed.cli("rollout", "api", "--target", "staging", "--promote-from", "dev"),
    ):
        proc = run()
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "extra/cron" not in proc.stdout
        assert "refs/atmos/deployments/api/staging/extra%2Fcron" not in deployed.refs()
    listed = deployed.doit("list", "--all").stdout
    assert "plan:api:staging:extra/cron" in listed  # the working tree has it; the promotion does not


def refusal(repo: Repo, *args: str, env: dict[str, str] | None = None) -> str:
    before = (repo.refs(), repo.tags(), repo.git("for-each-ref", "refs/notes/"))
    proc = repo.doit(*args, env=env)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "hint: " in proc.stderr
    assert (repo.refs(), repo.tags(), repo.git("for-each-ref", "refs/notes/")) == before
    return proc.stderr


def set_prod_rule(repo: Repo, rule: str) -> None:
    repo.replace("deployments/api.yaml", "        requires_approval: true\n", rule)
    repo.commit("Change prod's approval rule")


def test_refused_skipping_a_stage(deployed: Repo) -> None:
    text = refusal(deployed, "rollout:api:prod", "--promote-from", "dev", "--approve")
    assert "prod accepts promotions from staging only" in text and "promote dev to staging first" in text


def test_a_direct_rollout_cannot_bypass_a_promotion_rule(deployed: Repo) -> None:
    """Gates hold on every route: a plain rollout of a commit the source target does not run is
    refused, and a plain rollout of the commit it does run is checked (and recorded) as a promotion."""
    deployed.replace("stacks/catalog/ecs/taskdef-api.yaml", "container_port: 8080", "container_port: 9090")
    fresh = deployed.commit("A commit that never ran anywhere")
    text = refusal(deployed, "rollout:api:prod", "--approve")
    assert "prod receives promotions from staging only" in text and f"{fresh[:7]} is not what staging" in text
    assert "--promote-from staging" in text
    text = refusal(deployed, "rollout:api:staging")
    assert "staging receives promotions from dev only" in text
    # Once dev runs it, a plain staging rollout is that promotion, recorded as one.
    assert deployed.doit("rollout:api:dev").returncode == 0
    staged = deployed.doit("rollout:api:staging")
    assert staged.returncode == 0, staged.stdout + staged.stderr
    assert target_commit(deployed, "staging") == fresh
    newest = json.loads(deployed.cli("history", "api", "--target", "staging", "--format", "json").stdout)
    assert newest["rollouts"][0]["promoted_from"] == "dev"
    # prod: the commit staging runs, and still the approval it requires.
    text = refusal(deployed, "rollout:api:prod")
    assert "requires manual approval" in text
    approved = deployed.doit("rollout:api:prod", "--approve")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert target_commit(deployed, "prod") == fresh
    approvals = json.loads(deployed.git("notes", "--ref=refs/notes/atmos/api/approvals", "show", fresh))
    assert [a["target"] for a in approvals["approvals"]] == ["prod"]


def test_a_build_run_cannot_apply_to_a_protected_target(deployed: Repo) -> None:
    """`doit build:api:prod` would apply ecr/api (what the image needs) and record it: refused."""
    for task in ("build:api:prod", "build:api:prod:api"):
        text = refusal(deployed, task)
        assert "prod is changed only through its promotion rule" in text and "--promote-from staging" in text
    assert not (deployed.path / ".atmos/state/api/prod").exists()


def test_a_rollback_to_a_rejected_commit_is_refused(deployed: Repo) -> None:
    first = deployed.head()
    deployed.replace("stacks/catalog/ecs/taskdef-api.yaml", "container_port: 8080", "container_port: 9090")
    deployed.commit("Serve on 9090")
    assert deployed.doit("rollout:api:dev").returncode == 0
    assert deployed.doit("rollout:api:staging").returncode == 0
    assert deployed.cli("reject", "api", "--git-sha", first, "--reason", "leaks memory").returncode == 0
    text = refusal(deployed, "rollout:api:staging", "--git-sha", first)
    assert "rejected" in text and "leaks memory" in text


def test_a_target_with_approvals_only_asks_for_them_on_a_plain_rollout(deployed: Repo) -> None:
    deployed.replace("deployments/api.yaml", "        from: staging\n", "")
    head = deployed.commit("prod takes any commit, with an approval")
    text = refusal(deployed, "rollout:api:prod")
    assert f"prod requires manual approval of {head[:7]}" in text
    approved = deployed.doit("rollout:api:prod", "--approve")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert target_commit(deployed, "prod") == head
    # A rollback is a route in too: a commit never approved for prod needs its approval.
    deployed.replace("stacks/catalog/ecs/taskdef-api.yaml", "container_port: 8080", "container_port: 9090")
    deployed.commit("Another")
    assert deployed.doit("rollout:api:prod", "--approve").returncode == 0
    deployed.git("notes", "--ref=refs/notes/atmos/api/approvals", "remove", head)
    text = refusal(deployed, "rollout:api:prod", "--git-sha", head)
    assert f"prod requires manual approval of {head[:7]}" in text


def test_refused_unverified_source(deployed: Repo) -> None:
    deployed.write(
        "components/terraform/broken/main.tf",
        'resource "null_resource" "x" {\n  provisioner "local-exec" { command = "exit 1" }\n}\n',
    )
    deployed.replace(
        "deployments/api.yaml",
        "    terraform:\n",
        "    terraform:\n      jobs/broken: {component: broken}\n",
    )
    deployed.commit("A job that fails")
    assert deployed.doit("rollout:api:dev").returncode == 1
    text = refusal(deployed, "rollout:api:staging", "--promote-from", "dev")
    assert "is not verified on dev: jobs/broken's latest rollout is failed" in text


def test_refused_soak_not_elapsed(deployed: Repo) -> None:
    deployed.replace(
        "deployments/api.yaml", "        from: staging\n", "        from: staging\n        min_soak: 2h\n"
    )
    deployed.commit("Soak two hours on staging")
    text = refusal(deployed, "rollout:api:prod", "--promote-from", "staging", "--approve")
    assert "prod requires 2h there first" in text and "promote again after" in text


def test_refused_rejected_commit(deployed: Repo) -> None:
    rejected = deployed.cli("reject", "api", "--git-sha", "HEAD", "--reason", "breaks checkout")
    assert rejected.returncode == 0, rejected.stderr
    text = refusal(deployed, "rollout:api:prod", "--promote-from", "staging", "--approve")
    assert "was rejected by ada@example.com: breaks checkout" in text


def test_refused_too_few_approvals(deployed: Repo) -> None:
    set_prod_rule(deployed, "        requires_approval: {count: 3}\n")
    ok = deployed.cli(
        "approve",
        "api",
        "--target",
        "prod",
        "--git-sha",
        "HEAD~1",
        env={"ATMOS_TASKS_ACTOR": "bob@example.com"},
    )
    assert ok.returncode == 0, ok.stderr
    text = refusal(deployed, "rollout:api:prod", "--promote-from", "staging", "--approve")
    assert "prod requires 3 approval(s)" in text and "found 2 (ada@example.com, bob@example.com)" in text
    assert "atmos-tasks approve api --target prod" in text


def test_refused_self_approval_when_prevented(deployed: Repo) -> None:
    set_prod_rule(deployed, "        requires_approval: {count: 1, prevent_self_approval: true}\n")
    mine = deployed.cli("approve", "api", "--target", "prod", "--git-sha", "HEAD~1")
    assert mine.returncode == 0
    text = refusal(deployed, "rollout:api:prod", "--promote-from", "staging")
    assert "your own approval does not count" in text
    text = refusal(deployed, "rollout:api:prod", "--promote-from", "staging", "--approve")
    assert "does not accept its deployer's approval" in text
    other = deployed.cli(
        "approve",
        "api",
        "--target",
        "prod",
        "--git-sha",
        "HEAD~1",
        env={"ATMOS_TASKS_ACTOR": "carol@example.com"},
    )
    assert other.returncode == 0
    assert deployed.doit("rollout:api:prod", "--promote-from", "staging").returncode == 0


def test_refused_manual_approval_without_a_terminal(deployed: Repo) -> None:
    text = refusal(deployed, "rollout:api:prod", "--promote-from", "staging")
    assert "requires manual approval" in text and "no terminal" in text


def test_refused_rollback_to_a_commit_never_deployed_there(deployed: Repo) -> None:
    deployed.write("notes.md", "a commit that only dev will see\n")
    newer = deployed.commit("Only on dev")
    assert deployed.doit("rollout:api:dev").returncode == 0
    text = refusal(deployed, "rollout:api:staging", "--git-sha", newer)
    assert f"{newer[:7]} was never deployed to staging" in text


def test_ci_approval_is_recorded_from_the_environment(deployed: Repo) -> None:
    deployed.replace("deployments/api.yaml", "approval_method: manual", "approval_method: ci")
    deployed.commit("Approve prod in CI")
    outside = refusal(deployed, "rollout:api:prod", "--promote-from", "staging")
    assert "this is not a CI run" in outside
    ci = {"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat", "GITHUB_RUN_ID": "4242"}
    proc = deployed.doit("rollout:api:prod", "--promote-from", "staging", env=ci)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    commit = target_commit(deployed, "prod")
    note = json.loads(deployed.git("notes", "--ref=refs/notes/atmos/api/approvals", "show", commit))
    assert note["approvals"] == [
        {"target": "prod", "method": "ci", "by": "octocat", "at": note["approvals"][0]["at"], "run": "4242"}
    ]
    tag = status(deployed, "--target", "prod")["api"]["prod"]["ecr/api"]["tag"]
    message = deployed.tag_message(tag)
    assert "deployed_by: octocat" in message and '"ci_run": "4242"' in message


def test_promotion_graph_and_status(deployed: Repo) -> None:
    text = deployed.cli("promotion-graph", "api").stdout
    assert "dev → staging" in text and "staging → prod  (1 approval(s), manual)" in text
    mermaid = deployed.cli("promotion-graph", "api", "--format", "mermaid").stdout
    assert 'staging -->|"1 approval(s), manual"| prod' in mermaid
    data = json.loads(deployed.cli("promotion-status", "api", "--format", "json").stdout)
    head = deployed.head()
    assert data["targets"]["staging"]["sources"]["dev"]["blocked_by"] == [f"staging already runs {head[:7]}"]
    prod = data["targets"]["prod"]["sources"]["staging"]
    assert prod["commit"] == head and prod["approvals"] == {"required": 1, "recorded": 0}
    assert not prod["ready"]


def clone(remote: Path, path: Path, env: dict[str, str], email: str, sources: Path | None = None) -> Repo:
    subprocess.run(["git", "clone", "-q", str(remote), str(path)], env=env, check=True)
    if sources is not None:
        # The module repository the example vendors from sits beside each checkout.
        shutil.copytree(sources, path / ".sources")
    repo = Repo(path, env)
    repo.git("config", "user.email", email)
    return repo


def test_two_clones_race_for_one_target_and_one_deploys(
    deployed: Repo, tmp_path: Path, env: dict[str, str]
) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], env=env, check=True)
    deployed.write("bump.txt", "1\n")
    deployed.commit("Bump")  # the same new commit for both clones
    deployed.git("remote", "add", "origin", str(remote))
    deployed.git(
        "push", "-q", "origin", "main", "refs/atmos/*:refs/atmos/*", "refs/tags/atmos/*:refs/tags/atmos/*"
    )
    one = clone(remote, tmp_path / "one", env, "one@example.com", deployed.path / ".sources")
    two = clone(remote, tmp_path / "two", env, "two@example.com", deployed.path / ".sources")
    command = [sys.executable, "-m", "doit", "rollout:api:dev", "--remote", "origin"]
    runs = [
        subprocess.Popen(
            command, cwd=r.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for r in (one, two)
    ]
    outputs = [p.communicate(timeout=300) for p in runs]
    # One run takes the target's locks on the remote and deploys; the other waits for them, then
    # finds the commit it was asked for already running there and applies nothing.
    assert [p.returncode for p in runs] == [0, 0], outputs
    assert one.head() == two.head()
    waited = [out for out, err in outputs if "already runs this commit" in out]
    assert len(waited) == 1, outputs
    assert waited[0].count("nothing applied") == 4  # the Terraform components; the image is not applied
    remote_refs = subprocess.run(
        [
            "git",
            "for-each-ref",
            "--format=%(refname) %(objectname) %(*objectname)",
            "refs/atmos/deployments/api/dev/",
            "refs/tags/atmos/deployments/api/dev/",
            "refs/atmos/locks/",
        ],
        cwd=remote,
        env=env,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    refs = dict(line.split(" ")[:2] for line in remote_refs if line.startswith("refs/atmos/deployments/"))
    assert set(refs.values()) == {one.head()} and len(refs) == 5
    one.git("fetch", "-q", "origin", "+refs/tags/atmos/*:refs/tags/atmos/*")
    history = json.loads(one.cli("history", "api", "--target", "dev", "--format", "json").stdout)
    at_head = [r for r in history["rollouts"] if r["git_sha"] == one.head()]
    assert len(at_head) == 1 and sorted(at_head[0]["components"]) == COMPONENTS  # one record each
    assert not [line for line in remote_refs if line.startswith("refs/atmos/locks/")]  # released


def test_concurrent_approvals_for_different_targets_both_land(
    deployed: Repo, tmp_path: Path, env: dict[str, str]
) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], env=env, check=True)
    deployed.git("remote", "add", "origin", str(remote))
    deployed.git("push", "-q", "origin", "main")
    head = deployed.head()
    clones = [clone(remote, tmp_path / f"c{i}", env, f"approver{i}@example.com") for i in range(4)]
    targets = ["staging", "prod", "staging", "prod"]
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "atmos_tasks.cli",
                "approve",
                "api",
                "--target",
                t,
                "--git-sha",
                head,
                "--remote",
                "origin",
            ],
            cwd=c.path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c, t in zip(clones, targets, strict=True)
    ]
    outputs = [p.communicate(timeout=120) for p in runs]
    assert [p.returncode for p in runs] == [0, 0, 0, 0], outputs
    note = subprocess.run(
        ["git", "notes", "--ref=refs/notes/atmos/api/approvals", "show", head],
        cwd=remote,
        env=env,
        capture_output=True,
        text=True,
    )
    entries = json.loads(note.stdout)["approvals"]
    assert sorted((a["target"], a["by"]) for a in entries) == sorted(
        (t, f"approver{i}@example.com") for i, t in enumerate(targets)
    )


def test_build_records_reach_the_remote_and_another_clone_promotes_without_rebuilding(
    repo: Repo, tmp_path: Path, env: dict[str, str]
) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], env=env, check=True)
    repo.git("remote", "add", "origin", str(remote))
    repo.git("push", "-q", "origin", "main")
    one = clone(remote, tmp_path / "one", env, "one@example.com", repo.path / ".sources")
    rollout = one.doit("rollout:api:dev", env={"ATMOS_TASKS_REMOTE": "origin"})
    assert rollout.returncode == 0, rollout.stdout + rollout.stderr
    head = one.head()
    # Writing the SBOM fetched the remote's notes: the build record written locally survives it.
    assert "api" in json.loads(one.git("notes", "--ref=refs/notes/atmos/api/builds", "show", head))

    two = clone(remote, tmp_path / "two", env, "two@example.com", repo.path / ".sources")
    two.git("fetch", "-q", "origin", "refs/notes/*:refs/notes/*")
    recorded = json.loads(two.git("notes", "--ref=refs/notes/atmos/api/builds", "show", head))
    assert recorded["api"]["source_hash"] and recorded["api"]["digest"].startswith("sha256:")
    promoted = two.doit("rollout:api:staging", "--promote-from", "dev", "--remote", "origin")
    out = promoted.stdout + promoted.stderr
    assert promoted.returncode == 0, out
    assert "nixpack/api: reusing the recorded image" in out and "building" not in out
    assert f"image: acme/api@{recorded['api']['digest']}" in two.tag_message(
        two.tags("atmos/deployments/api/staging/api/")[-1]
    )


def test_sbom_of_a_target_running_several_commits_is_the_one_deployed_last(deployed: Repo) -> None:
    first = deployed.head()
    # A second commit whose id sorts after the first one's: the largest id is not the latest.
    attempt = 0
    while True:
        deployed.write("bump.txt", f"{attempt}\n")
        second = deployed.commit(f"Bump {attempt}")
        if second > first:
            break
        deployed.git("reset", "-q", "--hard", first)
        attempt += 1
    assert deployed.doit("rollout:api:dev").returncode == 0
    back = deployed.doit("rollout:api:dev", "--git-sha", first, "--component", "ecr/api")
    assert back.returncode == 0, back.stdout + back.stderr
    assert {c: e["git_sha"] for c, e in status(deployed, "--target", "dev")["api"]["dev"].items()} == {
        c: first if c == "ecr/api" else second for c in COMPONENTS
    }
    latest = deployed.cli("sbom", "api", "--target", "dev")
    assert latest.returncode == 0, latest.stderr
    assert json.loads(latest.stdout)["metadata"]["component"]["version"] == first[:12]
    assert f"dev runs several commits of api ({first[:7]}: terraform/ecr/api; {second[:7]}: nixpack/api," in (
        latest.stderr
    )
    assert f"this is the SBOM of {first[:7]}, deployed most recently" in latest.stderr
    # --component: the commit that component runs.
    api = deployed.cli("sbom", "api", "--target", "dev", "--component", "api")
    assert api.returncode == 0, api.stderr
    assert json.loads(api.stdout)["metadata"]["component"]["version"] == second[:12] and not api.stderr
