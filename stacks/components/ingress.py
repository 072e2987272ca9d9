"""Ingress: Traefik through its Helm chart, serving the IngressClass the operator writes."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from stacks.components.common import child, helm_release

NAMESPACE = "traefik"
REPOSITORY = "https://traefik.github.io/charts"


def traefik_values(
    *, ingress_class: str, cloud: bool, prod: bool, mesh: bool = False
) -> dict[str, object]:
    """Traefik values: the Kubernetes Ingress provider, the IngressClass ``ingress_class``
    (not the cluster default: Mirage names its class on every Ingress), and on AWS an
    internet-facing NLB; CRD references across namespaces. With the ``mesh``, Traefik runs
    with a sidecar so that it calls services whose mTLS is STRICT over mTLS, under its
    namespace's identity (ADR 0093)."""
    values: dict[str, object] = {
        "ingressClass": {"enabled": True, "isDefaultClass": False, "name": ingress_class},
        "providers": {
            "kubernetesIngress": {"enabled": True, "ingressClass": ingress_class},
            # The operator's sign-in Middleware, in each tenant's namespace, names OAuth2
            # Proxy's Service in its own namespace (ADR 0094). Also lets any Middleware or
            # IngressRoute name any namespace's Service: write access to traefik.io kinds
            # stays with the platform.
            "kubernetesCRD": {"enabled": True, "allowCrossNamespace": True},
        },
        "deployment": {"replicas": 3 if prod else 1},
        "podDisruptionBudget": {"enabled": prod, "maxUnavailable": 1},
        "metrics": {"prometheus": {"serviceMonitor": {"enabled": False}}},
    }
    if mesh:
        # Through Services, not pod IPs: the sidecar applies mTLS to a Service's endpoints;
        # traffic straight to a pod IP would leave in plain text and be refused.
        for provider in ("kubernetesIngress", "kubernetesCRD"):
            values["providers"][provider]["nativeLBByDefault"] = True  # type: ignore[index]
        values["deployment"] = {
            **values["deployment"],  # type: ignore[dict-item]
            "podLabels": {"sidecar.istio.io/inject": "true"},
            # Requests from the load balancer reach Traefik directly; only its calls to the
            # services go through the sidecar.
            "podAnnotations": {"traffic.sidecar.istio.io/includeInboundPorts": ""},
        }
    if cloud:
        values["service"] = {
            "annotations": {
                "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
                "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
            }
        }
    return values


class Ingress(pulumi.ComponentResource):
    """Traefik. Outputs: ``ingress_class``, ``namespace``."""

    ingress_class: pulumi.Output[str]
    namespace: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        ingress_class: str,
        chart_version: str,
        cloud: bool,
        prod: bool,
        mesh: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mirage:ingress:Ingress", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata={"name": NAMESPACE}, opts=child(self)
        )
        helm_release(
            self,
            f"{name}-traefik",
            release="traefik",
            namespace=namespace.metadata["name"],
            chart="traefik",
            version=chart_version,
            repository=REPOSITORY,
            values=traefik_values(ingress_class=ingress_class, cloud=cloud, prod=prod, mesh=mesh),
        )
        self.ingress_class = pulumi.Output.from_input(ingress_class)
        self.namespace = namespace.metadata["name"]
        self.register_outputs({"ingress_class": self.ingress_class, "namespace": self.namespace})
