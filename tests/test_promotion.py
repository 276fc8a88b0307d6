"""The promotion gates as pure functions of records, notes, the rule and the time (no Git, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from atmos_tasks.errors import EXIT_REFUSED, AtmosError
from atmos_tasks.manifest import Promotion
from atmos_tasks.promotion import (
    check_rejections,
    check_rollback,
    check_soak,
    check_verified,
    decide_approvals,
    source_commit,
)
from atmos_tasks.tracking import ComponentState, DeploymentRecord

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
A, B = "a" * 40, "b" * 40


def record(
    name: str, sha: str, status: str = "success", at: datetime = NOW - timedelta(hours=1)
) -> DeploymentRecord:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return DeploymentRecord(
        "api", "dev", name, "terraform", sha, "ci@x", stamp, status, "h", "applied", tag=f"t/{stamp}"
    )


def state(name: str, sha: str | None, *history: DeploymentRecord) -> ComponentState:
    return ComponentState("api", "dev", name, git_sha=sha, history=list(history))


def refused(call: object) -> str:
    with pytest.raises(AtmosError) as err:
        call()  # type: ignore[operator]
    assert err.value.exit_code == EXIT_REFUSED
    return err.value.problems[0].message


def test_the_source_commit_is_the_one_every_component_runs() -> None:
    states = {"ecr": state("ecr", A, record("ecr", A)), "svc": state("svc", A, record("svc", A))}
    assert source_commit("api", "dev", states, None) == A
    assert "runs nothing of api yet" in refused(lambda: source_commit("api", "dev", {}, None))
    mixed = {**states, "svc": state("svc", B, record("svc", B))}
    with pytest.raises(AtmosError, match="run different commits"):
        source_commit("api", "dev", mixed, None)


def test_a_commit_is_verified_only_when_every_latest_record_succeeded_there() -> None:
    check_verified("dev", A, {"ecr": state("ecr", A, record("ecr", A))})
    failed = {"ecr": state("ecr", A, record("ecr", A, "failed"), record("ecr", A))}
    assert "latest rollout is failed" in refused(lambda: check_verified("dev", A, failed))


def test_soak_counts_from_when_the_commit_arrived_on_the_source() -> None:
    rule = Promotion(min_soak="2h")
    young = {"ecr": state("ecr", A, record("ecr", A, at=NOW - timedelta(minutes=30)))}
    message = refused(lambda: check_soak("dev", "prod", A, young, rule, NOW))
    assert "for 30m" in message and "requires 2h" in message
    old = {"ecr": state("ecr", A, record("ecr", A, at=NOW - timedelta(hours=3)))}
    check_soak("dev", "prod", A, old, rule, NOW)


def test_a_rejected_commit_is_refused_naming_who_and_why() -> None:
    check_rejections(A, {})
    message = refused(lambda: check_rejections(A, {"rejections": [{"by": "bo", "reason": "leaks memory"}]}))
    assert "rejected by bo: leaks memory" in message


def test_a_rollback_goes_only_to_a_commit_the_target_ran() -> None:
    states = {"ecr": state("ecr", B, record("ecr", B), record("ecr", A, at=NOW - timedelta(days=1)))}
    check_rollback("dev", A, states)
    assert "never deployed to dev" in refused(lambda: check_rollback("dev", "c" * 40, states))


def test_approvals_count_people_and_self_approval_can_be_excluded() -> None:
    rule = Promotion(requires_approval={"count": 2, "prevent_self_approval": True})
    existing = [{"target": "prod", "by": "ada", "at": "2026-12-03T11:00:00Z"}]
    # The deployer's own --approve does not count.
    message = refused(lambda: decide_approvals("api", "prod", A, rule, existing, "bo", True, NOW))
    assert "does not accept its deployer's approval" in message
    both = [*existing, {"target": "prod", "by": "cy", "at": "2026-12-03T11:10:00Z"}]
    new, approvers = decide_approvals("api", "prod", A, rule, both, "bo", False, NOW)
    assert new == [] and sorted(approvers) == ["ada", "cy"]


def test_approvals_expire() -> None:
    rule = Promotion(requires_approval=True, approvals_expire_after="1h")
    stale = [{"target": "prod", "by": "ada", "at": "2026-12-03T09:00:00Z"}]
    refused(lambda: decide_approvals("api", "prod", A, rule, stale, "bo", False, NOW))
    fresh = [{"target": "prod", "by": "ada", "at": "2026-12-03T11:30:00Z"}]
    assert decide_approvals("api", "prod", A, rule, fresh, "bo", False, NOW)[1] == ["ada"]
