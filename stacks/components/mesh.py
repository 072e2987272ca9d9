"""Mesh: Istio in sidecar mode from its three Helm charts — ``base`` (CRDs and cluster roles),
``istiod`` (control plane and sidecar injector) and ``cni`` (the node agent that sets up each
pod's traffic redirection) — configured as the operator's ``spec.mesh`` assumes it (ADR 0093).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from stacks.components.common import MANAGED_BY, child, helm_release

NAMESPACE = "istio-system"
REPOSITORY = "https://istio-release.storage.googleapis.com/charts"


def istiod_values(*, trust_domain: str, prod: bool) -> dict[str, object]:
    """istiod values: the trust domain the operator names callers by, injection through the
    CNI plugin (tenant namespaces enforce the restricted Pod Security profile, which refuses
    the ``istio-init`` container's ``NET_ADMIN``), kubelet probes rewritten through the
    sidecar agent (ADR 0092 counts on it), and the application held until its proxy is up."""
    return {
        "meshConfig": {
            "trustDomain": trust_domain,
            "defaultConfig": {"holdApplicationUntilProxyStarts": True},
        },
        # `pilot.cni.enabled` as Istio's CNI installation guide sets it for this chart; the
        # chart's own settings are top-level since its values were flattened (1.24).
        "pilot": {"cni": {"enabled": True}},
        "autoscaleMin": 2 if prod else 1,
        "replicaCount": 2 if prod else 1,
        "sidecarInjectorWebhook": {
            "rewriteAppHTTPProbe": True,
            # Only pods that ask (the operator's `sidecar.istio.io/inject` label) get one.
            "enableNamespacesByDefault": False,
        },
        "global": {"istioNamespace": NAMESPACE},
    }


class Mesh(pulumi.ComponentResource):
    """Istio. Outputs: ``trust_domain``, ``namespace``."""

    trust_domain: pulumi.Output[str]
    namespace: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        trust_domain: str,
        chart_version: str,
        prod: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mirage:mesh:Mesh", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": NAMESPACE,
                # The CNI node agent needs host access; nothing of the tenants' runs here.
                "labels": {**MANAGED_BY, "pod-security.kubernetes.io/enforce": "privileged"},
            },
            opts=child(self),
        )
        ns = namespace.metadata["name"]
        base = helm_release(
            self, f"{name}-base", release="istio-base", namespace=ns, chart="base",
            version=chart_version, repository=REPOSITORY, values={"defaultRevision": "default"},
        )  # fmt: skip
        cni = helm_release(
            self, f"{name}-cni", release="istio-cni", namespace=ns, chart="cni",
            version=chart_version, repository=REPOSITORY, values={}, depends_on=[base],
        )  # fmt: skip
        # The injector must not hand out pods before the CNI agent can redirect their traffic.
        helm_release(
            self, f"{name}-istiod", release="istiod", namespace=ns, chart="istiod",
            version=chart_version, repository=REPOSITORY,
            values=istiod_values(trust_domain=trust_domain, prod=prod), depends_on=[base, cni],
        )  # fmt: skip
        self.trust_domain = pulumi.Output.from_input(trust_domain)
        self.namespace = ns
        self.register_outputs({"trust_domain": self.trust_domain, "namespace": self.namespace})
