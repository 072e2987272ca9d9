"""The e2e tests' Kubernetes client: the official ``kubernetes`` Python client (its dynamic
client, with discovery), built from a kubeconfig.

It talks to the emulated API server or, when ``MIRAGE_E2E_KUBECONFIG`` is set, to a real
cluster, so the same tests run against both, and the emulator is exercised by the request
shapes another client library sends (not only the operator's own client's).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import kubernetes
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

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
    "PeerAuthentication": ("/apis/security.istio.io/v1", "peerauthentications"),
    "AuthorizationPolicy": ("/apis/security.istio.io/v1", "authorizationpolicies"),
    "RequestAuthentication": ("/apis/security.istio.io/v1", "requestauthentications"),
    "DestinationRule": ("/apis/networking.istio.io/v1", "destinationrules"),
    "Middleware": ("/apis/traefik.io/v1alpha1", "middlewares"),
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
    """Calls with the credentials of the kubeconfig's current context."""

    def __init__(self, kubeconfig: Path) -> None:
        self.api_client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        self.api_client.user_agent = "mirage-e2e"
        self.dynamic = DynamicClient(self.api_client)

    def resource(self, kind: str) -> Any:
        """The dynamic client's resource for ``kind`` (found through discovery)."""
        prefix, _ = PLURALS[kind]
        api_version = prefix.removeprefix("/apis/").removeprefix("/api/")
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    @staticmethod
    def _namespace(kind: str, namespace: str | None) -> str | None:
        return None if kind in CLUSTER_SCOPED else namespace

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or ``None``."""
        try:
            found = self.resource(kind).get(name=name, namespace=self._namespace(kind, namespace))
        except NotFoundError:
            return None
        return found.to_dict()  # type: ignore[no-any-return]

    def list(
        self, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Every object of ``kind`` in ``namespace`` matching ``selector``."""
        found = self.resource(kind).get(
            namespace=self._namespace(kind, namespace), label_selector=selector
        )
        return found.to_dict()["items"]  # type: ignore[no-any-return]

    def apply(self, body: Mapping[str, Any], *, manager: str = "mirage-e2e") -> dict[str, Any]:
        """Server-side apply ``body`` as a user would with ``kubectl apply --server-side``."""
        meta = body["metadata"]
        try:
            applied = self.resource(body["kind"]).server_side_apply(
                body=dict(body),
                name=meta["name"],
                namespace=self._namespace(body["kind"], meta.get("namespace")),
                field_manager=manager,
                force_conflicts=True,
            )
        except ApiException as exc:
            raise AssertionError(f"apply failed: {exc.status} {exc.body}") from None
        return applied.to_dict()  # type: ignore[no-any-return]

    def merge_patch(
        self, kind: str, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch, as ``kubectl patch --type merge`` sends."""
        patched = self.resource(kind).patch(
            body=dict(patch),
            name=name,
            namespace=self._namespace(kind, namespace),
            content_type="application/merge-patch+json",
        )
        return patched.to_dict()  # type: ignore[no-any-return]

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        """Delete with background propagation; a missing object is fine."""
        with contextlib.suppress(NotFoundError):
            self.resource(kind).delete(
                name=name,
                namespace=self._namespace(kind, namespace),
                body={"propagationPolicy": "Background"},
            )

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
