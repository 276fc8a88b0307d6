"""A preview's inputs: which image stands for a nixpack component, and why a plan is skipped."""

from __future__ import annotations

from atmos_tasks.images.stage import BuildJob
from atmos_tasks.preview import BUILT_FOR_SOURCE, choose_image, never_applied_reason, split_image

DIGEST = "sha256:" + "ab" * 32


def build_job(source_hash: str = "src-1", plan_hash: str = "plan-1") -> BuildJob:
    return BuildJob(
        deployment="api",
        target="dev",
        component="api",
        root="/repo",
        source_dir="/repo/services/api",
        plan_json="{}",
        plan_hash=plan_hash,
        source_hash=source_hash,
        settings={},
        registry="registry.example.com",
        repository="acme/api",
        publish=True,
        key="k",
        commit="c" * 40,
        source_date_epoch=0,
        record_build=True,
    )


def entry(source_hash: str, digest: str = DIGEST) -> dict[str, str]:
    return {
        "image": f"registry.example.com/acme/api@{digest}",
        "digest": digest,
        "registry": "registry.example.com",
        "repository": "acme/api",
        "source_hash": source_hash,
        "plan_hash": "plan-1",
    }


def test_an_image_recorded_for_the_current_source_wins_over_the_running_one() -> None:
    other = "sha256:" + "cd" * 32
    chosen = choose_image(
        "api", "dev", build_job(), [None, entry("old"), entry("src-1")], f"acme/api@{other}"
    )
    assert chosen == {
        "status": "built",
        "image": f"registry.example.com/acme/api@{DIGEST}",
        "digest": DIGEST,
        "registry": "registry.example.com",
        "repository": "acme/api",
        "from": BUILT_FOR_SOURCE,
    }
    # A different build plan is a different image, even from the same source.
    changed_plan = build_job(plan_hash="plan-2")
    assert choose_image("api", "dev", changed_plan, [entry("src-1")], None)["status"] == "skipped"


def test_else_the_image_the_target_runs_and_the_preview_says_so() -> None:
    running = f"registry.example.com/acme/api@{DIGEST}"
    chosen = choose_image("api", "dev", build_job(source_hash="src-2"), [entry("src-1")], running)
    assert chosen["status"] == "built" and chosen["image"] == running
    assert (chosen["registry"], chosen["repository"], chosen["digest"]) == (
        "registry.example.com",
        "acme/api",
        DIGEST,
    )
    assert chosen["from"] == "dev runs now (its source changed: a rollout builds a new one)"


def test_without_either_the_dependants_are_skipped_with_a_reason() -> None:
    chosen = choose_image("api", "dev", build_job(), [], None)
    assert chosen == {
        "status": "skipped",
        "reason": "no image of api is recorded for this source and dev runs none",
    }
    assert (
        never_applied_reason(["ecr/api"], [chosen["reason"]])
        == "ecr/api has never been applied; no image of api is recorded for this source and dev "
        "runs none: roll out first"
    )
    assert never_applied_reason(["ecr/api"], []) == "ecr/api has never been applied: roll out first"
    assert never_applied_reason([], []) is None


def test_split_image_reference() -> None:
    assert split_image(f"acme/api@{DIGEST}", "acme/api") == ("", "acme/api", DIGEST)
    assert split_image(f"r.io:5000/acme/api@{DIGEST}", "acme/api") == ("r.io:5000", "acme/api", DIGEST)
    assert split_image(f"r.io/other@{DIGEST}", "acme/api") == ("", "r.io/other", DIGEST)
