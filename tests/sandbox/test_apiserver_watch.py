"""List and watch: resourceVersions, pagination, selectors, bookmarks, 410 Gone."""

from __future__ import annotations

import asyncio

from mirage_sandbox.apiserver import APIServer
from tests.sandbox.conftest import CM, Kube, configmap

MERGE = "application/merge-patch+json"


def labelled(name: str, **labels: str) -> dict:
    body = configmap(name)
    body["metadata"]["labels"] = labels
    return body


async def test_list_carries_the_collection_resource_version(kube: Kube) -> None:
    created = await kube.post(CM, configmap("l1"))
    listed = await kube.get(CM)
    assert listed.body["kind"] == "ConfigMapList"
    assert int(listed.body["metadata"]["resourceVersion"]) >= int(
        created.body["metadata"]["resourceVersion"]
    )


async def test_label_selectors(kube: Kube) -> None:
    await kube.post(CM, labelled("a", app="web", tier="front"))
    await kube.post(CM, labelled("b", app="web", tier="back"))
    await kube.post(CM, labelled("c", app="db"))

    async def names(selector: str) -> set[str]:
        answer = await kube.get(CM, labelSelector=selector)
        return {i["metadata"]["name"] for i in answer.body["items"]}

    assert await names("app=web") == {"a", "b"}
    assert await names("app==web,tier!=back") == {"a"}
    assert await names("tier in (front,back)") == {"a", "b"}
    assert await names("app,app notin (web)") == {"c"}
    assert await names("!tier,app") == {"c"}
    assert (await kube.get(CM, labelSelector="app in (")).status == 400


async def test_field_selectors(kube: Kube) -> None:
    await kube.post(CM, configmap("f1"))
    await kube.post(CM, configmap("f2"))
    answer = await kube.get(
        "/api/v1/configmaps", fieldSelector="metadata.name=f1,metadata.namespace=default"
    )
    assert [i["metadata"]["name"] for i in answer.body["items"]] == ["f1"]
    negated = await kube.get(CM, fieldSelector="metadata.name!=f1")
    assert "f1" not in {i["metadata"]["name"] for i in negated.body["items"]}
    unsupported = await kube.get(CM, fieldSelector="spec.nope=1")
    assert unsupported.status == 400 and "field label not supported" in unsupported.body["message"]


async def test_limit_and_continue_paginate_a_consistent_snapshot(kube: Kube) -> None:
    for i in range(5):
        await kube.post(CM, configmap(f"page-{i}"))
    first = await kube.get(CM, limit="2", labelSelector="")
    token = first.body["metadata"]["continue"]
    assert len(first.body["items"]) == 2 and first.body["metadata"]["remainingItemCount"] >= 3
    await kube.post(CM, configmap("page-9"))  # created after the snapshot: not in later pages
    seen = [i["metadata"]["name"] for i in first.body["items"]]
    while token:
        page = await kube.get(CM, limit="2", **{"continue": token})
        assert page.body["metadata"]["resourceVersion"] == first.body["metadata"]["resourceVersion"]
        seen += [i["metadata"]["name"] for i in page.body["items"]]
        token = page.body["metadata"].get("continue")
    assert [n for n in seen if n.startswith("page-")] == [f"page-{i}" for i in range(5)]


async def test_list_exact_resource_version_and_too_old_or_too_new(
    api: APIServer, kube: Kube
) -> None:
    await kube.post(CM, configmap("e1", v="1"))
    before = (await kube.get(CM)).body["metadata"]["resourceVersion"]
    await kube.patch(f"{CM}/e1", {"data": {"v": "2"}}, MERGE)
    old = await kube.get(CM, resourceVersion=before, resourceVersionMatch="Exact")
    assert [i["data"] for i in old.body["items"] if i["metadata"]["name"] == "e1"] == [{"v": "1"}]
    too_new = await kube.get(CM, resourceVersion="999999", resourceVersionMatch="NotOlderThan")
    assert too_new.status == 504 and "Too large resource version" in too_new.body["message"]
    api.expire_resource_versions()
    gone = await kube.get(CM, resourceVersion=before, resourceVersionMatch="Exact")
    assert gone.status == 410 and gone.body["reason"] == "Expired"


async def test_watch_without_version_sends_current_objects_then_changes(
    api: APIServer, kube: Kube
) -> None:
    await kube.post(CM, configmap("w1"))
    watch = asyncio.create_task(kube.watch(CM, limit=4, fieldSelector="metadata.name=w1"))
    await api.wait_for(lambda: api.sessions)  # the watch is open before the writes
    await kube.patch(f"{CM}/w1", {"data": {"x": "1"}}, MERGE)
    await kube.delete(f"{CM}/w1")
    await kube.post(CM, configmap("w1"))
    events = await asyncio.wait_for(watch, 10)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED", "ADDED"]
    assert events[1]["object"]["data"] == {"x": "1"}
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)


async def test_watch_from_a_resource_version_replays_history(kube: Kube) -> None:
    created = await kube.post(CM, configmap("h1"))
    rv = created.body["metadata"]["resourceVersion"]
    await kube.patch(f"{CM}/h1", {"data": {"x": "1"}}, MERGE)
    await kube.patch(f"{CM}/h1", {"data": {"x": "2"}}, MERGE)
    events = await kube.watch(CM, limit=2, resourceVersion=rv)
    assert [(e["type"], e["object"]["data"]) for e in events] == [
        ("MODIFIED", {"x": "1"}),
        ("MODIFIED", {"x": "2"}),
    ]


async def test_watch_with_expired_version_gets_410_error_event(api: APIServer, kube: Kube) -> None:
    created = await kube.post(CM, configmap("g1"))
    await kube.patch(f"{CM}/g1", {"data": {"x": "1"}}, MERGE)
    api.expire_resource_versions()
    events = await kube.watch(
        CM, limit=1, resourceVersion=created.body["metadata"]["resourceVersion"]
    )
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


async def test_watch_bookmarks(kube: Kube) -> None:
    listed = await kube.get(CM)
    events = await kube.watch(
        CM,
        limit=1,
        resourceVersion=listed.body["metadata"]["resourceVersion"],
        allowWatchBookmarks="true",
    )
    assert events[0]["type"] == "BOOKMARK"
    assert events[0]["object"]["kind"] == "ConfigMap"
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) >= int(
        listed.body["metadata"]["resourceVersion"]
    )


async def test_send_initial_events_ends_with_annotated_bookmark(kube: Kube) -> None:
    await kube.post(CM, configmap("i1"))
    events = await kube.watch(
        CM,
        limit=3,
        sendInitialEvents="true",
        resourceVersionMatch="NotOlderThan",
        allowWatchBookmarks="true",
        fieldSelector="metadata.name=i1",
    )
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "i1"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_watch_timeout_ends_the_stream(kube: Kube) -> None:
    listed = await kube.get(CM)
    loop = asyncio.get_running_loop()
    started = loop.time()
    events = await kube.watch(
        CM, limit=10, resourceVersion=listed.body["metadata"]["resourceVersion"], timeoutSeconds="1"
    )
    assert events == [] and loop.time() - started < 5


async def test_watch_with_selector_sees_objects_enter_and_leave(api: APIServer, kube: Kube) -> None:
    listed = await kube.get(CM)
    watch = asyncio.create_task(
        kube.watch(
            CM,
            limit=2,
            resourceVersion=listed.body["metadata"]["resourceVersion"],
            labelSelector="hot=yes",
        )
    )
    await api.wait_for(lambda: api.sessions)  # the watch is open before the writes
    await kube.post(CM, configmap("s1"))
    await kube.patch(f"{CM}/s1", {"metadata": {"labels": {"hot": "yes"}}}, MERGE)
    await kube.patch(f"{CM}/s1", {"metadata": {"labels": {"hot": "no"}}}, MERGE)
    events = await asyncio.wait_for(watch, 10)
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


async def test_namespaced_watch_sees_only_its_namespace(api: APIServer, kube: Kube) -> None:
    await kube.post(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}},
    )
    listed = await kube.get(CM)
    watch = asyncio.create_task(
        kube.watch(CM, limit=1, resourceVersion=listed.body["metadata"]["resourceVersion"])
    )
    await api.wait_for(lambda: api.sessions)  # the watch is open before the writes
    await kube.post(
        "/api/v1/namespaces/other/configmaps", configmap("elsewhere", namespace="other")
    )
    await kube.post(CM, configmap("here"))
    events = await asyncio.wait_for(watch, 10)
    assert events[0]["object"]["metadata"]["name"] == "here"


async def test_history_window_is_bounded() -> None:
    server = APIServer(history_size=5)
    await server.start()
    try:
        first = server.create(configmap("old"))
        for i in range(10):
            server.patch("configmaps", "old", {"data": {"n": str(i)}}, "default")
        assert server.store.oldest_revision > int(first["metadata"]["resourceVersion"])
        import aiohttp

        async with aiohttp.ClientSession() as session:
            kube = Kube(session, server.url)
            events = await kube.watch(
                CM, limit=1, resourceVersion=first["metadata"]["resourceVersion"]
            )
            assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410
            recent = str(server.store.revision - 1)
            replay = await kube.watch(CM, limit=1, resourceVersion=recent)
            assert replay[0]["type"] == "MODIFIED"
    finally:
        await server.stop()


async def test_expired_continue_token_is_410(api: APIServer, kube: Kube) -> None:
    for i in range(3):
        await kube.post(CM, configmap(f"ct-{i}"))
    first = await kube.get(CM, limit="1")
    await kube.patch(f"{CM}/ct-0", {"data": {"a": "1"}}, MERGE)
    api.expire_resource_versions()
    answer = await kube.get(CM, limit="1", **{"continue": first.body["metadata"]["continue"]})
    assert answer.status == 410 and answer.body["reason"] == "Expired"
    assert "continue parameter is too old" in answer.body["message"]


async def test_watch_from_a_future_or_invalid_version_is_refused(kube: Kube) -> None:
    future = await kube.get(CM, watch="true", resourceVersion="99999999")
    assert future.status == 504 and "Too large resource version" in future.body["message"]
    invalid = await kube.get(CM, watch="true", resourceVersion="abc")
    assert invalid.status == 400
