"""`doit rollout:api:dev` on the example repository, with real Terraform and real Git."""

from __future__ import annotations

import json
import re

from ruamel.yaml import YAML

from tests.conftest import Repo

COMPONENTS = ["ecr/api", "ecs/taskdef-api", "ecs/service-api", "monitoring/alarms-api"]  # Terraform, in order
LEAVES = {
    "ecr/api": "ecr%2Fapi",
    "api": "api",
    "ecs/taskdef-api": "ecs%2Ftaskdef-api",
    "ecs/service-api": "ecs%2Fservice-api",
    "monitoring/alarms-api": "monitoring%2Falarms-api",
}
MESSAGE = re.compile(
    r"\AapiVersion: atmos\.tools/v1alpha1\nkind: Deployment\n---\n"
    r"deployment: api\ntarget: dev\ncomponent: (?P<component>[a-z/-]+)\ntype: (?P<type>terraform|nixpack)\n"
    r"git_sha: (?P<sha>[0-9a-f]{40})\ndeployed_by: ada@example\.com\n"
    r"timestamp: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\nstatus: success\n"
    r"(?:image: (?P<image>acme/api@sha256:[0-9a-f]{64})\n)?"
    r"inputs_hash: [0-9a-f]{64}\nchanges: (?P<changes>applied|none)\n\Z"
)


def in_dependency_order(found: list[str]) -> bool:
    """Every component once, and the ecr → taskdef → service chain in order (alarms is independent)."""
    order = [found.index(c) for c in ("ecr/api", "ecs/taskdef-api", "ecs/service-api")]
    return sorted(found) == sorted(COMPONENTS) and order == sorted(order)


def steps(output: str, verb: str) -> list[str]:
    """Components for which the rollout printed `verb` (planned, applied, plan up to date…)."""
    return re.findall(rf"terraform/(\S+): {verb}\b", output)


def test_first_rollout_applies_in_order_and_records_refs_and_tags(repo: Repo) -> None:
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert in_dependency_order(steps(out, "applied"))
    assert re.search(r"terraform/ecs/service-api: applied \(\d+\.\ds\)", out)  # timings shown
    head = repo.head()
    assert re.search(r"nixpack/api: built \(with oci\) sha256:", out)  # no Docker engine here
    refs = repo.refs("refs/atmos/deployments/api/dev/")
    assert refs == {f"refs/atmos/deployments/api/dev/{leaf}": head for leaf in LEAVES.values()}
    tags = repo.tags("atmos/deployments/api/dev/")
    assert len(tags) == 5
    images = {}
    for component, leaf in LEAVES.items():
        (tag,) = [t for t in tags if t.startswith(f"atmos/deployments/api/dev/{leaf}/")]
        assert re.fullmatch(
            rf"atmos/deployments/api/dev/{re.escape(leaf)}/\d{{4}}-\d\d-\d\dT\d\d-\d\d-\d\dZ", tag
        )
        message = repo.tag_message(tag)
        match = MESSAGE.match(message)
        assert match, message
        assert match["component"] == component and match["sha"] == head and match["changes"] == "applied"
        assert match["type"] == ("nixpack" if component == "api" else "terraform")
        images[component] = match["image"]
        header, body = list(YAML(typ="safe").load_all(message))
        assert header == {"apiVersion": "atmos.tools/v1alpha1", "kind": "Deployment"}
        assert body["component"] == component and body["git_sha"] == head
        assert repo.git("rev-parse", f"{tag}^{{commit}}") == head
    # The built image is recorded on the image and on the component it is bound to, only those.
    assert images["api"] and images["ecs/taskdef-api"] == images["api"]
    assert (
        images["ecr/api"] is None
        and images["ecs/service-api"] is None
        and images["monitoring/alarms-api"] is None
    )
    # Rollouts never dirty the tree: .atmos/ is ignored.
    assert repo.git("status", "--porcelain") == ""


def test_target_context_reaches_module_outputs(repo: Repo) -> None:
    assert repo.doit("rollout:api:dev").returncode == 0
    state = json.loads((repo.path / ".atmos/state/api/dev/ecs/taskdef-api.tfstate").read_text())
    outputs = {k: v["value"] for k, v in state["outputs"].items()}
    assert outputs["cpu"] == 256 and outputs["memory"] == 512
    # The image built from services/api, bound through the `app: api` label.
    built = repo.tag_message(repo.tags("atmos/deployments/api/dev/api/")[0])
    assert outputs["image"].startswith("acme/api@sha256:") and f"image: {outputs['image']}" in built
    service = json.loads((repo.path / ".atmos/state/api/dev/ecs/service-api.tfstate").read_text())
    assert service["outputs"]["desired_count"]["value"] == 1
    assert service["outputs"]["task_definition_arn"]["value"] == outputs["task_definition_arn"]
    # The vendored module (1.3.0 on dev) declares `replicas`: the context reaches it at plan time.
    alarms = json.loads((repo.path / ".atmos/state/api/dev/monitoring/alarms-api.tfstate").read_text())
    assert alarms["outputs"]["module_version"]["value"] == "1.3.0"
    assert "acme-dev-api-running-below-1" in alarms["outputs"]["alarm_names"]["value"]


def test_second_rollout_is_a_no_op_and_a_change_replans_only_what_it_touches(repo: Repo) -> None:
    assert repo.doit("rollout:api:dev").returncode == 0
    first_tags = repo.tags()

    again = repo.doit("rollout:api:dev")
    assert again.returncode == 0, again.stdout + again.stderr
    assert steps(again.stdout, "planned") == [] and steps(again.stdout, "applied") == []
    assert sorted(steps(again.stdout, "plan up to date")) == sorted(COMPONENTS)
    assert "nixpack/api: image up to date" in again.stdout and "building" not in again.stdout
    assert repo.tags() == first_tags
    assert "Nothing to record" in again.stdout

    repo.replace("stacks/catalog/ecs/taskdef-api.yaml", "log_retention_days: 14", "log_retention_days: 30")
    head = repo.commit("Keep api logs for 30 days")
    changed = repo.doit("rollout:api:dev")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert steps(changed.stdout, "planned") == ["ecs/taskdef-api", "ecs/service-api"]
    assert steps(changed.stdout, "applied") == ["ecs/taskdef-api", "ecs/service-api"]
    assert sorted(steps(changed.stdout, "plan up to date")) == ["ecr/api", "monitoring/alarms-api"]
    assert "nixpack/api: image up to date" in changed.stdout
    refs = repo.refs("refs/atmos/deployments/api/dev/")
    assert set(refs.values()) == {head}
    new_tags = sorted(set(repo.tags("atmos/deployments/")) - set(first_tags))
    # History sized to the change: a tag per component that applied, one for the target rollout
    # listing the unchanged ones (their refs move all the same).
    assert len(new_tags) == 2 and all("%2Ftaskdef-api/" in t or "%2Fservice-api/" in t for t in new_tags)
    rollout_tags = repo.tags("atmos/rollouts/api/dev/")
    assert len(rollout_tags) == 1
    listed = repo.tag_message(rollout_tags[0])
    assert "kind: Rollout" in listed and f"git_sha: {head}" in listed
    history = json.loads(repo.cli("history", "api", "--target", "dev", "--format", "json").stdout)
    newest = history["rollouts"][0]
    assert newest["git_sha"] == head
    changes = {name: entry["changes"] for name, entry in newest["components"].items()}
    expected = {
        "ecr/api": "none",
        "api": "none",
        "ecs/taskdef-api": "applied",
        "ecs/service-api": "applied",
        "monitoring/alarms-api": "none",
    }
    assert changes == expected


def test_dirty_tree_is_refused_unless_allowed_and_then_recorded(repo: Repo) -> None:
    repo.replace("deployments/api.yaml", "cluster_name: app-ecs", "cluster_name: app-ecs-2")
    refused = repo.doit("rollout:api:dev")
    assert refused.returncode == 3
    assert "uncommitted changes" in refused.stderr and "deployments/api.yaml" in refused.stderr
    assert "--allow-dirty" in refused.stderr and "Traceback" not in refused.stderr
    assert repo.refs() == {} and repo.tags() == []
    assert not (repo.path / ".atmos/state").exists() and not (repo.path / ".atmos/workdir").exists()

    allowed = repo.doit("rollout:api:dev", "--allow-dirty")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    tags = repo.tags()
    assert len(tags) == 5
    for tag in tags:
        assert 'metadata: {"allow_dirty": true}' in repo.tag_message(tag)
    # What a dirty tree built is not recorded as the commit's build, nor described as its SBOM.
    assert repo.run("git", "notes", "--ref=refs/notes/atmos/api/builds", "list").stdout == ""
    assert repo.run("git", "notes", "--ref=refs/notes/atmos/api/sbom", "list").stdout == ""
    assert "SBOM not recorded: the working tree has uncommitted changes" in allowed.stdout
    state = json.loads((repo.path / ".atmos/state/api/dev/ecs/service-api.tfstate").read_text())
    assert state["outputs"]["cluster_arn"]["value"].endswith("cluster/app-ecs-2")


def test_untracked_file_counts_as_dirty(repo: Repo) -> None:
    repo.write("notes.txt", "scratch\n")
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 3 and "notes.txt" in proc.stderr


def test_cli_rollout_runs_the_same_tasks(repo: Repo) -> None:
    proc = repo.cli("rollout", "api")  # default target from context.default_target
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert in_dependency_order(steps(proc.stdout, "applied"))
    again = repo.doit("rollout:api:dev")
    assert sorted(steps(again.stdout, "plan up to date")) == sorted(COMPONENTS)
