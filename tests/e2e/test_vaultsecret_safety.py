"""VaultSecret safety end to end, through the real operator process (docs/adr/0066-0069):
failing templates leak no value, a hostile template is stopped without holding up other
VaultSecrets, the allowed-path check cannot be stepped around through the mount, and a
Secret (or a MirageService child) that Mirage did not create is never taken over."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Cluster, service, wait_ready
from tests.e2e.kube import wait_for
from tests.e2e.test_vaultsecret import secret_data, vault_secret, wait_condition
from tests.unit.render.test_template_secrecy import FAILING, MARKER
from tests.unit.test_template_worker import NESTED_LOOPS

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-vault")]


def _reported(cluster: Cluster, namespace: str) -> dict[str, str]:
    kube = cluster.kube
    return {
        "operator log": cluster.operator.log,
        "events": str(kube.list("Event", namespace)),
        "statuses": str([b.get("status") for b in kube.list("VaultSecret", namespace)]),
        "metrics": requests.get(
            f"http://127.0.0.1:{cluster.operator.metrics_port}/metrics", timeout=10
        ).text,
    }


def test_failing_templates_leak_no_value_anywhere(cluster: Cluster, tenant: str) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    vault.put(f"{tenant}/db", {"password": MARKER, "user": "u", "num": "12"})
    corpus = FAILING[::3]
    for index, (template, _) in enumerate(corpus):
        kube.apply(vault_secret(f"t{index}", tenant, f"{tenant}/db", templates={"k": template}))
    for index, (_, kind) in enumerate(corpus):
        ready = wait_condition(kube, tenant, f"t{index}", "False", "InvalidTemplate")
        assert kind in ready["message"]
    for where, text in _reported(cluster, tenant).items():
        for form in (MARKER, base64.b64encode(MARKER.encode()).decode(), MARKER[:10]):
            assert form not in text, where


def test_a_hostile_template_fails_while_other_vaultsecrets_sync(
    cluster: Cluster, tenant: str
) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    vault.put(f"{tenant}/db", {"password": "p"})
    kube.apply(vault_secret("slow", tenant, f"{tenant}/db", templates={"k": NESTED_LOOPS}))
    kube.apply(vault_secret("fine", tenant, f"{tenant}/db", templates={"k": "{{ data.password }}"}))
    wait_ready(kube, tenant, "fine", kind="VaultSecret")
    ready = wait_condition(kube, tenant, "slow", "False", "InvalidTemplate")
    assert "exceeded the time limit" in ready["message"]
    assert kube.get("Secret", tenant, "slow") is None


@pytest.mark.parametrize(
    "vault",
    [
        {"engine": "kv-v1", "mount": "kv/other", "path": "default/x"},
        {"engine": "kv-v2", "mount": "secret/data/other", "path": "default/x"},
        {"engine": "kv-v2", "mount": "secret", "path": "default/../other/x"},
        {"engine": "kv-v2", "mount": "secret", "path": "default/x%2f..%2fy"},
        {"engine": "database", "mount": "database", "path": "default/x"},
    ],
)
def test_the_api_server_refuses_path_tricks(cluster: Cluster, ns: str, vault: Any) -> None:
    body = vault_secret("trick", ns, "unused", vault=vault)
    with pytest.raises(AssertionError, match="apply failed: 422") as refused:
        cluster.kube.apply(body)
    assert "spec.vault" in str(refused.value)
    assert cluster.kube.get("VaultSecret", ns, "trick") is None


def _hand_made(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {
            "tls.crt": base64.b64encode(b"X").decode(),
            "note": base64.b64encode(b"mine").decode(),
        },
    }


def test_a_hand_made_secret_is_reported_then_adopted_on_opt_in_and_kept_on_delete(
    cluster: Cluster, tenant: str
) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    vault.put(f"{tenant}/tls", {"tls.crt": "from-vault"})
    kube.apply(_hand_made(tenant, "team-tls"), manager="kubectl-create")
    before = kube.get("Secret", tenant, "team-tls")
    kube.apply(vault_secret("tls", tenant, f"{tenant}/tls", destination={"name": "team-tls"}))
    ready = wait_condition(kube, tenant, "tls", "False", "SecretExists")
    assert "Secret/team-tls" in ready["message"]
    assert kube.get("Secret", tenant, "team-tls") == before  # untouched

    kube.apply(
        vault_secret(
            "tls", tenant, f"{tenant}/tls", destination={"name": "team-tls", "overwrite": True}
        )
    )
    wait_ready(kube, tenant, "tls", kind="VaultSecret")
    assert secret_data(kube, tenant, "team-tls") == {"tls.crt": "from-vault"}
    adopted = kube.get("Secret", tenant, "team-tls")
    assert adopted is not None and not adopted["metadata"].get("ownerReferences")
    assert adopted["metadata"]["annotations"]["mirage.dev/adopted-by"] == "tls"

    # A Secret the operator created is garbage-collected with its VaultSecret; the adopted
    # one stays.
    kube.apply(vault_secret("owned", tenant, f"{tenant}/tls"))
    wait_ready(kube, tenant, "owned", kind="VaultSecret")
    kube.delete("VaultSecret", tenant, "owned")
    kube.delete("VaultSecret", tenant, "tls")
    wait_for(lambda: kube.get("Secret", tenant, "owned") is None, what="owned Secret collected")
    wait_for(lambda: kube.get("VaultSecret", tenant, "tls") is None, what="VaultSecret gone")
    assert secret_data(kube, tenant, "team-tls") == {"tls.crt": "from-vault"}


def test_a_child_named_like_a_hand_made_object_is_not_taken_over(cluster: Cluster, ns: str) -> None:
    kube = cluster.kube
    hand_made = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-config", "namespace": ns},
        "data": {"mine": "yes"},
    }
    kube.apply(hand_made, manager="kubectl-create")
    before = kube.get("ConfigMap", ns, "web-config")
    kube.apply(service("web", ns, config={"data": {"LOG": "debug"}}))
    event = wait_for(
        lambda: next(
            (e for e in kube.list("Event", ns) if e.get("reason") == "ChildOwnedElsewhere"), None
        ),
        what="an Event naming the hand-made ConfigMap",
    )
    assert "ConfigMap/web-config" in event["message"]
    assert kube.get("ConfigMap", ns, "web-config") == before


def test_a_key_added_by_hand_to_a_synced_secret_is_removed(cluster: Cluster, tenant: str) -> None:
    kube, vault = cluster.kube, cluster.require_vault()
    vault.put(f"{tenant}/app", {"password": "p"})
    kube.apply(vault_secret("app", tenant, f"{tenant}/app"))
    wait_ready(kube, tenant, "app", kind="VaultSecret")
    kube.merge_patch("Secret", tenant, "app", {"data": {"extra": "eA=="}})
    wait_for(
        lambda: secret_data(kube, tenant, "app") == {"password": "p"},
        what="the extra key removed",
    )
