"""The VaultSecret reconciler against an in-memory Kubernetes API and the emulated Vault, on a
clock the tests move: when it reads Vault, writes the Secret, restarts targets, and fails."""

from __future__ import annotations

import base64
import copy
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import kopf
import pytest
from prometheus_client import generate_latest

from mirage_operator.config import Config
from mirage_operator.handlers import common, vaultsecret
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.handlers.vaultsecret import destination
from mirage_operator.handlers.vaultsecret import reconciler as handler
from mirage_operator.k8s.children import INTENT_ANNOTATION
from mirage_operator.metrics import REGISTRY
from mirage_operator.render.meta import MANAGED_BY, MANAGED_BY_LABEL
from mirage_operator.render.secret import HMAC_KEY_FIELD, secret_mac
from mirage_operator.render.vaultsecret import restart_annotation
from mirage_operator.template_worker import TemplateRunner
from mirage_operator.vault import VaultClient
from mirage_operator.vault.schedule import BACKOFF_MIN
from mirage_sandbox.vault import EmulatedVault
from tests.unit.handlers.fakes import Connection, FakeKube
from tests.unit.vault.vaultkit import TOKEN_MAX_TTL, FakeClock, Sleeps

LOGGER = logging.getLogger("test.vaultsecret")


def watched(obj: dict[str, Any]) -> bool:
    """Whether the operator's watch of Secrets shows ``obj`` (docs/adr/0126)."""
    labels = obj["metadata"].get("labels") or {}
    return bool(labels.get(MANAGED_BY_LABEL) == MANAGED_BY)


NS = "team-a"
PASSWORD = "pw-7Qe2-never-shown"
ROTATED = "pw-rotated-9Kd1-never-shown"


@dataclass
class Harness:
    """The reconciler with its fake API server, emulated Vault and recorded Events."""

    kube: FakeKube
    vault: EmulatedVault
    clock: FakeClock
    config: Config
    events: list[tuple[str, str]]
    reconciler: handler.VaultSecretReconciler
    clients: list[VaultClient] = field(default_factory=list)
    runners: list[TemplateRunner] = field(default_factory=list)

    def new_reconciler(self, **config: Any) -> handler.VaultSecretReconciler:
        """A reconciler of a fresh operator process (empty memory, new Vault client)."""
        merged = Config(**{**self.config.__dict__, **config})
        client = VaultClient(
            merged, token_for=self.kube.request_token, clock=self.clock, sleep=Sleeps()
        )
        self.clients.append(client)
        context = OperatorContext(config=merged, kube=cast(Any, Connection(self.kube)))
        # The initial listing of the watch of Secrets: those Mirage labels.
        for (kind, _, _), obj in self.kube.objects.items():
            if kind == "Secret" and watched(obj):
                context.children.update(copy.deepcopy(obj))
        reconciler = handler.VaultSecretReconciler(
            context, vault=client, clock=self.clock, jitter=lambda: 1.0
        )
        self.runners.append(reconciler.templates)
        return reconciler

    def watch(self, obj: dict[str, Any], deleted: bool) -> None:
        """The operator's watch of Secrets, as the API server filters it (Mirage's label):
        an event of each change reaches the current process's index."""
        if obj["kind"] != "Secret":
            return
        index = self.reconciler.context.children
        if deleted or not watched(obj):  # gone, or no longer matching the selector
            index.remove(obj)
        else:
            index.update(obj)

    def create(self, name: str = "app", **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": "mirage.dev/v1alpha1",
            "kind": "VaultSecret",
            "metadata": {"name": name, "namespace": NS, "generation": 1},
            "spec": {"vault": {"path": f"{NS}/app"}, "refreshInterval": "1m", **spec},
        }
        return self.kube.put(body)

    def body(self, name: str = "app") -> dict[str, Any]:
        return copy.deepcopy(self.kube.objects[("VaultSecret", NS, name)])

    def edit_spec(self, name: str = "app", **spec: Any) -> None:
        obj = self.kube.objects[("VaultSecret", NS, name)]
        obj["spec"].update(spec)
        obj["metadata"]["generation"] += 1

    async def sync(self, name: str = "app") -> float:
        return (await self.reconciler.run(self.body(name), LOGGER)).delay

    def secret(self, name: str = "app") -> dict[str, Any] | None:
        return self.kube.objects.get(("Secret", NS, name))

    def data(self, name: str = "app") -> dict[str, str]:
        secret = self.secret(name)
        assert secret is not None
        return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}

    def status(self, name: str = "app") -> dict[str, Any]:
        return dict(self.body(name).get("status") or {})

    def condition(self, type_: str, name: str = "app") -> dict[str, Any]:
        return next(c for c in self.status(name)["conditions"] if c["type"] == type_)

    def reads(self) -> int:
        return self.vault.count("GET", f"secret/data/{NS}/*")

    def restarts(self) -> list[tuple[str, str, str]]:
        return [w for w in self.kube.writes if w[0] == "patch"]

    def template_annotation(self, name: str = "web") -> str | None:
        deployment = self.kube.objects[("Deployment", NS, name)]
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        return cast(str | None, annotations.get(restart_annotation("app")))


@pytest.fixture
async def harness(
    vault: EmulatedVault, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    events: list[tuple[str, str]] = []
    monkeypatch.setattr(
        common,
        "post_event",
        lambda body, reason, message, warning=False: events.append((reason, message)),
    )
    kube = FakeKube()
    kube.put(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}}}},
        }
    )
    vault.put_kv(f"{NS}/app", {"username": "app", "password": PASSWORD})
    config = Config(
        vault_address=vault.address, operator_namespace="mirage-system", vault_retries=0
    )
    made = Harness(kube, vault, clock, config, events, reconciler=cast(Any, None))
    made.reconciler = made.new_reconciler()
    kube.watchers.append(made.watch)
    yield made
    for client in made.clients:
        await client.close()
    for runner in made.runners:
        await runner.close()


# --- sync ---------------------------------------------------------------------------------


async def test_first_sync_writes_the_secret_and_status_without_restarting(h: Harness) -> None:
    h.create(rolloutRestartTargets=[{"kind": "Deployment", "name": "web"}])
    delay = await h.sync()
    assert h.data() == {"username": "app", "password": PASSWORD}
    secret = h.secret()
    assert secret is not None
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("VaultSecret", "app", True)
    status = h.status()
    key = base64.b64decode(
        h.kube.objects[("Secret", "mirage-system", "mirage-hmac-key")]["data"][HMAC_KEY_FIELD]
    )
    assert status["secretMAC"] == secret_mac(key, secret["data"])
    assert status["secretName"] == "app"
    assert status["vaultVersion"] == 1
    assert status["observedGeneration"] == 1
    assert status["lastSyncTime"]
    assert h.condition("Ready")["status"] == "True"
    assert h.condition("Synced")["reason"] == "VaultRead"
    # Nothing could have read the old data: no Secret existed.
    assert h.restarts() == []
    assert delay == pytest.approx(60)
    # The Secret's creation is the VaultSecret's first sync: its status says so, no Event.
    assert h.events == []


def secret_gets(h: Harness) -> list[tuple[str, bool]]:
    """(name, found) of each GET of a Secret in the tenant's namespace so far (the HMAC key
    lives in the operator's)."""
    return [
        (name, found)
        for kind, name, found in h.kube.gets
        if kind == "Secret" and name != "mirage-hmac-key"
    ]


async def test_a_first_sync_creates_the_secret_without_reading_it_first(h: Harness) -> None:
    """No Secret is known (the index of Secrets Mirage labels holds none): none is read, the
    Secret is created, and the create would fail on a name taken (docs/adr/0126)."""
    h.create()
    await h.sync()
    assert secret_gets(h) == []
    assert [w for w in h.kube.writes if w[1] == "Secret" and w[2] == "app"] == [
        ("create", "Secret", "app")
    ]
    # Later reconciles read the Secret they know (its data is not in the index).
    h.clock.advance(61)
    await h.sync()
    assert secret_gets(h) == [("app", True)]


@pytest.mark.parametrize("spec", [{"destination": {"overwrite": True}}])
async def test_a_secret_that_may_be_someone_elses_is_read_before_vault(
    h: Harness, spec: dict[str, Any]
) -> None:
    """Where reading Vault first would come too late (``overwrite`` expects a Secret Mirage
    did not create), the Secret is read before Vault, as before."""
    h.create(**spec)
    await h.sync()
    assert secret_gets(h) == [("app", False)]
    assert h.condition("Ready")["status"] == "True"


async def test_a_secret_of_its_own_that_lost_mirages_label_is_restored(h: Harness) -> None:
    """Out of the watch's sight (someone removed the label), the Secret looks gone: the
    create finds the name taken, the Secret is read, it is this VaultSecret's, and the
    apply restores it."""
    h.create()
    await h.sync()
    secret = h.kube.objects[("Secret", NS, "app")]
    del secret["metadata"]["labels"][MANAGED_BY_LABEL]
    h.watch(secret, False)  # the watch reports it gone from the selection
    h.clock.advance(61)
    await h.sync()
    restored = h.secret()
    assert restored is not None and watched(restored)
    assert h.data() == {"username": "app", "password": PASSWORD}
    assert h.condition("Ready")["status"] == "True"
    assert h.reconciler.memory[NS, "app"].taken is None


def test_what_a_create_set_and_the_spec_dropped_is_patched_away() -> None:
    """A created Secret's fields belong to the create's ``Update`` entry in managedFields as
    well as to later applies, so an apply that drops a label does not remove it: the patch
    removes what the operator's create set and the spec no longer asks for, and data keys
    Vault does not hold; never a label of someone else's (end to end, with the emulator's
    field management: tests/e2e/test_vaultsecret.py)."""
    manager = Config().field_manager
    live = {
        "metadata": {
            "labels": {"team": "a", "tier": "db", MANAGED_BY_LABEL: MANAGED_BY, "owner": "ops"},
            "annotations": {"note": "x", INTENT_ANNOTATION: "h"},
            "managedFields": [
                {
                    "manager": manager,
                    "operation": "Update",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:labels": {"f:team": {}, "f:tier": {}, f"f:{MANAGED_BY_LABEL}": {}},
                            "f:annotations": {"f:note": {}, f"f:{INTENT_ANNOTATION}": {}},
                        }
                    },
                },
                {
                    "manager": "kubectl-label",
                    "operation": "Update",
                    "fieldsV1": {"f:metadata": {"f:labels": {"f:owner": {}}}},
                },
                {
                    "manager": manager,
                    "operation": "Apply",
                    "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}, "f:tier": {}}}},
                },
            ],
        },
        "data": {"password": "cA==", "added": "eA=="},
    }
    desired = {
        "metadata": {"labels": {"team": "a", MANAGED_BY_LABEL: MANAGED_BY}},
        "data": {"password": "cA=="},
    }
    assert destination.stale_fields(desired, live, manager) == {
        "data": {"added": None},
        "metadata": {"labels": {"tier": None}, "annotations": {"note": None}},
    }
    assert destination.stale_fields({**desired, "data": live["data"]}, live, "other") == {}


async def test_steady_state_costs_no_vault_call_and_no_write(h: Harness) -> None:
    h.create()
    await h.sync()
    requests, writes = len(h.vault.requests), len(h.kube.writes)
    h.clock.advance(30)
    delay = await h.sync()
    assert (len(h.vault.requests), len(h.kube.writes)) == (requests, writes)
    assert delay == pytest.approx(30)


async def test_refresh_reads_once_per_interval_and_writes_only_the_sync_time(h: Harness) -> None:
    h.create(rolloutRestartTargets=[{"kind": "Deployment", "name": "web"}])
    await h.sync()
    before = h.status()
    h.kube.writes.clear()
    h.clock.advance(61)
    await h.sync()
    await h.sync()
    assert h.reads() == 2
    assert h.kube.writes == [("status", "VaultSecret", "app")]
    after = h.status()
    assert after["lastSyncTime"] > before["lastSyncTime"]
    assert after["secretMAC"] == before["secretMAC"]
    assert h.vault.logins() == 1


async def test_rotation_updates_the_secret_and_restarts_each_target_once(h: Harness) -> None:
    h.create(rolloutRestartTargets=[{"kind": "Deployment", "name": "web"}])
    await h.sync()
    first_mac = h.status()["secretMAC"]
    h.vault.put_kv(f"{NS}/app", {"username": "app", "password": ROTATED})
    h.clock.advance(61)
    await h.sync()
    assert h.data()["password"] == ROTATED
    status = h.status()
    assert status["secretMAC"] != first_mac and status["vaultVersion"] == 2
    assert h.template_annotation() == status["secretMAC"]
    assert h.restarts() == [("patch", "Deployment", "web")]
    # None for the first sync; the rotation's write and restart are told.
    assert [r for r, _ in h.events] == ["Applied", "RolloutRestarted"]
    for _ in range(3):
        h.clock.advance(61)
        await h.sync()
    assert h.restarts() == [("patch", "Deployment", "web")]


async def test_a_restart_lost_to_a_crash_is_made_by_the_next_reconcile(h: Harness) -> None:
    h.create(rolloutRestartTargets=[{"kind": "Deployment", "name": "web"}])
    await h.sync()
    h.vault.put_kv(f"{NS}/app", {"username": "app", "password": ROTATED})
    h.clock.advance(61)
    h.kube.fail[("patch", "Deployment")] = 1  # the Secret is written, the restart fails
    delay = await h.sync()
    assert h.data()["password"] == ROTATED
    assert h.template_annotation() is None
    assert delay == pytest.approx(BACKOFF_MIN)
    h.clock.advance(delay)
    await h.sync()
    assert h.template_annotation() == h.status()["secretMAC"]
    assert h.condition("Ready")["status"] == "True"


async def test_a_vault_key_the_secret_does_not_copy_changes_nothing(h: Harness) -> None:
    h.create(
        keys=[{"from": "password"}], rolloutRestartTargets=[{"kind": "Deployment", "name": "web"}]
    )
    await h.sync()
    h.vault.put_kv(f"{NS}/app", {"username": "renamed", "password": PASSWORD})
    h.clock.advance(61)
    h.kube.writes.clear()
    await h.sync()
    assert h.kube.writes == [("status", "VaultSecret", "app")]  # vaultVersion and sync time


# --- operator restarts ----------------------------------------------------------------------


async def test_operator_restart_reads_once_and_restarts_nothing_when_unchanged(
    h: Harness,
) -> None:
    h.create(rolloutRestartTargets=[{"kind": "Deployment", "name": "web"}])
    await h.sync()
    h.clock.advance(5)
    h.reconciler = h.new_reconciler()
    h.kube.writes.clear()
    await h.sync()
    assert h.reads() == 2  # the check at start catches changes made while it was down
    assert h.kube.writes == [("status", "VaultSecret", "app")]  # the sync time only
    await h.sync()
    assert h.reads() == 2


async def test_change_made_while_the_operator_was_down_is_caught(h: Harness) -> None:
    h.create(rolloutRestartTargets=[{"kind": "Deployment", "name": "web"}])
    await h.sync()
    h.vault.put_kv(f"{NS}/app", {"username": "app", "password": ROTATED})
    h.clock.advance(5)
    h.reconciler = h.new_reconciler()
    await h.sync()
    assert h.data()["password"] == ROTATED
    assert h.restarts() == [("patch", "Deployment", "web")]


async def test_existing_secret_with_equal_data_is_adopted_without_restart(h: Harness) -> None:
    h.create(
        rolloutRestartTargets=[{"kind": "Deployment", "name": "web"}],
        destination={"overwrite": True},
    )
    encoded = {
        k: base64.b64encode(v.encode()).decode()
        for k, v in {"username": "app", "password": PASSWORD}.items()
    }
    h.kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "app", "namespace": NS},
            "data": encoded,
        }
    )
    await h.sync()
    secret = h.secret()
    assert secret is not None and secret["metadata"]["annotations"]["mirage.dev/adopted-by"]
    assert h.restarts() == []


async def test_secret_controlled_by_another_object_is_left_alone(h: Harness) -> None:
    h.create()
    foreign = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "app",
            "namespace": NS,
            "ownerReferences": [{"kind": "VaultSecret", "uid": "other", "controller": True}],
        },
        "data": {"x": "eA=="},
    }
    before = copy.deepcopy(h.kube.put(foreign))
    delay = await h.sync()
    assert h.secret() == before
    assert h.condition("Ready")["reason"] == "SecretOwnedElsewhere"
    assert delay == pytest.approx(BACKOFF_MIN)


# --- drift ----------------------------------------------------------------------------------


@pytest.mark.parametrize("drift", ["deleted", "data edited"])
async def test_secret_changed_by_someone_else_is_restored_without_restart(
    h: Harness, drift: str
) -> None:
    h.create(rolloutRestartTargets=[{"kind": "Deployment", "name": "web"}])
    await h.sync()
    if drift == "deleted":
        del h.kube.objects[("Secret", NS, "app")]
    else:
        h.kube.objects[("Secret", NS, "app")]["data"]["password"] = "aGFja2Vk"
    h.events.clear()
    await h.sync()
    assert h.data()["password"] == PASSWORD
    assert h.reads() == 2  # the data is not in status: Vault is read again
    assert [r for r, _ in h.events] == ["Applied", "DriftCorrected"]
    assert h.restarts() == []


async def test_edited_secret_metadata_is_restored_without_reading_vault(h: Harness) -> None:
    h.create(destination={"labels": {"team": "a"}})
    await h.sync()
    h.kube.objects[("Secret", NS, "app")]["metadata"]["labels"]["team"] = "b"
    await h.sync()
    assert h.secret()["metadata"]["labels"]["team"] == "a"  # type: ignore[index]
    assert h.reads() == 1


async def test_new_destination_name_moves_the_secret_without_restart(h: Harness) -> None:
    h.create(rolloutRestartTargets=[{"kind": "Deployment", "name": "web"}])
    await h.sync()
    h.edit_spec(destination={"name": "app-v2"})
    h.kube.writes.clear()
    await h.sync()
    assert h.secret() is None
    assert h.data("app-v2") == {"username": "app", "password": PASSWORD}
    assert ("delete", "Secret", "app") in h.kube.writes
    assert h.status()["secretName"] == "app-v2"
    assert h.restarts() == []


# --- triggers -------------------------------------------------------------------------------


async def test_force_sync_annotation_reads_once_per_new_value(h: Harness) -> None:
    h.create(refreshInterval="0")
    await h.sync()
    annotations = h.kube.objects[("VaultSecret", NS, "app")]["metadata"]["annotations"] = {}
    annotations["mirage.dev/force-sync"] = "one"
    await h.sync()
    await h.sync()
    assert h.reads() == 2
    assert h.status()["lastForceSync"] == "one"
    annotations["mirage.dev/force-sync"] = "two"
    await h.sync()
    assert h.reads() == 3


async def test_refresh_zero_reads_only_on_spec_change(h: Harness) -> None:
    h.create(refreshInterval="0")
    delay = await h.sync()
    h.vault.put_kv(f"{NS}/app", {"username": "app", "password": ROTATED})
    h.clock.advance(10_000)
    await h.sync()
    assert h.reads() == 1 and h.data()["password"] == PASSWORD
    assert delay == pytest.approx(h.config.resync_interval)
    h.edit_spec(destination={"labels": {"x": "y"}})
    await h.sync()
    assert h.reads() == 2 and h.data()["password"] == ROTATED


# --- failures -------------------------------------------------------------------------------


async def test_vault_outage_keeps_the_secret_backs_off_and_recovers(h: Harness) -> None:
    h.create(rolloutRestartTargets=[{"kind": "Deployment", "name": "web"}])
    await h.sync()
    secret, mac = copy.deepcopy(h.secret()), h.status()["secretMAC"]
    h.vault.seal()
    h.clock.advance(61)
    delays = []
    for _ in range(6):
        delays.append(await h.sync())
        h.clock.advance(delays[-1])
    assert delays == [5, 10, 20, 40, 60, 60]
    assert h.secret() == secret
    ready = h.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "VaultUnavailable")
    assert "keeps its last good data" in ready["message"]
    assert h.status()["secretMAC"] == mac
    # One status write and one Event for the whole outage, not one per retry.
    assert [w for w in h.kube.writes if w[0] == "status"].count(
        ("status", "VaultSecret", "app")
    ) == 2
    assert [r for r, _ in h.events].count("VaultUnavailable") == 1
    h.vault.unseal()
    await h.sync()
    assert h.condition("Ready")["status"] == "True"
    assert h.restarts() == []
    assert h.reconciler.failures.get(("VaultSecret", NS, "app"), 0) == 0


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("deny", "VaultPermissionDenied"), ("missing", "VaultPathNotFound")],
)
async def test_denied_or_missing_path_keeps_the_secret(h: Harness, fault: str, reason: str) -> None:
    h.create()
    await h.sync()
    secret = copy.deepcopy(h.secret())
    if fault == "deny":
        h.vault.deny(f"secret/data/{NS}/*")
    else:
        h.vault.delete_kv(f"{NS}/app")
    h.clock.advance(61)
    assert await h.sync() == pytest.approx(BACKOFF_MIN)
    assert h.secret() == secret
    assert h.condition("Ready")["reason"] == reason


async def test_path_outside_the_namespace_is_refused_before_any_call(h: Harness) -> None:
    h.create(vault={"path": "team-b/app"})
    assert await h.sync() == math.inf
    ready = h.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "VaultPathNotAllowed")
    assert "spec.vault.path" in ready["message"] and "team-b/app" in ready["message"]
    assert h.vault.requests == []
    assert h.secret() is None
    writes = len(h.kube.writes)
    assert await h.sync() == math.inf
    assert len(h.kube.writes) == writes  # reported once: no retry storm


async def test_vault_policy_refuses_when_the_operator_check_is_relaxed(h: Harness) -> None:
    h.reconciler = h.new_reconciler(vault_allowed_paths=("*",))
    h.vault.put_kv("team-b/app", {"password": "b-only"})
    h.create(vault={"path": "team-b/app"})
    await h.sync()
    ready = h.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "VaultPermissionDenied")
    assert h.vault.count("GET", "secret/data/team-b/app", status=403) >= 1
    assert h.secret() is None


async def test_data_that_does_not_fit_is_reported_by_key(h: Harness) -> None:
    h.create(keys=[{"from": "api_key"}])
    await h.sync()
    ready = h.condition("Ready")
    assert ready["reason"] == "InvalidVaultData" and "'api_key'" in ready["message"]
    assert PASSWORD not in str(h.status())


async def test_malformed_hmac_key_is_never_overwritten(h: Harness) -> None:
    key = h.kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "mirage-hmac-key", "namespace": "mirage-system"},
            "data": {"key": "c2hvcnQ="},
        }
    )
    h.create()
    await h.sync()
    assert h.condition("Ready")["reason"] == "HMACKeyInvalid"
    assert h.kube.objects[("Secret", "mirage-system", "mirage-hmac-key")] == key
    assert h.secret() is None


# --- database -----------------------------------------------------------------------------


async def test_database_lease_renewed_then_replaced_and_revoked_on_delete(h: Harness) -> None:
    h.create(
        vault={"engine": "database", "path": f"{NS}.app"},
        rolloutRestartTargets=[{"kind": "Deployment", "name": "web"}],
    )
    delay = await h.sync()
    status, creds = h.status(), h.data()
    lease_id = status["leaseID"]
    assert lease_id.startswith(f"database/creds/{NS}.app/") and status["leaseDuration"] == 300
    assert delay == pytest.approx(200)  # two thirds of the lease
    assert h.vault.credentials_valid(creds["username"], creds["password"])

    h.clock.advance(delay)
    await h.sync()
    assert h.status()["leaseID"] == lease_id
    assert h.status()["leaseExpiry"] > status["leaseExpiry"]
    assert h.data() == creds and h.restarts() == []

    # Renewals stop at the role's max TTL (900 s): new credentials before it, one restart.
    while h.status()["leaseID"] == lease_id:
        h.clock.advance(await h.sync())
        await h.sync()
        assert h.vault.credentials_valid(creds["username"], creds["password"]) or (
            h.status()["leaseID"] != lease_id
        )
    assert h.data() != creds
    assert h.restarts() == [("patch", "Deployment", "web")]

    current = h.status()["leaseID"]
    await h.reconciler.release(h.body(), retry=0, logger=LOGGER)
    assert current not in h.vault.active_leases()
    assert not h.vault.credentials_valid(h.data()["username"], h.data()["password"])


async def test_database_credentials_survive_an_operator_restart(h: Harness) -> None:
    h.create(vault={"engine": "database", "path": f"{NS}.app"})
    await h.sync()
    creds, lease_id = h.data(), h.status()["leaseID"]
    h.reconciler = h.new_reconciler()
    h.clock.advance(250)  # past two thirds: the new process renews the lease from status
    await h.sync()
    assert h.data() == creds and h.status()["leaseID"] == lease_id
    assert h.vault.count(path="sys/leases/renew/*", status=200) == 1


async def test_database_schedule_keeps_lease_and_token_alive_without_busy_loops(
    h: Harness,
) -> None:
    h.create(vault={"engine": "database", "path": f"{NS}.app"})
    start, runs = h.clock(), 0
    while h.clock() - start < 3 * TOKEN_MAX_TTL:
        delay = await h.sync()
        assert delay >= 1, f"busy loop at +{h.clock() - start:.0f}s"
        h.clock.advance(delay)
        runs += 1
        creds = h.data()
        assert h.vault.credentials_valid(creds["username"], creds["password"])
    # Every wake-up renews something: at most a few per lease and token lifetime.
    assert runs < 3 * TOKEN_MAX_TTL / 100


async def test_revocation_failing_on_delete_gives_up_after_a_few_attempts(h: Harness) -> None:
    h.create(vault={"engine": "database", "path": f"{NS}.app"})
    await h.sync()
    h.vault.seal()
    for retry in range(handler.REVOKE_ATTEMPTS - 1):
        with pytest.raises(kopf.TemporaryError):
            await h.reconciler.release(h.body(), retry=retry, logger=LOGGER)
    await h.reconciler.release(h.body(), retry=handler.REVOKE_ATTEMPTS - 1, logger=LOGGER)
    assert h.events[-1][0] == "LeaseNotRevoked"
    assert (NS, "app") not in h.reconciler.memory


# --- secrecy ----------------------------------------------------------------------------------


async def test_values_never_reach_status_events_logs_or_metrics(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h.create(
        templates={"url": "postgres://{{ data.username }}:{{ data.password }}@db"},
        rolloutRestartTargets=[{"kind": "Deployment", "name": "web"}],
    )
    await h.sync()
    h.vault.put_kv(f"{NS}/app", {"username": "app", "password": ROTATED})
    h.clock.advance(61)
    await h.sync()
    h.vault.seal()
    h.clock.advance(61)
    await h.sync()
    seen = " ".join(
        [
            str(h.status()),
            str(h.events),
            caplog.text,
            generate_latest(REGISTRY).decode(),
            str(h.kube.objects[("Deployment", NS, "web")]),
        ]
    )
    for value in (PASSWORD, ROTATED):
        assert value not in seen
        assert base64.b64encode(value.encode()).decode() not in seen


@pytest.fixture
def h(harness: Harness) -> Harness:
    """Short name for the harness."""
    return harness


def test_register_adds_a_deletion_handler_and_the_watchers_but_no_daemon() -> None:
    registry = kopf.OperatorRegistry()
    vaultsecret.register(registry, OperatorContext(config=Config()))
    # A kopf daemon or timer would put kopf's finalizer on every VaultSecret (docs/adr/0022).
    assert not registry._spawning.get_all_handlers()
    (release,) = registry._changing.get_all_handlers()
    assert release.id == "release" and release.requires_finalizer
    watching = {h.id for h in registry._watching.get_all_handlers()}
    assert {"vaultsecrets-events", "secret-event"} <= watching


@pytest.mark.parametrize(
    ("engine", "needs_finalizer"),
    [("database", True), ("kv-v2", False), ("kv-v1", False), (None, False)],
)
def test_only_a_database_vaultsecret_needs_a_finalizer(
    engine: str | None, needs_finalizer: bool
) -> None:
    registry = kopf.OperatorRegistry()
    vaultsecret.register(registry, OperatorContext(config=Config()))
    (release,) = registry._changing.get_all_handlers()
    assert release.when is not None
    spec = {"vault": {"engine": engine}} if engine else {}
    assert release.when(spec=spec) is needs_finalizer


# --- operator settings (issue 9 item 17) ----------------------------------------------------


@pytest.mark.parametrize(("setting", "shown"), [(120.0, "2m"), (5400.0, "1h30m")])
async def test_default_refresh_interval_setting_applies_when_the_spec_sets_none(
    h: Harness, setting: float, shown: str
) -> None:
    h.create()
    del h.kube.objects[("VaultSecret", NS, "app")]["spec"]["refreshInterval"]
    h.reconciler = h.new_reconciler(vault_default_refresh_interval=setting)
    delay = await h.sync()
    assert delay == pytest.approx(min(setting, h.config.resync_interval), abs=1)  # capped
    assert h.status()["refreshInterval"] == shown
    h.clock.advance(setting - 5)
    await h.sync()
    assert h.reads() == 1
    h.clock.advance(10)
    await h.sync()
    assert h.reads() == 2


async def test_spec_refresh_interval_wins_over_the_setting(h: Harness) -> None:
    h.create(refreshInterval="1m")
    h.reconciler = h.new_reconciler(vault_default_refresh_interval=7200.0)
    assert await h.sync() == pytest.approx(60, abs=1)
    assert h.status()["refreshInterval"] == "1m"


async def test_hmac_key_secret_and_operator_namespace_settings_name_the_key(h: Harness) -> None:
    h.create()
    h.reconciler = h.new_reconciler(operator_namespace="ops", hmac_key_secret="my-key")
    await h.sync()
    assert ("Secret", "ops", "my-key") in h.kube.objects
    assert ("Secret", "mirage-system", "mirage-hmac-key") not in h.kube.objects


async def test_resync_interval_setting_bounds_the_next_run(h: Harness) -> None:
    h.create(refreshInterval="0")
    h.reconciler = h.new_reconciler(resync_interval=42.0)
    assert await h.sync() == pytest.approx(42.0)
