"""MirageOperator: the chart in ``charts/mirage-operator`` (a local path), with values wired from
the other components' outputs and the tenant contract."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from mirage_operator import tenancy
from stacks.components.common import child, helm_release

CHART = Path(__file__).resolve().parents[2] / "charts" / "mirage-operator"
NAMESPACE = "mirage-system"
RELEASE = "mirage"


def operator_values(
    *,
    vault_address: Any,
    vault_auth_mount: Any,
    ingress_class: Any,
    ingress_namespace: Any,
    prometheus_namespace: Any,
    mesh_default: bool,
    mesh_trust_domain: Any,
    oauth2_proxy_url: Any,
    oauth2_proxy_service: Any,
    monitoring: bool,
    watch_namespaces: Sequence[str],
    image: str,
    version: str,
) -> dict[str, Any]:
    """Values of the mirage-operator chart (plain values or Pulumi outputs): Vault's address
    and auth mount from the Vault component, the tenant contract's role template,
    ServiceAccount, audience and allowed paths, the ingress class and the namespaces of the
    ingress controller and Prometheus, the mesh's default and trust domain, the OAuth2 Proxy's
    address and Service (None: the chart's defaults); ServiceMonitor and dashboard when
    ``monitoring``."""
    return {
        "image": {"repository": image, "tag": version},
        "watch": {"namespaces": list(watch_namespaces)},
        "vault": {
            "address": vault_address,
            "auth": {
                "mode": "tenant",
                "mount": vault_auth_mount,
                "roleTemplate": tenancy.VAULT_ROLE_TEMPLATE,
                "serviceAccount": tenancy.SERVICE_ACCOUNT,
                "tokenAudience": tenancy.TOKEN_AUDIENCE,
            },
            "allowedPaths": list(tenancy.KV_PATH_TEMPLATES),
            "allowedDatabaseRoles": list(tenancy.DATABASE_ROLE_TEMPLATES),
        },
        "platform": {
            "ingressClass": ingress_class,
            "ingressControllerNamespace": ingress_namespace,
            "prometheusNamespace": prometheus_namespace,
            "monitoringLabels": dict(tenancy.MONITORING_LABELS),
            "dashboardLabels": dict(tenancy.DASHBOARD_LABELS),
            "meshDefault": mesh_default,
            "meshTrustDomain": mesh_trust_domain,
            **({"oauth2ProxyUrl": oauth2_proxy_url} if oauth2_proxy_url is not None else {}),
            **(
                {"oauth2ProxyService": oauth2_proxy_service}
                if oauth2_proxy_service is not None
                else {}
            ),
        },
        "metrics": {"enabled": True, "serviceMonitor": {"enabled": monitoring}},
        "dashboard": {"enabled": monitoring},
        "networkPolicy": {"enabled": True},
    }


class MirageOperator(pulumi.ComponentResource):
    """The operator's Helm release. Outputs: ``namespace``, ``release``."""

    namespace: pulumi.Output[str]
    release: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        values: Mapping[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mirage:operator:MirageOperator", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata={"name": NAMESPACE}, opts=child(self)
        )
        release = helm_release(
            self,
            f"{name}-release",
            release=RELEASE,
            namespace=namespace.metadata["name"],
            chart=str(CHART),
            values=dict(values),
        )
        self.namespace = namespace.metadata["name"]
        self.release = release.name.apply(lambda n: n or RELEASE)
        self.register_outputs({"namespace": self.namespace, "release": self.release})
