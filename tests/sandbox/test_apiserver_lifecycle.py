"""Finalizers and deletionTimestamp, propagation policies, garbage collection, namespaces."""

from __future__ import annotations

from typing import Any

from mirage_sandbox.apiserver import APIServer
from tests.sandbox.conftest import CM, DEPLOY, WIDGETS, Kube, configmap, deployment, widget

MERGE = "application/merge-patch+json"


def owned_by(body: dict[str, Any], owner: dict[str, Any], *, block: bool = False) -> dict[str, Any]:
    meta = owner["metadata"]
    ref = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
    }
    if block:
        ref["blockOwnerDeletion"] = True
    body["metadata"]["ownerReferences"] = [ref]
    return body


async def test_delete_without_finalizers_removes_at_once(kube: Kube) -> None:
    await kube.post(CM, configmap("gone"))
    answer = await kube.delete(f"{CM}/gone")
    assert answer.status == 200 and answer.body["status"] == "Success"
    assert (await kube.get(f"{CM}/gone")).status == 404


async def test_finalizers_hold_deletion_until_emptied(kube: Kube) -> None:
    body = widget("fin")
    body["metadata"]["finalizers"] = ["example.com/cleanup"]
    await kube.post(WIDGETS, body)
    marked = await kube.delete(f"{WIDGETS}/fin")
    assert marked.status == 202
    assert marked.body["metadata"]["deletionTimestamp"]
    still = await kube.get(f"{WIDGETS}/fin")
    assert still.status == 200 and still.body["metadata"]["deletionTimestamp"]
    refused = await kube.patch(
        f"{WIDGETS}/fin", {"metadata": {"finalizers": ["example.com/cleanup", "new"]}}, MERGE
    )
    assert refused.status == 422 and "no new finalizers can be added" in refused.body["message"]
    released = await kube.patch(f"{WIDGETS}/fin", {"metadata": {"finalizers": None}}, MERGE)
    assert released.status == 200
    assert (await kube.get(f"{WIDGETS}/fin")).status == 404


async def test_delete_preconditions(kube: Kube) -> None:
    await kube.post(CM, configmap("pre"))
    answer = await kube.delete(f"{CM}/pre", {"preconditions": {"uid": "not-the-uid"}})
    assert answer.status == 409 and "Precondition failed: UID" in answer.body["message"]


async def test_background_garbage_collection_of_dependents(api: APIServer, kube: Kube) -> None:
    owner = (await kube.post(DEPLOY, deployment("owner"))).body
    await kube.post(CM, owned_by(configmap("child"), owner))
    await kube.delete(f"{DEPLOY}/owner")
    await api.wait_for(lambda: api.find("configmaps", "child", "default") is None)


async def test_dependent_with_a_remaining_owner_survives(api: APIServer, kube: Kube) -> None:
    first = (await kube.post(CM, configmap("owner-1"))).body
    second = (await kube.post(CM, configmap("owner-2"))).body
    child = owned_by(configmap("shared-child"), first)
    child["metadata"]["ownerReferences"].append(
        owned_by(configmap("x"), second)["metadata"]["ownerReferences"][0]
    )
    await kube.post(CM, child)
    await kube.delete(f"{CM}/owner-1")

    def refs() -> list[str] | None:
        found = api.find("configmaps", "shared-child", "default")
        return [r["name"] for r in found["metadata"].get("ownerReferences", [])] if found else None

    await api.wait_for(lambda: refs() == ["owner-2"])


async def test_foreground_deletion_waits_for_blocking_dependents(
    api: APIServer, kube: Kube
) -> None:
    owner = (await kube.post(DEPLOY, deployment("fg"))).body
    child = owned_by(configmap("fg-child"), owner, block=True)
    child["metadata"]["finalizers"] = ["example.com/hold"]
    await kube.post(CM, child)
    answer = await kube.delete(f"{DEPLOY}/fg", {"propagationPolicy": "Foreground"})
    assert "foregroundDeletion" in answer.body["metadata"]["finalizers"]
    await api.wait_for(
        lambda: (
            (api.find("configmaps", "fg-child", "default") or {})
            .get("metadata", {})
            .get("deletionTimestamp")
        )
    )
    assert api.find("deployments", "fg", "default") is not None  # blocked by its dependent
    await kube.patch(f"{CM}/fg-child", {"metadata": {"finalizers": None}}, MERGE)
    await api.wait_for(lambda: api.find("deployments", "fg", "default") is None)


async def test_orphan_deletion_keeps_dependents_without_the_reference(
    api: APIServer, kube: Kube
) -> None:
    owner = (await kube.post(DEPLOY, deployment("orph"))).body
    await kube.post(CM, owned_by(configmap("orphan"), owner))
    await kube.delete(f"{DEPLOY}/orph", propagationPolicy="Orphan")
    await api.wait_for(lambda: api.find("deployments", "orph", "default") is None)
    kept = api.get("configmaps", "orphan", "default")
    assert "ownerReferences" not in kept["metadata"]


async def test_dangling_owner_reference_is_collected(api: APIServer, kube: Kube) -> None:
    fake_owner = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "never", "uid": "00000000-0000-0000-0000-000000000000"},
    }
    await kube.post(CM, owned_by(configmap("dangling"), fake_owner))
    await api.wait_for(lambda: api.find("configmaps", "dangling", "default") is None)


async def test_namespace_deletion_removes_its_objects(api: APIServer, kube: Kube) -> None:
    await kube.post(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}},
    )
    await kube.post("/api/v1/namespaces/doomed/configmaps", configmap("c", namespace="doomed"))
    held = widget("w", namespace="doomed")
    held["metadata"]["finalizers"] = ["example.com/hold"]  # keeps the namespace terminating
    await kube.post("/apis/test.mirage.dev/v1/namespaces/doomed/widgets", held)
    answer = await kube.delete("/api/v1/namespaces/doomed")
    assert answer.status == 202 and answer.body["status"]["phase"] == "Terminating"
    await api.wait_for(lambda: api.find("configmaps", "c", "doomed") is None)
    refused = await kube.post(
        "/api/v1/namespaces/doomed/configmaps", configmap("late", namespace="doomed")
    )
    assert refused.status == 403 and "being terminated" in refused.body["message"]
    assert api.find("namespaces", "doomed") is not None
    await kube.patch(
        "/apis/test.mirage.dev/v1/namespaces/doomed/widgets/w",
        {"metadata": {"finalizers": None}},
        MERGE,
    )
    await api.wait_for(lambda: api.find("namespaces", "doomed") is None)
    assert api.list("configmaps", "doomed") == [] and api.list("widgets", "doomed") == []


async def test_deleting_a_crd_removes_its_resources_and_unserves_it(
    api: APIServer, kube: Kube
) -> None:
    await kube.post(WIDGETS, widget("bye"))
    await kube.delete(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.test.mirage.dev"
    )
    await api.wait_for(lambda: api.find("crd", "widgets.test.mirage.dev") is None)
    assert (await kube.get(WIDGETS)).status == 404
    assert (await kube.get("/apis/test.mirage.dev/v1")).status == 404
