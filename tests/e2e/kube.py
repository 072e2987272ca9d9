"""A small synchronous Kubernetes REST client for the e2e tests, built from a kubeconfig.

It talks to the emulated API server or, when ``MIRAGE_E2E_KUBECONFIG`` is set, to a real
cluster, so the same tests run against both. Only token and client-certificate auth.
"""

from __future__ import annotations

import base64
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import requests
import yaml

T = TypeVar("T")

PLURALS: dict[str, tuple[str, str]] = {
    # kind: (api prefix, plural)
    "Namespace": ("/api/v1", "namespaces"),
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "Secret": ("/api/v1", "secrets"),
    "Service": ("/api/v1", "services"),
    "Event": ("/api/v1", "events"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies"),
    "Ingress": ("/apis/networking.k8s.io/v1", "ingresses"),
    "ServiceMonitor": ("/apis/monitoring.coreos.com/v1", "servicemonitors"),
    "PrometheusRule": ("/apis/monitoring.coreos.com/v1", "prometheusrules"),
    "MirageService": ("/apis/mirage.dev/v1alpha1", "mirageservices"),
    "VaultSecret": ("/apis/mirage.dev/v1alpha1", "vaultsecrets"),
    "ServiceLevelObjective": ("/apis/mirage.dev/v1alpha1", "servicelevelobjectives"),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases"),
}
CLUSTER_SCOPED = {"Namespace"}


def wait_for(
    condition: Callable[[], T | None], *, timeout: float = 30.0, what: str = "condition"
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


class Kube:
    """REST calls with the credentials of the kubeconfig's current context."""

    def __init__(self, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
        context = next(
            c["context"] for c in config["contexts"] if c["name"] == config["current-context"]
        )
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        self.server = cluster["server"].rstrip("/")
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "mirage-e2e"
        if user.get("token"):
            self.session.headers["Authorization"] = f"Bearer {user['token']}"
        self._tmp = tempfile.TemporaryDirectory(prefix="mirage-e2e-")
        self.session.verify = self._file(cluster, "certificate-authority") or not cluster.get(
            "insecure-skip-tls-verify", False
        )
        cert, key = self._file(user, "client-certificate"), self._file(user, "client-key")
        if cert and key:
            self.session.cert = (cert, key)

    def _file(self, section: Mapping[str, Any], name: str) -> str | None:
        if section.get(name):
            return str(section[name])
        if section.get(f"{name}-data"):
            path = Path(self._tmp.name) / name
            path.write_bytes(base64.b64decode(section[f"{name}-data"]))
            return str(path)
        return None

    @staticmethod
    def path(
        kind: str, namespace: str | None = None, name: str | None = None, sub: str | None = None
    ) -> str:
        """The REST path of a collection or object."""
        prefix, plural = PLURALS[kind]
        parts = [prefix]
        if namespace and kind not in CLUSTER_SCOPED:
            parts.append(f"namespaces/{namespace}")
        parts.append(plural)
        if name:
            parts.append(name)
        if sub:
            parts.append(sub)
        return "/".join(parts)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call; the caller checks the status."""
        return self.session.request(method, self.server + path, timeout=30, **kwargs)

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or ``None``."""
        response = self.request("GET", self.path(kind, namespace, name))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def list(
        self, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Every object of ``kind`` in ``namespace`` matching ``selector``."""
        params = {"labelSelector": selector} if selector else None
        response = self.request("GET", self.path(kind, namespace), params=params)
        response.raise_for_status()
        return response.json()["items"]  # type: ignore[no-any-return]

    def apply(self, body: Mapping[str, Any], *, manager: str = "mirage-e2e") -> dict[str, Any]:
        """Server-side apply ``body`` as a user would with ``kubectl apply --server-side``."""
        meta = body["metadata"]
        response = self.request(
            "PATCH",
            self.path(body["kind"], meta.get("namespace"), meta["name"]),
            params={"fieldManager": manager, "force": "true"},
            data=yaml.safe_dump(dict(body)),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        if response.status_code >= 400:
            raise AssertionError(f"apply failed: {response.status_code} {response.text}")
        return response.json()  # type: ignore[no-any-return]

    def merge_patch(
        self, kind: str, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch, as ``kubectl patch --type merge`` sends."""
        response = self.request(
            "PATCH",
            self.path(kind, namespace, name),
            json=dict(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        """Delete with background propagation; a missing object is fine."""
        response = self.request(
            "DELETE", self.path(kind, namespace, name), json={"propagationPolicy": "Background"}
        )
        if response.status_code not in (200, 202, 404):
            response.raise_for_status()

    def create_namespace(self, name: str) -> None:
        """Create a namespace (labelled so tests can find their own)."""
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": {"mirage-e2e": "1"}},
            }
        )

    def condition(self, kind: str, namespace: str, name: str, type_: str) -> dict[str, Any] | None:
        """A status condition of an object, if present."""
        body = self.get(kind, namespace, name) or {}
        for cond in (body.get("status") or {}).get("conditions") or []:
            if cond.get("type") == type_:
                return cond  # type: ignore[no-any-return]
        return None
