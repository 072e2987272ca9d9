"""Fault injection, the request log, tokens, emulated controllers and the thread runner."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

from mirage_sandbox.apiserver import APIServer, run_apiserver_in_thread
from tests.sandbox.conftest import CM, DEPLOY, Kube, configmap, deployment

MERGE = "application/merge-patch+json"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (409, "Conflict"),
        (429, "TooManyRequests"),
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
    ],
)
async def test_fail_next_calls_with_status(
    api: APIServer, kube: Kube, code: int, reason: str
) -> None:
    await kube.post(CM, configmap("f"))
    rule = api.fail("patch", "configmaps", code=code, times=2, retry_after=3)
    answers = [await kube.patch(f"{CM}/f", {"data": {"a": str(i)}}, MERGE) for i in range(3)]
    assert [a.status for a in answers] == [code, code, 200]
    assert answers[0].body["reason"] == reason and answers[0].body["kind"] == "Status"
    if code in {429, 503}:
        assert answers[0].headers["Retry-After"] == "3"
        assert answers[0].body["details"]["retryAfterSeconds"] == 3
    assert rule.hits == 2 and api.faults.pending == 0


async def test_faults_match_verb_resource_and_namespace(api: APIServer, kube: Kube) -> None:
    api.fail("get", "configmaps", namespace="elsewhere", code=500)
    api.fail("create", "deployments", code=500)
    await kube.post(CM, configmap("ok"))
    assert (await kube.get(f"{CM}/ok")).status == 200  # other namespace: not affected
    assert (await kube.post(DEPLOY, deployment("x"))).status == 500
    assert (await kube.post(DEPLOY, deployment("x"))).status == 201


async def test_drop_watches_ends_open_streams(api: APIServer, kube: Kube) -> None:
    listed = await kube.get(CM)
    watch = asyncio.create_task(
        kube.watch(CM, limit=5, resourceVersion=listed.body["metadata"]["resourceVersion"])
    )
    await api.wait_for(lambda: api.sessions)
    assert api.drop_watches() == 1
    assert await asyncio.wait_for(watch, 5) == []


async def test_stalled_watch_sends_nothing_then_resumes(api: APIServer, kube: Kube) -> None:
    listed = await kube.get(CM)
    watch = asyncio.create_task(
        kube.watch(CM, limit=1, resourceVersion=listed.body["metadata"]["resourceVersion"])
    )
    await api.wait_for(lambda: api.sessions)
    api.stall_watches(0.6)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await kube.post(CM, configmap("during-stall"))
    events = await asyncio.wait_for(watch, 5)
    assert events[0]["object"]["metadata"]["name"] == "during-stall"
    assert loop.time() - started >= 0.5


async def test_expire_resource_versions_sends_410_to_open_watches(
    api: APIServer, kube: Kube
) -> None:
    listed = await kube.get(CM)
    watch = asyncio.create_task(
        kube.watch(CM, limit=5, resourceVersion=listed.body["metadata"]["resourceVersion"])
    )
    await api.wait_for(lambda: api.sessions)
    api.expire_resource_versions()
    events = await asyncio.wait_for(watch, 5)
    assert [(e["type"], e["object"]["code"]) for e in events] == [("ERROR", 410)]


async def test_request_log_counts_writes_but_not_dry_runs_or_reads(
    api: APIServer, kube: Kube
) -> None:
    api.requests.clear()
    await kube.post(CM, configmap("log"))
    await kube.get(f"{CM}/log")
    await kube.patch(f"{CM}/log", {"data": {"a": "1"}}, MERGE, fieldManager="tester")
    await kube.patch(f"{CM}/log", {"data": {"a": "2"}}, MERGE, dryRun="All")
    await kube.delete(f"{CM}/log")
    writes = api.write_calls("configmaps")
    assert [(w.verb, w.status) for w in writes] == [
        ("create", 201),
        ("patch", 200),
        ("delete", 200),
    ]
    assert writes[1].field_manager == "tester" and writes[1].content_type == MERGE
    assert api.write_calls("deployments") == []
    reads = [r for r in api.requests if r.verb == "get"]
    assert len(reads) == 1 and reads[0].name == "log"


async def test_token_request_and_token_review(kube: Kube) -> None:
    path = "/api/v1/namespaces/default/serviceaccounts/default/token"
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"audiences": ["vault"], "expirationSeconds": 600},
    }
    issued = await kube.post(path, request)
    assert issued.status == 201 and issued.body["kind"] == "TokenRequest"
    assert (
        issued.body["spec"]["audiences"] == ["vault"]
        and issued.body["status"]["expirationTimestamp"]
    )
    token = issued.body["status"]["token"]
    reviews = "/apis/authentication.k8s.io/v1/tokenreviews"
    review = await kube.post(
        reviews,
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": ["vault"]},
        },
    )
    status = review.body["status"]
    assert status["authenticated"] is True and status["audiences"] == ["vault"]
    assert status["user"]["username"] == "system:serviceaccount:default:default"
    assert "system:serviceaccounts:default" in status["user"]["groups"]
    wrong_audience = await kube.post(reviews, {"spec": {"token": token, "audiences": ["other"]}})
    assert not wrong_audience.body["status"].get("authenticated")
    forged = await kube.post(
        "/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {"token": token[:-2] + "xx"}}
    )
    assert not forged.body["status"].get("authenticated")


async def test_token_of_a_deleted_service_account_is_rejected(kube: Kube) -> None:
    await kube.post(
        "/api/v1/namespaces/default/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app"}},
    )
    issued = await kube.post("/api/v1/namespaces/default/serviceaccounts/app/token", {"spec": {}})
    token = issued.body["status"]["token"]
    assert issued.body["spec"]["expirationSeconds"] == 3600
    await kube.delete("/api/v1/namespaces/default/serviceaccounts/app")
    review = await kube.post(
        "/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {"token": token}}
    )
    assert not review.body["status"].get("authenticated")


async def test_token_request_validation(kube: Kube) -> None:
    short = await kube.post(
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        {"spec": {"expirationSeconds": 10}},
    )
    assert (
        short.status == 422
        and "may not specify a duration less than 10 minutes" in short.body["message"]
    )
    missing = await kube.post(
        "/api/v1/namespaces/default/serviceaccounts/nobody/token", {"spec": {}}
    )
    assert missing.status == 404


async def test_deployment_status_converges_after_spec_changes(api: APIServer, kube: Kube) -> None:
    await kube.post(DEPLOY, deployment("conv", replicas=2))

    def status() -> dict:
        found = api.find("deployments", "conv", "default") or {}
        return found.get("status") or {}

    await api.wait_for(lambda: status().get("observedGeneration") == 1)
    assert status()["readyReplicas"] == 2 and status()["availableReplicas"] == 2
    assert {c["type"]: c["status"] for c in status()["conditions"]} == {
        "Available": "True",
        "Progressing": "True",
    }
    await kube.patch(f"{DEPLOY}/conv", {"spec": {"replicas": 4}}, MERGE)
    await api.wait_for(
        lambda: status().get("observedGeneration") == 2 and status().get("readyReplicas") == 4
    )


async def test_authentication_when_required(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = APIServer(require_auth=True)
    await server.start()
    try:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/api/v1/namespaces") as anonymous:
                assert anonymous.status == 401
            headers = {"Authorization": f"Bearer {server.admin_token}"}
            async with session.get(f"{server.url}/api/v1/namespaces", headers=headers) as admin:
                assert admin.status == 200
    finally:
        await server.stop()


def test_thread_runner_serves_sync_callers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with run_apiserver_in_thread() as server:
        server.create(configmap("from-thread"))
        with urllib.request.urlopen(
            f"{server.url}/api/v1/namespaces/default/configmaps/from-thread"
        ) as response:
            assert json.load(response)["metadata"]["name"] == "from-thread"
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        assert server.url in kubeconfig.read_text()


async def test_controller_delay_postpones_workload_status() -> None:
    server = APIServer(controller_delay=0.4)
    await server.start()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        server.create(deployment("slow"))
        assert "status" not in server.get("deployments", "slow", "default")
        await server.wait_for(
            lambda: (server.get("deployments", "slow", "default").get("status") or {}).get(
                "observedGeneration"
            )
        )
        assert loop.time() - started >= 0.35
    finally:
        await server.stop()


async def test_only_loopback_addresses_are_served() -> None:
    server = APIServer()
    with pytest.raises(ValueError, match="loopback"):
        await server.start(host="0.0.0.0")
