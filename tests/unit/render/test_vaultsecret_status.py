"""Builders of a VaultSecret's status and of the restart annotation on its targets."""

from __future__ import annotations

import re

from mirage_operator.render.vaultsecret import (
    RESTART_ANNOTATION_PREFIX,
    LeaseStatus,
    failed_status,
    restart_annotation,
    restart_done,
    restart_patch,
    synced_status,
)

NOW = "2026-11-24T10:00:00Z"
ANNOTATION_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def test_restart_annotation_is_a_valid_and_distinct_name_for_any_object_name() -> None:
    short = restart_annotation("orders-db")
    assert short == RESTART_ANNOTATION_PREFIX + "orders-db"
    long_a, long_b = restart_annotation("a" * 200 + ".x"), restart_annotation("a" * 200 + ".y")
    assert long_a != long_b
    for annotation in (short, long_a, long_b, restart_annotation("b" * 52 + "." + "c" * 40)):
        prefix, _, name = annotation.partition("/")
        assert prefix + "/" == RESTART_ANNOTATION_PREFIX
        assert len(name) <= 63 and ANNOTATION_NAME.match(name), name


def test_restart_patch_sets_only_the_pod_template_annotation() -> None:
    patch = restart_patch(vault_secret="db", mac="abc")
    assert patch == {
        "spec": {"template": {"metadata": {"annotations": {restart_annotation("db"): "abc"}}}}
    }
    workload = {
        "spec": {"template": {"metadata": {"annotations": {restart_annotation("db"): "abc"}}}}
    }
    assert restart_done(workload, vault_secret="db", mac="abc")
    assert not restart_done(workload, vault_secret="db", mac="def")
    assert not restart_done({"spec": {}}, vault_secret="db", mac="abc")


def test_synced_status_reports_metadata_and_removes_what_no_longer_applies() -> None:
    old = {
        "lastForceSync": "x",
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        ],
    }
    status = synced_status(
        generation=2,
        old_status=old,
        secret_name="db",
        mac="m",
        source="database/creds/team-a.app",
        last_sync=NOW,
        vault_version=None,
        lease=LeaseStatus("database/creds/team-a.app/l1", 300, NOW),
        force_sync=None,
        refresh_interval=5400,
        now=NOW,
    )
    assert status["refreshInterval"] == "1h30m"
    assert status["leaseID"] == "database/creds/team-a.app/l1" and status["leaseDuration"] == 300
    assert status["vaultVersion"] is None  # a merge patch removes it
    assert status["lastForceSync"] == "x"
    ready, synced = status["conditions"]
    assert ready["lastTransitionTime"] == "2026-01-01T00:00:00Z"  # still True: kept
    assert (synced["type"], synced["status"], synced["lastTransitionTime"]) == (
        "Synced",
        "True",
        NOW,
    )


def test_failed_status_keeps_the_synced_generation_unless_the_spec_is_invalid() -> None:
    old = {"observedGeneration": 1, "secretMAC": "m", "secretName": "db"}
    transient = failed_status(
        generation=2,
        old_status=old,
        reason="VaultUnavailable",
        message="Vault is sealed",
        invalid_spec=False,
        now=NOW,
    )
    assert "observedGeneration" not in transient and "secretMAC" not in transient
    ready, synced = transient["conditions"]
    assert ready["message"] == "Vault is sealed; Secret db keeps its last good data"
    assert (synced["status"], synced["reason"], synced["observedGeneration"]) == (
        "False",
        "VaultUnavailable",
        2,
    )
    invalid = failed_status(
        generation=2, old_status={}, reason="InvalidSpec", message="bad", invalid_spec=True, now=NOW
    )
    assert invalid["observedGeneration"] == 2
    assert invalid["conditions"][0]["message"] == "bad"
