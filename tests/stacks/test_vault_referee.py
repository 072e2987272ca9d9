"""A real OpenBao as the referee of the Vault configuration the stack declares.

The dev stack is built under mocks; every Vault resource it declares (mounts, the kubernetes
auth method and its config, tenant policies and roles, the database connection and roles) is
replayed, as declared, into a fresh OpenBao server whose database engine manages a real
PostgreSQL. Then, as tenant ``team-a``: its KV v2 and v1 paths and database credentials are
readable, ``team-b``'s paths and database roles are not, ``team-b``'s leases can be neither
renewed nor revoked (by path or by body), and policies cannot be written. The operator's own
allowed-path check answers the same on the same case table, and the operator's Vault client
renews and revokes its leases against OpenBao under the tenant policy.

Tenants log in as the operator does: a ServiceAccount token requested from the emulated API
server (TokenRequest, audience ``vault``), exchanged at OpenBao's kubernetes auth, which has
the emulated API review it (TokenReview). OpenBao parses tokens with asymmetric algorithms
only, so the emulated API signs them with RSA here (:class:`RS256Signer`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import psycopg
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mirage_operator import tenancy
from mirage_operator.api.vaultsecret import VaultSource
from mirage_operator.config import Config
from mirage_operator.errors import VaultPathNotAllowed, VaultPermissionDenied
from mirage_operator.vault import Lease, VaultClient
from mirage_operator.vault.policy import check_allowed
from mirage_sandbox.apiserver import run_apiserver_in_thread
from stacks.components.datastores import POSTGRES_ADMIN
from tests.realservers import OpenBao, Postgres, openbao_server, postgres_server
from tests.stacks.conftest import built
from tests.stacks.harness import Built, Registered

A, B = "team-a", "team-b"
ADMIN_PASSWORD = secrets.token_hex(16)


def status(call: Callable[[], object]) -> int:
    """The HTTP status of an hvac call: 200 when it returned, else the error's."""
    try:
        call()
    except hvac.exceptions.Forbidden:
        return 403
    except hvac.exceptions.InvalidPath:
        return 404
    except hvac.exceptions.InvalidRequest:
        return 400
    return 200


def _seconds(value: Any) -> int | None:
    return None if value is None else int(value)


def replay(stack: Built, bao: OpenBao, db: Postgres, *, kubernetes_host: str, ca: str) -> None:
    """Write every Vault resource ``stack`` declares into ``bao``, as declared; only the
    addresses change (the database and the Kubernetes API here instead of in the cloud)."""
    root = bao.client()
    for mount in stack.of_type("vault:index/mount:Mount"):
        i = mount.inputs
        root.sys.enable_secrets_engine(
            backend_type=i["type"], path=i["path"], options=i.get("options"),
            description=i.get("description"),
        )  # fmt: skip
    for auth in stack.of_type("vault:index/authBackend:AuthBackend"):
        root.sys.enable_auth_method(method_type=auth.inputs["type"], path=auth.inputs["path"])
    [config] = stack.of_type("vault:kubernetes/authBackendConfig:AuthBackendConfig")
    assert config.inputs["kubernetesHost"] == "https://kubernetes.default.svc"
    # Declared: Vault in the cluster reviews with its own ServiceAccount. Here OpenBao runs
    # outside it, so it reviews each token with the token itself against the emulated API.
    root.write(
        f"auth/{config.inputs['backend']}/config",
        kubernetes_host=kubernetes_host, disable_local_ca_jwt=True, kubernetes_ca_cert=ca,
    )  # fmt: skip
    for policy in stack.of_type("vault:index/policy:Policy"):
        root.sys.create_or_update_policy(name=policy.inputs["name"], policy=policy.inputs["policy"])
    for role in stack.of_type("vault:kubernetes/authBackendRole:AuthBackendRole"):
        i = role.inputs
        root.write(
            f"auth/{i['backend']}/role/{i['roleName']}",
            bound_service_account_names=i["boundServiceAccountNames"],
            bound_service_account_namespaces=i["boundServiceAccountNamespaces"],
            audience=i["audience"], token_policies=i["tokenPolicies"],
            token_no_default_policy=i["tokenNoDefaultPolicy"],
            token_ttl=_seconds(i.get("tokenTtl")), token_max_ttl=_seconds(i.get("tokenMaxTtl")),
        )  # fmt: skip
    [connection] = stack.of_type("vault:database/secretBackendConnection:SecretBackendConnection")
    i = connection.inputs
    url = i["postgresql"]["connectionUrl"]
    declared = url.split("@", 1)[1].split("/", 1)[0]
    assert declared == "pg.example.internal:5432" and url.endswith("?sslmode=require")
    # The local server speaks no TLS: only the address and sslmode differ from the stack's.
    url = url.replace(declared, f"127.0.0.1:{db.port}").replace(
        "sslmode=require", "sslmode=disable"
    )
    assert i["postgresql"]["username"] == POSTGRES_ADMIN
    root.write(
        f"{i['backend']}/config/{i['name']}",
        plugin_name="postgresql-database-plugin", connection_url=url,
        username=POSTGRES_ADMIN, password=ADMIN_PASSWORD, allowed_roles=i["allowedRoles"],
        verify_connection=i["verifyConnection"],
    )  # fmt: skip
    for role in stack.of_type("vault:database/secretBackendRole:SecretBackendRole"):
        i = role.inputs
        root.write(
            f"{i['backend']}/roles/{i['name']}",
            db_name=i["dbName"], creation_statements=i["creationStatements"],
            revocation_statements=i["revocationStatements"],
            default_ttl=_seconds(i["defaultTtl"]), max_ttl=_seconds(i["maxTtl"]),
        )  # fmt: skip


def role_of(stack: Built, namespace: str) -> Registered:
    [role] = [
        r
        for r in stack.of_type("vault:kubernetes/authBackendRole:AuthBackendRole")
        if r.inputs["roleName"] == tenancy.vault_role(namespace)
    ]
    return role


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class RS256Signer:
    """The emulated API's token signer, re-signing its tokens with RSA (RS256) as a real API
    server signs them: OpenBao's kubernetes auth parses tokens with asymmetric algorithms only
    before it asks for a TokenReview. Claims, expiry and the review stay the emulator's."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._issued: dict[str, str] = {}  # our token -> the emulator's (only ours verify)

    def issue(self, *args: Any, **kwargs: Any) -> tuple[str, int]:
        token, expires = self._inner.issue(*args, **kwargs)
        header, payload, _ = token.split(".")
        header_json = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
        signed = f"{_b64(json.dumps({**header_json, 'alg': 'RS256'}).encode())}.{payload}"
        signature = self._key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        ours = f"{signed}.{_b64(signature)}"
        self._issued[ours] = token
        return ours, expires

    def verify(self, token: str, **kwargs: Any) -> dict[str, Any] | None:
        inner = self._issued.get(token)
        return None if inner is None else self._inner.verify(inner, **kwargs)


def request_token(api_url: str, namespace: str, audience: str = tenancy.TOKEN_AUDIENCE) -> str:
    """A token of the tenant ServiceAccount of ``namespace``, by TokenRequest."""
    request = urllib.request.Request(
        f"{api_url}/api/v1/namespaces/{namespace}/serviceaccounts/{tenancy.SERVICE_ACCOUNT}/token",
        data=json.dumps(
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"audiences": [audience], "expirationSeconds": 600},
            }
        ).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        token: str = json.load(response)["status"]["token"]
        return token


def login(bao: OpenBao, jwt: str, role: str) -> dict[str, Any]:
    """OpenBao's answer to a kubernetes auth login with ``jwt`` and ``role``."""
    answer: dict[str, Any] = bao.client("").auth.kubernetes.login(
        role=role, jwt=jwt, mount_point=tenancy.AUTH_MOUNT
    )
    return answer


def tenant_client(bao: OpenBao, api_url: str, namespace: str) -> hvac.Client:
    """A client logged in as ``namespace``'s tenant, as the operator logs in for it."""
    answer = login(bao, request_token(api_url, namespace), tenancy.vault_role(namespace))
    return bao.client(answer["auth"]["client_token"])


class Referee:
    """The replayed OpenBao, its database, the emulated API server and tenant clients."""

    def __init__(self, stack: Built, bao: OpenBao, db: Postgres, api: Any) -> None:
        self.stack, self.bao, self.db, self.api = stack, bao, db, api
        self.clients = {ns: tenant_client(bao, api.url, ns) for ns in (A, B)}


@pytest.fixture(scope="module")
def referee() -> Iterator[Referee]:
    stack = built("dev")
    ca = _any_ca()
    with (
        contextmanager(postgres_server)() as db,
        contextmanager(openbao_server)() as bao,
        run_apiserver_in_thread() as api,
    ):
        # The stack's own administrator role, which the database engine connects as.
        db.query(
            "postgres",
            db.password,
            f"create role {POSTGRES_ADMIN} superuser login password '{ADMIN_PASSWORD}'",
        )
        api.signer = RS256Signer(api.signer)
        replay(stack, bao, db, kubernetes_host=api.url, ca=ca)
        root = bao.client()
        for ns in (A, B):
            api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            api.create(
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": tenancy.SERVICE_ACCOUNT, "namespace": ns},
                }
            )
            root.secrets.kv.v2.create_or_update_secret(f"{ns}/app", {"k": ns}, mount_point="secret")
            root.secrets.kv.v1.create_or_update_secret(f"{ns}/app", {"k": ns}, mount_point="kv")
        yield Referee(stack, bao, db, api)


def _any_ca() -> str:
    # OpenBao wants a CA with disable_local_ca_jwt; the emulated API speaks plain HTTP, so any
    # well-formed certificate does: the first of certifi's bundle (a requests dependency).
    import certifi

    bundle = Path(certifi.where()).read_text()
    end = "-----END CERTIFICATE-----"
    return bundle[bundle.index("-----BEGIN CERTIFICATE-----") : bundle.index(end) + len(end)] + "\n"


# (namespace, engine, mount, path): whether Vault policy and the operator's check allow it.
CASES: list[tuple[str, str, str, str, bool]] = [
    (A, "kv-v2", "secret", "team-a/app", True),
    (A, "kv-v2", "secret", "team-a/deep/nested/path", True),
    (A, "kv-v2", "secret", "team-b/app", False),
    (A, "kv-v2", "secret", "team-ab/app", False),  # a prefix of another tenant's name
    (A, "kv-v2", "secret", "team-a", False),  # the namespace's root itself
    (A, "kv-v2", "secret", "team/app", False),
    (A, "kv-v1", "kv", "team-a/app", True),
    (A, "kv-v1", "kv", "team-b/app", False),
    (A, "kv-v1", "kv", "team-ab/app", False),
    (A, "database", "database", "team-a", True),
    (A, "database", "database", "team-a.readonly", True),
    (A, "database", "database", "team-a.unknown", True),  # allowed by policy; no such role
    (A, "database", "database", "team-b", False),
    (A, "database", "database", "team-b.readonly", False),
    (A, "database", "database", "team-ab", False),
    (A, "database", "database", "team", False),
    (B, "kv-v2", "secret", "team-b/app", True),
    (B, "kv-v2", "secret", "team-a/app", False),
    (B, "database", "database", "team-b.readonly", True),
    (B, "database", "database", "team-a", False),
]
IDS = [f"{c[0]}:{c[2]}/{c[3]}" for c in CASES]


def vault_allows(client: hvac.Client, engine: str, mount: str, path: str) -> bool:
    """Whether OpenBao lets ``client`` read: any answer but 403 (404 and 400 for missing
    data or roles come after the policy check)."""
    if engine == "kv-v2":
        call: Any = lambda: client.secrets.kv.v2.read_secret_version(  # noqa: E731
            path, mount_point=mount, raise_on_deleted_version=True
        )
    elif engine == "kv-v1":
        call = lambda: client.secrets.kv.v1.read_secret(path, mount_point=mount)  # noqa: E731
    else:
        call = lambda: client.secrets.database.generate_credentials(path, mount_point=mount)  # noqa: E731
    return status(call) != 403


def operator_allows(namespace: str, engine: str, mount: str, path: str) -> bool:
    try:
        check_allowed(Config(), namespace, VaultSource(engine=engine, mount=mount, path=path))
    except VaultPathNotAllowed:
        return False
    return True


@pytest.mark.parametrize(("namespace", "engine", "mount", "path", "allowed"), CASES, ids=IDS)
def test_openbao_and_the_operator_agree_on_every_case(
    referee: Referee, namespace: str, engine: str, mount: str, path: str, allowed: bool
) -> None:
    assert vault_allows(referee.clients[namespace], engine, mount, path) is allowed
    assert operator_allows(namespace, engine, mount, path) is allowed


def test_tenant_reads_its_own_values(referee: Referee) -> None:
    client = referee.clients[A]
    kv2 = client.secrets.kv.v2.read_secret_version(
        "team-a/app", mount_point="secret", raise_on_deleted_version=True
    )
    assert kv2["data"]["data"] == {"k": A}
    assert client.secrets.kv.v1.read_secret("team-a/app", mount_point="kv")["data"] == {"k": A}


def creds(referee: Referee, namespace: str, role: str) -> dict[str, Any]:
    answer: dict[str, Any] = referee.clients[namespace].secrets.database.generate_credentials(
        role, mount_point="database"
    )
    return answer


def test_database_credentials_work_and_stay_in_the_tenant_schema(referee: Referee) -> None:
    db = referee.db
    rw, ro = creds(referee, A, "team-a")["data"], creds(referee, A, "team-a.readonly")["data"]
    other = creds(referee, B, "team-b")["data"]
    db.query(
        rw["username"],
        rw["password"],
        "create table orders (id int); insert into orders values (1)",
    )
    assert db.query(ro["username"], ro["password"], "select count(*) from orders") == [(1,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.query(ro["username"], ro["password"], "insert into orders values (2)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.query(other["username"], other["password"], 'select * from "team-a".orders')
    # New credentials of the same role keep the tenant's tables (owned by its group role).
    again = creds(referee, A, "team-a")["data"]
    assert db.query(again["username"], again["password"], "select count(*) from orders") == [(1,)]


def test_leases_are_renewed_and_revoked_by_their_own_tenant_only(referee: Referee) -> None:
    a, b = referee.clients[A], referee.clients[B]
    own = creds(referee, A, "team-a.readonly")["lease_id"]
    theirs = creds(referee, B, "team-b.readonly")["lease_id"]
    renew = lambda c, lease: lambda: c.adapter.put(f"/v1/sys/leases/renew/{lease}")  # noqa: E731
    revoke = lambda c, lease: lambda: c.adapter.put(f"/v1/sys/leases/revoke/{lease}")  # noqa: E731
    assert status(renew(a, theirs)) == 403
    assert status(revoke(a, theirs)) == 403
    # The body forms, which no policy can scope, are not granted at all.
    assert status(lambda: a.sys.renew_lease(theirs)) == 403
    assert status(lambda: a.sys.revoke_lease(theirs)) == 403
    assert status(lambda: a.sys.renew_lease(own)) == 403
    assert (
        status(lambda: a.adapter.put("/v1/sys/leases/revoke-prefix/database/creds/team-b")) == 403
    )
    # B's lease is alive; A's own lease renews and revokes by path.
    assert referee.bao.client().sys.read_lease(theirs)["data"]["id"] == theirs
    assert status(renew(a, own)) == 200
    assert status(revoke(a, own)) == 200
    assert status(lambda: referee.bao.client().sys.read_lease(own)) == 400  # gone
    assert status(revoke(b, theirs)) == 200


def test_tenant_cannot_write_policies_or_roles(referee: Referee) -> None:
    a = referee.clients[A]
    assert (
        status(
            lambda: a.sys.create_or_update_policy("mine", 'path "*" { capabilities = ["sudo"] }')
        )
        == 403
    )
    assert (
        status(
            lambda: a.write("auth/kubernetes/role/mirage-team-b", token_policies=["tenant-team-a"])
        )
        == 403
    )
    assert (
        status(
            lambda: a.secrets.kv.v2.create_or_update_secret(
                "team-a/x", {"k": "v"}, mount_point="secret"
            )
        )
        == 403
    )
    assert status(lambda: a.auth.token.lookup_self()) == 200  # its own token only
    assert a.auth.token.lookup_self()["data"]["policies"] == [tenancy.vault_policy_name(A)]


async def test_operator_client_renews_and_revokes_under_the_tenant_policy(referee: Referee) -> None:
    """The operator's own login and lease calls (path forms) against OpenBao: it logs in
    with the tenant's ServiceAccount token from the emulated API."""
    requested: list[tuple[str, str, str]] = []

    async def token_for(namespace: str, account: str, audience: str, _seconds: int) -> str:
        requested.append((namespace, account, audience))
        return await asyncio.to_thread(request_token, referee.api.url, namespace, audience)

    config = Config(vault_address=referee.bao.address, vault_retries=0)
    client = VaultClient(config, token_for=token_for)
    source = VaultSource(engine="database", mount="database", path="team-a.readonly")
    try:
        read = await client.read(A, source)
        assert read.lease is not None and read.data["username"]
        renewed = await client.renew_lease(A, source, read.lease)
        assert renewed.duration > 0 and renewed.lease_id == read.lease.lease_id
        await client.revoke_lease(A, source, read.lease.lease_id)
        assert status(lambda: referee.bao.client().sys.read_lease(read.lease.lease_id)) == 400
        theirs = creds(referee, B, "team-b.readonly")["lease_id"]
        other = VaultSource(engine="database", mount="database", path="team-b.readonly")
        with pytest.raises(VaultPathNotAllowed):  # the operator's check, before any call
            await client.revoke_lease(A, other, theirs)
        with pytest.raises(VaultPathNotAllowed):
            await client.read(
                A, VaultSource(engine="kv-v2", mount="secret", path="team-a/../team-b/app")
            )
        # Vault's own denial, for a path the operator's check was told to allow.
        lax = VaultClient(
            Config(vault_address=referee.bao.address, vault_retries=0, vault_allowed_paths=("*",)),
            token_for=token_for,
        )
        try:
            with pytest.raises(VaultPermissionDenied):
                await lax.read(A, VaultSource(engine="kv-v2", mount="secret", path="team-b/app"))
        finally:
            await lax.close()
        stale = Lease(theirs, 60, 0)
        with pytest.raises(VaultPathNotAllowed):
            await client.renew_lease(A, source, stale)
        assert set(requested) == {(A, tenancy.SERVICE_ACCOUNT, tenancy.TOKEN_AUDIENCE)}
    finally:
        await client.close()


def test_login_with_an_emulated_serviceaccount_token(referee: Referee) -> None:
    """The role binds the tenant's ServiceAccount, its namespace and the audience ``vault``;
    its token carries the tenant policy only, with the role's TTL."""
    bao, url = referee.bao, referee.api.url
    answer = login(bao, request_token(url, A), tenancy.vault_role(A))["auth"]
    assert answer["policies"] == [tenancy.vault_policy_name(A)]
    assert answer["metadata"]["service_account_namespace"] == A
    declared = role_of(referee.stack, A).inputs
    assert answer["lease_duration"] == int(declared["tokenTtl"])
    assert status(lambda: login(bao, request_token(url, A), tenancy.vault_role(B))) == 403
    wrong_audience = request_token(url, A, audience="https://kubernetes.default.svc")
    assert status(lambda: login(bao, wrong_audience, tenancy.vault_role(A))) == 403
    assert status(lambda: login(bao, "not-a-token", tenancy.vault_role(A))) in (400, 403)


def test_the_grants_the_contract_avoids_would_let_a_touch_b_leases(referee: Referee) -> None:
    """Why the contract's policy looks as it does: Vault's ``default`` policy renews any
    lease by body, and ``sys/leases/revoke`` (the sandbox's former grant) revokes any."""
    root = referee.bao.client()
    root.sys.create_or_update_policy(
        name="former-tenant-a",
        policy=tenancy.tenant_policy_hcl(A)
        + 'path "sys/leases/revoke" { capabilities = ["update"] }',
    )
    former = referee.bao.client(
        root.auth.token.create(policies=["former-tenant-a"])["auth"]["client_token"]  # + default
    )
    theirs = creds(referee, B, "team-b.readonly")["lease_id"]
    assert status(lambda: former.sys.renew_lease(theirs)) == 200
    assert status(lambda: former.sys.revoke_lease(theirs)) == 200
    assert status(lambda: root.sys.read_lease(theirs)) == 400  # B's lease is gone
