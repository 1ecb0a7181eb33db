"""Real services for the server tests: a ``redis-server`` and a PostgreSQL cluster.

Why real ones: the fleet deployment's promises (late acks, redelivery after ``kill -9``,
PostgreSQL's locking and types) are properties of those programs, which no fake has.  Each
fixture starts the Debian package's binaries (``.ci/setup`` installs ``redis-server`` and
``postgresql``) in a temporary directory on a free loopback port and stops them afterwards;
nothing touches the host's own instances.  A missing binary FAILS the test with the command
that installs it — never a skip, so a green run means the real services were exercised.

Use from a test module::

    from services import postgres_server, postgres_url, redis_url  # noqa: F401 (fixtures)
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT = 60.0  # seconds; the CI machine is small and shared


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel's pick for an ephemeral bind)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float) -> None:
    """Until ``port`` accepts a connection; fail with the service's own log if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def _stop(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is missing: run `bash .ci/setup host` (apt-get install {package})")
    return path


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private ``redis-server`` on a free port, no persistence; yields its ``redis://`` URL."""
    binary = _need("redis-server", "redis-server")
    with tempfile.TemporaryDirectory(prefix="kcrash-redis-") as tmp:
        port = free_port()
        log = Path(tmp, "redis.log")
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp]
        args += ["--save", "", "--appendonly", "no", "--logfile", str(log)]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        try:
            try:
                wait_for_port(port, proc, "redis-server", START_TIMEOUT)
            except RuntimeError as e:
                raise RuntimeError(f"{e}; log: {log.read_text(errors='replace')[-2000:]}") from e
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            _stop(proc)


def _pg_bindir() -> str:
    """Debian's versioned directory (postgresql-common puts only wrappers on PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if not found:
        pytest.fail("PostgreSQL is missing: run `bash .ci/setup host` (apt-get install postgresql)")
    return os.path.dirname(found[-1])


def _as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the package's ``postgres`` user."""
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """A fresh cluster (initdb) on a free port; yields the ``postgresql://`` URL of the
    superuser's ``postgres`` database (trust authentication on loopback only)."""
    bindir = _pg_bindir()
    tmp = tempfile.mkdtemp(prefix="kcrash-pg-")
    data, sock = os.path.join(tmp, "data"), os.path.join(tmp, "sock")
    os.makedirs(sock)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        for d in (tmp, sock):
            os.chown(d, pw.pw_uid, pw.pw_gid)
    log = os.path.join(tmp, "postgres.log")
    proc: subprocess.Popen | None = None
    try:
        subprocess.run(
            _as_postgres(
                [f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT * 2,
        )
        port = free_port()
        args = [f"{bindir}/postgres", "-D", data, "-p", str(port), "-k", sock]
        # Durability is not what these tests measure; fsync off keeps a shared disk usable.
        args += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        args += ["-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        args += ["-c", "max_connections=200"]
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                _as_postgres(args), stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        try:
            wait_for_port(port, proc, "postgres", START_TIMEOUT)
            _wait_ready(bindir, port)
        except RuntimeError as e:
            raise RuntimeError(f"{e}; log: {Path(log).read_text(errors='replace')[-2000:]}") from e
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_ready(bindir: str, port: int) -> None:
    """The port opens before recovery ends; pg_isready says when queries are accepted."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        r = subprocess.run(
            [f"{bindir}/pg_isready", "-h", "127.0.0.1", "-p", str(port), "-q"], check=False
        )
        if r.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"postgres on port {port} never became ready")


def create_database(server_url: str, name: str) -> str:
    """A new empty database on the cluster of ``server_url``; returns its SQLAlchemy URL
    (``postgresql+psycopg://``), which is what ``kcrash server --database`` takes."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = server_url.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """One private redis-server for the session (tests use distinct queue names or flush)."""
    with redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One private PostgreSQL cluster for the session; tests make their own databases."""
    with postgres_cluster() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str, request: pytest.FixtureRequest) -> str:
    """A fresh database per test, so no test sees another's crashes."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:40].lower()
    name += f"_{os.getpid()}_{int(time.monotonic() * 1000) % 100000}"
    return create_database(postgres_server, name)
