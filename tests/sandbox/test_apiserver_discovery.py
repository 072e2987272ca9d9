"""Discovery documents (legacy and aggregated), OpenAPI documents and server-side tables."""

from __future__ import annotations

from typing import Any

from mirage_sandbox.apiserver import APIServer
from tests.sandbox.conftest import GROUP, WIDGETS, Kube, widget

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


async def test_version_and_legacy_discovery(kube: Kube) -> None:
    version = await kube.get("/version")
    assert version.body["major"] == "1" and version.body["gitVersion"].startswith("v1.")
    api = await kube.get("/api")
    assert api.body["kind"] == "APIVersions" and api.body["versions"] == ["v1"]
    core = await kube.get("/api/v1")
    by_name = {r["name"]: r for r in core.body["resources"]}
    assert by_name["namespaces"]["namespaced"] is False
    assert by_name["configmaps"]["namespaced"] is True
    assert by_name["serviceaccounts/token"]["kind"] == "TokenRequest"
    assert "watch" in by_name["secrets"]["verbs"]


async def test_group_discovery_includes_built_ins_and_crds(kube: Kube) -> None:
    groups = await kube.get("/apis")
    names = {g["name"]: g for g in groups.body["groups"]}
    expected = {
        "apps",
        "autoscaling",
        "policy",
        "networking.k8s.io",
        "coordination.k8s.io",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "events.k8s.io",
        "authentication.k8s.io",
        GROUP,
    }
    assert expected <= set(names)
    assert names["autoscaling"]["preferredVersion"]["version"] == "v2"
    widgets = await kube.get(f"/apis/{GROUP}/v1")
    entry = next(r for r in widgets.body["resources"] if r["name"] == "widgets")
    assert entry["kind"] == "Widget" and entry["shortNames"] == ["wdg"] and entry["namespaced"]
    assert any(r["name"] == "widgets/status" for r in widgets.body["resources"])
    apps = await kube.get("/apis/apps/v1")
    assert {"deployments", "statefulsets", "daemonsets", "deployments/status"} <= {
        r["name"] for r in apps.body["resources"]
    }


async def test_aggregated_discovery_when_asked_for(kube: Kube) -> None:
    answer = await kube.request("GET", "/apis", headers={"Accept": AGGREGATED})
    assert answer.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
    assert answer.body["kind"] == "APIGroupDiscoveryList"
    groups = {g["metadata"]["name"]: g for g in answer.body["items"]}
    resources = groups[GROUP]["versions"][0]["resources"]
    widget_entry = next(r for r in resources if r["resource"] == "widgets")
    assert widget_entry["scope"] == "Namespaced"
    assert widget_entry["responseKind"] == {"group": GROUP, "version": "v1", "kind": "Widget"}
    assert widget_entry["subresources"][0]["subresource"] == "status"
    core = await kube.request("GET", "/api", headers={"Accept": AGGREGATED})
    assert [g["metadata"]["name"] for g in core.body["items"]] == [""]


async def test_unknown_group_version_is_404(kube: Kube) -> None:
    assert (await kube.get("/apis/nope.example.com/v1")).status == 404
    assert (await kube.get("/apis/apps/v9/deployments")).status == 404


async def test_openapi_v3_index_and_group_version_documents(kube: Kube) -> None:
    index = await kube.get("/openapi/v3")
    paths = index.body["paths"]
    assert {"api/v1", "apis/apps/v1", f"apis/{GROUP}/v1"} <= set(paths)
    doc = await kube.request("GET", paths[f"apis/{GROUP}/v1"]["serverRelativeURL"])
    schemas = doc.body["components"]["schemas"]
    widget_schema = schemas["dev.mirage.test.v1.Widget"]
    assert widget_schema["x-kubernetes-group-version-kind"] == [
        {"group": GROUP, "version": "v1", "kind": "Widget"}
    ]
    assert (
        widget_schema["properties"]["spec"]["properties"]["replicas"]["description"]
        == "How many widgets."
    )
    patch = doc.body["paths"][f"/apis/{GROUP}/v1/namespaces/{{namespace}}/widgets/{{name}}"][
        "patch"
    ]
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Widget"


async def test_openapi_of_built_ins_has_official_schemas(kube: Kube) -> None:
    doc = await kube.get("/openapi/v3/apis/apps/v1")
    deployment = doc.body["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    spec_ref = deployment["properties"]["spec"]
    assert spec_ref["allOf"][0]["$ref"] == "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    pod_spec = doc.body["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]
    assert pod_spec["properties"]["containers"]["x-kubernetes-patch-merge-key"] == "name"
    v2 = await kube.get("/openapi/v2")
    assert v2.body["swagger"] == "2.0" and "io.k8s.api.core.v1.ConfigMap" in v2.body["definitions"]


async def test_table_for_crd_uses_printer_columns(api: APIServer, kube: Kube) -> None:
    await kube.post(WIDGETS, widget("t", replicas=3))
    api.patch(
        "widgets",
        "t",
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        "default",
        subresource="status",
    )
    table = await kube.request("GET", WIDGETS, headers={"Accept": TABLE})
    assert table.body["kind"] == "Table"
    assert [c["name"] for c in table.body["columnDefinitions"]] == ["Name", "Replicas", "Ready"]
    row: dict[str, Any] = table.body["rows"][0]
    assert row["cells"] == ["t", 3, "True"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
