"""``mirage sandbox``: the emulated cluster, the operator and the examples, in one process.

Everything runs on one asyncio loop: the emulated Kubernetes API (and Vault, when present),
and the real operator (kopf with the same handlers as ``mirage run``), logging in through a
kubeconfig written for the emulated API — so plain ``kubectl`` can look around too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import sys
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import kopf
from aiohttp import web

from mirage_operator.api.validation import is_mirage, problems_of
from mirage_operator.config import Config
from mirage_operator.crds import load_crds
from mirage_operator.errors import StartupError
from mirage_operator.handlers import register
from mirage_operator.handlers.activities import failure_cause
from mirage_operator.metrics import start_metrics_server
from mirage_operator.yamlsafe import YAMLInputError, read_objects
from mirage_sandbox.apiserver.server import APIServer
from mirage_sandbox.errors import EmulatedAPIError
from mirage_sandbox.monitoring_crds import platform_crds
from mirage_sandbox.tenants import seed_sources
from mirage_sandbox.vault import EmulatedVault, apiserver_reviewer

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

PLURALS = {
    "MirageService": "mirageservices",
    "VaultSecret": "vaultsecrets",
    "ServiceLevelObjective": "servicelevelobjectives",
}


@dataclass
class Row:
    """What the table shows of one custom resource."""

    kind: str
    namespace: str
    name: str
    ready: str = "Unknown"
    reason: str = "Pending"
    message: str = ""
    children: list[str] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        """Ready, or settled on a reason that waiting will not change."""
        return self.ready == "True" or self.reason == "InvalidSpec"


START_SECONDS = 30.0
"""How long the operator may take to become ready."""


def load_examples(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Every Kubernetes object under ``paths`` (files or directories), in file order.

    Raises :class:`YAMLInputError` (file, document, reason) for the first fault found.
    """
    errors: list[YAMLInputError] = []
    documents = [d.body for d in read_objects(paths, on_error=errors.append)]
    if errors:
        raise errors[0]
    return documents


class _LastError(logging.Handler):
    """Remembers the last error logged, in one line, to say why start-up failed."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.message = ""

    def emit(self, record: logging.LogRecord) -> None:
        cause = record.exc_info[1] if record.exc_info else None
        text = record.getMessage() + (f" ({type(cause).__name__}: {cause})" if cause else "")
        self.message = " ".join(text.split())


def row_of(kind: str, body: Mapping[str, Any]) -> Row:
    """The table row of a live custom resource."""
    meta, status = body["metadata"], body.get("status") or {}
    row = Row(kind=kind, namespace=meta.get("namespace", ""), name=meta["name"])
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            row.ready, row.reason, row.message = (
                cond["status"],
                cond.get("reason", ""),
                cond.get("message", ""),
            )
    row.children = [f"{c['kind']}/{c['name']}" for c in status.get("children") or []]
    if not row.children and status.get("secretName"):
        row.children = [f"Secret/{status['secretName']}"]
    if not row.children and status.get("ruleName"):
        row.children = [f"PrometheusRule/{status['ruleName']}"]
    return row


def format_table(rows: Iterable[Row]) -> str:
    """A readable table: one line per resource, its children on the lines below."""
    lines = [f"{'KIND':<22} {'NAMESPACE':<12} {'NAME':<28} {'READY':<6} REASON"]
    for row in rows:
        lines.append(
            f"{row.kind:<22} {row.namespace:<12} {row.name:<28} {row.ready:<6} {row.reason}"
        )
        if row.ready != "True" and row.message:
            lines.append(f"{'':<22} {'':<12} └ {row.message[:110]}")
        for child in row.children:
            lines.append(f"{'':<22} {'':<12}   {child}")
    return "\n".join(lines)


class Sandbox:
    """The emulated cluster with the operator running against it."""

    def __init__(self, *, workdir: Path, config: Config) -> None:
        self.workdir = workdir
        self.config = config
        self.api = APIServer()
        # Vault's kubernetes auth checks the operator's TokenRequest tokens with this API.
        self.vault = EmulatedVault(
            token_reviewer=apiserver_reviewer(self.api, audience=config.vault_token_audience)
        )
        self.kubeconfig = workdir / "kubeconfig"
        self.metrics_url = ""
        self._metrics: web.AppRunner | None = None
        self._stop = asyncio.Event()
        self._operator: asyncio.Task[None] | None = None

    async def start(self, *, port: int = 0) -> None:
        """Start the API and Vault, install the CRDs, write the kubeconfig, start the
        operator (pointed at the emulated Vault) and its metrics endpoint.

        Everything listens on 127.0.0.1, on free ports (the API on ``port`` when given).
        Raises :class:`StartupError` with the cause in one line; call :meth:`stop` after.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            await self.api.start(port=port)
        except OSError as exc:
            raise StartupError.listening("emulated Kubernetes API", LOOPBACK, port, exc) from None
        try:
            await self.vault.start()
        except OSError as exc:
            raise StartupError.listening("emulated Vault", LOOPBACK, 0, exc) from None
        if self.config.metrics_port:
            # The sandbox serves the operator's metrics itself, on a free loopback port: the
            # configured port is for a pod, where nothing else listens.
            self._metrics = await start_metrics_server(0, host=LOOPBACK)
            self.metrics_url = f"http://{LOOPBACK}:{self._metrics.addresses[0][1]}"
        self.config = dataclasses.replace(
            self.config, vault_address=self.vault.address, metrics_port=0
        )
        # The operator's own namespace holds its HMAC key Secret.
        self.ensure_namespace(self.config.operator_namespace)
        self.api.install_crds([*load_crds(), *platform_crds()])
        self.api.write_kubeconfig(self.kubeconfig)
        # kopf's login (ours: mirage_operator.handlers.activities) reads KUBECONFIG.
        os.environ["KUBECONFIG"] = str(self.kubeconfig)
        registry = kopf.OperatorRegistry()
        register(registry, self.config)
        ready = asyncio.Event()
        errors = _LastError()
        logging.getLogger().addHandler(errors)
        self._operator = asyncio.create_task(
            kopf.operator(
                registry=registry,
                standalone=True,
                clusterwide=True,
                stop_flag=self._stop,
                ready_flag=ready,
            )
        )
        waiting = asyncio.create_task(ready.wait())
        try:
            await asyncio.wait(
                {waiting, self._operator}, timeout=START_SECONDS, return_when=FIRST_COMPLETED
            )
        finally:
            waiting.cancel()
            logging.getLogger().removeHandler(errors)
        if ready.is_set():
            return
        if self._operator.done():
            failure = self._operator.exception()
            cause = failure_cause(failure) if failure else errors.message
            raise StartupError(f"the operator stopped while starting: {cause or 'no cause logged'}")
        raise StartupError(
            f"the operator was not ready within {START_SECONDS:.0f} s: "
            f"{errors.message or 'no error logged'}"
        )

    async def wait_until_stopped(self) -> None:
        """Serve until the operator stops: kopf handles SIGINT/SIGTERM and returns."""
        if self._operator is not None:
            await asyncio.shield(self._operator)

    async def stop(self) -> None:
        """Stop the operator, then the servers (whichever of them started)."""
        self._stop.set()
        if self._operator is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._operator, timeout=15)
        if self._metrics is not None:
            await self._metrics.cleanup()
        await self.vault.stop()
        await self.api.stop()

    def ensure_namespace(self, namespace: str) -> None:
        """Create ``namespace`` unless it exists."""
        if not self.api.find("namespaces", namespace):
            self.api.create(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )

    def apply(self, documents: Iterable[Mapping[str, Any]]) -> list[str]:
        """Apply each document (creating its namespace) as ``kubectl apply`` would: one the
        API refuses is reported and the others are applied. Returns the refusals, one line
        each (``Kind namespace/name: reason``).

        First, as the Pulumi stacks would: every namespace whose resources read Vault becomes
        a tenant (its ``mirage-vault`` ServiceAccount, Vault role and policy), and each Vault
        source they name is seeded with demo values (for the resources the operator's own
        validator accepts; the others never read Vault).
        """
        documents = list(documents)
        valid = [d for d in documents if is_mirage(d) and not problems_of(d)[1]]
        for namespace in seed_sources(self.vault, valid, config=self.config):
            self.ensure_namespace(namespace)
            service_account = {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": self.config.vault_service_account, "namespace": namespace},
            }
            self.api.apply(service_account, field_manager="mirage-sandbox")
        refused = []
        for document in documents:
            metadata = document.get("metadata")
            metadata = metadata if isinstance(metadata, dict) else {}
            namespace = str(metadata.get("namespace") or "default")
            body = {**document, "metadata": {**metadata, "namespace": namespace}}
            where = f"{document.get('kind')} {namespace}/{metadata.get('name', '?')}"
            if not isinstance(metadata.get("name"), str):  # kubectl refuses it before sending
                refused.append(f"{where}: metadata.name: Required value")
                continue
            try:
                self.ensure_namespace(namespace)
                self.api.apply(body, field_manager="mirage-sandbox")
            except EmulatedAPIError as exc:
                refused.append(" ".join(f"{where}: {exc}".split()))
        return refused

    def rows(self) -> list[Row]:
        """Every Mirage custom resource in the cluster, as table rows."""
        rows = []
        for kind, plural in PLURALS.items():
            for body in self.api.list(plural):
                rows.append(row_of(kind, body))
        return sorted(rows, key=lambda r: (r.kind != "MirageService", r.kind, r.namespace, r.name))

    async def converge(self, *, wait_seconds: float, out: TextIO) -> list[Row]:
        """Poll until every resource converged or ``wait_seconds`` passed; progress on ``out``."""
        deadline = time.monotonic() + wait_seconds
        interactive = out.isatty()
        last = ""
        while True:
            rows = self.rows()
            done = sum(r.converged for r in rows)
            line = f"converging: {sum(r.ready == 'True' for r in rows)}/{len(rows)} ready"
            if line != last:
                out.write(("\r" if interactive else "") + line + ("" if interactive else "\n"))
                out.flush()
                last = line
            if (rows and done == len(rows)) or time.monotonic() > deadline:
                if interactive:
                    out.write("\n")
                return rows
            await asyncio.sleep(0.2)


async def run_sandbox(
    *,
    documents: Sequence[Mapping[str, Any]],
    workdir: Path,
    keep: bool,
    wait_seconds: float,
    config: Config,
    port: int = 0,
    out: TextIO = sys.stdout,
) -> int:
    """Run the sandbox with ``documents`` applied; 0 when every Mirage resource is Ready
    (or ``keep`` until interrupted). Raises :class:`StartupError` when it cannot start."""
    sandbox = Sandbox(workdir=workdir, config=config)
    try:
        await sandbox.start(port=port)
        metrics = f", operator metrics at {sandbox.metrics_url}/metrics" * bool(sandbox.metrics_url)
        out.write(
            f"emulated Kubernetes API at {sandbox.api.url}, emulated Vault at "
            f"{sandbox.vault.address}; operator running{metrics}\n"
        )
        refused = sandbox.apply(documents)
        for line in refused:
            out.write(f"refused by the API: {line}\n")
        rows = await sandbox.converge(wait_seconds=wait_seconds, out=out)
        out.write(format_table(rows) + "\n")
        # A resource settled on InvalidSpec stops the wait but is not a success.
        converged = bool(rows) and all(r.ready == "True" for r in rows) and not refused
        if keep:
            out.write(
                f"\nkeeping the sandbox running; in another shell:\n"
                f"  export KUBECONFIG={sandbox.kubeconfig}\n  kubectl get mirage -A\n"
                "Ctrl-C stops it.\n"
            )
            out.flush()
            await sandbox.wait_until_stopped()
            out.write("sandbox stopped\n")
            return 0
        return 0 if converged else 1
    finally:
        await sandbox.stop()
