"""Object identity, resourceVersion, generation, optimistic concurrency and Status errors."""

from __future__ import annotations

from tests.sandbox.conftest import CM, DEPLOY, WIDGETS, Kube, configmap, deployment, widget


async def test_create_sets_uid_resource_version_and_timestamp(kube: Kube) -> None:
    first = await kube.post(CM, configmap("a", x="1"))
    second = await kube.post(CM, configmap("b", x="1"))
    assert first.status == 201 and second.status == 201
    meta_a, meta_b = first.body["metadata"], second.body["metadata"]
    assert meta_a["uid"] != meta_b["uid"]
    assert int(meta_b["resourceVersion"]) > int(meta_a["resourceVersion"])
    assert meta_a["creationTimestamp"].endswith("Z")
    fetched = await kube.get(f"{CM}/a")
    assert fetched.body["metadata"]["uid"] == meta_a["uid"]


async def test_resource_version_is_a_global_monotonic_counter(kube: Kube) -> None:
    versions = []
    for path, body in ((CM, configmap("c1")), (DEPLOY, deployment("d1")), (CM, configmap("c2"))):
        created = await kube.post(path, body)
        versions.append(int(created.body["metadata"]["resourceVersion"]))
    assert versions == sorted(versions) and len(set(versions)) == 3


async def test_generation_bumps_on_spec_changes_only(kube: Kube) -> None:
    created = await kube.post(DEPLOY, deployment("web"))
    assert created.body["metadata"]["generation"] == 1
    labelled = await kube.patch(
        f"{DEPLOY}/web", {"metadata": {"labels": {"x": "y"}}}, "application/merge-patch+json"
    )
    assert labelled.body["metadata"]["generation"] == 1
    scaled = await kube.patch(
        f"{DEPLOY}/web", {"spec": {"replicas": 3}}, "application/merge-patch+json"
    )
    assert scaled.body["metadata"]["generation"] == 2


async def test_custom_resource_generation_ignores_metadata_and_status(kube: Kube) -> None:
    created = await kube.post(WIDGETS, widget("w"))
    assert created.body["metadata"]["generation"] == 1
    annotated = await kube.patch(
        f"{WIDGETS}/w", {"metadata": {"annotations": {"a": "b"}}}, "application/merge-patch+json"
    )
    status = await kube.patch(
        f"{WIDGETS}/w/status", {"status": {"phase": "Ok"}}, "application/merge-patch+json"
    )
    changed = await kube.patch(
        f"{WIDGETS}/w", {"spec": {"mode": "fast"}}, "application/merge-patch+json"
    )
    assert annotated.body["metadata"]["generation"] == 1
    assert status.body["metadata"]["generation"] == 1
    assert changed.body["metadata"]["generation"] == 2


async def test_create_twice_is_409_already_exists(kube: Kube) -> None:
    await kube.post(CM, configmap("dup"))
    again = await kube.post(CM, configmap("dup"))
    assert again.status == 409
    assert again.body["kind"] == "Status"
    assert again.body["reason"] == "AlreadyExists"
    assert again.body["message"] == 'configmaps "dup" already exists'
    assert again.body["details"] == {"name": "dup", "group": "", "kind": "configmaps"}


async def test_missing_object_is_404_not_found_status(kube: Kube) -> None:
    missing = await kube.get(f"{DEPLOY}/nope")
    assert missing.status == 404
    assert missing.body["status"] == "Failure"
    assert missing.body["reason"] == "NotFound"
    assert missing.body["message"] == 'deployments.apps "nope" not found'
    assert missing.body["details"]["group"] == "apps"


async def test_put_with_stale_resource_version_is_409_conflict(kube: Kube) -> None:
    created = (await kube.post(CM, configmap("cc", a="1"))).body
    fresh = await kube.put(f"{CM}/cc", {**created, "data": {"a": "2"}})
    assert fresh.status == 200
    stale = await kube.put(f"{CM}/cc", {**created, "data": {"a": "3"}})
    assert stale.status == 409
    assert stale.body["reason"] == "Conflict"
    assert "the object has been modified" in stale.body["message"]
    assert (await kube.get(f"{CM}/cc")).body["data"] == {"a": "2"}


async def test_patch_with_stale_resource_version_is_409_conflict(kube: Kube) -> None:
    created = (await kube.post(CM, configmap("pc", a="1"))).body
    await kube.patch(f"{CM}/pc", {"data": {"a": "2"}}, "application/merge-patch+json")
    stale = await kube.patch(
        f"{CM}/pc",
        {
            "metadata": {"resourceVersion": created["metadata"]["resourceVersion"]},
            "data": {"a": "3"},
        },
        "application/merge-patch+json",
    )
    assert stale.status == 409 and stale.body["reason"] == "Conflict"


async def test_put_without_resource_version_is_unconditional(kube: Kube) -> None:
    await kube.post(CM, configmap("uu", a="1"))
    replaced = await kube.put(f"{CM}/uu", configmap("uu", a="9"))
    assert replaced.status == 200 and replaced.body["data"] == {"a": "9"}


async def test_no_op_update_keeps_the_resource_version(kube: Kube) -> None:
    created = (await kube.post(CM, configmap("same", a="1"))).body
    again = await kube.patch(f"{CM}/same", {"data": {"a": "1"}}, "application/merge-patch+json")
    assert again.body["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_invalid_name_is_422_with_causes(kube: Kube) -> None:
    bad = await kube.post(CM, configmap("Not_Valid"))
    assert bad.status == 422 and bad.body["reason"] == "Invalid"
    assert bad.body["message"].startswith(
        'ConfigMap "Not_Valid" is invalid: metadata.name: Invalid value'
    )
    assert bad.body["details"]["causes"][0]["field"] == "metadata.name"


async def test_generate_name(kube: Kube) -> None:
    created = await kube.post(
        CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}
    )
    name = created.body["metadata"]["name"]
    assert created.status == 201 and name.startswith("gen-") and len(name) == len("gen-") + 5


async def test_namespace_must_exist(kube: Kube) -> None:
    answer = await kube.post(
        "/api/v1/namespaces/ghost/configmaps", configmap("x", namespace="ghost")
    )
    assert answer.status == 404 and answer.body["message"] == 'namespaces "ghost" not found'


async def test_cluster_scoped_and_namespaced_paths(kube: Kube) -> None:
    await kube.post(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}},
    )
    await kube.post("/api/v1/namespaces/team-a/configmaps", configmap("in-a", namespace="team-a"))
    await kube.post(CM, configmap("in-default"))
    everywhere = await kube.get("/api/v1/configmaps")
    names = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere.body["items"]}
    assert {("team-a", "in-a"), ("default", "in-default")} <= names
    only_a = await kube.get("/api/v1/namespaces/team-a/configmaps")
    assert {i["metadata"]["namespace"] for i in only_a.body["items"]} == {"team-a"}
    # A cluster-scoped resource has no namespaced path.
    wrong = await kube.get("/api/v1/namespaces/team-a/namespaces")
    assert wrong.status == 404


async def test_default_namespaces_and_service_accounts_exist(kube: Kube) -> None:
    namespaces = {
        i["metadata"]["name"] for i in (await kube.get("/api/v1/namespaces")).body["items"]
    }
    assert {"default", "kube-system"} <= namespaces
    await kube.post(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}},
    )
    sa = await kube.get("/api/v1/namespaces/fresh/serviceaccounts/default")
    assert sa.status == 200


async def test_service_gets_a_cluster_ip_and_port_defaults(kube: Kube) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc"},
        "spec": {"selector": {"app": "x"}, "ports": [{"name": "http", "port": 80}]},
    }
    created = (await kube.post("/api/v1/namespaces/default/services", body)).body
    assert created["spec"]["type"] == "ClusterIP"
    assert created["spec"]["clusterIP"].startswith("10.96.")
    assert created["spec"]["ports"][0]["protocol"] == "TCP"
    assert created["spec"]["ports"][0]["targetPort"] == 80
