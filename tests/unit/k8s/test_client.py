"""The API client against a fake API server on loopback that counts what it is asked:
logging in again on a 401, paging lists, and closing the sessions it replaces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import kopf
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from mirage_operator.config import Config
from mirage_operator.errors import ConfigError, KubernetesAPIError
from mirage_operator.k8s import resources
from mirage_operator.k8s.client import LIST_PAGE, KubeClient, KubeConnection

ITEMS = 2 * LIST_PAGE + 7


@dataclass
class FakeAPI:
    """Accepts one bearer token; serves ConfigMaps ``cm-0``… in pages."""

    token: str = "new"
    expire_continue: bool = False
    requests: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    """(path, query, token) of every request."""
    hold: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/namespaces/shop/configmaps", self.list)
        app.router.add_get("/api/v1/namespaces/shop/configmaps/{name}", self.get)
        return app

    def _auth(self, request: web.Request) -> str | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.requests.append((request.path, dict(request.query), token))
        return None if token == self.token else token

    async def get(self, request: web.Request) -> web.Response:
        if self._auth(request) is not None:
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        if request.match_info["name"] == "slow":
            await self.hold.wait()
        return web.json_response({"metadata": {"name": request.match_info["name"]}})

    async def list(self, request: web.Request) -> web.Response:
        if self._auth(request) is not None:
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        start = int(request.query.get("continue", "0"))
        if start and self.expire_continue:
            return web.json_response({"kind": "Status", "reason": "Expired"}, status=410)
        limit = int(request.query.get("limit", "0")) or ITEMS
        names = [f"cm-{i}" for i in range(start, min(start + limit, ITEMS))]
        metadata = {"continue": str(start + limit)} if start + limit < ITEMS else {}
        return web.json_response(
            {"metadata": metadata, "items": [{"metadata": {"name": n}} for n in names]}
        )


def _info(url: str, token: str) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(server=url, token=token)


@dataclass
class Login:
    """A login that reads ``token`` afresh, counting its calls."""

    url: str
    token: str
    calls: int = 0

    def __call__(self) -> kopf.ConnectionInfo:
        self.calls += 1
        return _info(self.url, self.token)


@dataclass
class API:
    """The fake server, its URL, and the clients a test makes (closed after it)."""

    fake: FakeAPI
    url: str
    clients: list[KubeClient] = field(default_factory=list)

    def client(self, login: Login | None = None) -> KubeClient:
        """A client that starts with the token ``old``."""
        self.clients.append(KubeClient(_info(self.url, "old"), login=login))
        return self.clients[-1]

    def tokens(self) -> list[str]:
        return [token for *_, token in self.fake.requests]


@pytest.fixture
async def api() -> AsyncIterator[API]:
    fake = FakeAPI()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    harness = API(fake, str(server.make_url("")).rstrip("/"))
    yield harness
    for client in harness.clients:
        await client.close()
    await server.close()


async def test_a_401_logs_in_again_once_and_retries(api: API) -> None:
    login = Login(api.url, "new")
    client = api.client(login)
    got = await client.get(resources.CONFIG_MAP, namespace="shop", name="a")
    assert got is not None and got["metadata"]["name"] == "a"
    assert api.tokens() == ["old", "new"]
    assert login.calls == 1
    # The new credentials stay: the next request needs no login.
    await client.get(resources.CONFIG_MAP, namespace="shop", name="b")
    assert api.tokens() == ["old", "new", "new"]
    assert login.calls == 1


async def test_a_second_401_stands(api: API) -> None:
    login = Login(api.url, "still-wrong")
    with pytest.raises(KubernetesAPIError) as caught:
        await api.client(login).get(resources.CONFIG_MAP, namespace="shop", name="a")
    assert caught.value.status == 401
    assert api.tokens() == ["old", "still-wrong"]
    assert login.calls == 1


async def test_without_a_way_to_log_in_a_401_stands_at_once(api: API) -> None:
    with pytest.raises(KubernetesAPIError) as caught:
        await api.client().get(resources.CONFIG_MAP, namespace="shop", name="a")
    assert caught.value.status == 401
    assert api.tokens() == ["old"]


async def test_concurrent_401s_log_in_once(api: API) -> None:
    fake, login = api.fake, Login(api.url, "new")
    client = api.client(login)
    # One request first, so that the ten share one session (and one refusal).
    fake.token = "old"
    await client.get(resources.CONFIG_MAP, namespace="shop", name="warm")
    fake.token = "new"
    names = [f"c{i}" for i in range(10)]
    got = await asyncio.gather(
        *(client.get(resources.CONFIG_MAP, namespace="shop", name=n) for n in names)
    )
    assert [g["metadata"]["name"] for g in got if g] == names
    assert login.calls == 1
    assert api.tokens() == ["old"] * 11 + ["new"] * 10


async def test_list_reads_pages_with_limit_and_continue(api: API) -> None:
    fake = api.fake
    fake.token = "old"
    items = await api.client().list(resources.CONFIG_MAP, namespace="shop", label_selector="a=b")
    assert [i["metadata"]["name"] for i in items] == [f"cm-{i}" for i in range(ITEMS)]
    assert {i["kind"] for i in items} == {"ConfigMap"}
    assert [query for _, query, _ in fake.requests] == [
        {"labelSelector": "a=b", "limit": str(LIST_PAGE)},
        {"labelSelector": "a=b", "limit": str(LIST_PAGE), "continue": str(LIST_PAGE)},
        {"labelSelector": "a=b", "limit": str(LIST_PAGE), "continue": str(2 * LIST_PAGE)},
    ]


async def test_an_expired_continue_reads_the_list_whole(api: API) -> None:
    fake = api.fake
    fake.token, fake.expire_continue = "old", True
    items = await api.client().list(resources.CONFIG_MAP, namespace="shop")
    assert [i["metadata"]["name"] for i in items] == [f"cm-{i}" for i in range(ITEMS)]
    assert [query for _, query, _ in fake.requests] == [
        {"limit": str(LIST_PAGE)},
        {"limit": str(LIST_PAGE), "continue": str(LIST_PAGE)},
        {},
    ]


async def test_connect_closes_the_session_it_replaces_once_idle(api: API) -> None:
    fake, url = api.fake, api.url
    connection = KubeConnection()
    await connection.connect(_info(url, "new"))
    first = connection.client
    slow = asyncio.create_task(first.get(resources.CONFIG_MAP, namespace="shop", name="slow"))
    while not fake.requests:  # the slow request has reached the server
        await asyncio.sleep(0.01)
    session = first._session
    assert session is not None

    await connection.connect(_info(url, "new"))
    assert connection.client is not first
    assert not session.http.closed  # a request is still under way on it
    fake.hold.set()
    answer: Any = await slow
    assert answer["metadata"]["name"] == "slow"
    assert session.http.closed

    await connection.client.get(resources.CONFIG_MAP, namespace="shop", name="a")
    await connection.close()


async def test_the_client_side_rate_limit_holds_requests_beyond_the_burst(api: API) -> None:
    fake = api.fake
    fake.token = "old"
    # A bucket that refills once in ~17 minutes: the burst goes out, the next request waits.
    config = Config.from_env({"MIRAGE_KUBE_API_QPS": "0.001", "MIRAGE_KUBE_API_BURST": "3"})
    connection = KubeConnection()
    await connection.connect(
        _info(api.url, "old"), qps=config.kube_api_qps, burst=config.kube_api_burst
    )
    client = connection.client
    api.clients.append(client)
    burst = [client.get(resources.CONFIG_MAP, namespace="shop", name=f"b{i}") for i in range(3)]
    assert len(await asyncio.gather(*burst)) == 3
    late = asyncio.create_task(client.get(resources.CONFIG_MAP, namespace="shop", name="late"))
    for _ in range(20):  # the loop turns that would let the request reach the server
        await asyncio.sleep(0)
    assert not late.done()
    assert [path.rsplit("/", 1)[1] for path, _, _ in fake.requests] == ["b0", "b1", "b2"]
    late.cancel()


async def test_without_a_rate_limit_only_the_requests_in_flight_are_bounded(api: API) -> None:
    fake = api.fake
    fake.token = "old"
    client = KubeClient(_info(api.url, "old"), qps=0)
    api.clients.append(client)
    names = [f"n{i}" for i in range(100)]
    got = await asyncio.gather(
        *(client.get(resources.CONFIG_MAP, namespace="shop", name=n) for n in names)
    )
    assert [g["metadata"]["name"] for g in got if g] == names
    assert len(fake.requests) == 100


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MIRAGE_KUBE_API_QPS", "-1"),
        ("MIRAGE_KUBE_API_QPS", "inf"),
        ("MIRAGE_KUBE_API_QPS", "nan"),
        ("MIRAGE_KUBE_API_QPS", "fast"),
        ("MIRAGE_KUBE_API_BURST", "0"),
        ("MIRAGE_KUBE_API_BURST", "1.5"),
    ],
)
def test_a_rate_limit_that_is_no_number_of_requests_is_refused_at_start(
    variable: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=variable):
        Config.from_env({variable: value})
