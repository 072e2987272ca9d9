"""Real tools as referees of what the stacks declare: ``helm template`` renders the operator
release with the values the MirageOperator component passes (checked by the chart's
values.schema.json), its Deployment points at the Vault the Vault component made; and the
Kubernetes objects the stacks declare directly pass ``kubernetes-validate``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from mirage_operator import tenancy
from mirage_operator.config import Config
from mirage_operator.render.documents import render_document
from stacks.components.tenants import tenant_objects
from stacks.settings import Charts, Tenant
from tests.chart.helm import Helm
from tests.conftest import require_tool
from tests.stacks.harness import ROOT, Built

K8S_VERSION = "1.33"
KINDS = {
    "kubernetes:core/v1:Namespace": ("v1", "Namespace"),
    "kubernetes:core/v1:ServiceAccount": ("v1", "ServiceAccount"),
    "kubernetes:core/v1:ResourceQuota": ("v1", "ResourceQuota"),
    "kubernetes:core/v1:LimitRange": ("v1", "LimitRange"),
    "kubernetes:core/v1:Secret": ("v1", "Secret"),
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": ("networking.k8s.io/v1", "NetworkPolicy"),
    "kubernetes:storage.k8s.io/v1:StorageClass": ("storage.k8s.io/v1", "StorageClass"),
}


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(require_tool("helm"), tmp_path_factory.mktemp("helm-home"))


def operator_release(stack: Built) -> dict[str, Any]:
    [release] = [
        r
        for r in stack.of_type("kubernetes:helm.sh/v3:Release")
        if r.component == "mirage:operator:MirageOperator"
    ]
    return release.inputs


@pytest.fixture(scope="module")
def rendered(
    helm: Helm, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[Built], list[dict[str, Any]]]:
    """The operator release of a stack as ``helm template`` renders it, once per stack."""
    cache: dict[str, list[dict[str, Any]]] = {}

    def render(stack: Built) -> list[dict[str, Any]]:
        if stack.stack not in cache:
            cache[stack.stack] = render_operator(stack, helm, tmp_path_factory.mktemp("values"))
        return cache[stack.stack]

    return render


def render_operator(stack: Built, helm: Helm, tmp_path: Path) -> list[dict[str, Any]]:
    """``helm template`` of the operator release with the values the stack passes."""
    release = operator_release(stack)
    assert (
        Path(release["chart"]) == Path(__file__).resolve().parents[2] / "charts" / "mirage-operator"
    )
    values = tmp_path / "values.yaml"
    values.write_text(json.dumps(release["values"]))
    result = helm.run(
        "template", release["name"], release["chart"], "--namespace", release["namespace"],
        "--kube-version", "1.33.0", "-f", str(values),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr  # values.schema.json rejects unknown/bad keys
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def operator_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_operator_values_render_and_point_at_the_stack_vault(
    stack: Built, rendered: Callable[[Built], list[dict[str, Any]]]
) -> None:
    objects = rendered(stack)
    env = operator_env(objects)
    assert env["MIRAGE_VAULT_ADDR"] == stack.outputs["vaultAddress"]
    assert env["MIRAGE_VAULT_AUTH_MOUNT"] == stack.outputs["vaultAuthMount"]
    [auth] = stack.of_type("vault:index/authBackend:AuthBackend")
    assert env["MIRAGE_VAULT_AUTH_MOUNT"] == auth.inputs["path"]
    # The rendered environment configures the operator exactly as the tenant contract says.
    config = Config.from_env(env)
    assert config.vault_role_template == tenancy.VAULT_ROLE_TEMPLATE
    assert config.vault_service_account == tenancy.SERVICE_ACCOUNT
    assert config.vault_token_audience == tenancy.TOKEN_AUDIENCE
    assert config.vault_allowed_paths == tenancy.KV_PATH_TEMPLATES
    assert config.vault_allowed_database_roles == tenancy.DATABASE_ROLE_TEMPLATES
    assert config.monitoring_labels == tenancy.MONITORING_LABELS
    assert config.dashboard_labels == tenancy.DASHBOARD_LABELS
    assert config.ingress_class == stack.outputs["ingressClass"]
    assert env["MIRAGE_INGRESS_CONTROLLER_NAMESPACE"] == "traefik"
    assert env["MIRAGE_PROMETHEUS_NAMESPACE"] == "monitoring"
    kinds = {o["kind"] for o in objects}
    assert {"ServiceMonitor", "ConfigMap", "NetworkPolicy"} <= kinds  # monitoring wired on


def releases(stack: Built, component: str) -> dict[str, dict[str, Any]]:
    """The Helm releases of ``component``, by chart."""
    return {
        r.inputs["chart"]: r.inputs
        for r in stack.of_type("kubernetes:helm.sh/v3:Release")
        if r.component == component
    }


def test_operator_renders_services_for_the_stack_mesh_and_edge(
    stack: Built, rendered: Callable[[Built], list[dict[str, Any]]]
) -> None:
    """The operator, configured by the environment the stack's values render to, renders the
    full example; what it writes must fit the Istio and OAuth2 Proxy the stack installs."""
    config = Config.from_env(operator_env(rendered(stack)))
    document = yaml.safe_load((ROOT / "examples" / "mirageservice-full.yaml").read_text())
    children = render_document(document, config=config)
    # One object per kind, but the callers' ALLOW policy beside the JWT's DENY one.
    by_kind = {c["kind"]: c for c in children if c.get("spec", {}).get("action") != "DENY"}
    mesh = releases(stack, "mirage:mesh:Mesh")
    if mesh:
        istiod = mesh["istiod"]["values"]
        domain = istiod["meshConfig"]["trustDomain"]
        assert stack.outputs["meshTrustDomain"] == domain == config.mesh_trust_domain
        principals = [
            p
            for rule in by_kind["AuthorizationPolicy"]["spec"]["rules"]
            for source in rule.get("from", ())
            for p in source["source"].get("principals", ())
        ]
        assert principals and all(p.startswith(f"{domain}/ns/") for p in principals)
        # The injector serves pods that ask by label (as the operator's do), through the CNI
        # plugin (no NET_ADMIN init container in restricted namespaces), rewriting probes.
        template = by_kind["Deployment"]["spec"]["template"]["metadata"]
        assert template["labels"]["sidecar.istio.io/inject"] == "true"
        assert istiod["sidecarInjectorWebhook"]["enableNamespacesByDefault"] is False
        assert istiod["pilot"]["cni"]["enabled"] is True and "cni" in mesh
        assert istiod["sidecarInjectorWebhook"]["rewriteAppHTTPProbe"] is True
        assert {r["version"] for r in mesh.values()} == {Charts.istio}
        # Traefik, in the namespace the operator admits, calls STRICT services over mTLS.
        traefik = releases(stack, "mirage:ingress:Ingress")["traefik"]
        assert traefik["namespace"] == config.ingress_controller_namespace
        assert traefik["values"]["deployment"]["podLabels"] == {"sidecar.istio.io/inject": "true"}
    else:
        assert stack.outputs["meshTrustDomain"] is None
        assert "podLabels" not in releases(stack, "mirage:ingress:Ingress")["traefik"]["values"]
    proxy = releases(stack, "mirage:oauth2proxy:OAuth2Proxy")
    if proxy:
        release = proxy["oauth2-proxy"]
        # The Middleware's address is the chart's Service (named after the release) and port.
        middlewares = [c["spec"] for c in children if c["kind"] == "Middleware"]
        [forward] = [m["forwardAuth"] for m in middlewares if "forwardAuth" in m]
        address = urlsplit(forward["address"])
        assert address.hostname == f"{release['name']}.{release['namespace']}.svc.cluster.local"
        assert (address.port or 80) == release["values"]["service"]["portNumber"]
        assert address.path == "/oauth2/auth"
        assert stack.outputs["oauth2ProxyUrl"] == config.oauth2_proxy_url
        # The sign-in redirect names the same Service, across namespaces, which Traefik allows.
        [errors] = [m["errors"] for m in middlewares if "errors" in m]
        assert errors["service"] == {
            "name": release["name"],
            "namespace": release["namespace"],
            "port": release["values"]["service"]["portNumber"],
        }
        traefik_crd = releases(stack, "mirage:ingress:Ingress")["traefik"]["values"]["providers"]
        assert traefik_crd["kubernetesCRD"]["allowCrossNamespace"] is True
        args = release["values"]["extraArgs"]
        # What the Middlewares rely on: identity headers, X-Forwarded-* from Traefik,
        # /oauth2/sign_in redirecting at once (the errors Middleware turns it into a 302), and
        # the ID token as Authorization for the example's JWT-requiring service.
        assert args["set-xauthrequest"] == args["reverse-proxy"] == "true"
        assert args["skip-provider-button"] == args["set-authorization-header"] == "true"
        assert "Authorization" in forward["authResponseHeaders"]
        assert args["skip-jwt-bearer-tokens"] == "true"
        assert args["oidc-issuer-url"].startswith("https://")
        assert release["values"]["ingress"]["className"] == config.ingress_class
        # People return only to hosts the session cookie covers.
        assert args["whitelist-domain"] == args["cookie-domain"]
    else:
        assert stack.outputs["oauth2ProxyUrl"] is None


def declared(stack: Built) -> list[dict[str, Any]]:
    """The Kubernetes objects the stack declares directly, as manifests."""
    manifests = []
    for resource in stack:
        if resource.type not in KINDS:
            continue
        api_version, kind = KINDS[resource.type]
        body = {k: v for k, v in resource.inputs.items() if k not in {"apiVersion", "kind"}}
        manifests.append({"apiVersion": api_version, "kind": kind, **body})
    return manifests


def _ints(value: Any) -> Any:
    # The engine carries every number as a float; the schemas want integers where they are.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def test_declared_kubernetes_objects_validate(stack: Built) -> None:
    manifests = declared(stack)
    assert {m["kind"] for m in manifests} >= {
        "Namespace", "ServiceAccount", "ResourceQuota", "LimitRange", "NetworkPolicy",
    }  # fmt: skip
    for manifest in manifests:
        kubernetes_validate.validate(_ints(manifest), K8S_VERSION, strict=True)


@pytest.mark.parametrize(
    "tenant",
    [
        Tenant("team-a"),
        Tenant("big", cpu="64", memory="256Gi", pods=500, default_cpu="2", default_memory="4Gi"),
        Tenant(
            "tiny", cpu="250m", memory="256Mi", pods=3, default_cpu="50m", default_memory="64Mi"
        ),
    ],
)
def test_tenant_objects_validate(tenant: Tenant) -> None:
    objects = tenant_objects(tenant)
    for manifest in objects:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    [account] = [o for o in objects if o["kind"] == "ServiceAccount"]
    assert account["metadata"] == {
        "name": tenancy.SERVICE_ACCOUNT,
        "namespace": tenant.name,
        "labels": account["metadata"]["labels"],
    }
    [policy] = [o for o in objects if o["kind"] == "NetworkPolicy"]
    assert policy["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
