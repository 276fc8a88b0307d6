"""A Terraform backend's credentials (the `pg` backend's `conn_str` password first) are masked, and
Terraform waits for another run's state lock instead of failing at once."""

from __future__ import annotations

import pytest

from atmos_tasks.kinds.terraform import lock_timeout_args
from atmos_tasks.secrets import Secrets, backend_secrets, connection_passwords


@pytest.mark.parametrize(
    ("conn_str", "passwords"),
    [
        ("postgres://atmos:s3cret-pw@db.internal:5432/tfstate?sslmode=require", ["s3cret-pw"]),
        ("postgresql://atmos:p%40ss%2Fword@db/tfstate", ["p%40ss%2Fword", "p@ss/word"]),
        # Go's URL parser prints the whole string when the port is no number: the password too.
        ("postgres://atmos:s3cret-pw@127.0.0.1:notaport/tfstate", ["s3cret-pw"]),
        ("postgres://db/tfstate?user=atmos&password=qs-secret&sslmode=disable", ["qs-secret"]),
        ("host=db user=atmos password=kw-secret dbname=tfstate", ["kw-secret"]),
        ("host=db password='with space' dbname=tfstate", ["with space"]),
        ("postgres://atmos@db/tfstate", []),  # the password comes from PGPASSWORD: nothing to mask
        ("postgres://db/tfstate", []),
        ("not a connection string", []),
    ],
)
def test_the_password_of_a_connection_string_is_found(conn_str: str, passwords: list[str]) -> None:
    assert connection_passwords(conn_str) == passwords


def test_a_backends_credentials_are_its_conn_str_password_and_settings_named_like_credentials() -> None:
    assert backend_secrets({"conn_str": "postgres://atmos:s3cret-pw@db/tf", "schema_name": "api_dev"}) == [
        "s3cret-pw"
    ]
    s3 = {"bucket": "acme-tfstate", "key": "vpc.tfstate", "secret_key": "AbCdEf123", "token": "sess-token"}
    assert sorted(backend_secrets(s3)) == ["AbCdEf123", "sess-token"]
    assert backend_secrets({"path": "../state/vpc.tfstate"}) == []
    assert backend_secrets({}) == []


def test_a_conn_str_password_is_masked_wherever_terraform_prints_the_connection_string() -> None:
    conn_str = "postgres://atmos:s3cret-pw@127.0.0.1:notaport/tfstate?sslmode=disable"
    hidden = Secrets()
    hidden.add(backend_secrets({"conn_str": conn_str, "schema_name": "api"}))
    error = f'Error: parse "{conn_str}": invalid port ":notaport" after host'
    masked = hidden.mask(error)
    assert "s3cret-pw" not in masked
    assert 'parse "postgres://atmos:***@127.0.0.1:notaport/tfstate' in masked  # the rest still helps


def test_terraform_waits_for_another_runs_state_lock_as_long_as_for_atmos_tasks_locks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ATMOS_TASKS_LOCK_WAIT", raising=False)
    assert lock_timeout_args({}, "plan") == ["-lock-timeout=900s"]
    monkeypatch.setenv("ATMOS_TASKS_LOCK_WAIT", "2.5")
    assert lock_timeout_args({}, "apply") == ["-lock-timeout=3s"]  # never shorter than asked
    monkeypatch.setenv("ATMOS_TASKS_LOCK_WAIT", "not-a-number")
    assert lock_timeout_args({}, "apply") == ["-lock-timeout=900s"]


def test_the_users_own_lock_arguments_win() -> None:
    assert lock_timeout_args({"TF_CLI_ARGS_plan": "-lock-timeout=30s"}, "plan") == []
    assert lock_timeout_args({"TF_CLI_ARGS": "-lock=false"}, "apply") == []
    assert lock_timeout_args({"TF_CLI_ARGS_plan": "-lock-timeout=30s"}, "apply") != []
