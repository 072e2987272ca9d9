"""VaultSecret end to end: the real operator process, the (emulated) API server and Vault,
each test on both Vaults: the emulated one and a real OpenBao (with a real PostgreSQL behind
its database engine).

Clocks are the operator's own: refresh intervals of seconds, a 3 s resync (its Secret list
calls count reconciles), database leases of 10 s. Vault calls are counted from the emulated
Vault's request log or OpenBao's audit log, Kubernetes writes from the emulated API's.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import pytest
import requests

from mirage_operator.render.vaultsecret import restart_annotation
from tests.e2e.conftest import Cluster, only_on, service, wait_ready
from tests.e2e.helpers import assert_steady, wait_object_resyncs, wait_resyncs
from tests.e2e.kube import Kube, wait_for
from tests.e2e.vault import DB_TTL, LONG_DB_TTL

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-vault")]


@pytest.fixture
def cluster(vault_cluster: Cluster) -> Cluster:
    """Every test here runs on both Vaults (``ns`` and ``tenant`` follow this override)."""
    return vault_cluster


def vault_secret(name: str, namespace: str, path: str, **spec: Any) -> dict[str, Any]:
    """A VaultSecret document reading ``path`` (KV v2 unless ``vault`` says otherwise)."""
    vault = {"path": path, **spec.pop("vault", {})}
    return {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "VaultSecret",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"vault": vault, **spec},
    }


def secret_data(kube: Kube, namespace: str, name: str) -> dict[str, str] | None:
    """The decoded data of a Secret, or ``None`` when it does not exist."""
    secret = kube.get("Secret", namespace, name)
    if secret is None:
        return None
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def condition(kube: Kube, namespace: str, name: str, type_: str = "Ready") -> dict[str, Any]:
    return kube.condition("VaultSecret", namespace, name, type_) or {}


def wait_condition(
    kube: Kube, namespace: str, name: str, status: str, reason: str, timeout: float = 30
) -> dict[str, Any]:
    """Wait for the VaultSecret's Ready condition to have ``status`` and ``reason``."""

    def matches() -> dict[str, Any] | None:
        ready = condition(kube, namespace, name)
        return ready if (ready.get("status"), ready.get("reason")) == (status, reason) else None

    return wait_for(matches, timeout=timeout, what=f"{namespace}/{name} Ready={status}/{reason}")


def secret_value() -> str:
    """A value no test expects anywhere but in a Secret and in Vault."""
    return f"s3cret-{uuid.uuid4().hex}"


def test_sync_writes_the_secret_and_status_then_costs_nothing(
    cluster: Cluster, tenant: str
) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    password = secret_value()
    vault.put(f"{tenant}/db", {"username": "orders", "password": password})
    kube.apply(
        vault_secret(
            "db",
            tenant,
            f"{tenant}/db",
            keys=[{"from": "username"}, {"from": "password"}],
            templates={"url": "postgres://{{ data.username }}:{{ data.password }}@db/orders"},
        )
    )
    body = wait_ready(kube, tenant, "db", kind="VaultSecret")
    assert secret_data(kube, tenant, "db") == {
        "username": "orders",
        "password": password,
        "url": f"postgres://orders:{password}@db/orders",
    }
    status = body["status"]
    assert status["secretName"] == "db" and status["vaultVersion"] == 1
    assert len(status["secretMAC"]) == 64 and status["lastSyncTime"]
    assert condition(kube, tenant, "db", "Synced")["status"] == "True"
    secret = kube.get("Secret", tenant, "db")
    assert secret is not None
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("VaultSecret", body["metadata"]["uid"])
    if cluster.emulator is not None:
        assert_steady(cluster, tenant, resource="secrets", verb="get")


def template_annotations(deployment: dict[str, Any]) -> dict[str, str]:
    """The annotations of a Deployment's pod template."""
    meta = deployment["spec"]["template"].get("metadata") or {}
    return dict(meta.get("annotations") or {})


def deployment_generation(kube: Kube, namespace: str, name: str) -> int:
    body = kube.get("Deployment", namespace, name)
    assert body is not None, f"Deployment {name} missing"
    return int(body["metadata"]["generation"])


@only_on("emulated")
def test_a_label_dropped_from_the_spec_is_removed_from_the_created_secret(
    cluster: Cluster, tenant: str
) -> None:
    """The Secret is created (a POST: its fields belong to the create's ``Update`` entry in
    managedFields), then applied: an apply alone would keep a label the spec drops, since
    the create still owns it; the operator removes it (docs/adr/0126)."""
    kube, vault = cluster.kube, cluster.require_vault()
    vault.put(f"{tenant}/app", {"password": secret_value()})
    labels = {"team": "a", "tier": "db"}
    kube.apply(vault_secret("app", tenant, f"{tenant}/app", destination={"labels": labels}))
    wait_ready(kube, tenant, "app", kind="VaultSecret")
    secret = kube.get("Secret", tenant, "app")
    assert secret is not None and secret["metadata"]["labels"]["tier"] == "db"
    kube.apply(vault_secret("app", tenant, f"{tenant}/app", destination={"labels": {"team": "a"}}))

    def labels_now() -> dict[str, str] | None:
        live = kube.get("Secret", tenant, "app") or {}
        found = dict(live.get("metadata", {}).get("labels") or {})
        return found if "tier" not in found else None

    assert wait_for(labels_now, what="label tier removed")["team"] == "a"


def test_rotation_rolls_the_service_deployment_exactly_once(cluster: Cluster, tenant: str) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    path = f"{tenant}/api/db"
    vault.put(path, {"password": secret_value()})
    secrets = [{"name": "db", "vault": {"path": path}, "refreshInterval": "2s"}]
    kube.apply(service("api", tenant, secrets=secrets))
    wait_ready(kube, tenant, "api")
    deployment = kube.get("Deployment", tenant, "api")
    assert deployment is not None
    generation = deployment["metadata"]["generation"]
    checksum = template_annotations(deployment)["mirage.dev/checksum"]

    rotated = secret_value()
    vault.put(path, {"password": rotated})
    wait_for(
        lambda: secret_data(kube, tenant, "api-db") == {"password": rotated},
        what="Secret api-db rotated",
    )
    rolled = wait_for(
        lambda: (
            (d := kube.get("Deployment", tenant, "api"))
            and template_annotations(d)["mirage.dev/checksum"] != checksum
            and d
        ),
        what="pod template checksum changed",
    )
    assert rolled["metadata"]["generation"] == generation + 1
    if cluster.emulator is not None:
        # Refreshes keep reading Vault (unchanged data) across resyncs: no second rollout.
        # (Child events also trigger reconciles, so the Vault reads are the clock here.)
        reads = vault.reads(path)
        wait_for(
            lambda: vault.reads(path) >= reads + 2,
            timeout=20,
            what="two more refreshes of unchanged data",
        )
        wait_object_resyncs(cluster, count=2)
        assert deployment_generation(kube, tenant, "api") == generation + 1
    wait_ready(kube, tenant, "api")


def worker(namespace: str) -> dict[str, Any]:
    """A plain Deployment, not managed by Mirage, that a VaultSecret restarts."""
    labels = {"app": "worker"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "worker", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "worker", "image": "registry.example/w:1"}]},
            },
        },
    }


def test_restart_targets_roll_only_on_change_even_across_operator_restarts(
    cluster: Cluster, tenant: str
) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    path = f"{tenant}/worker"

    def reads() -> int:
        return vault.reads(path)

    def wait_reads(more: int) -> None:
        target = reads() + more
        # Polled: a generous bound for an operator (re)start on a loaded machine.
        wait_for(lambda: reads() >= target, timeout=60, what=f"{more} more reads of {path}")

    kube.apply(worker(tenant))
    vault.put(path, {"token": secret_value()})
    targets = [{"kind": "Deployment", "name": "worker"}]
    kube.apply(
        vault_secret("cfg", tenant, path, refreshInterval="1s", rolloutRestartTargets=targets)
    )
    wait_ready(kube, tenant, "cfg", kind="VaultSecret")
    generation = deployment_generation(kube, tenant, "worker")
    secret_version = kube.get("Secret", tenant, "cfg")["metadata"]["resourceVersion"]  # type: ignore[index]

    wait_reads(2)  # two refreshes find nothing new
    cluster.operator.restart()
    wait_reads(2)  # the check at start, then a refresh
    assert deployment_generation(kube, tenant, "worker") == generation
    assert kube.get("Secret", tenant, "cfg")["metadata"]["resourceVersion"] == secret_version  # type: ignore[index]

    # A change made while the operator is down is caught when it starts, and rolls once.
    cluster.operator.stop()
    rotated = secret_value()
    vault.put(path, {"token": rotated})
    cluster.operator.start()
    wait_for(lambda: secret_data(kube, tenant, "cfg") == {"token": rotated}, what="rotated")

    def restarted_for_current_data() -> dict[str, Any] | None:
        mac = (kube.get("VaultSecret", tenant, "cfg") or {}).get("status", {}).get("secretMAC")
        deployment = kube.get("Deployment", tenant, "worker") or {"spec": {"template": {}}}
        annotation = template_annotations(deployment).get(restart_annotation("cfg"))
        return deployment if mac and annotation == mac else None

    restarted = wait_for(restarted_for_current_data, what="worker restarted")
    assert restarted["metadata"]["generation"] == generation + 1
    wait_reads(2)
    assert deployment_generation(kube, tenant, "worker") == generation + 1


def test_refresh_zero_reads_only_on_spec_change_or_force_sync(
    cluster: Cluster, tenant: str
) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    emulator = cluster.require_emulator()
    path = f"{tenant}/static"
    first, second = secret_value(), secret_value()
    vault.put(path, {"key": first})
    kube.apply(vault_secret("static", tenant, path, refreshInterval="0"))
    wait_ready(kube, tenant, "static", kind="VaultSecret")
    reads = vault.reads(path)

    vault.put(path, {"key": second})
    wait_resyncs(emulator, tenant, time.time(), count=2, resource="secrets", verb="get")
    assert secret_data(kube, tenant, "static") == {"key": first}
    assert vault.reads(path) == reads

    kube.merge_patch(
        "VaultSecret",
        tenant,
        "static",
        {"metadata": {"annotations": {"mirage.dev/force-sync": "1"}}},
    )
    wait_for(lambda: secret_data(kube, tenant, "static") == {"key": second}, what="force-sync")
    wait_for(
        lambda: (
            (kube.get("VaultSecret", tenant, "static") or {}).get("status", {}).get("lastForceSync")
            == "1"
        ),
        what="lastForceSync recorded",
    )
    wait_resyncs(emulator, tenant, time.time(), count=1, resource="secrets", verb="get")
    assert vault.reads(path) == reads + 1


def test_vault_outage_keeps_the_secret_and_recovers_within_one_backoff(
    cluster: Cluster, tenant: str
) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    path = f"{tenant}/outage"
    value = secret_value()
    vault.put(path, {"key": value})
    kube.apply(vault_secret("outage", tenant, path, refreshInterval="2s"))
    wait_ready(kube, tenant, "outage", kind="VaultSecret")
    secret = kube.get("Secret", tenant, "outage")
    assert secret is not None

    vault.seal()  # OpenBao's own seal on the real server
    try:
        ready = wait_condition(kube, tenant, "outage", "False", "VaultUnavailable")
    finally:
        vault.unseal()
    back = time.monotonic()
    assert "keeps its last good data" in ready["message"]
    after = kube.get("Secret", tenant, "outage")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == secret["metadata"]["resourceVersion"]
    assert secret_data(kube, tenant, "outage") == {"key": value}
    wait_condition(kube, tenant, "outage", "True", "SecretSynced")
    # The first retries come after 5 s, then 10 s: one backoff, not a minute.
    assert time.monotonic() - back < 12


@only_on("openbao")
def test_vault_stopped_and_started_keeps_the_secret_and_needs_no_new_login(
    cluster: Cluster, tenant: str
) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    path = f"{tenant}/restart"
    vault.put(path, {"key": secret_value()})
    kube.apply(vault_secret("restart", tenant, path, refreshInterval="1s"))
    wait_ready(kube, tenant, "restart", kind="VaultSecret")
    before = kube.get("Secret", tenant, "restart")
    logins = vault.logins(f"mirage-{tenant}")

    def down() -> None:
        ready = wait_condition(kube, tenant, "restart", "False", "VaultUnavailable")
        assert "keeps its last good data" in ready["message"]

    vault.restart(down)  # a real process stop; started again from its storage
    after = kube.get("Secret", tenant, "restart")
    assert before is not None and after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    rotated = secret_value()
    vault.put(path, {"key": rotated})
    wait_for(lambda: secret_data(kube, tenant, "restart") == {"key": rotated}, timeout=40)
    wait_condition(kube, tenant, "restart", "True", "SecretSynced")
    # Vault kept the token across its restart: the operator did not need to log in again.
    assert vault.logins(f"mirage-{tenant}") == logins


def test_another_namespaces_path_is_refused_by_the_operator_and_by_vault_policy(
    cluster: Cluster, tenant: str
) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    other = cluster.namespace()
    vault.add_tenant(other)
    vault.put(f"{other}/db", {"password": secret_value()})
    vault.put(f"{other}/shared/db", {"password": secret_value()})

    kube.apply(vault_secret("theirs", tenant, f"{other}/db"))
    refused = wait_condition(kube, tenant, "theirs", "False", "VaultPathNotAllowed")
    assert "spec.vault.path" in refused["message"] and f"{other}/db" in refused["message"]
    # The operator's allowed-path check lets `*/shared/*` through here (conftest): Vault policy
    # for this namespace's role still refuses it.
    kube.apply(vault_secret("shared", tenant, f"{other}/shared/db"))
    denied = wait_condition(kube, tenant, "shared", "False", "VaultPermissionDenied")
    assert f"{other}/shared/db" in denied["message"]
    assert kube.get("Secret", tenant, "theirs") is None
    assert kube.get("Secret", tenant, "shared") is None
    if cluster.emulator is not None:
        assert vault.reads(f"{other}/db") == 0
        denials = vault.denials(f"{other}/shared/db")
        assert denials >= 1
        # No retry storm: the invalid spec is not retried at all, the denied read backs off.
        # (A healthy VaultSecret's resyncs are the clock.)
        vault.put(f"{tenant}/mine", {"key": secret_value()})
        kube.apply(vault_secret("mine", tenant, f"{tenant}/mine"))
        wait_ready(kube, tenant, "mine", kind="VaultSecret")
        start = time.time()
        wait_resyncs(cluster.emulator, tenant, start, count=3, resource="secrets", verb="get")
        writes = cluster.emulator.write_calls("vaultsecrets", tenant, since=start)
        assert [r for r in writes if r.name == "theirs"] == []
        assert vault.denials(f"{other}/shared/db") <= denials + 2


def database_secret(
    kube: Kube, tenant: str, role: str = "app", ttl: int = DB_TTL
) -> tuple[dict[str, Any], dict[str, str]]:
    """A VaultSecret issuing the tenant's database credentials of ``role`` (whose leases last
    ``ttl``), Ready; (object, credentials)."""
    kube.apply(vault_secret("creds", tenant, f"{tenant}.{role}", vault={"engine": "database"}))
    body = wait_ready(kube, tenant, "creds", kind="VaultSecret")
    creds = secret_data(kube, tenant, "creds")
    assert creds is not None and set(creds) == {"username", "password"}
    assert body["status"]["leaseDuration"] == ttl
    return body, creds


def renewal_past(kube: Kube, tenant: str, lease_id: str, expiry: str, ttl: int = DB_TTL) -> str:
    """Wait until the lease was renewed to end after ``expiry`` (the same lease: credentials
    were renewed, not replaced); the new expiry."""

    def renewed() -> str | None:
        status = (kube.get("VaultSecret", tenant, "creds") or {}).get("status", {})
        assert status.get("leaseID") == lease_id, "credentials replaced instead of renewed"
        later = status.get("leaseExpiry")
        return later if later and later > expiry else None

    return wait_for(renewed, timeout=3 * ttl, what=f"lease renewed past {expiry}")


def valid_until(cluster: Cluster, username: str) -> Any:
    """The PostgreSQL role's VALID UNTIL (real Vault only; ``None`` on the emulator)."""
    vault = cluster.require_vault()
    if vault.postgres is None:
        return None
    role = vault.postgres.role(username)
    assert role is not None, f"role {username} missing"
    return role[1]


def test_database_credentials_renewed_before_expiry_and_revoked_on_delete(
    cluster: Cluster, tenant: str
) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    body, creds = database_secret(kube, tenant)
    user, password = creds["username"], creds["password"]
    assert vault.credentials_work(user, password)  # a real login on PostgreSQL
    lease_id, first_expiry = body["status"]["leaseID"], body["status"]["leaseExpiry"]
    first_until = valid_until(cluster, user)

    second_expiry = renewal_past(kube, tenant, lease_id, first_expiry)
    renewal_past(kube, tenant, lease_id, second_expiry)
    # Two renewals in, the first grant has run out: the same credentials still work, and
    # the renewals moved the role's VALID UNTIL.
    assert vault.credentials_work(user, password)
    assert secret_data(kube, tenant, "creds") == creds
    if first_until is not None:
        assert valid_until(cluster, user) > first_until

    kube.delete("VaultSecret", tenant, "creds")
    wait_for(lambda: kube.get("VaultSecret", tenant, "creds") is None, what="VaultSecret gone")
    assert not vault.lease_alive(lease_id)
    assert not vault.credentials_work(user, password)
    if vault.postgres is not None:
        assert vault.postgres.role(user) is None, "revocation dropped the role"


def test_database_credentials_survive_an_operator_restart(cluster: Cluster, tenant: str) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    # A lease longer than the restart takes: the restarted operator must find it alive.
    body, creds = database_secret(kube, tenant, "long", LONG_DB_TTL)
    lease_id = body["status"]["leaseID"]
    secret_version = kube.get("Secret", tenant, "creds")["metadata"]["resourceVersion"]  # type: ignore[index]

    cluster.operator.restart()
    # The restarted operator takes the lease over from the status: it renews the same lease
    # (its old token is gone with the process, so a new login; the lease lives on).
    expiry = (kube.get("VaultSecret", tenant, "creds") or {})["status"]["leaseExpiry"]
    renewal_past(kube, tenant, lease_id, expiry, LONG_DB_TTL)
    assert vault.credentials_work(creds["username"], creds["password"])
    assert secret_data(kube, tenant, "creds") == creds
    assert kube.get("Secret", tenant, "creds")["metadata"]["resourceVersion"] == secret_version  # type: ignore[index]


def test_vault_calls_one_login_per_token_lifetime_and_one_read_per_refresh(
    cluster: Cluster, tenant: str
) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    refresh = 1
    paths = {name: f"{tenant}/calls/{name}" for name in ("a", "b")}
    for name, path in paths.items():
        vault.put(path, {"key": secret_value()})
        kube.apply(vault_secret(name, tenant, path, refreshInterval=f"{refresh}s"))
    for name in paths:
        wait_ready(kube, tenant, name, kind="VaultSecret")

    def reads(path: str) -> int:
        return vault.reads(path)

    before = {name: reads(path) for name, path in paths.items()}
    start = time.monotonic()
    wait_for(lambda: reads(paths["a"]) >= before["a"] + 4, what="four refreshes")
    elapsed = time.monotonic() - start
    for name, path in paths.items():
        assert reads(path) - before[name] <= elapsed / refresh + 1, name
    # Both VaultSecrets share their namespace's token: one login for the token's lifetime.
    assert vault.logins(f"mirage-{tenant}") == 1


def test_secret_values_appear_nowhere_but_in_the_secret(cluster: Cluster, tenant: str) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    path = f"{tenant}/leak"
    values = [secret_value() for _ in range(3)]
    vault.put(path, {"username": "svc", "password": values[0]})
    secrets = [
        {
            "name": "leak",
            "vault": {"path": path},
            "refreshInterval": "2s",
            "templates": {"DSN": "db://{{ data.username }}:{{ data.password }}@db"},
        }
    ]
    kube.apply(service("leaky", tenant, secrets=secrets))
    wait_ready(kube, tenant, "leaky")
    for value in values[1:]:
        vault.put(path, {"username": "svc", "password": value})
        wait_for(
            lambda value=value: (
                (secret_data(kube, tenant, "leaky-leak") or {}).get("DSN") == f"db://svc:{value}@db"
            ),
            what="rotated",
        )
    if cluster.emulator is not None:
        # The failure path too: errors are reported by reason and path.
        vault.seal()
        try:
            wait_condition(kube, tenant, "leaky-leak", "False", "VaultUnavailable")
        finally:
            vault.unseal()
        wait_ready(kube, tenant, "leaky-leak", kind="VaultSecret")

    texts = {
        "operator log": cluster.operator.log,
        "events": str(kube.list("Event", tenant)),
        "statuses": str([b.get("status") for b in kube.list("VaultSecret", tenant)]),
        "services": str(kube.list("MirageService", tenant)),
        "deployments": str(kube.list("Deployment", tenant)),
        "metrics": requests.get(
            f"http://127.0.0.1:{cluster.operator.metrics_port}/metrics", timeout=10
        ).text,
    }
    for value in values:
        encoded = base64.b64encode(value.encode()).decode()
        for where, text in texts.items():
            assert value not in text and encoded not in text, where


def test_namespace_without_its_vault_service_account_is_told_so(cluster: Cluster, ns: str) -> None:
    kube = cluster.kube
    cluster.require_vault()
    kube.apply(vault_secret("db", ns, f"{ns}/db"))
    failed = wait_condition(kube, ns, "db", "False", "ServiceAccountTokenFailed")
    assert f"ServiceAccount {ns}/mirage-vault" in failed["message"]
    assert failed["message"].count("Kubernetes API 404") == 1, failed["message"]
    assert kube.get("Secret", ns, "db") is None
    kube.delete("VaultSecret", ns, "db")
    wait_for(lambda: kube.get("VaultSecret", ns, "db") is None, what="VaultSecret deleted")


def test_a_token_revoked_behind_the_operators_back_is_replaced_by_one_login(
    cluster: Cluster, tenant: str
) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    path = f"{tenant}/revoked"
    role = f"mirage-{tenant}"
    vault.put(path, {"key": secret_value()})
    kube.apply(vault_secret("revoked", tenant, path, refreshInterval="1s"))
    wait_ready(kube, tenant, "revoked", kind="VaultSecret")
    logins = vault.logins(role)
    vault.revoke_token_of(path)  # on OpenBao: auth/token/revoke-accessor, as an admin would

    rotated = secret_value()
    vault.put(path, {"key": rotated})
    wait_for(lambda: secret_data(kube, tenant, "revoked") == {"key": rotated}, what="rotated")
    assert vault.logins(role) == logins + 1
    assert condition(kube, tenant, "revoked")["status"] == "True"
