"""When a VaultSecret reconcile reads Vault, when it runs next, how it backs off."""

from __future__ import annotations

from typing import Any

import pytest

from mirage_operator.handlers.vaultsecret.sources import SOURCES
from mirage_operator.vault.schedule import (
    BACKOFF_MAX,
    BACKOFF_MIN,
    MIN_WAIT,
    Facts,
    format_time,
    next_run_in,
    parse_time,
    retry_delay,
)

NOW = 1_700_000_000.0
SYNCED = {
    "observedGeneration": 3,
    "secretMAC": "m1",
    "lastForceSync": "a",
    "conditions": [{"type": "Synced", "status": "True"}],
}


def reasons(**overrides: Any) -> tuple[str, ...]:
    arguments: dict[str, Any] = {
        "engine": "kv-v2",
        "generation": 3,
        "force_sync": "a",
        "status": SYNCED,
        "live_mac": "m1",
        "first_check": False,
        "synced_at": NOW - 10,
        "refresh_interval": 60.0,
        "now": NOW,
        **overrides,
    }
    return SOURCES[arguments.pop("engine")].read_reasons(Facts(**arguments))


def test_nothing_to_do_when_synced_and_fresh() -> None:
    assert reasons() == ()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"status": {}}, ("never", "spec", "force")),
        ({"generation": 4}, ("spec",)),
        ({"force_sync": "b"}, ("force",)),
        ({"force_sync": None}, ()),
        ({"live_mac": None}, ("drift",)),
        ({"live_mac": "edited"}, ("drift",)),
        ({"first_check": True}, ("resume",)),
        ({"synced_at": NOW - 60}, ("refresh",)),
        (
            {"status": {**SYNCED, "conditions": [{"type": "Synced", "status": "False"}]}},
            ("failed",),
        ),
    ],
)
def test_each_reason(overrides: dict[str, Any], expected: tuple[str, ...]) -> None:
    assert reasons(**overrides) == expected


def test_refresh_zero_reads_only_for_spec_force_drift_and_failures() -> None:
    assert reasons(refresh_interval=0.0, first_check=True, synced_at=NOW - 10**6) == ()
    assert reasons(refresh_interval=0.0, force_sync="b") == ("force",)


def test_database_reads_only_when_new_data_is_needed() -> None:
    failed = {**SYNCED, "conditions": [{"type": "Synced", "status": "False"}]}
    quiet = reasons(engine="database", first_check=True, synced_at=NOW - 10**6, status=failed)
    assert quiet == ()
    assert reasons(engine="database", live_mac=None, generation=4) == ("spec", "drift")


def test_next_run_is_the_earliest_of_refresh_lease_and_resync() -> None:
    common = {"synced_at": NOW - 10, "resync_interval": 300.0, "now": NOW}
    assert next_run_in(refresh_interval=60, lease_check_at=None, **common) == 50
    assert next_run_in(refresh_interval=60, lease_check_at=NOW + 20, **common) == 20
    assert next_run_in(refresh_interval=0, lease_check_at=None, **common) == 300
    assert next_run_in(refresh_interval=5, lease_check_at=None, **common) == MIN_WAIT


def test_retry_delay_doubles_from_min_to_max_with_bounded_jitter() -> None:
    ceilings = [retry_delay(n, 1.0) for n in range(1, 8)]
    assert ceilings == [5, 10, 20, 40, 60, 60, 60]
    assert retry_delay(1, 0.0) == pytest.approx(0.8 * BACKOFF_MIN)
    for failures in range(1, 10):
        for jitter in (0.0, 0.3, 0.99):
            assert 0.8 * BACKOFF_MIN <= retry_delay(failures, jitter) <= BACKOFF_MAX


def test_times_round_trip_in_metav1_format() -> None:
    assert format_time(NOW) == "2023-11-14T22:13:20Z"
    assert parse_time(format_time(NOW)) == NOW
    assert parse_time(None) is None and parse_time("yesterday") is None
