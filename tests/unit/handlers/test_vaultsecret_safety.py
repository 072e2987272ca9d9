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


def _user_secret(**data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "app", "namespace": NS},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
