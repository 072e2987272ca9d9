"""The emulated Vault, driven by plain ``hvac`` (synchronous, through the thread runner):
the HTTP API as hvac speaks it, policies, tokens, leases, faults and the request log."""

from __future__ import annotations

from collections.abc import Iterator

import hvac
import hvac.exceptions
import pytest
import requests

from mirage_sandbox.vault import (
    EmulatedVault,
    VaultThread,
    apiserver_reviewer,
    static_reviewer,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(clock: Clock) -> Iterator[VaultThread]:
    vault = EmulatedVault(
        token_reviewer=static_reviewer(
            {"jwt-a": ("team-a", "mirage-vault"), "jwt-b-default": ("team-b", "default")}
        ),
        clock=clock,
    )
    vault.add_policy(
        "team-a",
        {
            "secret/data/team-a/*": ["read"],
            "secret/metadata/team-a/*": ["read", "list"],
            "kv/team-a/*": ["read"],
            "database/creds/team-a.*": ["read"],
            "secret/data/team-a/private/*": ["deny"],
        },
    )
    vault.add_role(
        "mirage-team-a",
        service_accounts=["mirage-vault"],
        namespaces=["team-a"],
        policies=["team-a"],
        ttl=60,
        max_ttl=150,
    )
    vault.add_database_role("team-a.app", default_ttl=100, max_ttl=250)
    with VaultThread(vault) as thread:
        yield thread


def root(server: VaultThread) -> hvac.Client:
    return hvac.Client(url=server.address, token=server.vault.root_token)


def tenant(server: VaultThread, jwt: str = "jwt-a") -> hvac.Client:
    client = hvac.Client(url=server.address, token="")
    client.auth.kubernetes.login(role="mirage-team-a", jwt=jwt)
    return client


def test_health_and_seal_status(server: VaultThread) -> None:
    client = hvac.Client(url=server.address, token="")
    assert client.sys.read_health_status(method="GET")["sealed"] is False
    server.vault.seal()
    assert client.sys.read_seal_status()["sealed"] is True
    assert requests.get(f"{server.address}/v1/sys/health", timeout=5).status_code == 503
    server.vault.unseal()
    assert client.sys.is_sealed() is False


def test_kv2_versions_metadata_and_deletes(server: VaultThread) -> None:
    client = root(server)
    kv = client.secrets.kv.v2
    kv.create_or_update_secret("team-a/app", {"password": "one"})
    kv.create_or_update_secret("team-a/app", {"password": "two"})
    assert server.vault.put_kv("team-a/app", {"password": "three"}) == 3

    latest = kv.read_secret_version("team-a/app", raise_on_deleted_version=True)
    assert latest["data"]["data"] == {"password": "three"}
    assert latest["data"]["metadata"]["version"] == 3
    old = kv.read_secret_version("team-a/app", version=1, raise_on_deleted_version=True)
    assert old["data"]["data"] == {"password": "one"}

    meta = kv.read_secret_metadata("team-a/app")["data"]
    assert meta["current_version"] == 3 and set(meta["versions"]) == {"1", "2", "3"}
    # aiohttp's parser refuses the LIST verb; hvac's strict_http sends GET ?list=true.
    strict = hvac.Client(url=server.address, token=server.vault.root_token, strict_http=True)
    assert strict.secrets.kv.v2.list_secrets("team-a")["data"]["keys"] == ["app"]

    kv.delete_secret_versions("team-a/app", versions=[3])
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("team-a/app", raise_on_deleted_version=True)
    deleted = kv.read_secret_version("team-a/app", raise_on_deleted_version=False)
    assert deleted["data"]["data"] is None and deleted["data"]["metadata"]["deletion_time"]
    kv.undelete_secret_versions("team-a/app", versions=[3])
    assert kv.read_secret_version("team-a/app", raise_on_deleted_version=True)["data"]["data"]
    kv.destroy_secret_versions("team-a/app", versions=[1])
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("team-a/app", version=1, raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("team-a/missing", raise_on_deleted_version=True)


def test_kv1(server: VaultThread) -> None:
    client = root(server)
    client.secrets.kv.v1.create_or_update_secret("team-a/app", {"token": "t"}, mount_point="kv")
    assert client.secrets.kv.v1.read_secret("team-a/app", mount_point="kv")["data"] == {
        "token": "t"
    }
    client.secrets.kv.v1.delete_secret("team-a/app", mount_point="kv")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.kv.v1.read_secret("team-a/app", mount_point="kv")


def test_kubernetes_login_and_policies(server: VaultThread) -> None:
    server.vault.put_kv("team-a/app", {"a": "1"})
    server.vault.put_kv("team-b/app", {"b": "2"})
    server.vault.put_kv("team-a/private/x", {"c": "3"})
    client = tenant(server)
    lookup = client.auth.token.lookup_self()["data"]
    assert lookup["meta"]["service_account_namespace"] == "team-a"
    assert set(lookup["policies"]) == {"team-a", "default"}

    kv = client.secrets.kv.v2
    assert kv.read_secret_version("team-a/app", raise_on_deleted_version=True)["data"]["data"]
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.read_secret_version("team-b/app", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):  # deny beats the broader read
        kv.read_secret_version("team-a/private/x", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):  # read does not grant write
        kv.create_or_update_secret("team-a/app", {"a": "evil"})


@pytest.mark.parametrize(
    ("role", "jwt", "error"),
    [
        ("mirage-team-a", "jwt-unknown", hvac.exceptions.Forbidden),  # TokenReview says no
        ("mirage-team-a", "jwt-b-default", hvac.exceptions.Forbidden),  # wrong SA/namespace
        ("no-such-role", "jwt-a", hvac.exceptions.InvalidRequest),
    ],
)
def test_login_refused(server: VaultThread, role: str, jwt: str, error: type[Exception]) -> None:
    client = hvac.Client(url=server.address, token="")
    with pytest.raises(error):
        client.auth.kubernetes.login(role=role, jwt=jwt)
    assert server.vault.logins() == 0


def test_token_ttl_renew_and_revoke(server: VaultThread, clock: Clock) -> None:
    client = tenant(server)
    assert client.auth.token.lookup_self()["data"]["ttl"] == 60
    clock.now += 50
    renewed = client.auth.token.renew_self()["auth"]
    assert renewed["lease_duration"] == 60
    clock.now += 50  # renewals stop at the max TTL (150s after login)
    assert client.auth.token.renew_self()["auth"]["lease_duration"] == 50
    clock.now += 51
    with pytest.raises(hvac.exceptions.Forbidden):
        client.auth.token.lookup_self()

    other = tenant(server)
    other.auth.token.revoke_self()
    with pytest.raises(hvac.exceptions.Forbidden):
        other.auth.token.lookup_self()


def test_database_leases(server: VaultThread, clock: Clock) -> None:
    server.vault.add_database_role("team-a.short", default_ttl=30, max_ttl=70)
    client = tenant(server)
    creds = client.secrets.database.generate_credentials("team-a.short")
    lease_id, user, password = creds["lease_id"], *creds["data"].values()
    assert creds["lease_duration"] == 30 and creds["renewable"] is True
    assert server.vault.credentials_valid(user, password)

    clock.now += 20
    assert client.sys.renew_lease(lease_id, increment=30)["lease_duration"] == 30
    assert client.sys.read_lease(lease_id)["data"]["ttl"] == 30
    clock.now += 25
    # Capped by the max TTL: 70s after issue, 25s from now.
    assert client.sys.renew_lease(lease_id, increment=30)["lease_duration"] == 25
    clock.now += 26
    assert not server.vault.credentials_valid(user, password)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root(server).sys.renew_lease(lease_id)


def test_revoke_lease_needs_policy(server: VaultThread) -> None:
    client = tenant(server)
    creds = client.secrets.database.generate_credentials("team-a.app")
    with pytest.raises(hvac.exceptions.Forbidden):
        client.sys.revoke_lease(creds["lease_id"])
    root(server).sys.revoke_lease(creds["lease_id"])
    assert server.vault.active_leases() == []


def test_leases_die_with_their_token(server: VaultThread) -> None:
    client = tenant(server)
    creds = client.secrets.database.generate_credentials("team-a.app")
    assert server.vault.active_leases("database/creds/team-a.app/") == [creds["lease_id"]]
    client.auth.token.revoke_self()
    assert server.vault.active_leases() == []
    assert not server.vault.credentials_valid(*creds["data"].values())


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (lambda v: v.seal(), hvac.exceptions.VaultDown),
        (lambda v: v.fail(), hvac.exceptions.InternalServerError),
        (lambda v: v.deny("secret/data/*"), hvac.exceptions.Forbidden),
    ],
)
def test_fault_modes(server: VaultThread, fault: object, error: type[Exception]) -> None:
    server.vault.put_kv("team-a/app", {"a": "1"})
    fault(server.vault)  # type: ignore[operator]
    with pytest.raises(error):
        root(server).secrets.kv.v2.read_secret_version("team-a/app", raise_on_deleted_version=True)


def test_connection_refused_then_back(server: VaultThread) -> None:
    server.run(server.vault.refuse_connections())
    with pytest.raises(requests.exceptions.ConnectionError):
        hvac.Client(url=server.address, token="").sys.read_health_status(method="GET")
    server.run(server.vault.accept_connections())
    assert hvac.Client(url=server.address, token="").sys.read_health_status(method="GET")


def test_request_log_counts_without_values(server: VaultThread) -> None:
    server.vault.put_kv("team-a/app", {"password": "hunter2-value"})
    client = tenant(server)
    client.secrets.kv.v2.read_secret_version("team-a/app", version=1, raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.read_secret_version("team-b/app", raise_on_deleted_version=True)
    log = server.vault.requests
    assert [(r.method, r.path, r.status) for r in log] == [
        ("POST", "auth/kubernetes/login", 200),
        ("GET", "secret/data/team-a/app", 200),
        ("GET", "secret/data/team-b/app", 403),
    ]
    assert log[0].role == "mirage-team-a" and log[1].version == 1
    assert log[1].accessor and log[1].accessor == log[2].accessor
    assert server.vault.logins("mirage-team-a") == 1
    assert server.vault.count("GET", "secret/data/*", status=200) == 1
    text = repr(log)
    assert "hunter2-value" not in text and "jwt-a" not in text and client.token not in text


class _FakeAPIServer:
    """Answers TokenReview like the emulated API server's ``review_token``."""

    def __init__(self) -> None:
        self.audiences: list[list[str] | None] = []

    def review_token(
        self, token: str, audiences: list[str] | None
    ) -> tuple[bool, dict[str, object], list[str]]:
        self.audiences.append(audiences)
        if token != "good":
            return False, {}, []
        return True, {"username": "system:serviceaccount:team-a:mirage-vault"}, ["vault"]


async def test_apiserver_reviewer() -> None:
    api = _FakeAPIServer()
    review = apiserver_reviewer(api)
    assert await review("good") == ("team-a", "mirage-vault")
    assert await review("bad") is None
    assert api.audiences == [["vault"], ["vault"]]
