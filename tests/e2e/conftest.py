"""The e2e harness: the real ``mirage run`` process against the emulated API (or a real cluster).

Without ``MIRAGE_E2E_KUBECONFIG`` each test worker starts the emulated Kubernetes API server
in a thread, installs the Mirage CRDs, prometheus-operator's and those of the Istio and Traefik
kinds the operator writes (from ../shared/third_party), and runs ``mirage run`` as a subprocess
against it. With ``MIRAGE_E2E_KUBECONFIG`` pointing at a real cluster (CRDs installed, nothing
else running the operator), the same tests run there; tests that need the emulator's fault
injection or request log are skipped.

Vault: the VaultSecret tests run on two backends (:func:`vault_cluster`):

- ``emulated``: the emulated Vault beside the emulated API (its kubernetes auth checks
  ServiceAccount tokens with the API's TokenReview), with the operator of :func:`cluster`;
- ``openbao``: a real Vault (by default an OpenBao server the tests start, with PostgreSQL
  behind its database engine) reviewing tokens at a second emulated API over loopback, with
  an operator of its own (:func:`openbao_cluster`). ``MIRAGE_E2E_VAULT_ADDR`` and
  ``MIRAGE_E2E_VAULT_TOKEN`` (a token allowed to mount engines, write policies and roles)
  replace the started OpenBao with that Vault; it must reach the emulated API on loopback.

On a real cluster (``MIRAGE_E2E_KUBECONFIG``) only the real Vault runs, and only when
``MIRAGE_E2E_VAULT_ADDR`` names one whose kubernetes auth already trusts that cluster (and
whose database engine has what the tests use); ``MIRAGE_E2E_VAULT_AUDIT_LOG`` names its file
audit log, for the tests that count calls. Otherwise the Vault tests are skipped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import hvac
import pytest
import yaml

from mirage_operator.crds import load_crds
from mirage_operator.k8s import resources
from mirage_operator.render.mirageservice import OPTIONAL_CHILD_KINDS
from mirage_sandbox.apiserver.server import APIServer, run_apiserver_in_thread
from mirage_sandbox.vault import EmulatedVault, VaultThread, apiserver_reviewer
from tests.conftest import THIRD_PARTY_CRDS, require_path
from tests.e2e.kube import Kube, wait_for
from tests.e2e.vault import VaultAdmin
from tests.realservers import AuditLog
from tests.vaultbackends import EmulatedBackend, RealBackend, configure_real_vault

REAL_CLUSTER = os.environ.get("MIRAGE_E2E_KUBECONFIG")
REAL_VAULT = os.environ.get("MIRAGE_E2E_VAULT_ADDR")
REAL_VAULT_AUDIT = os.environ.get("MIRAGE_E2E_VAULT_AUDIT_LOG")
BACKENDS = ("emulated", "openbao")
RESYNC_SECONDS = 3
OPERATOR_NAMESPACE = "mirage-system"
ALLOWED_PATHS = "{namespace}/*,*/shared/*"
"""The operator's allowed-path templates in the e2e run. ``*/shared/*`` is deliberately loose
(any namespace's ``shared`` subtree), standing for a misconfigured check, so that the tests
can show Vault policy refusing what the operator's own check let through."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Operator:
    """The ``mirage run`` process, restartable."""

    kubeconfig: Path
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    identity: str = "e2e-operator"
    """Its name in the leader election Lease: the same across restarts, so that a restarted
    operator renews its own Lease at once instead of waiting out a dead holder's."""
    process: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    _log: IO[bytes] | None = None

    def start(self) -> None:
        """Start the operator (a fresh process each time)."""
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "MIRAGE_RESYNC_INTERVAL": str(RESYNC_SECONDS),
            "MIRAGE_METRICS_PORT": str(self.metrics_port),
            "MIRAGE_LOG_FORMAT": "text",
            "MIRAGE_LOG_LEVEL": "INFO",
            "MIRAGE_LEADER_ELECTION_IDENTITY": self.identity,
            **self.extra_env,
        }
        self._log = self.log_path.open("ab")
        mirage = Path(sys.executable).parent / "mirage"
        self.process = subprocess.Popen(
            [str(mirage), "run", "--liveness", f"http://127.0.0.1:{free_port()}/healthz"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, *, kill: bool = False) -> None:
        """Stop it: SIGTERM (graceful) or SIGKILL (a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._log is not None:
            self._log.close()
        self.process = None

    def restart(self, *, kill: bool = False) -> None:
        """Stop and start again."""
        self.stop(kill=kill)
        self.start()

    @property
    def log(self) -> str:
        """Everything the operator printed so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@dataclass
class Cluster:
    """What a test works with: the API client, the operator, and the emulator when local."""

    kube: Kube
    operator: Operator
    emulator: APIServer | None
    vault: VaultAdmin | None = None

    def namespace(self) -> str:
        """A fresh namespace for one test."""
        name = f"e2e-{uuid.uuid4().hex[:8]}"
        self.kube.create_namespace(name)
        return name

    def require_emulator(self) -> APIServer:
        """The emulator; skips on a real cluster (fault injection and request logs are ours)."""
        if self.emulator is None:
            pytest.skip("needs the emulated API server (fault injection / request log)")
        return self.emulator

    def require_vault(self) -> VaultAdmin:
        """Vault (emulated, or the real one given); skips on a real cluster without one."""
        if self.vault is None:
            pytest.skip("needs Vault: set MIRAGE_E2E_VAULT_ADDR and MIRAGE_E2E_VAULT_TOKEN")
        return self.vault


def operator_vault_env(address: str) -> dict[str, str]:
    """The operator's Vault settings in the e2e run."""
    return {
        "MIRAGE_VAULT_ADDR": address,
        "MIRAGE_OPERATOR_NAMESPACE": OPERATOR_NAMESPACE,
        "MIRAGE_VAULT_ALLOWED_PATHS": ALLOWED_PATHS,
    }


def _crds() -> list[dict[str, Any]]:
    """Mirage's CRDs and the projects' own CRDs of every platform kind the operator writes
    (prometheus-operator's, and Istio's and Traefik's it may own), read in place."""
    monitoring = sorted(require_path(THIRD_PARTY_CRDS / "monitoring.coreos.com").glob("*.yaml"))
    platform = [
        require_path(THIRD_PARTY_CRDS / r.group / f"{r.plural}.yaml")
        for r in (resources.for_kind(*kind) for kind in OPTIONAL_CHILD_KINDS)
    ]
    return [
        *load_crds(),
        *(yaml.safe_load(p.read_text(encoding="utf-8")) for p in [*monitoring, *platform]),
    ]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster, one Vault and one operator per test worker."""
    workdir = tmp_path_factory.mktemp("e2e")
    if REAL_CLUSTER:
        kubeconfig = Path(REAL_CLUSTER)
        kube = Kube(kubeconfig)
        vault = VaultAdmin(kube, given_vault()) if REAL_VAULT else None
        yield from _run(kube, kubeconfig, workdir, emulator=None, vault=vault)
        return
    with emulated(workdir) as (server, kubeconfig, kube, vault):
        yield from _run(kube, kubeconfig, workdir, emulator=server, vault=vault)


@contextlib.contextmanager
def emulated(workdir: Path) -> Iterator[tuple[APIServer, Path, Kube, VaultAdmin]]:
    """The emulated API (CRDs installed, a kubeconfig in ``workdir``) and an emulated Vault
    whose kubernetes auth trusts it."""
    with (
        run_apiserver_in_thread() as server,
        VaultThread(EmulatedVault(token_reviewer=apiserver_reviewer(server))) as vault_thread,
    ):
        server.install_crds(_crds())
        kubeconfig = server.write_kubeconfig(workdir / "kubeconfig")
        kube = Kube(kubeconfig)
        vault = VaultAdmin(kube, EmulatedBackend(vault_thread.vault, vault_thread.address))
        yield server, kubeconfig, kube, vault


def given_vault() -> RealBackend:
    """The Vault ``MIRAGE_E2E_VAULT_ADDR`` names."""
    assert REAL_VAULT
    audit = AuditLog(Path(REAL_VAULT_AUDIT)) if REAL_VAULT_AUDIT else None
    client = hvac.Client(url=REAL_VAULT, token=os.environ["MIRAGE_E2E_VAULT_TOKEN"])
    return RealBackend(client, REAL_VAULT, _audit=audit)


@pytest.fixture(scope="session")
def openbao_cluster(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Cluster]:
    """A second emulated API and operator, whose Vault is real: the OpenBao the tests start
    (or the one ``MIRAGE_E2E_VAULT_ADDR`` names), its database engine on a real PostgreSQL."""
    workdir = tmp_path_factory.mktemp("e2e-openbao")
    postgres = request.getfixturevalue("postgres")
    if REAL_VAULT:
        backend = given_vault()
    else:
        bao = request.getfixturevalue("openbao")
        backend = RealBackend(bao.client(), bao.address, server=bao, _audit=bao.audit)
    with run_apiserver_in_thread() as server:
        server.install_crds(_crds())
        kubeconfig = server.write_kubeconfig(workdir / "kubeconfig")
        kube = Kube(kubeconfig)
        configure_real_vault(
            backend.client,
            kubernetes_url=server.url,
            reviewer_token=server.admin_token,
            postgres=postgres,
        )
        vault = VaultAdmin(kube, backend, postgres=postgres)
        yield from _run(kube, kubeconfig, workdir, emulator=server, vault=vault)


@pytest.fixture(params=BACKENDS)
def vault_cluster(request: pytest.FixtureRequest) -> Cluster:
    """The cluster whose operator reads the emulated Vault, then the one reading a real Vault
    (for tests parametrised over both)."""
    if request.param == "emulated":
        if REAL_CLUSTER:
            pytest.skip("the emulated Vault runs beside the emulated API only")
        return request.getfixturevalue("cluster")  # type: ignore[no-any-return]
    if REAL_CLUSTER:
        cluster: Cluster = request.getfixturevalue("cluster")
        cluster.require_vault()
        return cluster
    return request.getfixturevalue("openbao_cluster")  # type: ignore[no-any-return]


def only_on(backend: str) -> pytest.MarkDecorator:
    """Run a test of the two-Vault suite on ``backend`` alone: the fault it needs exists there
    only (a real server's stop and start), so the other run would only be a skip."""
    return pytest.mark.parametrize("vault_cluster", [backend], indirect=True)


def _run(
    kube: Kube,
    kubeconfig: Path,
    workdir: Path,
    *,
    emulator: APIServer | None,
    vault: VaultAdmin | None,
) -> Iterator[Cluster]:
    # The operator's own namespace holds its HMAC key Secret, as the Helm release's does.
    kube.create_namespace(OPERATOR_NAMESPACE)
    operator = Operator(
        kubeconfig=kubeconfig,
        log_path=workdir / "operator.log",
        extra_env=operator_vault_env(vault.address) if vault else {},
    )
    operator.start()
    try:
        yield Cluster(kube=kube, operator=operator, emulator=emulator, vault=vault)
    finally:
        operator.stop()


@pytest.fixture
def ns(cluster: Cluster) -> str:
    """A fresh namespace; the operator must be running."""
    assert cluster.operator.process is not None and cluster.operator.process.poll() is None, (
        cluster.operator.log[-3000:]
    )
    return cluster.namespace()


@pytest.fixture
def tenant(cluster: Cluster, ns: str) -> Iterator[str]:
    """A fresh namespace set up as a Vault tenant (ServiceAccount, policy, role). Its
    VaultSecrets are deleted afterwards, so that their refreshes stop loading later tests."""
    cluster.require_vault().add_tenant(ns)
    yield ns
    for kind in ("MirageService", "VaultSecret"):
        for item in cluster.kube.list(kind, ns):
            cluster.kube.delete(kind, ns, item["metadata"]["name"])


def service(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    """A MirageService document."""
    return {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "MirageService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": "registry.example/app:1.0.0", **spec},
    }


def wait_ready(
    kube: Kube, namespace: str, name: str, *, kind: str = "MirageService", timeout: float = 30
) -> dict[str, Any]:
    """Wait until ``Ready=True`` for the current generation; the object."""

    def ready() -> dict[str, Any] | None:
        body = kube.get(kind, namespace, name)
        if not body:
            return None
        status = body.get("status") or {}
        if status.get("observedGeneration") != body["metadata"].get("generation"):
            return None
        for cond in status.get("conditions") or []:
            if cond["type"] == "Ready" and cond["status"] == "True":
                return body
        return None

    return wait_for(ready, timeout=timeout, what=f"{kind} {namespace}/{name} Ready")
