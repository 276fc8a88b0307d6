"""A Terraform step that finds the state lock taken is tried again at once, then left to wait.

`_with_quick_lock_retries` is given the step as a function; here that function is a scripted
stand-in for Terraform (a test double: the exit codes and output a real run gives when the lock is
taken, as `tests/e2e/test_pg_backend.py` sees them from the real binary and PostgreSQL), so the
order and the arguments of the tries can be read exactly.
"""

from __future__ import annotations

import pytest

from atmos_tasks.kinds import terraform
from atmos_tasks.kinds.terraform import Attempt, _with_quick_lock_retries

LOCKED = Attempt(
    1, "Error: Error acquiring the state lock\n\nError message: Workspace is already locked", True
)


class ScriptedTerraform:
    """Answers each try with the next scripted attempt; records the arguments."""

    def __init__(self, *answers: Attempt) -> None:
        self.answers = list(answers)
        self.tries: list[list[str]] = []

    def __call__(self, argv: list[str]) -> Attempt:
        self.tries.append(argv)
        return self.answers.pop(0)


@pytest.fixture(autouse=True)
def short_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(terraform, "QUICK_LOCK_PAUSES", (0.001, 0.002, 0.004))


def test_a_lock_taken_for_a_moment_is_tried_again_without_terraforms_wait() -> None:
    run = ScriptedTerraform(LOCKED, LOCKED, Attempt(2, "Plan: 1 to add"))
    heard: list[int] = []
    done, retried = _with_quick_lock_retries(
        run, ["plan", "-lock-timeout=900s", "-out=x"], lambda tries, _output: heard.append(tries)
    )
    assert (done, retried) == (Attempt(2, "Plan: 1 to add"), 2)
    assert run.tries == [["plan", "-lock-timeout=0s", "-out=x"]] * 3
    assert heard == [1, 2]


def test_after_the_quick_tries_terraform_waits_what_is_left_itself() -> None:
    run = ScriptedTerraform(LOCKED, LOCKED, LOCKED, LOCKED, Attempt(0, "applied"))
    done, retried = _with_quick_lock_retries(run, ["apply", "-lock-timeout=900s", "plan.tfplan"])
    assert (done, retried) == (Attempt(0, "applied"), 3)
    assert [argv[1] for argv in run.tries] == ["-lock-timeout=0s"] * 4 + ["-lock-timeout=900s"]


def test_a_lock_still_taken_when_the_wait_is_over_is_the_last_tries_failure() -> None:
    run = ScriptedTerraform(LOCKED, LOCKED, LOCKED, LOCKED, LOCKED)
    done, _retried = _with_quick_lock_retries(run, ["plan", "-lock-timeout=1s"])
    assert done == LOCKED
    assert run.tries[-1] == ["plan", "-lock-timeout=1s"]  # never longer than the wait asked for


def test_no_wait_is_one_try() -> None:
    run = ScriptedTerraform(LOCKED)
    assert _with_quick_lock_retries(run, ["plan", "-lock-timeout=0s"]) == (LOCKED, 0)
    assert run.tries == [["plan", "-lock-timeout=0s"]]


def test_another_failure_is_not_tried_again() -> None:
    failed = Attempt(1, "Error: Unsupported argument")
    run = ScriptedTerraform(failed)
    assert _with_quick_lock_retries(run, ["plan", "-lock-timeout=900s"]) == (failed, 0)
    assert len(run.tries) == 1


def test_a_plan_that_mentions_the_lock_error_in_its_output_is_not_tried_again() -> None:
    """A plan with changes exits 2; a resource's value may quote Terraform's lock error. Only an
    exit 1 with the lock error on stderr is a lock taken (`Attempt.locked`)."""
    run = ScriptedTerraform(Attempt(2, 'runbook = "on Error acquiring the state lock, wait"'))
    done, retried = _with_quick_lock_retries(run, ["plan", "-lock-timeout=900s", "-detailed-exitcode"])
    assert (done.code, retried, len(run.tries)) == (2, 0, 1)


@pytest.mark.parametrize("args", [["plan"], ["plan", "-lock-timeout=5m"]])
def test_a_lock_the_user_set_is_run_once_as_asked(args: list[str]) -> None:
    """No `-lock-timeout` of ours (the user's `TF_CLI_ARGS` say how to lock), or one in a form
    this code does not write: Terraform is run once with the arguments as they are."""
    run = ScriptedTerraform(LOCKED)
    assert _with_quick_lock_retries(run, args) == (LOCKED, 0)
    assert run.tries == [args]


def test_the_lock_error_of_terraforms_json_ui_is_read_from_its_diagnostics() -> None:
    """`apply -json` reports errors as diagnostics on stdout (as Terraform 1.0.3 wrote this one)."""
    from atmos_tasks.kinds.terraform import _json_lock_error

    diagnostic = (
        '{"@level":"error","@message":"Error: Error acquiring the state lock","@module":"terraform.ui",'
        '"diagnostic":{"severity":"error","summary":"Error acquiring the state lock",'
        '"detail":"Error message: Workspace is already locked: default"},"type":"diagnostic"}'
    )
    version = '{"@level":"info","@message":"Terraform 1.0.3","terraform":"1.0.3","type":"version"}'
    assert _json_lock_error(f"{version}\n{diagnostic}\n")
    quoted = (
        '{"@level":"info","@message":"null_resource.a: Creating...","hook":{"resource":'
        '{"addr":"null_resource.a"},"action":"create"},"note":"Error acquiring the state lock",'
        '"type":"apply_start"}'
    )
    assert not _json_lock_error(f"{version}\n{quoted}\n")
    assert not _json_lock_error("Error acquiring the state lock\n")  # not a message of the JSON UI
