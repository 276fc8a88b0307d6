"""Reading doit's command line: which deployments and targets to compile, with which options."""

from __future__ import annotations

from atmos_tasks.invocation import RolloutOptions, from_argv, from_loader


def test_rollout_with_options() -> None:
    inv = from_argv(["-n", "2", "rollout:api:dev", "--allow-dirty", "--promote-from", "staging"])
    assert inv.command == "run" and inv.executes
    (item,) = inv.selected
    assert (item.kind, item.deployment, item.target) == ("rollout", "api", "dev")
    assert item.options == RolloutOptions(promote_from="staging", allow_dirty=True)
    assert inv.deploys("api", "dev") and not inv.deploys("api", "prod")


def test_listing_commands_compile_everything() -> None:
    assert from_argv(["list"]).selects_everything
    assert from_argv(["list", "--all"]).selects_everything
    assert not from_argv([]).selects_everything  # `doit` alone runs the hint task only
    assert not from_argv(["info", "plan:api:dev:ecr/api"]).selects_everything


def test_plan_tasks_and_globs() -> None:
    inv = from_loader("run", ["plan:api:dev:ecr/api", "rollout:web:*"])
    assert [(s.kind, s.deployment, s.target, s.component) for s in inv.selected] == [
        ("plan", "api", "dev", "ecr/api"),
        ("rollout", "web", "*", "*"),
    ]
    assert not inv.deploys("api", "dev")  # a plan deploys nothing
    assert inv.deploys("web", "prod")
    group = from_loader("run", ["rollout"])
    assert group.selected[0].matches("anything", "prod")


def test_options_of_several_tasks_stay_with_their_task() -> None:
    inv = from_argv(["rollout:api:dev", "--allow-dirty", "rollout:api:prod", "--approve"])
    assert inv.options_for("api", "dev") == RolloutOptions(allow_dirty=True)
    assert inv.options_for("api", "prod") == RolloutOptions(approve=True)


def test_build_selections_run_like_rollouts_narrowed_to_their_images() -> None:
    inv = from_argv(["build:api:dev", "--component", "api,admin", "--allow-dirty", "--remote", "origin"])
    assert inv.deploys("api", "dev") and inv.images("api", "dev") == {"api", "admin"}
    assert inv.options_for("api", "dev") == RolloutOptions(
        allow_dirty=True, components=("api", "admin"), remote="origin"
    )
    assert from_argv(["build:api:dev:web", "--skip-push"]).images("api", "dev") == {"web"}
    assert from_argv(["build:api:dev"]).images("api", "dev") == {"*"}
    assert from_argv(["test:api:dev:web"]).images("api", "dev") == {"web"}
    # Anything else selected for the target compiles all of it.
    assert from_argv(["build:api:dev", "rollout:api:dev"]).images("api", "dev") is None
    assert from_argv(["list"]).images("api", "dev") is None


def test_plan_selections_are_previews_under_the_target_lock() -> None:
    inv = from_argv(["-n", "2", "plan:api:dev", "--component", "ecr/api,ecs/service-api"])
    assert inv.previews("api", "dev") == {"ecr/api", "ecs/service-api"}
    assert inv.locks("api", "dev") and not inv.deploys("api", "dev")  # locked, yet deploys nothing
    assert not inv.locks("api", "prod") and inv.previews("api", "prod") is None
    assert from_argv(["plan:api:dev:ecs/service-api"]).previews("api", "dev") == {"ecs/service-api"}
    assert from_argv(["plan:api:*"]).previews("api", "staging") == {"*"}
    # Listing or inspecting a plan task shows the preview's task, but takes no lock.
    info = from_argv(["info", "plan:api:dev:ecr/api"])
    assert info.previews("api", "dev") == {"ecr/api"} and not info.locks("api", "dev")


def test_a_preview_cannot_share_a_run_with_other_tasks_of_its_target() -> None:
    inv = from_argv(["plan:api:dev", "rollout:api:dev", "rollout:api:prod"])
    assert inv.mixes_preview("api", "dev") and inv.previews("api", "dev") is None
    assert not inv.mixes_preview("api", "prod")
    assert not from_argv(["plan:api:dev", "rollout:api:prod"]).mixes_preview("api", "dev")


def test_verify_is_a_rollout_option() -> None:
    inv = from_argv(["rollout:api:dev", "--verify", "rollout:api:prod"])
    assert inv.options_for("api", "dev") == RolloutOptions(verify=True)
    assert inv.options_for("api", "prod") == RolloutOptions()
