"""The Vault client against the emulated Vault: auth and token lifecycle, engines, leases,
error classification, the allowed-path check and Vault policy between tenants."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mirage_operator.api.vaultsecret import VaultSource
from mirage_operator.config import Config
from mirage_operator.errors import (
    VaultPathNotAllowed,
    VaultPathNotFound,
    VaultPermissionDenied,
    VaultUnavailable,
)
from mirage_operator.metrics import REGISTRY
from mirage_operator.vault import Lease, VaultClient
from mirage_sandbox.vault import EmulatedVault
from tests.unit.vault.vaultkit import (
    SA,
    TOKEN_MAX_TTL,
    TOKEN_TTL,
    FakeClock,
    MemoryStore,
    Sleeps,
    TokenRequests,
)

KV2 = VaultSource(engine="kv-v2", mount="secret", path="team-a/app")
KV1 = VaultSource(engine="kv-v1", mount="kv", path="team-a/app")
DB = VaultSource(engine="database", mount="database", path="team-a.app")


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- engines ------------------------------------------------------------------------------


async def test_kv2_latest_and_pinned_versions(vault: EmulatedVault, client: VaultClient) -> None:
    vault.put_kv("team-a/app", {"password": "one"})
    vault.put_kv("team-a/app", {"password": "two", "port": 5432, "tags": ["a", "b"]})

    latest = await client.read("team-a", KV2)
    assert latest.version == 2
    # Non-string JSON values arrive as compact JSON text.
    assert latest.data == {"password": "two", "port": "5432", "tags": '["a","b"]'}

    pinned = await client.read("team-a", VaultSource("kv-v2", "secret", "team-a/app", version=1))
    assert (pinned.version, pinned.data) == (1, {"password": "one"})
    assert vault.count("GET", "secret/data/team-a/app", version=1) == 1


async def test_kv1(vault: EmulatedVault, client: VaultClient) -> None:
    vault.put_kv("team-a/app", {"token": "abc"}, mount="kv")
    read = await client.read("team-a", KV1)
    assert (read.data, read.version, read.lease) == ({"token": "abc"}, None, None)


@pytest.mark.parametrize(
    "prepare",
    [
        lambda v: None,  # never written
        lambda v: (v.put_kv("team-a/app", {"a": "1"}), v.delete_kv("team-a/app")),
        lambda v: (v.put_kv("team-a/app", {"a": "1"}), v.destroy_kv("team-a/app", [1])),
    ],
    ids=["missing", "deleted", "destroyed"],
)
async def test_kv2_not_found(
    vault: EmulatedVault, client: VaultClient, prepare: Callable[[EmulatedVault], object]
) -> None:
    prepare(vault)
    with pytest.raises(VaultPathNotFound) as caught:
        await client.read("team-a", KV2)
    assert "secret/data/team-a/app" in str(caught.value)
    assert caught.value.reason == "VaultPathNotFound"


async def test_pinned_version_that_does_not_exist(
    vault: EmulatedVault, client: VaultClient
) -> None:
    vault.put_kv("team-a/app", {"a": "1"})
    with pytest.raises(VaultPathNotFound):
        await client.read("team-a", VaultSource("kv-v2", "secret", "team-a/app", version=7))


# --- login and the token lifecycle --------------------------------------------------------


async def test_one_login_per_token_lifetime(
    vault: EmulatedVault, client: VaultClient, clock: FakeClock, token_requests: TokenRequests
) -> None:
    vault.put_kv("team-a/app", {"a": "1"})
    for _ in range(5):
        await client.read("team-a", KV2)
        clock.advance(TOKEN_TTL * 0.1)  # stays before two thirds of the TTL
    assert vault.logins("mirage-team-a") == 1
    assert vault.count(path="auth/token/renew-self") == 0
    assert token_requests.calls == [("team-a", SA, "vault", 600)]
    assert client.tokens_cached == 1


async def test_each_namespace_logs_in_with_its_own_role(
    vault: EmulatedVault, client: VaultClient, token_requests: TokenRequests
) -> None:
    vault.put_kv("team-a/app", {"a": "1"})
    vault.put_kv("team-b/app", {"b": "2"})
    await client.read("team-a", KV2)
    await client.read("team-b", VaultSource("kv-v2", "secret", "team-b/app"))
    assert (vault.logins("mirage-team-a"), vault.logins("mirage-team-b")) == (1, 1)
    assert [c[0] for c in token_requests.calls] == ["team-a", "team-b"]
    assert client.tokens_cached == 2


async def test_token_renewed_at_two_thirds_of_ttl(
    vault: EmulatedVault, client: VaultClient, clock: FakeClock
) -> None:
    vault.put_kv("team-a/app", {"a": "1"})
    await client.read("team-a", KV2)
    clock.advance(TOKEN_TTL * 0.6)
    await client.read("team-a", KV2)
    assert vault.count(path="auth/token/renew-self") == 0
    clock.advance(TOKEN_TTL * 0.1)  # now past two thirds, before expiry
    await client.read("team-a", KV2)
    assert vault.count(path="auth/token/renew-self", status=200) == 1
    assert vault.logins() == 1
    # The renewed token lasts another full TTL from the renewal.
    clock.advance(TOKEN_TTL * 0.6)
    await client.read("team-a", KV2)
    assert (vault.logins(), vault.count(path="auth/token/renew-self")) == (1, 1)


async def test_relogin_when_renewal_fails(
    vault: EmulatedVault, client: VaultClient, clock: FakeClock
) -> None:
    vault.put_kv("team-a/app", {"a": "1"})
    await client.read("team-a", KV2)
    vault.deny("auth/token/renew-self")
    clock.advance(TOKEN_TTL * 0.8)
    assert (await client.read("team-a", KV2)).data == {"a": "1"}
    assert vault.count(path="auth/token/renew-self", status=403) == 1
    assert vault.logins() == 2


async def test_relogin_after_expiry_without_renewal_attempt(
    vault: EmulatedVault, client: VaultClient, clock: FakeClock
) -> None:
    vault.put_kv("team-a/app", {"a": "1"})
    await client.read("team-a", KV2)
    clock.advance(TOKEN_TTL + 1)
    await client.read("team-a", KV2)
    assert vault.count(path="auth/token/renew-self") == 0
    assert vault.logins() == 2


async def test_relogin_when_renewal_is_capped_by_max_ttl(
    vault: EmulatedVault, client: VaultClient, clock: FakeClock
) -> None:
    vault.put_kv("team-a/app", {"a": "1"})
    await client.read("team-a", KV2)
    # Renew every 2/3 TTL until the max TTL caps a renewal below a third of the TTL.
    for _ in range(TOKEN_MAX_TTL // TOKEN_TTL * 2):
        clock.advance(TOKEN_TTL * 0.7)
        await client.read("team-a", KV2)
    renewals = vault.count(path="auth/token/renew-self", status=200)
    assert renewals >= 4
    assert vault.logins() >= 2  # a fresh login replaced the capped token
    assert vault.count(status=403) == 0  # never used a dead token


async def test_token_revoked_behind_our_back(vault: EmulatedVault, client: VaultClient) -> None:
    vault.put_kv("team-a/app", {"a": "1"})
    await client.read("team-a", KV2)
    for token in list(vault._tokens.values()):
        if token.meta.get("service_account_namespace") == "team-a":
            token.revoked = True
    assert (await client.read("team-a", KV2)).data == {"a": "1"}
    assert vault.logins() == 2


async def test_operator_mode_logs_in_once_as_the_operator(
    vault: EmulatedVault, make_client: Callable[..., VaultClient], token_requests: TokenRequests
) -> None:
    client = make_client(vault_auth_mode="operator")
    vault.put_kv("team-a/app", {"a": "1"})
    vault.put_kv("team-b/app", {"b": "2"})
    await client.read("team-a", KV2)
    await client.read("team-b", VaultSource("kv-v2", "secret", "team-b/app"))
    assert vault.logins("mirage-operator") == 1
    assert token_requests.calls == [("mirage-system", "mirage-operator", "vault", 600)]
    # The operator's own check still keeps namespaces to their paths.
    with pytest.raises(VaultPathNotAllowed):
        await client.read("team-a", VaultSource("kv-v2", "secret", "team-b/app"))


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"vault_role_template": "nope-{namespace}"}, "invalid role name"),
        ({"vault_service_account": "default"}, "ServiceAccount team-a/default"),
        ({"vault_auth_mount": "elsewhere"}, "auth/elsewhere"),
    ],
)
async def test_login_failures_are_permission_denied(
    vault: EmulatedVault,
    make_client: Callable[..., VaultClient],
    overrides: dict[str, str],
    words: str,
) -> None:
    client = make_client(**overrides)
    vault.put_kv("team-a/app", {"a": "1"})
    with pytest.raises(VaultPermissionDenied) as caught:
        await client.read("team-a", KV2)
    assert words in str(caught.value)
    assert "jwt-" not in str(caught.value)
    assert client.tokens_cached == 0


# --- tenants: the operator's check and Vault's policy -------------------------------------


async def test_allowed_path_check_precedes_any_vault_call(
    vault: EmulatedVault, client: VaultClient, token_requests: TokenRequests
) -> None:
    vault.put_kv("team-b/app", {"b": "secret-of-b"})
    before = metric("mirage_vault_reads_total", engine="kv-v2", outcome="not_allowed")
    with pytest.raises(VaultPathNotAllowed) as caught:
        await client.read("team-a", VaultSource("kv-v2", "secret", "team-b/app"))
    assert caught.value.problems[0].field == "spec.vault.path"
    assert "team-b/app" in str(caught.value) and "team-a/*" in str(caught.value)
    assert vault.requests == []
    assert token_requests.calls == []
    after = metric("mirage_vault_reads_total", engine="kv-v2", outcome="not_allowed")
    assert after == before + 1


async def test_vault_policy_denies_another_namespaces_path(
    vault: EmulatedVault, make_client: Callable[..., VaultClient]
) -> None:
    # With the operator's check opened wide, Vault policy alone still keeps team-a out.
    client = make_client(vault_allowed_paths=("*",), vault_allowed_database_roles=("*",))
    vault.put_kv("team-b/app", {"b": "secret-of-b"})
    with pytest.raises(VaultPermissionDenied) as caught:
        await client.read("team-a", VaultSource("kv-v2", "secret", "team-b/app"))
    assert "secret/data/team-b/app" in str(caught.value)
    assert vault.count("GET", "secret/data/team-b/app", status=403) == 1
    assert vault.logins() == 1  # a policy denial does not trigger a re-login
    with pytest.raises(VaultPermissionDenied):
        await client.read("team-a", VaultSource("database", "database", "team-b.app"))


# --- error classification and retries -----------------------------------------------------


async def test_sealed_vault_is_unavailable_after_retries(
    vault: EmulatedVault, client: VaultClient, sleeps: Sleeps
) -> None:
    vault.put_kv("team-a/app", {"a": "1"})
    await client.read("team-a", KV2)
    vault.seal()
    with pytest.raises(VaultUnavailable) as caught:
        await client.read("team-a", KV2)
    assert "sealed" in str(caught.value)
    assert caught.value.reason == "VaultUnavailable"
    assert vault.count("GET", "secret/data/team-a/app", status=503) == 3  # 1 + 2 retries
    assert len(sleeps.delays) == 2
    assert 0.1 <= sleeps.delays[0] <= 0.2 and 0.2 <= sleeps.delays[1] <= 0.4  # jittered


async def test_recovers_within_the_retries(
    vault: EmulatedVault, client: VaultClient, sleeps: Sleeps
) -> None:
    vault.put_kv("team-a/app", {"a": "1"})
    vault.fail()
    sleeps.hook = lambda: vault.fail(False)
    assert (await client.read("team-a", KV2)).data == {"a": "1"}
    assert vault.count(status=500) == 1


async def test_connection_refused_is_unavailable(vault: EmulatedVault, client: VaultClient) -> None:
    await vault.refuse_connections()
    with pytest.raises(VaultUnavailable, match="unreachable"):
        await client.read("team-a", KV2)
    await vault.accept_connections()
    vault.put_kv("team-a/app", {"a": "1"})
    assert (await client.read("team-a", KV2)).data == {"a": "1"}


async def test_timeout_is_unavailable(
    vault: EmulatedVault, make_client: Callable[..., VaultClient]
) -> None:
    client = make_client(vault_timeout=0.05, vault_retries=0)
    vault.put_kv("team-a/app", {"a": "1"})
    await client.read("team-a", KV2)
    vault.slow_down(0.5)
    with pytest.raises(VaultUnavailable, match="timed out"):
        await client.read("team-a", KV2)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (lambda v: v.deny("secret/data/team-a/*"), VaultPermissionDenied),
        (lambda v: v.fail(), VaultUnavailable),
        (lambda v: v.seal(), VaultUnavailable),
        (lambda v: v.delete_kv("team-a/app"), VaultPathNotFound),
    ],
    ids=["403", "500", "503", "404"],
)
async def test_errors_are_classified(
    vault: EmulatedVault,
    client: VaultClient,
    fault: Callable[[EmulatedVault], object],
    error: type[Exception],
) -> None:
    vault.put_kv("team-a/app", {"a": "1"})
    await client.read("team-a", KV2)
    fault(vault)
    with pytest.raises(error):
        await client.read("team-a", KV2)


async def test_vault_namespace_header(
    vault: EmulatedVault, make_client: Callable[..., VaultClient]
) -> None:
    client = make_client(vault_namespace="tenant-x")
    vault.add_namespace("tenant-x")
    vault.put_kv("team-a/app", {"a": "1"})
    await client.read("team-a", KV2)
    assert {r.vault_namespace for r in vault.requests} == {"tenant-x"}


# --- database credentials and leases ------------------------------------------------------


async def test_database_credentials_with_lease(vault: EmulatedVault, client: VaultClient) -> None:
    read = await client.read("team-a", DB)
    assert set(read.data) == {"username", "password"}
    assert read.lease is not None and read.lease.lease_id.startswith("database/creds/team-a.app/")
    assert read.lease.duration == 300
    assert vault.credentials_valid(read.data["username"], read.data["password"])


async def test_lease_renewed_at_two_thirds_then_replaced_before_max_ttl(
    vault: EmulatedVault, client: VaultClient, clock: FakeClock
) -> None:
    lease, data = await client.ensure_credentials("team-a", DB, None)
    assert data is not None
    first = lease.lease_id

    same, nothing = await client.ensure_credentials("team-a", DB, lease)
    assert (same, nothing) == (lease, None)
    assert vault.count(path="sys/leases/renew/*") == 0

    renewals = 0
    while True:
        clock.advance(client.next_check_at("team-a", lease) - clock() + 1)
        lease, fresh = await client.ensure_credentials("team-a", DB, lease)
        assert vault.credentials_valid(data.data["username"], data.data["password"])
        if fresh is not None:
            break
        renewals += 1
        assert lease.lease_id == first
    assert renewals >= 2
    assert vault.count(path="sys/leases/renew/*", status=200) == renewals
    assert lease.lease_id != first
    assert fresh.data["username"] != data.data["username"]
    # The old lease is left to expire at its max TTL: pods may still be using it.
    assert first in vault.active_leases()


async def test_lease_gone_means_new_credentials(
    vault: EmulatedVault, client: VaultClient, clock: FakeClock
) -> None:
    lease, data = await client.ensure_credentials("team-a", DB, None)
    assert data is not None
    await client.revoke_lease("team-a", DB, lease.lease_id)
    clock.advance(lease.duration * 0.7)
    new, fresh = await client.ensure_credentials("team-a", DB, lease)
    assert fresh is not None and new.lease_id != lease.lease_id


async def test_lease_from_status_after_restart_is_renewed(
    vault: EmulatedVault, make_client: Callable[..., VaultClient], clock: FakeClock
) -> None:
    first = make_client()
    lease, _ = await first.ensure_credentials("team-a", DB, None)
    # A new process knows only what the status kept.
    second = make_client()
    kept = Lease.from_status(lease.lease_id, lease.duration, lease.expires_at)
    clock.advance(lease.duration * 0.7)
    renewed, fresh = await second.ensure_credentials("team-a", DB, kept)
    assert fresh is None and renewed.lease_id == lease.lease_id
    assert renewed.expires_at > lease.expires_at


async def test_credentials_replaced_when_their_token_is_retired(
    vault: EmulatedVault, client: VaultClient, clock: FakeClock
) -> None:
    lease, _ = await client.ensure_credentials("team-a", DB, None)
    vault.deny("auth/token/renew-self")
    clock.advance(TOKEN_TTL * 0.7)  # token due, renewal refused: a new login retires it
    vault.put_kv("team-a/app", {"a": "1"})
    await client.read("team-a", KV2)
    vault.allow()
    new, fresh = await client.ensure_credentials("team-a", DB, lease)
    # The old lease dies with the old token, so new credentials come now, not later.
    assert fresh is not None and new.lease_id != lease.lease_id


async def test_credentials_are_not_requested_twice_blindly(
    vault: EmulatedVault, client: VaultClient
) -> None:
    # Each creds request creates a database user: a 5xx answer is not retried blindly.
    vault.fail()
    with pytest.raises(VaultUnavailable):
        await client.ensure_credentials("team-a", DB, None)
    assert vault.count("POST", "auth/kubernetes/login") == 3  # logins are retried
    vault.fail(False)
    await client.ensure_credentials("team-a", DB, None)
    vault.fail()
    with pytest.raises(VaultUnavailable):
        await client.ensure_credentials("team-a", DB, None)
    assert vault.count("GET", "database/creds/team-a.app", status=500) == 1


async def test_revoke_lease(vault: EmulatedVault, client: VaultClient) -> None:
    read = await client.read("team-a", DB)
    assert read.lease is not None
    await client.revoke_lease("team-a", DB, read.lease.lease_id)
    assert not vault.credentials_valid(read.data["username"], read.data["password"])
    await client.revoke_lease("team-a", DB, read.lease.lease_id)  # already gone: fine


@pytest.mark.parametrize(
    "lease_id",
    [
        "database/creds/team-b.app/xyz",  # another tenant's role
        "database/creds/team-a.app",  # no ID
        "database/creds/team-a.app/",
        "database/creds/team-a.app/../../team-b.app/xyz",  # climbs out in the URL path
        "database/creds/team-a.app/xyz/extra",
        "database/creds/team-a.app/..",
        "database/creds/team-a.app/xyz?lease_id=database/creds/team-b.app/abc",
        "database/creds/team-a.app/xyz#frag",
        "database/creds/team-a.application/xyz",
        "database/creds/team-a.app/.hidden",
        "database/creds/team-a.app/x%2F..%2Fy",
    ],
)
async def test_lease_of_another_role_is_refused(
    vault: EmulatedVault, client: VaultClient, lease_id: str
) -> None:
    # The ID becomes part of the URL path (sys/leases/revoke/<id>): nothing but one plain
    # segment after the role's own prefix may reach Vault.
    with pytest.raises(VaultPathNotAllowed):
        await client.revoke_lease("team-a", DB, lease_id)
    with pytest.raises(VaultPathNotAllowed):
        await client.renew_lease("team-a", DB, Lease(lease_id, 60, 0))
    assert vault.requests == []


@pytest.mark.parametrize("suffix", ["-Ab3_x", "_9zQ-", "AbC123.ns1"])
async def test_lease_ids_of_the_role_pass_the_check(
    vault: EmulatedVault, client: VaultClient, suffix: str
) -> None:
    # URL-safe base64 (the emulated Vault's IDs) may start with - or _; Enterprise adds .<ns>.
    await client.revoke_lease("team-a", DB, f"database/creds/team-a.app/{suffix}")
    assert vault.count("PUT", f"sys/leases/revoke/database/creds/team-a.app/{suffix}") == 1


async def test_leases_are_renewed_and_revoked_by_their_path(
    vault: EmulatedVault, client: VaultClient
) -> None:
    # Only the path forms name the lease to Vault policy (ADR 0102).
    read = await client.read("team-a", DB)
    assert read.lease is not None
    await client.renew_lease("team-a", DB, read.lease)
    await client.revoke_lease("team-a", DB, read.lease.lease_id)
    assert vault.count("PUT", f"sys/leases/renew/{read.lease.lease_id}", status=200) == 1
    assert vault.count("PUT", f"sys/leases/revoke/{read.lease.lease_id}", status=204) == 1
    assert vault.count(path="sys/leases/renew") + vault.count(path="sys/leases/revoke") == 0


# --- TLS ----------------------------------------------------------------------------------


def _certificate(directory: Path, name: str) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not found")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *[openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"],
            *["-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}"],
            *["-addext", f"subjectAltName=DNS:{name}"],
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.parametrize("server_name", ["vault.mirage.test", ""])
async def test_tls_with_ca_bundle_and_server_name(
    vault: EmulatedVault,
    make_client: Callable[..., VaultClient],
    tmp_path: Path,
    server_name: str,
) -> None:
    cert, key = _certificate(tmp_path, "vault.mirage.test")
    await vault.stop()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    address = await vault.start(ssl_context=context)
    client = make_client(
        vault_address=address, vault_ca_path=str(cert), vault_tls_server_name=server_name
    )
    vault.put_kv("team-a/app", {"a": "1"})
    if server_name:
        assert (await client.read("team-a", KV2)).data == {"a": "1"}
    else:  # the certificate names vault.mirage.test, not 127.0.0.1
        with pytest.raises(VaultUnavailable, match="TLS"):
            await client.read("team-a", KV2)


# --- metrics ------------------------------------------------------------------------------


async def test_metrics(vault: EmulatedVault, client: VaultClient) -> None:
    vault.put_kv("team-a/app", {"a": "1"})
    logins = metric("mirage_vault_logins_total", namespace="team-a", result="success")
    reads = metric("mirage_vault_reads_total", engine="kv-v2", outcome="success")
    missing = metric("mirage_vault_reads_total", engine="kv-v1", outcome="not_found")
    latency = metric("mirage_vault_request_duration_seconds_count", operation="read")
    await client.read("team-a", KV2)
    await client.read("team-a", KV2)
    with pytest.raises(VaultPathNotFound):
        await client.read("team-a", KV1)
    assert metric("mirage_vault_logins_total", namespace="team-a", result="success") == logins + 1
    assert metric("mirage_vault_reads_total", engine="kv-v2", outcome="success") == reads + 2
    assert metric("mirage_vault_reads_total", engine="kv-v1", outcome="not_found") == missing + 1
    assert metric("mirage_vault_request_duration_seconds_count", operation="read") == latency + 3
    assert metric("mirage_vault_tokens_cached") == client.tokens_cached == 1


# --- every login setting changes the login (issue 9 item 17) --------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"vault_token_audience": "https://vault.example"},
            ("team-a", SA, "https://vault.example", 600),
        ),
        ({"vault_token_expiration": 900}, ("team-a", SA, "vault", 900)),
        (
            {"vault_auth_mode": "operator", "vault_operator_service_account": "mirage-operator"},
            ("mirage-system", "mirage-operator", "vault", 600),
        ),
    ],
)
async def test_token_request_follows_the_settings(
    vault: EmulatedVault,
    make_client: Callable[..., VaultClient],
    token_requests: TokenRequests,
    overrides: dict[str, Any],
    expected: tuple[str, str, str, int],
) -> None:
    client = make_client(**overrides)
    vault.put_kv("team-a/app", {"a": "1"})
    await client.read("team-a", KV2)
    assert token_requests.calls == [expected]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"vault_operator_role": "nope"}, "nope"),
        ({"vault_operator_service_account": "someone-else"}, "someone-else"),
    ],
)
async def test_operator_mode_logs_in_with_the_configured_identity(
    vault: EmulatedVault,
    make_client: Callable[..., VaultClient],
    overrides: dict[str, str],
    words: str,
) -> None:
    client = make_client(vault_auth_mode="operator", **overrides)
    vault.put_kv("team-a/app", {"a": "1"})
    with pytest.raises(VaultPermissionDenied) as caught:
        await client.read("team-a", KV2)
    assert words in str(caught.value)


# --- tokens kept across processes ----------------------------------------------------------


async def test_a_new_process_renews_the_token_and_leases_the_last_one_kept(
    vault: EmulatedVault, clock: FakeClock, token_requests: TokenRequests, sleeps: Sleeps
) -> None:
    store = MemoryStore()
    config = Config(vault_address=vault.address)

    def process() -> VaultClient:
        return VaultClient(config, token_for=token_requests, clock=clock, sleep=sleeps, store=store)

    first = process()
    lease, data = await first.ensure_credentials("team-a", DB, None)
    assert data is not None and set(store.tokens) == {"team-a"}
    # The first process dies; the next one rebuilds the lease from status, as the handler does.
    second = process()
    kept = Lease.from_status(lease.lease_id, lease.duration, lease.expires_at)
    started = clock()
    while clock() < started + TOKEN_TTL:  # past the first token's TTL, before the lease's max
        clock.advance(second.next_check_at("team-a", kept) - clock() + 1)
        kept, fresh = await second.ensure_credentials("team-a", DB, kept)
        assert fresh is None, "new credentials instead of renewing the kept lease"
        assert vault.credentials_valid(data.data["username"], data.data["password"])
    assert kept.lease_id == lease.lease_id
    assert vault.logins("mirage-team-a") == 1
    assert vault.count(path="auth/token/renew-self", status=200) >= 1
    await first.close()
    await second.close()
