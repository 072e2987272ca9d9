"""The status subresource and the classic patch types (merge, JSON, strategic merge)."""

from __future__ import annotations

from tests.sandbox.conftest import CM, DEPLOY, WIDGETS, Kube, configmap, deployment, widget

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


async def test_status_writes_change_only_status(kube: Kube) -> None:
    await kube.post(WIDGETS, widget("s", replicas=2))
    answer = await kube.patch(
        f"{WIDGETS}/s/status",
        {"spec": {"replicas": 5}, "status": {"phase": "Running"}},
        MERGE,
    )
    assert answer.status == 200
    assert answer.body["status"] == {"phase": "Running"}
    assert answer.body["spec"]["replicas"] == 2


async def test_main_resource_writes_ignore_status(kube: Kube) -> None:
    await kube.post(WIDGETS, {**widget("m"), "status": {"phase": "Bogus"}})
    created = await kube.get(f"{WIDGETS}/m")
    assert "status" not in created.body  # create drops status with a status subresource
    await kube.patch(f"{WIDGETS}/m/status", {"status": {"phase": "Real"}}, MERGE)
    current = (await kube.get(f"{WIDGETS}/m")).body
    replaced = await kube.put(f"{WIDGETS}/m", {**current, "status": {"phase": "Overwritten"}})
    assert replaced.body["status"] == {"phase": "Real"}


async def test_put_on_status_subresource(kube: Kube) -> None:
    await kube.post(WIDGETS, widget("p"))
    current = (await kube.get(f"{WIDGETS}/p")).body
    updated = await kube.put(
        f"{WIDGETS}/p/status", {**current, "status": {"observedGeneration": 1}}
    )
    assert updated.status == 200 and updated.body["status"] == {"observedGeneration": 1}


async def test_status_of_kind_without_subresource_is_404(kube: Kube) -> None:
    await kube.post(CM, configmap("nostatus"))
    answer = await kube.get(f"{CM}/nostatus/status")
    assert answer.status == 404


async def test_merge_patch_merges_maps_replaces_lists_and_null_deletes(kube: Kube) -> None:
    await kube.post(WIDGETS, widget("mp", args=["a", "b"], labels={"x": "1", "y": "2"}))
    patched = await kube.patch(
        f"{WIDGETS}/mp", {"spec": {"args": ["c"], "labels": {"x": None, "z": "3"}}}, MERGE
    )
    assert patched.body["spec"]["args"] == ["c"]
    assert patched.body["spec"]["labels"] == {"y": "2", "z": "3"}


async def test_json_patch_operations(kube: Kube) -> None:
    await kube.post(CM, configmap("jp", a="1", b="2"))
    patched = await kube.patch(
        f"{CM}/jp",
        [
            {"op": "replace", "path": "/data/a", "value": "10"},
            {"op": "remove", "path": "/data/b"},
            {"op": "add", "path": "/metadata/labels", "value": {"k": "v"}},
            {"op": "copy", "from": "/data/a", "path": "/data/c"},
        ],
        JSON_PATCH,
    )
    assert patched.status == 200
    assert patched.body["data"] == {"a": "10", "c": "10"}
    assert patched.body["metadata"]["labels"] == {"k": "v"}


async def test_json_patch_failed_test_op_is_422(kube: Kube) -> None:
    created = (await kube.post(CM, configmap("jt", a="1"))).body
    await kube.patch(f"{CM}/jt", {"data": {"a": "2"}}, MERGE)
    answer = await kube.patch(
        f"{CM}/jt",
        [
            {
                "op": "test",
                "path": "/metadata/resourceVersion",
                "value": created["metadata"]["resourceVersion"],
            },
            {"op": "replace", "path": "/data/a", "value": "3"},
        ],
        JSON_PATCH,
    )
    assert answer.status == 422
    assert (await kube.get(f"{CM}/jt")).body["data"] == {"a": "2"}


async def test_strategic_merge_patch_merges_containers_and_env_by_name(kube: Kube) -> None:
    await kube.post(DEPLOY, deployment("smp"))
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "env": [{"name": "B", "value": "2"}]},
                        {"name": "sidecar", "image": "busybox"},
                    ]
                }
            }
        }
    }
    patched = await kube.patch(f"{DEPLOY}/smp", patch, STRATEGIC)
    containers = patched.body["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "sidecar"]
    assert containers[0]["image"] == "nginx:1.27"
    assert containers[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]


async def test_strategic_merge_patch_delete_directive_and_atomic_lists(kube: Kube) -> None:
    body = deployment("smp2")
    body["spec"]["template"]["spec"]["containers"][0]["args"] = ["--a", "--b"]
    await kube.post(DEPLOY, body)
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "args": ["--c"], "env": [{"name": "A", "$patch": "delete"}]}
                    ]
                }
            }
        }
    }
    patched = await kube.patch(f"{DEPLOY}/smp2", patch, STRATEGIC)
    container = patched.body["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--c"]  # no merge key: replaced
    assert container.get("env", []) == []


async def test_strategic_merge_patch_is_unsupported_for_custom_resources(kube: Kube) -> None:
    await kube.post(WIDGETS, widget("cr-smp"))
    answer = await kube.patch(f"{WIDGETS}/cr-smp", {"spec": {"mode": "fast"}}, STRATEGIC)
    assert answer.status == 415 and answer.body["reason"] == "UnsupportedMediaType"


async def test_patch_of_missing_object_is_404(kube: Kube) -> None:
    answer = await kube.patch(f"{CM}/ghost", {"data": {"a": "1"}}, MERGE)
    assert answer.status == 404
