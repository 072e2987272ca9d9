"""Secret values, Vault tokens and ServiceAccount JWTs never reach logs, exception messages,
metrics or the emulator's request log, on success and on every failure path."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from prometheus_client import generate_latest

from mirage_operator.api.vaultsecret import VaultSecretSpec, VaultSource
from mirage_operator.errors import MirageError
from mirage_operator.metrics import REGISTRY
from mirage_operator.render.secret import build_secret, secret_mac
from mirage_operator.vault import VaultClient
from mirage_sandbox.vault import EmulatedVault
from tests.unit.vault.vaultkit import FakeClock

SEEDED = {
    "password": "pw-Zx81-never-log-me",
    "api_key": "ak-0f3c9e-never-log-me",
    "nested": {"inner": "in-77ab-never-log-me"},
}
KV2 = VaultSource("kv-v2", "secret", "team-a/app")
DB = VaultSource("database", "database", "team-a.app")


async def test_nothing_secret_leaks(
    vault: EmulatedVault,
    make_client: Callable[..., VaultClient],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, hvac, urllib3, aiohttp
    vault.put_kv("team-a/app", SEEDED)
    vault.put_kv("team-a/app", SEEDED, mount="kv")
    client = make_client()
    wide = make_client(vault_allowed_paths=("*",))
    bad_role = make_client(vault_role_template="missing-{namespace}")
    texts: list[str] = []
    failures = 0

    async def attempt(action: Callable[[], object]) -> object:
        nonlocal failures
        try:
            result = action()
            if hasattr(result, "__await__"):
                result = await result  # type: ignore[misc]
        except MirageError as exc:
            failures += 1
            texts.extend([str(exc), repr(exc), repr(exc.__cause__), repr(exc.__context__)])
            return None
        texts.append(repr(result))
        return result

    # Successes.
    read = await attempt(lambda: client.read("team-a", KV2))
    await attempt(lambda: client.read("team-a", VaultSource("kv-v1", "kv", "team-a/app")))
    lease_and_data = await attempt(lambda: client.ensure_credentials("team-a", DB, None))
    assert read is not None and lease_and_data is not None
    lease, creds = lease_and_data  # type: ignore[misc]
    clock.advance(lease.duration * 0.7)
    await attempt(lambda: client.ensure_credentials("team-a", DB, lease))

    # Failures of every kind.
    spec = VaultSecretSpec.from_spec(
        {
            "vault": {"path": "team-a/app"},
            "templates": {
                "a": "{{ data.password.nope }}",
                "b": "{{ data.password | int + 1 }}",
                "c": "{{ data.password | b64dec }}",
                "d": "{{ data.api_key.__class__ }}",
            },
        }
    )
    for key in spec.templates:
        one = VaultSecretSpec.from_spec(
            {"vault": {"path": "team-a/app"}, "templates": {key: spec.templates[key]}}
        )
        await attempt(
            lambda one=one: build_secret(
                name="vs", namespace="team-a", spec=one, data=read.data, labels={}
            )
        )
    tls = VaultSecretSpec.from_spec(
        {"vault": {"path": "team-a/app"}, "destination": {"type": "kubernetes.io/tls"}}
    )
    await attempt(
        lambda: build_secret(name="vs", namespace="team-a", spec=tls, data=read.data, labels={})
    )
    await attempt(lambda: client.read("team-a", VaultSource("kv-v2", "secret", "team-b/app")))
    await attempt(lambda: wide.read("team-a", VaultSource("kv-v2", "secret", "team-b/app")))
    await attempt(lambda: client.read("team-a", VaultSource("kv-v2", "secret", "team-a/none")))
    await attempt(lambda: bad_role.read("team-a", KV2))
    vault.deny("secret/data/team-a/*")
    await attempt(lambda: client.read("team-a", KV2))
    vault.allow()
    vault.seal()
    await attempt(lambda: client.read("team-a", KV2))
    await attempt(lambda: client.ensure_credentials("team-a", DB, None))
    vault.unseal()
    vault.fail()
    await attempt(lambda: client.revoke_lease("team-a", DB, lease.lease_id))
    vault.fail(False)
    await vault.refuse_connections()
    await attempt(lambda: client.read("team-a", KV2))
    await vault.accept_connections()
    await attempt(lambda: client.revoke_lease("team-a", DB, lease.lease_id))
    assert failures >= 12

    secret = build_secret(
        name="vs",
        namespace="team-a",
        spec=VaultSecretSpec.from_spec({"vault": {"path": "team-a/app"}}),
        data=read.data,
        labels={},
    )
    texts.append(secret_mac(b"key", secret["data"]))

    haystack = "\n".join(
        [
            caplog.text,
            *texts,
            generate_latest(REGISTRY).decode(),
            repr(vault.requests),
        ]
    )
    needles = [
        "pw-Zx81-never-log-me",
        "ak-0f3c9e-never-log-me",
        "in-77ab-never-log-me",
        creds.data["password"],
        creds.data["username"],
        *(token for token in vault._tokens if token != vault.root_token),
        "jwt-team-a-mirage-vault",
    ]
    # The haystack holds what was exercised (so the check below can fail)...
    for evidence in ("Logged in to Vault", "secret/data/team-b/app", "sealed", "unreachable"):
        assert evidence in haystack
    # ...and none of the secrets.
    leaked = [n for n in needles if n in haystack]
    assert leaked == []
