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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import kopf
import yaml

from mirage_operator import GROUP
from mirage_operator.config import Config
from mirage_operator.crds import load_crds
from mirage_operator.handlers import register
from mirage_operator.sandbox.apiserver.server import APIServer
from mirage_operator.sandbox.monitoring_crds import monitoring_crds
from mirage_operator.sandbox.tenants import seed_sources
from mirage_operator.sandbox.vault import EmulatedVault, apiserver_reviewer

logger = logging.getLogger(__name__)

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


def load_examples(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Every YAML document under ``paths`` (files or directories), in file order."""
    files: list[Path] = []
    for path in paths:
        files += sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
    documents = []
    for file in files:
        documents += [
            d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if isinstance(d, dict)
        ]
    return documents


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
        self._stop = asyncio.Event()
        self._operator: asyncio.Task[None] | None = None

    async def start(self, *, port: int = 0) -> None:
        """Start the API and Vault, install the CRDs, write the kubeconfig, start the
        operator (pointed at the emulated Vault)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        await self.api.start(port=port)
        await self.vault.start()
        self.config = dataclasses.replace(self.config, vault_address=self.vault.address)
        # The operator's own namespace holds its HMAC key Secret.
        self.ensure_namespace(self.config.operator_namespace)
        self.api.install_crds([*load_crds(), *monitoring_crds()])
        self.api.write_kubeconfig(self.kubeconfig)
        # kopf's login (ours: mirage_operator.handlers.activities) reads KUBECONFIG.
        os.environ["KUBECONFIG"] = str(self.kubeconfig)
        registry = kopf.OperatorRegistry()
        register(registry, self.config)
        ready = asyncio.Event()
        self._operator = asyncio.create_task(
            kopf.operator(
                registry=registry,
                standalone=True,
                clusterwide=True,
                stop_flag=self._stop,
                ready_flag=ready,
            )
        )
        await asyncio.wait_for(ready.wait(), timeout=30)

    async def wait_until_stopped(self) -> None:
        """Serve until the operator stops: kopf handles SIGINT/SIGTERM and returns."""
        if self._operator is not None:
            await asyncio.shield(self._operator)

    async def stop(self) -> None:
        """Stop the operator, then the API."""
        self._stop.set()
        if self._operator is not None:
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(self._operator, timeout=15)
        await self.vault.stop()
        await self.api.stop()

    def ensure_namespace(self, namespace: str) -> None:
        """Create ``namespace`` unless it exists."""
        if not self.api.find("namespaces", namespace):
            self.api.create(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )

    def apply(self, documents: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
        """Create each document (and its namespace); the Mirage ones are returned to watch.

        First, as the Pulumi stacks would: every namespace whose resources read Vault becomes
        a tenant (its ``mirage-vault`` ServiceAccount, Vault role and policy), and each Vault
        source they name is seeded with demo values.
        """
        documents = list(documents)
        for namespace in seed_sources(self.vault, documents, config=self.config):
            self.ensure_namespace(namespace)
            service_account = {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": self.config.vault_service_account, "namespace": namespace},
            }
            self.api.apply(service_account, field_manager="mirage-sandbox")
        mirage = []
        for document in documents:
            namespace = document.get("metadata", {}).get("namespace", "default")
            self.ensure_namespace(namespace)
            body = {**document, "metadata": {**document["metadata"], "namespace": namespace}}
            self.api.apply(body, field_manager="mirage-sandbox")
            if str(document.get("apiVersion", "")).startswith(f"{GROUP}/"):
                mirage.append((document["kind"], namespace, document["metadata"]["name"]))
        return mirage

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
            line = f"converging: {done}/{len(rows)} ready"
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
    examples: Sequence[Path],
    workdir: Path,
    keep: bool,
    wait_seconds: float,
    port: int = 0,
    out: TextIO = sys.stdout,
) -> int:
    """Run the sandbox; 0 when every example converged (or ``keep`` until interrupted)."""
    config = Config.from_env()
    sandbox = Sandbox(workdir=workdir, config=config)
    await sandbox.start(port=port)
    try:
        out.write(
            f"emulated Kubernetes API at {sandbox.api.url}, emulated Vault at "
            f"{sandbox.vault.address}; operator running\n"
        )
        sandbox.apply(load_examples(examples))
        rows = await sandbox.converge(wait_seconds=wait_seconds, out=out)
        out.write(format_table(rows) + "\n")
        converged = bool(rows) and all(r.converged for r in rows)
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
