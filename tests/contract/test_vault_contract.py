"""The emulated Vault answers the operator's hvac calls as OpenBao does.

Each case makes, against both servers, the calls :mod:`mirage_operator.vault.client` makes
(the same ``hvac`` methods and arguments) and compares what the operator sees: the status
class (success, or the ``hvac`` exception raised, which stands for the HTTP status) and every
field it reads. Values that differ by nature (tokens, accessors, lease IDs, usernames) are
compared by shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hvac
import hvac.exceptions
import pytest

from tests.contract.conftest import DB_MAX_TTL, DB_TTL, GLOB_PATHS, ROLE_TTL, Setup
from tests.vaultbackends import VaultBackend

pytestmark = pytest.mark.xdist_group("contract")

Call = Callable[[Setup, VaultBackend], Any]


def client(backend: VaultBackend, token: str = "", **options: Any) -> hvac.Client:
    """An hvac client as the operator builds one (the token passed, never from the env)."""
    return hvac.Client(url=backend.address, token=token, timeout=10, **options)


def login(setup: Setup, backend: VaultBackend, role: str = "mirage-team", ns: str = "team") -> Any:
    """The operator's login call; the answer."""
    return client(backend).auth.kubernetes.login(
        role=role, jwt=setup.token(ns), mount_point="kubernetes"
    )


def tenant(setup: Setup, backend: VaultBackend, **options: Any) -> hvac.Client:
    """A client holding a fresh token of the ``team`` tenant."""
    token = login(setup, backend)["auth"]["client_token"]
    return client(backend, token, **options)


def login_fields(answer: Any) -> dict[str, Any]:
    auth = answer["auth"]
    return {
        "lease_duration": auth["lease_duration"],
        "renewable": auth["renewable"],
        "client_token": bool(auth["client_token"]),
        "accessor": bool(auth["accessor"]),
    }


def kv2(path: str, version: int | None = None) -> Call:
    def read(setup: Setup, backend: VaultBackend) -> Any:
        answer = tenant(setup, backend).secrets.kv.v2.read_secret_version(
            path=path, version=version, mount_point="secret", raise_on_deleted_version=True
        )
        body = answer["data"]
        return {"data": body["data"], "version": body["metadata"]["version"]}

    return read


def kv1(path: str, mount: str = "kv") -> Call:
    def read(setup: Setup, backend: VaultBackend) -> Any:
        answer = tenant(setup, backend).secrets.kv.v1.read_secret(path=path, mount_point=mount)
        return {"data": answer["data"]}

    return read


def creds(role: str) -> Call:
    def issue(setup: Setup, backend: VaultBackend) -> Any:
        answer = tenant(setup, backend).secrets.database.generate_credentials(
            name=role, mount_point="database"
        )
        return {
            "lease_duration": answer["lease_duration"],
            "renewable": answer["renewable"],
            "lease_id": answer["lease_id"].startswith(f"database/creds/{role}/"),
            "keys": sorted(answer["data"]),
        }

    return issue


def renewed(increment: int) -> Call:
    def renew(setup: Setup, backend: VaultBackend) -> Any:
        vault = tenant(setup, backend)
        lease = vault.secrets.database.generate_credentials(name="team.app")["lease_id"]
        answer = vault.sys.renew_lease(lease_id=lease, increment=increment)
        return {
            "lease_duration": answer["lease_duration"],
            "renewable": answer["renewable"],
            "same_lease": answer["lease_id"] == lease,
        }

    return renew


def revoke(lease_suffix: str | None) -> Call:
    def call(setup: Setup, backend: VaultBackend) -> Any:
        vault = tenant(setup, backend)
        lease = vault.secrets.database.generate_credentials(name="team.app")["lease_id"]
        target = lease if lease_suffix is None else f"database/creds/team.app/{lease_suffix}"
        return vault.sys.revoke_lease(lease_id=target).status_code

    return call


def token_call(action: str) -> Call:
    def call(setup: Setup, backend: VaultBackend) -> Any:
        vault = tenant(setup, backend)
        if action == "renew-self":
            answer = vault.auth.token.renew_self()
            return {
                "lease_duration": answer["auth"]["lease_duration"],
                "renewable": answer["auth"]["renewable"],
            }
        if action == "lookup-self":
            return {"renewable": vault.auth.token.lookup_self()["data"]["renewable"]}
        vault.auth.token.revoke_self()
        return vault.auth.token.lookup_self()

    return call


def globbed(path: str) -> Call:
    def read(setup: Setup, backend: VaultBackend) -> Any:
        token = login(setup, backend, role="globs")["auth"]["client_token"]
        answer = client(backend, token).secrets.kv.v2.read_secret_version(
            path=path, mount_point="secret", raise_on_deleted_version=True
        )
        return answer["data"]["data"]

    return read


def namespaced(namespace: str) -> Call:
    def read(setup: Setup, backend: VaultBackend) -> Any:
        vault = tenant(setup, backend, namespace=namespace)
        return vault.secrets.kv.v2.read_secret_version(
            path="team/app", mount_point="secret", raise_on_deleted_version=True
        )["data"]["data"]

    return read


CASES: dict[str, Call] = {
    # Logins (auth/kubernetes/login).
    "login": lambda s, b: login_fields(login(s, b)),
    "login-unknown-role": lambda s, b: login(s, b, role="nope"),
    "login-other-namespace-sa": lambda s, b: login(s, b, role="mirage-team", ns="other"),
    "login-missing-auth-mount": lambda s, b: client(b).auth.kubernetes.login(
        role="mirage-team", jwt=s.token("team"), mount_point="nowhere"
    ),
    "login-wrong-audience": lambda s, b: client(b).auth.kubernetes.login(
        role="mirage-team", jwt=s.token("team", audience="other")
    ),
    "login-forged-jwt": lambda s, b: client(b).auth.kubernetes.login(
        role="mirage-team", jwt=s.token("team")[:-6] + "AAAAAA"
    ),
    "login-missing-jwt": lambda s, b: client(b).auth.kubernetes.login(role="mirage-team", jwt=""),
    # Token self-service.
    "renew-self": token_call("renew-self"),
    "lookup-self": token_call("lookup-self"),
    "revoked-token": token_call("revoke-self"),
    "no-token": lambda s, b: client(b).secrets.kv.v2.read_secret_version(
        path="team/app", mount_point="secret", raise_on_deleted_version=True
    ),
    # KV v2.
    "kv2-latest": kv2("team/app"),
    "kv2-version": kv2("team/app", version=1),
    "kv2-missing-version": kv2("team/app", version=9),
    "kv2-missing": kv2("team/none"),
    "kv2-deleted": kv2("team/gone"),
    "kv2-other-namespace": kv2("other/app"),
    "kv2-missing-mount": lambda s, b: tenant(s, b).secrets.kv.v2.read_secret_version(
        path="team/app", mount_point="nowhere", raise_on_deleted_version=True
    ),
    # KV v1.
    "kv1": kv1("team/legacy"),
    "kv1-missing": kv1("team/none"),
    "kv1-other-namespace": kv1("other/legacy"),
    "kv1-read-on-kv2-mount": kv1("team/app", mount="secret"),
    "kv1-missing-mount": kv1("team/legacy", mount="nowhere"),
    # Namespaces (X-Vault-Namespace).
    "namespace-root": namespaced("root"),
    "namespace-unknown": namespaced("tenant-x"),
    # Database credentials and leases.
    "db-creds": creds("team.app"),
    "db-creds-unknown-role": creds("team.none"),
    "db-creds-other-namespace": creds("other.app"),
    "db-renew": renewed(DB_TTL),
    "db-renew-past-max-ttl": renewed(DB_MAX_TTL + 40),
    "db-revoke": revoke(None),
    "db-revoke-unknown-lease": revoke("no-such-lease"),
    # Policy path rules.
    **{f"policy:{path}": globbed(path) for path in GLOB_PATHS},
}


def outcome(call: Call, setup: Setup, backend: VaultBackend) -> tuple[str, Any]:
    """What the operator would see: ``("ok", fields)`` or ``("error", hvac exception)``."""
    try:
        return "ok", call(setup, backend)
    except hvac.exceptions.VaultError as exc:
        return "error", type(exc).__name__


@pytest.mark.parametrize("case", sorted(CASES))
def test_emulated_vault_answers_as_openbao(contract: Setup, case: str) -> None:
    call = CASES[case]
    real = outcome(call, contract, contract.backends["openbao"])
    emulated = outcome(call, contract, contract.backends["emulated"])
    assert emulated == real


def test_ttls_are_granted_exactly(contract: Setup) -> None:
    """Not just equal to each other: the role's TTL itself, not a floored second less."""
    for backend in contract.backends.values():
        assert login(contract, backend)["auth"]["lease_duration"] == ROLE_TTL, backend.name
        assert creds("team.app")(contract, backend)["lease_duration"] == DB_TTL, backend.name
