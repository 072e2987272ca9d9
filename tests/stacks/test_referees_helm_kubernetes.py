"""Real tools as referees of what the stacks declare: ``helm template`` renders the operator
release with the values the MirageOperator component passes (checked by the chart's
values.schema.json), its Deployment points at the Vault the Vault component made; and the
Kubernetes objects the stacks declare directly pass ``kubernetes-validate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from mirage_operator import tenancy
from mirage_operator.config import Config
from stacks.components.tenants import tenant_objects
from stacks.settings import Tenant
from tests.chart.helm import Helm
from tests.conftest import require_tool
from tests.stacks.harness import Built

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


def test_operator_values_render_and_point_at_the_stack_vault(
    stack: Built, helm: Helm, tmp_path: Path
) -> None:
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
    objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MIRAGE_VAULT_ADDR"] == stack.outputs["vaultAddress"]
    assert env["MIRAGE_VAULT_AUTH_MOUNT"] == stack.outputs["vaultAuthMount"]
    [auth] = stack.of_type("vault:index/authBackend:AuthBackend")
    assert env["MIRAGE_VAULT_AUTH_MOUNT"] == auth.inputs["path"]
    # The rendered environment configures the operator exactly as the tenant contract says.
    config = Config.from_env({k: v for k, v in env.items() if v is not None})
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
