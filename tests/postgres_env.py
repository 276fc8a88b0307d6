"""A real, throwaway PostgreSQL server for the tests of Terraform's `pg` state backend.

* ``postgres_server`` (session): ``initdb`` into a fresh private folder under the system's temporary
  directory, then ``pg_ctl start``: TCP on ``127.0.0.1:<free port>`` and a unix socket in that folder.
  Each pytest-xdist worker that asks for it starts its own (a second or so); nothing is shared
  between workers or runs, so no lock is needed. Stopped (``pg_ctl stop -m immediate``) and removed at
  the end of the session; a cluster a killed session left behind is stopped by the next one.
* ``pg_database`` (function): a new database in that server for one test.

Authentication: over TCP a password is required (``scram-sha-256``), as against a real shared
server, so a test sees whether the password in a ``conn_str`` really reaches Terraform while it is
masked everywhere else; on the unix socket every connection is trusted (``psql`` in assertions).

PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` user (``runuser``),
else as ``nobody``; the folder is owned by that user. The binaries are looked for on ``PATH`` and under
Debian's ``/usr/lib/postgresql/<version>/bin`` (newest first); ``ATMOS_TASKS_PG_BIN`` names a folder
to use instead. Missing, the fixture fails (never skips) naming ``.ci/run``, which installs them.

Wiring: ``pytest_plugins = [..., "tests.postgres_env"]`` in tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["INSTALL_HINT", "PgDatabase", "PgServer", "pg_database", "postgres_server"]

INSTALL_HINT = (
    "PostgreSQL's server binaries (initdb, pg_ctl, postgres, psql) are needed for the tests of "
    "Terraform's pg backend: run `.ci/run`, which installs them (as root, `.ci/docker-setup.sh`, i.e. "
    "`apt-get install -y postgresql`), or set ATMOS_TASKS_PG_BIN to the folder that holds them."
)
SUPERUSER = "atmos"
PREFIX = "atmos-tasks-pg-"
START_TIMEOUT = 30
_TOOLS = ("initdb", "pg_ctl", "postgres", "psql")


class PostgresEnvError(RuntimeError):
    """The server could not be provided; the message says why and what to do."""


def _has_tools(folder: Path) -> bool:
    return all(os.access(folder / tool, os.X_OK) for tool in _TOOLS)


def _version_key(folder: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", folder.parent.name)) or (0,)


def find_bin_dir() -> Path | None:
    """The folder of initdb, pg_ctl, postgres and psql: ATMOS_TASKS_PG_BIN, PATH, then Debian's."""
    named = os.environ.get("ATMOS_TASKS_PG_BIN")
    if named:
        return Path(named) if _has_tools(Path(named)) else None
    found = shutil.which("initdb")
    if found:
        # /usr/local/bin/initdb may be a link into /usr/lib/postgresql/<v>/bin, where the others are.
        for folder in (Path(found).parent, Path(found).resolve().parent):
            if _has_tools(folder):
                return folder
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    return next((folder for folder in debian if _has_tools(folder)), None)


def _run_as() -> str | None:
    """The user the server runs as: None for ourselves, or (as root) postgres, else nobody."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PostgresEnvError("running as root, with no `postgres` or `nobody` user to run PostgreSQL as")


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    if user is None:
        return argv
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if runuser is None:
        raise PostgresEnvError(f"running as root without `runuser` (util-linux) to run PostgreSQL as {user}")
    return [runuser, "-u", user, "--", *argv]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class PgServer:
    bin_dir: Path
    base: Path  # the private folder: data/, the unix socket, server.log
    port: int
    user: str  # the database superuser
    password: str
    run_as: str | None

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def conn_str(self, database: str) -> str:
        """A `postgres://` URL over TCP, with the password, as Terraform's pg backend takes it."""
        return f"postgres://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}?sslmode=disable"

    def psql_argv(self, database: str) -> list[str]:
        """psql on the unix socket (trusted), unaligned tuples only, stopping at the first error."""
        return [
            str(self.bin_dir / "psql"),
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.base),
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            database,
        ]

    def psql(self, database: str, sql: str) -> str:
        proc = subprocess.run(
            [*self.psql_argv(database), "-c", sql], capture_output=True, text=True, timeout=60
        )
        if proc.returncode != 0:
            raise AssertionError(f"psql {sql!r} failed (exit {proc.returncode}):\n{proc.stderr}")
        return proc.stdout.strip()


@dataclass(frozen=True)
class PgDatabase:
    server: PgServer
    name: str

    @property
    def conn_str(self) -> str:
        return self.server.conn_str(self.name)

    def query(self, sql: str) -> str:
        return self.server.psql(self.name, sql)


def _pg_ctl(server: PgServer, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    argv = _as_user(server.run_as, [str(server.bin_dir / "pg_ctl"), "-D", str(server.data), *args])
    return subprocess.run(
        argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout, check=False
    )


def _stop(server: PgServer) -> None:
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        _pg_ctl(server, "stop", "-m", "immediate", "-w")
    shutil.rmtree(server.base, ignore_errors=True)


def _stop_leftovers(bin_dir: Path, run_as: str | None) -> None:
    """Clusters of sessions that died without stopping theirs (their owner pid is gone)."""
    for base in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            if base.is_symlink() or base.lstat().st_uid not in (os.getuid(), _uid(run_as)):
                continue
            owner = int((base / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if owner != os.getpid() and not _alive(owner):
            _stop(PgServer(bin_dir, base, 0, SUPERUSER, "", run_as))


def _uid(user: str | None) -> int:
    return os.getuid() if user is None else pwd.getpwnam(user).pw_uid


def start_server() -> PgServer:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresEnvError(INSTALL_HINT)
    run_as = _run_as()
    _stop_leftovers(bin_dir, run_as)
    base = Path(tempfile.mkdtemp(prefix=PREFIX))
    (base / "owner.pid").write_text(str(os.getpid()))
    password = "pw-" + secrets.token_hex(12)
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        for path in (base, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    server = PgServer(bin_dir, base, 0, SUPERUSER, password, run_as)
    initdb = [
        str(bin_dir / "initdb"),
        "-D",
        str(server.data),
        "-U",
        SUPERUSER,
        f"--pwfile={pwfile}",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync",
    ]
    proc = subprocess.run(
        _as_user(run_as, initdb), capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120
    )
    pwfile.unlink(missing_ok=True)
    if proc.returncode != 0:
        _stop(server)
        raise PostgresEnvError(f"initdb failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    # Another process may take the free port between the probe and the bind: try a few.
    last = ""
    for _ in range(5):
        server = PgServer(bin_dir, base, _free_port(), SUPERUSER, password, run_as)
        options = (
            f"-c listen_addresses=127.0.0.1 -p {server.port} -k {base} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB -c max_connections=200"
        )
        started = _pg_ctl(
            server, "start", "-w", "-t", str(START_TIMEOUT), "-l", str(server.log), "-o", options
        )
        if started.returncode == 0:
            return server
        last = started.stdout + started.stderr + _tail(server.log)
        _pg_ctl(server, "stop", "-m", "immediate", "-w")
    _stop(server)
    raise PostgresEnvError(f"pg_ctl start failed:\n{last}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    """This worker's PostgreSQL server, stopped and removed at the end of the session."""
    try:
        server = start_server()
    except PostgresEnvError as exc:
        message = str(exc)
    else:
        yield server
        _stop(server)
        return
    # Outside the except block: no "during handling of the above exception" noise around the message.
    pytest.fail(f"Test PostgreSQL server unavailable: {message}", pytrace=False)


@pytest.fixture
def pg_database(postgres_server: PgServer) -> PgDatabase:
    """A new, empty database of the session's server for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres_server.psql("postgres", f"CREATE DATABASE {name}")
    return PgDatabase(postgres_server, name)
