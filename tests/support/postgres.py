"""Throwaway PostgreSQL server for pytest (session scope).

Usage (tests/conftest.py):

    pytest_plugins = ["pg_fixture"]          # or copy this module into conftest.py

    async def test_x(pg_dsn):                # pg_dsn: "postgresql://postgres@127.0.0.1:PORT/postgres"
        conn = await asyncpg.connect(pg_dsn)

Behaviour
* Server binaries: $PG_BIN, else initdb/pg_ctl on PATH (symlinks resolved), else the
  newest /usr/lib/postgresql/<major>/bin (Debian layout). Missing -> tests using the
  fixture FAIL (never skip: the ledger is tested against a real server or not at all);
  scripts/ensure-postgres.sh installs them (`make test` runs it).
* initdb and postgres refuse to run as root. When the test process is root, both run
  as an unprivileged OS user (PG_OS_USER, default "postgres" if it exists, else
  "nobody") via subprocess's user=/group=/extra_groups= (setuid/setgid/setgroups in
  the child; no runuser/sudo needed). The temp dir is chown'ed to that user. When
  the test process is not root, everything runs as the current user.
* Everything lives in one temp dir: data/ (0700, owned by the server user),
  the unix socket (.s.PGSQL.<port>) and postgres.log. TCP listens on 127.0.0.1 only,
  on a free port. Auth is trust; superuser "postgres"; database "postgres".
* Durability is switched off (fsync/full_page_writes/synchronous_commit, initdb
  --no-sync) — this is a throwaway test server; ``start_postgres(durable=True)`` keeps
  it on, for benchmarks.
* ``pg_database``: a fresh, empty database per test (``fresh_database`` outside fixtures).
* ``pg_password_role``: a login role that must give its password (SCRAM-SHA-256 over TCP,
  a pg_hba.conf line for the members of ``livestrat_scram_logins`` alone, ahead of ``trust``),
  for tests about secrets; ``password_role(role, name, password)`` makes another such role, with
  any password (special characters included), for the duration of a block.
* Teardown: SIGINT (fast shutdown), wait, SIGKILL fallback, rm -rf temp dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import glob
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

SUPERUSER = "postgres"
DBNAME = "postgres"
_MAX_UNIX_SOCKET_PATH = 107  # sun_path is 108 bytes incl. NUL on Linux


@dataclasses.dataclass(frozen=True)
class PgServer:
    dsn: str  # TCP DSN for asyncpg / psycopg / libpq
    socket_dsn: str  # unix-socket DSN (asyncpg: host=<dir> query param)
    host: str
    port: int
    socket_dir: str
    datadir: str
    bindir: str
    os_user: str
    startup_seconds: float


# --------------------------------------------------------------------------- helpers
def find_pg_bindir() -> str | None:
    def ok(d: str) -> bool:
        return all(os.access(os.path.join(d, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres"))

    env = os.environ.get("PG_BIN")
    if env and ok(env):
        return env
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        d = os.path.dirname(os.path.realpath(initdb))
        if ok(d):
            return d

    def major(p: str) -> float:
        try:
            return float(Path(p).parent.name)
        except ValueError:
            return -1.0

    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True):
        if ok(d):
            return d
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _world_traversable(path: str) -> bool:
    p = Path(path).resolve()
    return all(os.stat(d).st_mode & stat.S_IXOTH for d in [p, *p.parents])


def _server_user() -> pwd.struct_passwd | None:
    """None -> run as the current user (non-root)."""
    if os.geteuid() != 0:
        return None
    names = [os.environ["PG_OS_USER"]] if os.environ.get("PG_OS_USER") else ["postgres", "nobody"]
    for name in names:
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        if pw.pw_uid != 0:
            return pw
    raise RuntimeError(f"running as root but none of the users {names} exist (set PG_OS_USER)")


def _make_tempdir(user: pwd.struct_passwd | None) -> str:
    base = os.environ.get("PG_TMPDIR") or tempfile.gettempdir()
    # The server user must be able to reach the dir, and the socket path must be short.
    if (user is not None and not _world_traversable(base)) or len(base) > 60:
        base = "/tmp"
    d = tempfile.mkdtemp(prefix="pgtest-", dir=base)
    if user is not None:
        os.chown(d, user.pw_uid, user.pw_gid)
    return d


def _popen_kwargs(user: pwd.struct_passwd | None, tmp: str) -> dict:
    env = {
        "PATH": "/usr/bin:/bin",
        "LC_ALL": "C",
        "LANG": "C",
        "TZ": "UTC",
        "HOME": tmp,
    }
    kw: dict = {"env": env, "cwd": tmp, "stdin": subprocess.DEVNULL}
    if user is not None:
        # Python >= 3.9: setgroups([]) + setgid + setuid in the child, before exec.
        kw.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        env["USER"] = env["LOGNAME"] = user.pw_name
    return kw


def _wait_ready(proc: subprocess.Popen, datadir: str, logfile: str, timeout: float) -> None:
    """postmaster.pid line 8 (PM_STATUS) becomes 'ready' once connections are accepted."""
    pidfile = os.path.join(datadir, "postmaster.pid")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"postgres exited with {proc.returncode}:\n{_tail(logfile)}")
        try:
            with open(pidfile) as f:
                lines = f.read().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"postgres not ready after {timeout}s:\n{_tail(logfile)}")


def _tail(path: str, n: int = 40) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "<no log>"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # "fast" shutdown
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# --------------------------------------------------------------------------- core
def start_postgres(startup_timeout: float = 30.0, durable: bool = False) -> tuple[PgServer, subprocess.Popen, str]:
    """Start a server; ``durable`` keeps fsync and synchronous commits on (for benchmarks)."""
    bindir = find_pg_bindir()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL server binaries not found (run ensure-postgres.sh or set PG_BIN)")
    user = _server_user()
    tmp = _make_tempdir(user)
    datadir = os.path.join(tmp, "data")
    logfile = os.path.join(tmp, "postgres.log")
    kw = _popen_kwargs(user, tmp)
    t0 = time.monotonic()
    try:
        r = subprocess.run(
            [
                os.path.join(bindir, "initdb"),
                "-D",
                datadir,
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **kw,
        )
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}")
        last_err: Exception | None = None
        for _attempt in range(3):  # retry on the (unlikely) free-port race
            port = _free_port()
            sock_path = os.path.join(tmp, f".s.PGSQL.{port}")
            assert len(sock_path) <= _MAX_UNIX_SOCKET_PATH, sock_path
            with open(logfile, "ab") as log:
                if user is not None:
                    os.chown(logfile, user.pw_uid, user.pw_gid)
                proc = subprocess.Popen(
                    [
                        os.path.join(bindir, "postgres"),
                        "-D",
                        datadir,
                        "-p",
                        str(port),
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        f"unix_socket_directories={tmp}",
                        *([] if durable else ["-c", "fsync=off", "-c", "full_page_writes=off"]),
                        *([] if durable else ["-c", "synchronous_commit=off"]),
                        "-c",
                        "max_connections=50",
                        "-c",
                        "shared_buffers=32MB",
                        "-c",
                        "log_min_messages=warning",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    **kw,
                )
            try:
                _wait_ready(proc, datadir, logfile, startup_timeout)
                break
            except RuntimeError as e:
                _stop(proc)
                last_err = e
        else:
            raise RuntimeError(f"could not start postgres: {last_err}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    server = PgServer(
        dsn=f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{DBNAME}",
        socket_dsn=f"postgresql://{SUPERUSER}@/{DBNAME}?host={tmp}&port={port}",
        host="127.0.0.1",
        port=port,
        socket_dir=tmp,
        datadir=datadir,
        bindir=bindir,
        os_user=user.pw_name if user else pwd.getpwuid(os.geteuid()).pw_name,
        startup_seconds=time.monotonic() - t0,
    )
    return server, proc, tmp


def stop_postgres(proc: subprocess.Popen, tmp: str) -> None:
    try:
        _stop(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    if find_pg_bindir() is None:
        # Never skip: the ledger's guarantees are tested against a real server or not at all.
        pytest.fail("PostgreSQL server binaries not found: run scripts/ensure-postgres.sh (`make test` does)")
    server, proc, tmp = start_postgres()
    try:
        yield server
    finally:
        stop_postgres(proc, tmp)


@pytest.fixture(scope="session")
def pg_dsn(pg_server: PgServer) -> str:
    return pg_server.dsn


@contextlib.asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[Any]:
    """An asyncpg connection to ``dsn`` for the duration of the block."""
    import asyncpg  # the runtime's driver; imported here so the server fixtures need no client

    connection = await asyncpg.connect(dsn)
    try:
        yield connection
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def fresh_database(server_dsn: str, owner: str | None = None) -> AsyncIterator[str]:
    """A new, empty database on the server for the duration of the block (owned by ``owner``): its DSN."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    async with connected(server_dsn) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else ""))
    try:
        yield urlunsplit(urlsplit(server_dsn)._replace(path=f"/{name}"))
    finally:
        async with connected(server_dsn) as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def pg_database(pg_dsn: str) -> AsyncIterator[str]:
    """DSN of a fresh database for one test, so tests never see each other's rows."""
    async with fresh_database(pg_dsn) as dsn:
        yield dsn


@dataclasses.dataclass(frozen=True)
class PasswordRole:
    """A role the server authenticates by SCRAM password; ``dsn(database, password)`` to log in as it
    (the password as it is: percent-encode it first if it needs it)."""

    name: str
    password: str
    host: str
    port: int

    def dsn(self, database: str, password: str | None = None) -> str:
        return f"postgresql://{self.name}:{password or self.password}@{self.host}:{self.port}/{database}"


SCRAM_ROLE = "livestrat_scram"
SCRAM_PASSWORD = "SCRAM-PASSWORD-4e1f2a-do-not-leak"
# The server checks the password of this group's members over TCP (one pg_hba.conf line for all of them).
SCRAM_LOGINS = "livestrat_scram_logins"


@contextlib.asynccontextmanager
async def password_role(like: PasswordRole, name: str, password: str) -> AsyncIterator[PasswordRole]:
    """Another role the server authenticates by SCRAM password (``password`` may hold any character),
    on the server of ``like``, for the duration of the block (drop what it owns first)."""
    admin_dsn = f"postgresql://{SUPERUSER}@{like.host}:{like.port}/{DBNAME}"
    async with connected(admin_dsn) as admin:
        await admin.execute("SET password_encryption = 'scram-sha-256'")
        create = await admin.fetchval(
            "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE %I', $1::text, $2::text, $3::text)",
            name,
            password,
            SCRAM_LOGINS,
        )
        await admin.execute(create)
    try:
        yield PasswordRole(name, password, like.host, like.port)
    finally:
        async with connected(admin_dsn) as admin:
            await admin.execute(f'DROP ROLE IF EXISTS "{name}"')


async def _trust_the_password_role_no_more(server: PgServer, role: PasswordRole) -> str:
    """Add the role's SCRAM line to pg_hba.conf, create the role, reload; the file's original text."""
    import asyncpg

    admin = await asyncpg.connect(server.dsn)
    try:
        hba = Path(await admin.fetchval("SHOW hba_file"))
        original = hba.read_text()
        hba.write_text(f"host all +{SCRAM_LOGINS} 127.0.0.1/32 scram-sha-256\n" + original)  # first match wins
        await admin.execute("SET password_encryption = 'scram-sha-256'")
        await admin.execute(f"CREATE ROLE {SCRAM_LOGINS} NOLOGIN")
        await admin.execute(f"CREATE ROLE {role.name} LOGIN PASSWORD '{role.password}' IN ROLE {SCRAM_LOGINS}")
        await admin.fetchval("SELECT pg_reload_conf()")
    finally:
        await admin.close()
    deadline = time.monotonic() + 10  # the reload is asynchronous: wait until a wrong password is refused
    while True:
        try:
            conn = await asyncpg.connect(role.dsn(DBNAME, "not-the-password"))
        except asyncpg.InvalidPasswordError:
            return original
        await conn.close()
        if time.monotonic() > deadline:
            raise RuntimeError("the server still trusts the password role after reloading pg_hba.conf")
        await asyncio.sleep(0.05)


async def _restore_hba(server: PgServer, original: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(server.dsn)
    try:
        Path(await admin.fetchval("SHOW hba_file")).write_text(original)
        await admin.fetchval("SELECT pg_reload_conf()")
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def pg_password_role(pg_server: PgServer) -> Iterator[PasswordRole]:
    """``livestrat_scram``, whose logins over TCP are checked with SCRAM-SHA-256 (everyone else: trust)."""
    role = PasswordRole(SCRAM_ROLE, SCRAM_PASSWORD, pg_server.host, pg_server.port)
    original = asyncio.run(_trust_the_password_role_no_more(pg_server, role))
    try:
        yield role
    finally:
        asyncio.run(_restore_hba(pg_server, original))
