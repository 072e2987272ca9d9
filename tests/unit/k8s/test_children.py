"""Deciding when a child must be applied: intent hash, drift, canonical quantities."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mirage_operator.k8s.children import INTENT_ANNOTATION, is_subset, needs_apply, with_intent_hash

DESIRED: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "api", "namespace": "shop", "labels": {"a": "b"}},
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {"containers": [{"name": "app", "resources": {"limits": {"cpu": "1000m"}}}]}
        },
    },
}


def _live(desired: dict[str, Any]) -> dict[str, Any]:
    """What the API server returns after applying ``desired``: defaults and status added."""
    live = copy.deepcopy(desired)
    live["metadata"].update(uid="u", resourceVersion="7", generation=1)
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "1"
    live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = (
        "/dev/termination-log"
    )
    live["status"] = {"replicas": 2}
    return live


def test_intent_hash_is_stable_and_sensitive() -> None:
    first = with_intent_hash(DESIRED)
    assert first == with_intent_hash(copy.deepcopy(DESIRED))
    changed = copy.deepcopy(DESIRED)
    changed["spec"]["replicas"] = 3
    assert (
        with_intent_hash(changed)["metadata"]["annotations"][INTENT_ANNOTATION]
        != (first["metadata"]["annotations"][INTENT_ANNOTATION])
    )
    assert "annotations" not in DESIRED["metadata"]  # the input is left alone


def test_nothing_to_apply_in_steady_state() -> None:
    desired = with_intent_hash(DESIRED)
    assert not needs_apply(desired, _live(desired))


@pytest.mark.parametrize(
    "edit",
    [
        lambda live: live["spec"].update(replicas=5),  # someone scaled it by hand
        lambda live: live["metadata"]["labels"].pop("a"),  # a label of ours removed
        lambda live: live["spec"]["template"]["spec"]["containers"][0].update(name="renamed"),
        lambda live: live["metadata"]["annotations"].pop(INTENT_ANNOTATION),
        lambda live: live["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z"),
    ],
)
def test_drift_or_deletion_needs_apply(edit: Any) -> None:
    desired = with_intent_hash(DESIRED)
    live = _live(desired)
    edit(live)
    assert needs_apply(desired, live)


def test_items_others_add_to_a_keyed_list_are_not_drift() -> None:
    desired = with_intent_hash(DESIRED)
    live = _live(desired)
    live["spec"]["template"]["spec"]["containers"].append({"name": "istio-proxy"})
    assert not needs_apply(desired, live)


def test_missing_child_needs_apply() -> None:
    assert needs_apply(with_intent_hash(DESIRED), None)


def test_a_field_we_stop_setting_changes_the_intent() -> None:
    old = with_intent_hash(DESIRED)
    live = _live(old)
    smaller = copy.deepcopy(DESIRED)
    del smaller["metadata"]["labels"]
    # Still a subset of what is live, but SSA must run to drop the label we no longer own.
    assert needs_apply(with_intent_hash(smaller), live)


@pytest.mark.parametrize(
    ("desired", "live", "expected"),
    [
        ("500m", "0.5", True),
        ("1Gi", "1024Mi", True),
        ("1", 1, True),
        ("2", "1", False),
        ({"a": []}, {}, True),
        ({"a": {}}, {"b": 1}, True),
        ([1, 2], [1, 2, 3], False),
        ({"a": 1}, {"a": 1, "b": 2}, True),
        (True, 1, False),
        ([{"name": "a", "x": 1}], [{"name": "sidecar"}, {"name": "a", "x": 1, "y": 2}], True),
        ([{"name": "a", "x": 1}], [{"name": "a", "x": 2}], False),
        ([{"name": "a"}, {"name": "b"}], [{"name": "a"}], False),
        (["a", "b"], ["b", "a"], False),
    ],
)
def test_is_subset(desired: Any, live: Any, expected: bool) -> None:
    assert is_subset(desired, live) is expected
