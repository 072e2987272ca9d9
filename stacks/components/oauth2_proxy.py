"""OAuth2 Proxy: the edge's sign-in for people (OIDC against the platform's IdP), behind
Traefik. The operator's ``spec.ingress.auth.oidc`` Middlewares ask it at ``/oauth2/auth``
whether a request carries a session (ADR 0093).

The IdP client's secret comes from the stack's secret config and the cookie secret from
``pulumi_random``; both reach the pods through a Kubernetes Secret the chart is pointed at
(``config.existingSecret``), never through Helm values, which Helm stores in plain text in
its release record."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from stacks.components.common import MANAGED_BY, child, helm_release

NAMESPACE = "oauth2-proxy"
RELEASE = "oauth2-proxy"
CREDENTIALS = "oauth2-proxy-credentials"
"""The Secret holding ``client-id``, ``client-secret`` and ``cookie-secret`` (the keys the
chart's Deployment reads from ``config.existingSecret``)."""
REPOSITORY = "https://oauth2-proxy.github.io/manifests"
PORT = 80
URL = f"http://{RELEASE}.{NAMESPACE}.svc.cluster.local"
"""Where Traefik's forwardAuth reaches it: the chart's Service (named after the release when
the release and the chart share a name) on :data:`PORT`."""
SERVICE = f"{NAMESPACE}/{RELEASE}:{PORT}"
"""The same Service as Traefik's errors Middleware names it (``MIRAGE_OAUTH2_PROXY_SERVICE``),
to send a person without a session to ``/oauth2/sign_in``."""


def oauth2_proxy_values(
    *,
    issuer_url: str,
    host: str,
    cookie_domain: str,
    email_domains: Sequence[str],
    ingress_class: str,
    prod: bool,
) -> dict[str, object]:
    """Chart values: OIDC against ``issuer_url``; identity headers for Traefik to pass on
    (``--set-xauthrequest``) and the person's ID token as ``Authorization`` (for services
    that also require a JWT, ADR 0094); API clients' own bearer tokens from the same IdP
    accepted instead of a session (``--skip-jwt-bearer-tokens``, audience the client);
    ``/oauth2/sign_in`` going straight to the IdP (``--skip-provider-button``, which the
    operator's sign-in redirect needs); ``X-Forwarded-*`` trusted from Traefik
    (``--reverse-proxy``);
    answering 202 to an authenticated ``/oauth2/auth`` (no upstream); sign-in and callback at
    ``https://<host>/oauth2/`` through an Ingress of ``ingress_class``; a session cookie for
    ``cookie_domain``, to which it may also send people back after signing in."""
    emails = ", ".join(f'"{d}"' for d in email_domains)
    return {
        "config": {
            "existingSecret": CREDENTIALS,
            "configFile": f'email_domains = [{emails}]\nupstreams = ["static://202"]',
        },
        "extraArgs": {
            "provider": "oidc",
            "oidc-issuer-url": issuer_url,
            "redirect-url": f"https://{host}/oauth2/callback",
            "reverse-proxy": "true",
            "set-xauthrequest": "true",
            "set-authorization-header": "true",
            "skip-jwt-bearer-tokens": "true",
            "cookie-domain": cookie_domain,
            "whitelist-domain": cookie_domain,
            "cookie-secure": "true",
            "cookie-samesite": "lax",
            "skip-provider-button": "true",
        },
        "service": {"type": "ClusterIP", "portNumber": PORT},
        "ingress": {
            "enabled": True,
            "className": ingress_class,
            "path": "/oauth2",
            "pathType": "Prefix",
            "hosts": [host],
        },
        "replicaCount": 2 if prod else 1,
        "podDisruptionBudget": {"enabled": prod, "minAvailable": 1},
        "securityContext": {
            "enabled": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


class OAuth2Proxy(pulumi.ComponentResource):
    """OAuth2 Proxy. Outputs: ``url`` and ``service`` (in-cluster, for the operator),
    ``sign_in_url``."""

    url: pulumi.Output[str]
    service: pulumi.Output[str]
    sign_in_url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        issuer_url: str,
        client_id: str,
        client_secret: pulumi.Input[str],
        host: str,
        cookie_domain: str,
        email_domains: Sequence[str],
        ingress_class: pulumi.Input[str],
        chart_version: str,
        prod: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mirage:oauth2proxy:OAuth2Proxy", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": NAMESPACE,
                "labels": {**MANAGED_BY, "pod-security.kubernetes.io/enforce": "restricted"},
            },
            opts=child(self),
        )
        # 32 characters: an AES-256 key as OAuth2 Proxy takes it (16, 24 or 32 bytes).
        cookie = random.RandomPassword(
            f"{name}-cookie-secret", length=32, special=False, opts=child(self)
        )
        cookie_secret: pulumi.Output[str] = pulumi.Output.secret(cookie.result)
        credentials = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata={"name": CREDENTIALS, "namespace": namespace.metadata["name"]},
            string_data={
                "client-id": client_id,
                "client-secret": pulumi.Output.secret(client_secret),
                "cookie-secret": cookie_secret,
            },
            opts=child(self),
        )
        helm_release(
            self,
            f"{name}-release",
            release=RELEASE,
            namespace=namespace.metadata["name"],
            chart="oauth2-proxy",
            version=chart_version,
            repository=REPOSITORY,
            values=pulumi.Output.from_input(ingress_class).apply(
                lambda cls: oauth2_proxy_values(
                    issuer_url=issuer_url,
                    host=host,
                    cookie_domain=cookie_domain,
                    email_domains=email_domains,
                    ingress_class=cls,
                    prod=prod,
                )
            ),
            depends_on=[credentials],
        )
        self.url = pulumi.Output.from_input(URL)
        self.service = pulumi.Output.from_input(SERVICE)
        self.sign_in_url = pulumi.Output.from_input(f"https://{host}/oauth2/start")
        self.register_outputs(
            {"url": self.url, "service": self.service, "sign_in_url": self.sign_in_url}
        )
