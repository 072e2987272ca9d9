"""Tenants: per namespace of ``mirage:tenants``, the namespace (Pod Security ``restricted``), the
``mirage-vault`` ServiceAccount of the tenant contract, a ResourceQuota, a LimitRange and a
default-deny NetworkPolicy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from mirage_operator import tenancy
from mirage_operator.quantity import parse_quantity
from stacks.components.common import MANAGED_BY, child
from stacks.settings import Tenant

TENANT_LABEL = "mirage.dev/tenant"


def tenant_objects(tenant: Tenant) -> list[dict[str, Any]]:
    """The Kubernetes objects of one tenant, as manifests (the component declares exactly
    these; ``kubernetes-validate`` checks them in the tests)."""
    ns = tenant.name
    labels = {**MANAGED_BY, TENANT_LABEL: ns}
    meta = {"namespace": ns, "labels": labels}
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": {
                    **labels,
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            # Only its short-lived TokenRequest tokens log in to Vault: never mounted in pods.
            "metadata": {"name": tenancy.SERVICE_ACCOUNT, **meta},
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "tenant-quota", **meta},
            "spec": {
                "hard": {
                    "requests.cpu": tenant.cpu,
                    "limits.cpu": tenant.cpu,
                    "requests.memory": tenant.memory,
                    "limits.memory": tenant.memory,
                    "pods": str(tenant.pods),
                    "services.loadbalancers": "0",
                    "services.nodeports": "0",
                }
            },
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": "tenant-defaults", **meta},
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "default": {"cpu": tenant.default_cpu, "memory": tenant.default_memory},
                        "defaultRequest": {
                            "cpu": _fifth(tenant.default_cpu),
                            "memory": tenant.default_memory,
                        },
                    }
                ]
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            # Deny all ingress; each MirageService's own NetworkPolicy opens what it serves.
            "metadata": {"name": "default-deny-ingress", **meta},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        },
    ]


def _fifth(cpu: str) -> str:
    millis = int(parse_quantity(cpu) * 1000)
    return f"{max(millis // 5, 10)}m"


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


_KINDS: dict[str, Any] = {
    "Namespace": k8s.core.v1.Namespace,
    "ServiceAccount": k8s.core.v1.ServiceAccount,
    "ResourceQuota": k8s.core.v1.ResourceQuota,
    "LimitRange": k8s.core.v1.LimitRange,
    "NetworkPolicy": k8s.networking.v1.NetworkPolicy,
}


class Tenants(pulumi.ComponentResource):
    """Every tenant's objects. Outputs: ``namespaces``."""

    namespaces: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        tenants: Sequence[Tenant],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mirage:tenants:Tenants", name, None, opts)
        names = []
        for tenant in tenants:
            objects = tenant_objects(tenant)
            namespace = k8s.core.v1.Namespace(
                f"{name}-{tenant.name}", metadata=objects[0]["metadata"], opts=child(self)
            )
            names.append(namespace.metadata["name"])
            for manifest in objects[1:]:
                body = {
                    _snake(k): v for k, v in manifest.items() if k not in {"apiVersion", "kind"}
                }
                _KINDS[manifest["kind"]](
                    f"{name}-{tenant.name}-{manifest['kind'].lower()}",
                    **body,
                    opts=child(self, depends_on=[namespace]),
                )
        self.namespaces = pulumi.Output.all(*names)
        self.register_outputs({"namespaces": self.namespaces})
