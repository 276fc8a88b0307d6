"""What the record finalizer decides to write, as a pure function of results and Git state."""

from __future__ import annotations

from datetime import UTC, datetime

from atmos_tasks.record import RecordSpec, decide
from atmos_tasks.tracking import ComponentState, DeploymentRecord

NOW = datetime(2025, 1, 23, 15, 30, tzinfo=UTC)
OLD, NEW = "1" * 40, "2" * 40
SPEC = RecordSpec(
    root="/r",
    deployment="api",
    target="dev",
    git_sha=NEW,
    components=(("terraform", "ecr/api"), ("terraform", "ecs/taskdef-api")),
)


def applied(inputs: str) -> tuple[dict, dict]:
    return {"status": "planned", "inputs_hash": inputs}, {"status": "applied", "outputs": {}}


def deployed(name: str, sha: str, inputs: str, status: str = "success") -> ComponentState:
    record = DeploymentRecord(
        "api",
        "dev",
        name,
        "terraform",
        sha,
        "a@x",
        "2025-01-01T00:00:00Z",
        status,
        inputs,
        "applied",
        tag="atmos/deployments/api/dev/x/2025-01-01T00-00-00Z",
    )
    return ComponentState("api", "dev", name, git_sha=sha if status != "failed" else None, history=[record])


def states(*items: ComponentState) -> dict:
    return {(s.deployment, s.target, s.component): s for s in items}


def test_first_rollout_records_every_component_as_applied() -> None:
    decision = decide(SPEC, {"ecr/api": applied("h1"), "ecs/taskdef-api": applied("h2")}, {}, "me", NOW, {})
    assert [(r.component, r.status, r.changes) for r in decision.records] == [
        ("ecr/api", "success", "applied"),
        ("ecs/taskdef-api", "success", "applied"),
    ]
    assert decision.ref_updates == [
        ("refs/atmos/deployments/api/dev/ecr%2Fapi", NEW, None),
        ("refs/atmos/deployments/api/dev/ecs%2Ftaskdef-api", NEW, None),
    ]
    assert decision.records[0].timestamp == "2025-01-23T15:30:00Z"


def test_same_commit_same_inputs_records_nothing() -> None:
    current = states(deployed("ecr/api", NEW, "h1"), deployed("ecs/taskdef-api", NEW, "h2"))
    decision = decide(
        SPEC, {"ecr/api": applied("h1"), "ecs/taskdef-api": applied("h2")}, current, "me", NOW, {}
    )
    assert decision.records == [] and decision.ref_updates == []
    assert decision.unchanged == ["ecr/api", "ecs/taskdef-api"]


def test_new_commit_with_unchanged_inputs_moves_the_ref_with_changes_none() -> None:
    current = states(deployed("ecr/api", OLD, "h1"), deployed("ecs/taskdef-api", OLD, "h2"))
    decision = decide(
        SPEC, {"ecr/api": applied("h1"), "ecs/taskdef-api": applied("h2-new")}, current, "me", NOW, {}
    )
    assert [(r.component, r.changes) for r in decision.records] == [
        ("ecr/api", "none"),
        ("ecs/taskdef-api", "applied"),
    ]
    assert all(new == NEW and old == OLD for _ref, new, old in decision.ref_updates)


def test_failure_is_tagged_without_moving_the_ref_and_skips_are_not_recorded() -> None:
    current = states(deployed("ecr/api", OLD, "h1"))
    outcomes = {
        "ecr/api": (
            {"status": "planned", "inputs_hash": "h9"},
            {"status": "failed", "error": "boom", "workdir": "/w"},
        ),
        "ecs/taskdef-api": (
            {"status": "skipped", "reason": "dependency ecr/api did not apply"},
            {"status": "skipped", "reason": "dependency ecr/api did not apply"},
        ),
    }
    decision = decide(SPEC, outcomes, current, "me", NOW, {})
    assert [(r.component, r.status) for r in decision.records] == [("ecr/api", "failed")]
    assert decision.ref_updates == []
    assert "boom" in decision.failed["ecr/api"] and "/w" in decision.failed["ecr/api"]
    assert decision.skipped == {"ecs/taskdef-api": "dependency ecr/api did not apply"}


def test_a_success_after_a_failure_with_the_same_inputs_is_recorded() -> None:
    current = states(deployed("ecr/api", NEW, "h1", status="failed"))
    decision = decide(
        SPEC, {"ecr/api": applied("h1"), "ecs/taskdef-api": applied("h2")}, current, "me", NOW, {}
    )
    assert [r.component for r in decision.records] == ["ecr/api", "ecs/taskdef-api"]


def test_a_build_run_records_the_terraform_it_applied_but_deploys_no_image() -> None:
    from dataclasses import replace

    spec = replace(
        SPEC,
        components=(("terraform", "ecr/api"), ("nixpack", "api"), ("nixpack", "web")),
        images_deployed=False,
    )
    built = {"status": "built", "image": "acme/api@sha256:aa", "inputs_hash": "i"}
    outcomes = {
        "ecr/api": applied("h1"),
        "api": ({}, built),
        "web": ({}, {"status": "failed", "error": "no engine"}),
    }
    decision = decide(spec, outcomes, {}, "me", NOW, {})
    assert [(r.component, r.status) for r in decision.records] == [("ecr/api", "success")]
    assert [ref for ref, _new, _old in decision.ref_updates] == ["refs/atmos/deployments/api/dev/ecr%2Fapi"]
    assert decision.failed == {"web": "no engine"} and decision.skipped == {}


def test_history_grows_with_what_changed_not_with_the_number_of_components() -> None:
    """300 components, one changed: two tags (the applied one, and the target rollout listing the
    299 unchanged), every ref moves, and reading the records back gives each component its record."""
    from atmos_tasks.gitrepo import Ident
    from atmos_tasks.record import tag_bodies, tag_names
    from atmos_tasks.tracking import parse_message, parse_rollout

    names = [f"c{i:03d}" for i in range(300)]
    spec = RecordSpec(
        root="/r",
        deployment="api",
        target="dev",
        git_sha=NEW,
        components=tuple(("terraform", n) for n in names),
    )
    current = states(*(deployed(n, OLD, f"h-{n}") for n in names))
    outcomes = {n: applied(f"h-{n}" if n != "c007" else "changed") for n in names}
    decision = decide(spec, outcomes, current, "me", NOW, {"ci_run": "42"})
    assert len(decision.ref_updates) == 300
    tags = tag_names(decision.records, current, NOW)
    bodies = tag_bodies(decision.records, tags, Ident("Me", "me@x"), NOW)
    assert sorted(bodies) == [
        "atmos/deployments/api/dev/c007/2025-01-23T15-30-00Z",
        "atmos/rollouts/api/dev/2025-01-23T15-30-00Z",
    ]
    own = parse_message(bodies["atmos/deployments/api/dev/c007/2025-01-23T15-30-00Z"].split("\n\n", 1)[1])
    assert own is not None and own.changes == "applied" and own.component == "c007"
    listed = parse_rollout(bodies["atmos/rollouts/api/dev/2025-01-23T15-30-00Z"].split("\n\n", 1)[1], "t")
    assert sorted(r.component for r in listed) == sorted(n for n in names if n != "c007")
    first = next(r for r in listed if r.component == "c000")
    assert (first.changes, first.status, first.git_sha, first.inputs_hash) == (
        "none",
        "success",
        NEW,
        "h-c000",
    )
    assert first.metadata == {"ci_run": "42"} and first.deployed_by == "me" and first.tag == "t"


def test_a_rollout_record_clashing_in_time_gets_a_suffix() -> None:
    from atmos_tasks.record import tag_names
    from atmos_tasks.tracking import DeploymentRecord

    earlier = DeploymentRecord(
        "api",
        "dev",
        "ecr/api",
        "terraform",
        OLD,
        "a",
        "t",
        "success",
        "h",
        "none",
        tag="atmos/rollouts/api/dev/2025-01-23T15-30-00Z",
    )
    current = {("api", "dev", "ecr/api"): ComponentState("api", "dev", "ecr/api", OLD, [earlier])}
    decision = decide(
        SPEC, {"ecr/api": applied("h"), "ecs/taskdef-api": applied("h2")}, current, "me", NOW, {}
    )
    tags = tag_names(decision.records, current, NOW)
    assert tags[0] == "atmos/rollouts/api/dev/2025-01-23T15-30-00Z-2"


def test_records_of_one_second_order_after_those_of_either_namespace() -> None:
    """A component's own tag and the target rollout's tag of an earlier record in the same second
    would tie; the new record's tags all take a suffix above both, so history orders it last."""
    from atmos_tasks.record import tag_names
    from atmos_tasks.tracking import tag_order

    own = DeploymentRecord(
        "api",
        "dev",
        "ecs/taskdef-api",
        "terraform",
        OLD,
        "a",
        "t",
        "success",
        "h2",
        "applied",
        tag="atmos/deployments/api/dev/ecs%2Ftaskdef-api/2025-01-23T15-30-00Z",
    )
    listed = DeploymentRecord(
        "api",
        "dev",
        "ecr/api",
        "terraform",
        OLD,
        "a",
        "t",
        "success",
        "h",
        "none",
        tag="atmos/rollouts/api/dev/2025-01-23T15-30-00Z",
    )
    current = states(
        ComponentState("api", "dev", "ecr/api", OLD, [listed]),
        ComponentState("api", "dev", "ecs/taskdef-api", OLD, [own]),
    )
    decision = decide(
        SPEC, {"ecr/api": applied("new"), "ecs/taskdef-api": applied("h2")}, current, "me", NOW, {}
    )
    tags = tag_names(decision.records, current, NOW)
    assert tags == [
        "atmos/deployments/api/dev/ecr%2Fapi/2025-01-23T15-30-00Z-2",
        "atmos/rollouts/api/dev/2025-01-23T15-30-00Z-2",
    ]
    newer = [r.__class__(**{**r.__dict__, "tag": t}) for r, t in zip(decision.records, tags, strict=True)]
    assert all(tag_order(n) > tag_order(old) for n in newer for old in (own, listed))


def test_a_destroy_records_each_component_and_deletes_only_the_refs_of_what_it_removed() -> None:
    from atmos_tasks.gitrepo import ZERO_SHA
    from atmos_tasks.record import decide_destroy

    current = states(deployed("ecr/api", OLD, "h1"), deployed("ecs/taskdef-api", OLD, "h2"))
    results = {
        "ecs/taskdef-api": ("terraform", {"status": "destroyed"}),
        "ecr/api": ("terraform", {"status": "failed", "error": "locked"}),
        "web": ("container", {"status": "skipped", "reason": "cancelled"}),
    }
    decision = decide_destroy("api", "dev", NEW, results, current, "me", NOW, {})
    assert [(r.component, r.type, r.status, r.changes, r.git_sha) for r in decision.records] == [
        ("ecs/taskdef-api", "terraform", "destroyed", "destroyed", OLD),
        ("ecr/api", "terraform", "failed", "none", OLD),
    ]
    assert decision.ref_updates == [("refs/atmos/deployments/api/dev/ecs%2Ftaskdef-api", ZERO_SHA, OLD)]
    assert decision.failed == {"ecr/api": "locked"} and decision.skipped == {"web": "cancelled"}


def test_destroying_what_was_never_recorded_points_at_the_checkout_and_moves_no_ref() -> None:
    from atmos_tasks.record import decide_destroy

    decision = decide_destroy(
        "api", "dev", NEW, {"web": ("container", {"status": "destroyed"})}, {}, "me", NOW, {}
    )
    assert [(r.component, r.git_sha, r.status) for r in decision.records] == [("web", NEW, "destroyed")]
    assert decision.ref_updates == []


def test_recorded_applies_are_keyed_by_their_record_and_never_carry_a_secret() -> None:
    from atmos_tasks.record import recorded_apply_entries
    from atmos_tasks.remotecache import apply_key

    outcomes = {
        "ecr/api": (
            {"status": "planned", "inputs_hash": "h1"},
            {"status": "applied", "outputs": {"url": "u"}},
        ),
        # An output that echoes a sensitive input, and one Terraform marks sensitive: kept here.
        "ecs/taskdef-api": (
            {"status": "planned", "inputs_hash": "h2", "secrets": ["hunter2"]},
            {"status": "applied", "outputs": {"arn": "arn-hunter2"}},
        ),
    }
    decision = decide(SPEC, outcomes, {}, "me", NOW, {})
    entries = recorded_apply_entries(SPEC, decision.records, outcomes)
    assert entries == [
        (
            apply_key("api", "dev", "ecr/api", NEW, "h1", "2025-01-23T15:30:00Z"),
            {"outputs": {"url": "u"}, "component": "api/dev/ecr/api"},
        )
    ]
    outcomes["ecs/taskdef-api"][1]["outputs"] = {"arn": "x"}
    assert len(recorded_apply_entries(SPEC, decision.records, outcomes)) == 2
    outcomes["ecs/taskdef-api"][1]["sensitive"] = ["arn"]
    assert len(recorded_apply_entries(SPEC, decision.records, outcomes)) == 1
    # A later record of the same commit and inputs (after a destroy, say) is another key.
    assert apply_key("api", "dev", "ecr/api", NEW, "h1", "2025-01-24T00:00:00Z") != entries[0][0]


def test_a_plan_with_changes_made_after_the_latest_record_is_recorded_again() -> None:
    """A drifted resource put back at the same commit and inputs: recorded with the time it ran,
    so what reads the record (the remote cache's recorded applies) never serves the outputs of
    before. A plan kept from before the record (doit's saved values) records nothing."""
    current = states(deployed("ecr/api", NEW, "h1"), deployed("ecs/taskdef-api", NEW, "h2"))
    kept = {"status": "planned", "inputs_hash": "h1", "has_changes": True}
    kept["planned_at"] = "2025-01-01T00:00:00Z"
    again = {**kept, "planned_at": "2025-01-23T15:29:59Z"}
    applied_ = {"status": "applied", "outputs": {}}
    outcomes = {"ecr/api": (kept, applied_), "ecs/taskdef-api": applied("h2")}
    assert decide(SPEC, outcomes, current, "me", NOW, {}).records == []
    outcomes["ecr/api"] = (again, applied_)
    decision = decide(SPEC, outcomes, current, "me", NOW, {})
    assert [(r.component, r.changes) for r in decision.records] == [("ecr/api", "applied")]
    assert decision.unchanged == ["ecs/taskdef-api"]


def test_only_what_a_record_applied_gets_a_recorded_apply_entry() -> None:
    """A component recorded with `changes: none` (inputs as before, nothing applied) stores nothing:
    a one-change rollout of three hundred components stores one entry."""
    from atmos_tasks.record import recorded_apply_entries

    current = states(deployed("ecr/api", OLD, "h1"), deployed("ecs/taskdef-api", OLD, "h2"))
    outcomes = {"ecr/api": applied("h1"), "ecs/taskdef-api": applied("h3")}
    decision = decide(SPEC, outcomes, current, "me", NOW, {})
    assert [(r.component, r.changes) for r in decision.records] == [
        ("ecr/api", "none"),
        ("ecs/taskdef-api", "applied"),
    ]
    entries = recorded_apply_entries(SPEC, decision.records, outcomes)
    assert [result["component"] for _key, result in entries] == ["api/dev/ecs/taskdef-api"]
