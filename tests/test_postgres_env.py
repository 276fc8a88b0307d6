"""The test PostgreSQL server's fixture: where it finds PostgreSQL, and what it says without it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.postgres_env import PgServer, PostgresEnvError, find_bin_dir, start_server


def test_without_postgresql_the_fixture_fails_naming_the_script_that_installs_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ATMOS_TASKS_PG_BIN", str(tmp_path))  # a folder without the binaries
    assert find_bin_dir() is None
    with pytest.raises(PostgresEnvError, match=r"run `\.ci/run`"):
        start_server()


def test_debians_folder_is_found_when_initdb_is_not_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATMOS_TASKS_PG_BIN", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    found = find_bin_dir()
    if not any(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        assert found is None
        return
    assert found is not None and found.parent.parent == Path("/usr/lib/postgresql")
    assert (found / "pg_ctl").is_file() and (found / "postgres").is_file()


def test_the_server_needs_the_password_over_tcp_and_trusts_its_socket(postgres_server: PgServer) -> None:
    psql = str(postgres_server.bin_dir / "psql")
    right = postgres_server.conn_str("postgres")
    wrong = right.replace(postgres_server.password, "wrong-password")
    proc = subprocess.run([psql, "-X", "-Atc", "SELECT current_user", right], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == postgres_server.user, proc.stderr
    proc = subprocess.run([psql, "-X", "-Atc", "SELECT 1", wrong], capture_output=True, text=True)
    assert proc.returncode != 0 and "password authentication failed" in proc.stderr
    assert postgres_server.psql("postgres", "SHOW listen_addresses") == "127.0.0.1"
