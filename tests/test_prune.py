"""Retention (`atmos-tasks prune`): which tags and notes go, decided without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atmos_tasks.prune import decide_prune, retention_seconds
from atmos_tasks.tracking import (
    ComponentState,
    DeploymentRecord,
    rfc3339,
    rollout_tag_name,
    tag_name,
    tag_order,
    tag_stamp,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
DAY = 86400
States = dict[tuple[str, str, str], ComponentState]


def record(
    component: str,
    sha: str,
    days_ago: float,
    *,
    target: str = "dev",
    status: str = "success",
    grouped: bool = False,
    rollback_of: str | None = None,
    deployment: str = "api",
) -> DeploymentRecord:
    when = NOW - timedelta(days=days_ago)
    stamp = tag_stamp(when)
    tag = (
        rollout_tag_name(deployment, target, stamp)
        if grouped
        else tag_name(deployment, target, component, stamp)
    )
    return DeploymentRecord(
        deployment=deployment,
        target=target,
        component=component,
        type="terraform",
        git_sha=sha * 40 if len(sha) == 1 else sha,
        deployed_by="ada@example.com",
        timestamp=rfc3339(when),
        status=status,
        inputs_hash="h",
        changes="none" if grouped else "applied",
        rollback_of=rollback_of,
        tag=tag,
        tag_object=f"obj-{tag}",
    )


def states(*records: DeploymentRecord, refs: dict[tuple[str, str, str], str] | None = None) -> States:
    """Records filed by component, newest first, as `read_records` returns them; each ref on the
    commit of its newest success (unless `refs` says otherwise)."""
    found: States = {}
    for r in records:
        key = (r.deployment, r.target, r.component)
        found.setdefault(key, ComponentState(*key)).history.append(r)
    for key, state in found.items():
        state.history.sort(key=tag_order, reverse=True)
        deployed = [r for r in state.history if r.status in ("success", "rollback")]
        state.git_sha = (refs or {}).get(key, deployed[0].git_sha if deployed else None)
    return found


def sha(letter: str) -> str:
    return letter * 40


def test_the_latest_record_is_kept_whatever_its_age_and_keep_last() -> None:
    found = states(record("ecr/api", "a", 400), record("ecr/api", "b", 300))
    decision = decide_prune(found, NOW, 0, 30 * DAY)
    assert list(decision.tags) == [found["api", "dev", "ecr/api"].history[1].tag]
    assert decision.commits == {"api": frozenset({sha("a")})}
    assert decision.targets["api", "dev"].removed == 1 and decision.targets["api", "dev"].kept == 1


def test_the_last_n_records_of_each_component_are_kept() -> None:
    found = states(*(record("ecr/api", letter, 100 + i) for i, letter in enumerate("abcde")))
    decision = decide_prune(found, NOW, 3, 30 * DAY)
    gone = {r.git_sha for r in found["api", "dev", "ecr/api"].history if r.tag in decision.tags}
    assert gone == {sha("d"), sha("e")}  # the two oldest
    assert decision.commits["api"] == {sha("d"), sha("e")}


def test_records_younger_than_d_are_kept() -> None:
    found = states(
        *(record("ecr/api", letter, days) for letter, days in zip("abcd", (1, 5, 20, 40), strict=True))
    )
    decision = decide_prune(found, NOW, 1, 10 * DAY)
    gone = {r.git_sha for r in found["api", "dev", "ecr/api"].history if r.tag in decision.tags}
    assert gone == {sha("c"), sha("d")}
    assert decide_prune(found, NOW, 1, timedelta(days=50)).tags == {}
    # Exactly D old is old enough.
    assert len(decide_prune(found, NOW, 1, 40 * DAY).tags) == 1


def test_the_record_behind_the_ref_is_kept_when_newer_ones_failed() -> None:
    found = states(
        record("ecr/api", "a", 100),
        record("ecr/api", "b", 90, status="failed"),
        record("ecr/api", "c", 80, status="failed"),
    )
    assert found["api", "dev", "ecr/api"].git_sha == sha("a")
    decision = decide_prune(found, NOW, 1, DAY)
    gone = {r.git_sha for r in found["api", "dev", "ecr/api"].history if r.tag in decision.tags}
    assert gone == {sha("b")}  # not the latest (c), not the one the ref points at (a)
    assert decision.commits == {"api": frozenset({sha("b")})}


def test_a_rollout_tag_goes_only_when_none_of_its_records_is_kept() -> None:
    # `ecr/api` was unchanged in the rollouts of b and c (listed in their rollout tags); `api`
    # applied in each. With keep-last 2, api keeps b and c; ecr/api keeps c and b as well.
    found = states(
        record("ecr/api", "a", 100),
        record("api", "a", 100),
        record("ecr/api", "b", 90, grouped=True),
        record("api", "b", 90),
        record("ecr/api", "c", 80, grouped=True),
        record("api", "c", 80),
        record("api", "d", 70),  # ecr/api failed to be listed: not in this rollout
    )
    decision = decide_prune(found, NOW, 2, DAY)
    rollout_b = found["api", "dev", "ecr/api"].history[1].tag
    assert rollout_b is not None and rollout_b.startswith("atmos/rollouts/api/dev/")
    assert rollout_b not in decision.tags  # ecr/api's second newest
    assert sorted(decision.tags) == sorted(
        [tag_name("api", "dev", c, tag_stamp(NOW - timedelta(days=100))) for c in ("ecr/api", "api")]
        + [tag_name("api", "dev", "api", tag_stamp(NOW - timedelta(days=90)))]
    )
    # b's api record goes, but ecr/api's record of b stays: b keeps its notes.
    assert decision.commits == {"api": frozenset({sha("a")})}


def test_a_rollout_tag_listing_several_components_is_kept_by_any_of_them() -> None:
    shared = [record(c, "a", 100, grouped=True) for c in ("x", "y")]
    found = states(*shared, record("x", "b", 50), record("x", "c", 40))
    decision = decide_prune(found, NOW, 1, DAY)
    assert shared[0].tag == shared[1].tag
    assert shared[0].tag not in decision.tags  # y's latest record lives in it
    assert decision.commits == {"api": frozenset({sha("b")})}
    assert decision.targets["api", "dev"].removed == 1


def test_notes_of_a_commit_another_target_still_records_stay() -> None:
    found = states(
        record("ecr/api", "a", 100),
        record("ecr/api", "b", 90),
        record("ecr/api", "c", 80),
        record("ecr/api", "a", 95, target="staging"),
        record("ecr/api", "c", 70, target="staging"),
    )
    only_dev = decide_prune(found, NOW, 1, DAY, deployment="api", target="dev")
    assert set(only_dev.targets) == {("api", "dev")}
    assert all(t.startswith("atmos/deployments/api/dev/") for t in only_dev.tags)
    assert len(only_dev.tags) == 2
    # a is still recorded on staging (out of scope): its notes stay; b is recorded nowhere else.
    assert only_dev.commits == {"api": frozenset({sha("b")})}
    everywhere = decide_prune(found, NOW, 1, DAY)
    assert len(everywhere.tags) == 3
    assert everywhere.commits == {"api": frozenset({sha("a"), sha("b")})}


def test_other_deployments_are_left_alone_and_keep_their_own_notes() -> None:
    found = states(
        record("ecr/api", "a", 100),
        record("ecr/api", "b", 90),
        record("web", "a", 100, deployment="hello"),
        record("web", "c", 90, deployment="hello"),
    )
    decision = decide_prune(found, NOW, 1, DAY, deployment="api")
    assert set(decision.targets) == {("api", "dev")}
    assert decision.commits == {"api": frozenset({sha("a")})}  # hello's notes of a are hello's


def test_a_commit_a_ref_points_at_keeps_its_notes() -> None:
    found = states(
        record("ecr/api", "a", 100),
        record("ecr/api", "b", 90),
        refs={("api", "dev", "ecr/api"): sha("b")},
    )
    other = states(record("api", "a", 100), record("api", "c", 10), refs={("api", "dev", "api"): sha("a")})
    found.update(other)
    # api's ref points at a although its only record of a goes (records deleted by hand, say).
    decision = decide_prune(found, NOW, 1, DAY)
    assert "api" not in decision.commits


def test_a_commit_a_kept_rollback_names_keeps_its_notes() -> None:
    found = states(
        record("ecr/api", "a", 100),
        record("ecr/api", "b", 90),
        record("ecr/api", "a", 80, status="rollback", rollback_of=sha("b")),
    )
    decision = decide_prune(found, NOW, 1, DAY)
    assert len(decision.tags) == 2
    assert decision.commits == {}  # a: kept record; b: what the kept rollback rolled back from


def test_a_record_whose_age_cannot_be_told_is_kept() -> None:
    odd = record("ecr/api", "a", 100)
    found = states(
        DeploymentRecord(**{**odd.__dict__, "timestamp": "yesterday"}),
        record("ecr/api", "b", 50),
    )
    assert decide_prune(found, NOW, 0, DAY).tags == {}


def test_nothing_to_prune() -> None:
    assert decide_prune({}, NOW, 0, 0).tags == {}
    found = states(record("ecr/api", "a", 100))
    decision = decide_prune(found, NOW, 0, 0)
    assert decision.tags == {} and decision.commits == {}
    assert decision.kept_commits == {"api": frozenset({sha("a")})}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * DAY), ("12h", 12 * 3600), ("2w", 14 * DAY), ("1w2d", 9 * DAY), ("0s", 0), ("90m", 5400)],
)
def test_retention_durations(text: str, seconds: int) -> None:
    assert retention_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "w", "2x", "d30", "1d1w", "-1d", "2 w"])
def test_retention_durations_refused(text: str) -> None:
    with pytest.raises(ValueError):
        retention_seconds(text)


# Property: whatever the histories, the rules hold.

COMPONENTS = ("ecr/api", "api", "ecs/service-api")
TARGETS = ("dev", "staging")


@st.composite
def histories(draw: st.DrawFn) -> States:
    """Rollouts per target, one per hour going back from NOW: each lists some components, those
    unchanged in the target's rollout tag, the others in their own tags, some failed."""
    records = []
    for target in TARGETS:
        for hour in range(draw(st.integers(0, 12))):
            commit = draw(st.sampled_from("abcdef"))
            when = hour * 3600 / DAY + draw(st.integers(0, 40))
            for component in draw(st.sets(st.sampled_from(COMPONENTS), min_size=1)):
                status = draw(st.sampled_from(("success", "success", "failed", "rollback")))
                grouped = status != "failed" and draw(st.booleans())
                back = draw(st.sampled_from((None, *"abcdef"))) if status == "rollback" else None
                r = record(component, commit, when, target=target, status=status, grouped=grouped)
                records.append(DeploymentRecord(**{**r.__dict__, "rollback_of": back and sha(back)}))
    # One record per (component, tag): a rollout tag lists a component once.
    unique = {(r.target, r.component, r.tag): r for r in records}
    return states(*unique.values())


@settings(max_examples=200, deadline=None)
@given(
    found=histories(),
    keep_last=st.integers(0, 4),
    days=st.integers(0, 45),
    target=st.sampled_from((None, *TARGETS)),
)
def test_what_prune_keeps(found: States, keep_last: int, days: int, target: str | None) -> None:
    decision = decide_prune(found, NOW, keep_last, days * DAY, deployment="api", target=target)
    gone_tags = set(decision.tags)
    gone_commits = decision.commits.get("api", frozenset())
    cutoff = NOW - timedelta(days=days)
    for (_dep, tgt, _component), state in found.items():
        # The latest record of each component on each target, and the one its ref points at.
        assert state.history[0].tag not in gone_tags
        if state.current is not None:
            assert state.current.tag not in gone_tags
        # Every commit a kept record names, and every commit a ref points at, keeps its notes.
        assert state.git_sha not in gone_commits
        for index, r in enumerate(state.history):
            if r.tag not in gone_tags:
                assert r.git_sha not in gone_commits
                assert r.rollback_of not in gone_commits
                continue
            # What goes is in scope, old enough, past the last N.
            assert target in (None, tgt)
            assert index >= max(keep_last, 1)
            assert datetime.fromisoformat(r.timestamp.replace("Z", "+00:00")) <= cutoff
    # Only commits whose records went lose their notes.
    named_by_gone = {r.git_sha for s in found.values() for r in s.history if r.tag in gone_tags}
    assert gone_commits <= named_by_gone
    # Counts add up per target in scope.
    for (dep, tgt), entry in decision.targets.items():
        in_target = [r for (d, t, _c), s in found.items() if (d, t) == (dep, tgt) for r in s.history]
        assert entry.removed + entry.kept == len(in_target)
        assert entry.removed == sum(r.tag in gone_tags for r in in_target)


def test_the_report_lists_each_deployments_targets_in_promotion_order(tmp_path: Path) -> None:
    from atmos_tasks.gitrepo import GitRepo
    from atmos_tasks.prune import _in_promotion_order

    (tmp_path / "deployments").mkdir()
    (tmp_path / "deployments" / "api.yaml").write_text(
        "deployment:\n  name: api\n  targets:\n    dev: {}\n"
        "    staging: {promotion: {from: dev}}\n    prod: {promotion: {from: staging}}\n"
    )
    found = {"api": {"targets": {"dev": {}, "prod": {}, "staging": {}}, "notes": {}}}
    _in_promotion_order(GitRepo(tmp_path), found)
    assert list(found["api"]["targets"]) == ["dev", "staging", "prod"]
