"""The VaultSecret reconciler's safety rules: failing or hostile templates report no value
anywhere (docs/adr/0066, 0067), and a Secret Mirage did not create is never taken over
without ``destination.overwrite`` (docs/adr/0069)."""

from __future__ import annotations

import base64
import copy
import logging
from typing import Any

import pytest
from prometheus_client import generate_latest

from mirage_operator.metrics import REGISTRY
from tests.unit.handlers import test_vaultsecret_handler as base
from tests.unit.handlers.test_vaultsecret_handler import NS, Harness
from tests.unit.render.test_template_secrecy import FAILING, MARKER
from tests.unit.test_template_worker import HOSTILE

# The reconciler harness of the handler's main tests, as fixtures of this module too.
harness, h = base.harness, base.h


def _everything_reported(h: Harness, caplog: pytest.LogCaptureFixture) -> str:
    return " ".join(
        [
            str(h.status()),
            str(h.events),
            caplog.text,
            generate_latest(REGISTRY).decode(),
            str(h.kube.objects.get(("Secret", NS, "app"))),
        ]
    )


@pytest.mark.parametrize(("template", "kind"), FAILING)
async def test_failing_templates_report_no_value_in_status_events_logs_or_metrics(
    h: Harness, caplog: pytest.LogCaptureFixture, template: str, kind: str
) -> None:
    caplog.set_level(logging.DEBUG)
    h.vault.put_kv(f"{NS}/app", {"password": MARKER, "user": "u", "num": "12"})
    h.create(templates={"conn": template})
    await h.sync()
    ready = h.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidTemplate")
    assert ready["message"].startswith("template 'conn' failed")
    assert h.events and h.events[0][0] == "InvalidTemplate"
    reported = _everything_reported(h, caplog)
    for form in (MARKER, base64.b64encode(MARKER.encode()).decode(), MARKER[:10]):
        assert form not in reported
    assert h.secret() is None  # nothing written from data that did not fit


@pytest.mark.parametrize("template", HOSTILE[::4])
async def test_hostile_templates_fail_the_sync_and_keep_the_secret(
    h: Harness, template: str
) -> None:
    h.create(templates={"conn": "{{ data.password }}"})
    await h.sync()
    before = copy.deepcopy(h.secret())
    h.reconciler.templates.timeout = 1.0
    h.edit_spec(templates={"conn": template})
    await h.sync()
    assert h.condition("Ready")["reason"] == "InvalidTemplate"
    assert h.secret() == before


def _existing(secret_type: str = "Opaque", **metadata: Any) -> dict[str, Any]:
    """A Secret named like the VaultSecret's destination, made by someone else."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "app", "namespace": NS, **metadata},
        "type": secret_type,
        "data": {"tls.crt": base64.b64encode(b"users-own-data").decode()},
    }


UNOWNED = [
    {},  # kubectl create secret generic
    {"labels": {"app.kubernetes.io/managed-by": "mirage-operator"}},  # labelled, no owner
    {"annotations": {"mirage.dev/adopted-by": "app"}},  # kept after an earlier adoption
    {"ownerReferences": [{"kind": "ConfigMap", "name": "x", "uid": "u-x"}]},  # not controller
]


@pytest.mark.parametrize("metadata", UNOWNED)
async def test_a_secret_mirage_did_not_create_is_reported_and_left_alone(
    h: Harness, metadata: dict[str, Any]
) -> None:
    h.create()
    before = copy.deepcopy(h.kube.put(_existing(**copy.deepcopy(metadata))))
    delays = [await h.sync()]
    first_reads = h.reads()
    delays += [await h.sync() for _ in range(2)]
    assert h.secret() == before  # not written, labelled, owned or deleted
    ready = h.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SecretExists")
    assert "Secret/app" in ready["message"] and "spec.destination.overwrite" in ready["message"]
    # A Secret the operator's watch shows (Mirage's label) is checked before Vault is read.
    # One it cannot see is found by the create that fails on its name, after the first
    # attempt's one read of Vault; the retries check it first and read nothing
    # (docs/adr/0126).
    assert first_reads == (0 if base.watched(before) else 1)
    assert h.reads() == first_reads
    assert [e[0] for e in h.events] == ["SecretExists"]  # once, not once per retry
    assert delays == sorted(delays) and delays[0] < delays[-1]  # backing off


@pytest.mark.parametrize(
    "owner",
    [
        {"apiVersion": "mirage.dev/v1alpha1", "kind": "VaultSecret", "name": "other"},
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        {"apiVersion": "v1", "kind": "ServiceAccount", "name": "sa"},
    ],
)
@pytest.mark.parametrize("overwrite", [False, True])
async def test_a_secret_another_object_controls_is_never_written(
    h: Harness, owner: dict[str, Any], overwrite: bool
) -> None:
    h.create(destination={"overwrite": overwrite})
    ref = {**owner, "uid": "u-other", "controller": True}
    before = copy.deepcopy(h.kube.put(_existing(ownerReferences=[ref])))
    await h.sync()
    assert h.secret() == before
    ready = h.condition("Ready")
    assert ready["reason"] == "SecretOwnedElsewhere"
    assert f"{owner['kind']}/{owner['name']}" in ready["message"]


async def test_a_secret_another_vaultsecret_adopted_is_never_written(h: Harness) -> None:
    h.create(destination={"overwrite": True})
    before = copy.deepcopy(
        h.kube.put(_existing(annotations={"mirage.dev/adopted-by": "someone-else"}))
    )
    await h.sync()
    assert h.secret() == before
    assert h.condition("Ready")["reason"] == "SecretOwnedElsewhere"


@pytest.mark.parametrize("metadata", UNOWNED)
async def test_overwrite_replaces_the_data_without_owning_the_secret(
    h: Harness, metadata: dict[str, Any]
) -> None:
    h.create(destination={"overwrite": True})
    h.kube.put(_existing(**copy.deepcopy(metadata)))
    await h.sync()
    assert h.condition("Ready")["status"] == "True"
    assert h.data() == {"username": "app", "password": base.PASSWORD}
    secret = h.secret()
    assert secret is not None
    assert secret["metadata"]["annotations"]["mirage.dev/adopted-by"] == "app"
    owners = secret["metadata"].get("ownerReferences") or []
    assert not any(ref.get("kind") == "VaultSecret" for ref in owners)  # GC never deletes it
    # Steady state: no read, no write.
    writes, reads = len(h.kube.writes), h.reads()
    await h.sync()
    assert (len(h.kube.writes), h.reads()) == (writes, reads)


async def test_deleting_the_vaultsecret_leaves_an_adopted_secret(h: Harness) -> None:
    h.create(destination={"overwrite": True})
    h.kube.put(_existing())
    await h.sync()
    kept = copy.deepcopy(h.secret())
    await h.reconciler.release(h.body(), retry=0, logger=base.LOGGER)
    assert h.secret() == kept


async def test_overwrite_refuses_a_secret_of_another_type(h: Harness) -> None:
    h.create(destination={"overwrite": True})
    before = copy.deepcopy(h.kube.put(_existing("kubernetes.io/tls")))
    await h.sync()
    assert h.secret() == before
    ready = h.condition("Ready")
    assert ready["reason"] == "SecretExists" and "kubernetes.io/tls" in ready["message"]


async def test_moving_away_from_an_adopted_secret_leaves_it(h: Harness) -> None:
    h.create(destination={"overwrite": True})
    h.kube.put(_existing())
    await h.sync()
    kept = copy.deepcopy(h.secret())
    h.edit_spec(destination={"name": "elsewhere"})
    await h.sync()
    assert h.secret("elsewhere") is not None
    assert h.secret() == kept  # the previous destination was the user's: not deleted
