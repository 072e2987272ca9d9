"""Deciding when a child must be applied: intent hash, drift, canonical quantities."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from mirage_operator.k8s.children import (
    INTENT_ANNOTATION,
    ChildIndex,
    is_subset,
    needs_apply,
    sealing_patch,
    with_intent_hash,
)
from mirage_operator.render.podsecurity import merge_patch
from mirage_sandbox.apiserver.patch import merge_patch as apply_merge_patch

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


def _child(kind: str, name: str, owner: str | None, version: str, **extra: Any) -> dict[str, Any]:
    refs = [{"kind": "MirageService", "uid": owner, "controller": True}] if owner else []
    meta = {"name": name, "uid": f"{kind}-{name}", "resourceVersion": version}
    return {"kind": kind, "metadata": {**meta, "ownerReferences": refs}, **extra}


@pytest.mark.parametrize(
    ("before", "after", "wakes"),
    [
        # The echo of our own apply (its answer already stored): nothing new.
        (_child("Service", "a", "o", "1"), _child("Service", "a", "o", "1"), False),
        # Only the resourceVersion changed.
        (_child("Service", "a", "o", "1"), _child("Service", "a", "o", "2"), False),
        # A status no owner reads.
        (
            _child("Service", "a", "o", "1", status={"x": 1}),
            _child("Service", "a", "o", "2", status={"x": 2}),
            False,
        ),
        # A status an owner reads (a Deployment's rollout).
        (
            _child("Deployment", "a", "o", "1", status={"readyReplicas": 0}),
            _child("Deployment", "a", "o", "2", status={"readyReplicas": 1}),
            True,
        ),
        # Someone edited a field.
        (
            _child("Service", "a", "o", "1", spec={"type": "ClusterIP"}),
            _child("Service", "a", "o", "2", spec={"type": "NodePort"}),
            True,
        ),
    ],
)
def test_index_wakes_the_owner_only_for_news(
    before: dict[str, Any], after: dict[str, Any], wakes: bool
) -> None:
    index = ChildIndex()
    assert index.update(before) == "o"  # first sight
    assert (index.update(after) == "o") is wakes
    assert (
        index.owned_by("o")[(after["kind"], "a")]["metadata"]["resourceVersion"]
        == (after["metadata"]["resourceVersion"])
    )


def test_an_apply_answer_older_than_the_watch_does_not_hide_the_newer_version() -> None:
    """The watch may deliver a child's later version (its status, written by a controller
    right after the apply) before the apply's own answer is processed: the answer must not
    replace it, else the owner reads a stale status that no further event corrects (the
    spread benchmark's parents waiting for SLOs that were Ready)."""
    index = ChildIndex()
    ready = {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}
    assert index.update(_child("ServiceLevelObjective", "a", "o", "7")) == "o"  # watch: created
    newer = _child("ServiceLevelObjective", "a", "o", "9", status=ready)
    assert index.update(newer) == "o"  # watch: its status
    assert index.update(_child("ServiceLevelObjective", "a", "o", "7")) is None  # the answer
    assert index.owned_by("o")[("ServiceLevelObjective", "a")]["status"] == ready
    assert index.owned_by("o")[("ServiceLevelObjective", "a")]["metadata"]["resourceVersion"] == "9"


@pytest.mark.parametrize("owner", [None, "other"])
def test_index_keeps_only_children_of_their_controller(owner: str | None) -> None:
    index = ChildIndex()
    index.update(_child("Service", "a", "o", "1"))
    index.update(_child("Service", "a", owner, "2"))  # released or taken over
    assert index.owned_by("o") == {}
    assert len(index) == (1 if owner else 0)


def test_index_drops_managed_fields_and_forgets_deleted_children_and_owners() -> None:
    index = ChildIndex()
    child = _child("Service", "a", "o", "1")
    child["metadata"]["managedFields"] = [{"manager": "x"}]
    index.update(child)
    index.update(_child("ConfigMap", "b", "o", "1"))
    assert "managedFields" not in index.owned_by("o")[("Service", "a")]["metadata"]
    assert index.remove(child) == "o"
    assert set(index.owned_by("o")) == {("ConfigMap", "b")}
    index.forget_owner("o")
    assert len(index) == 0 and index.owned_by("o") == {}


def test_a_listing_after_a_restarted_watch_finds_children_deleted_in_the_gap() -> None:
    index = ChildIndex()
    kept, gone = _child("Service", "a", "o", "1"), _child("Service", "b", "p", "1")
    other_kind = _child("ConfigMap", "c", "q", "1")
    for obj in (kept, gone, other_kind):
        index.update(obj)
    assert not index.relisted(kept["metadata"]["uid"])  # first news of it
    index.update(kept)  # the restarted watch's listing reports it again
    assert index.relisted(kept["metadata"]["uid"])
    since = time.monotonic()
    late = _child("Service", "d", "r", "5")  # created after the listing started
    index.update(late)
    assert index.replace("Service", [kept], since) == {"p"}
    assert set(index.owned_by("o")) == {("Service", "a")}
    assert index.owned_by("p") == {}
    assert set(index.owned_by("q")) == {("ConfigMap", "c")}
    assert set(index.owned_by("r")) == {("Service", "d")}


def test_index_keeps_what_a_reconcile_reads_and_hands_out_copies() -> None:
    """A status is kept only of the kinds an owner reads (Deployment, VaultSecret, SLO); each
    read is a body of its own, so that a caller changing it does not change the index."""
    index = ChildIndex()
    live = _live(DESIRED)
    live["metadata"]["ownerReferences"] = [
        {"kind": "MirageService", "uid": "o", "controller": True}
    ]
    index.update(live)
    index.update(_child("Service", "a", "o", "1", spec={"type": "ClusterIP"}, status={"x": 1}))
    observed = index.owned_by("o")
    # Of managedFields, a Deployment keeps our apply entries (none here).
    assert observed[("Deployment", "api")] == {
        **live,
        "metadata": {**live["metadata"], "managedFields": []},
    }
    assert observed[("Service", "a")] == _child(
        "Service", "a", "o", "1", spec={"type": "ClusterIP"}
    )
    observed[("Deployment", "api")]["spec"]["replicas"] = 9
    assert index.owned_by("o")[("Deployment", "api")]["spec"]["replicas"] == 2
    named = index.named("Service", "", "a")
    assert named is not None
    assert named["metadata"]["ownerReferences"] == [
        {"kind": "MirageService", "uid": "o", "controller": True}
    ]


def test_index_keeps_no_secret_data() -> None:
    """A Secret is in the index by its metadata alone: its values never stay in the
    operator's memory (docs/adr/0126). A change of the data alone is no news to the index
    (the VaultSecret's own Secret watch handler wakes it: its resourceVersion changed)."""
    index = ChildIndex()
    secret = _child("Secret", "db", "o", "1", type="Opaque", data={"password": "c2VjcmV0"})
    secret["stringData"] = {"password": "secret"}
    assert index.update(secret) == "o"
    stored = index.owned_by("o")[("Secret", "db")]
    assert "data" not in stored and "stringData" not in stored
    assert stored["type"] == "Opaque" and stored["metadata"]["uid"] == "Secret-db"
    edited = _child("Secret", "db", "o", "2", type="Opaque", data={"password": "b3RoZXI="})
    assert index.update(edited) is None
    assert index.named("Secret", "", "db") is not None


# --- sealed kinds: additions are drift -------------------------------------------------------

POLICY = {
    "apiVersion": "security.istio.io/v1",
    "kind": "PeerAuthentication",
    "metadata": {"name": "api", "namespace": "shop"},
    "spec": {"mtls": {"mode": "STRICT"}, "portLevelMtls": {"9090": {"mode": "PERMISSIVE"}}},
}


@pytest.mark.parametrize(
    ("live_spec", "patch"),
    [
        (  # a key added to a map of ours
            {
                "mtls": {"mode": "STRICT"},
                "portLevelMtls": {"9090": {"mode": "PERMISSIVE"}, "8080": {"mode": "DISABLE"}},
            },
            {"portLevelMtls": {"8080": None}},
        ),
        (  # a top-level field added
            {**POLICY["spec"], "selector": {"matchLabels": {"app": "x"}}},
            {"selector": None},
        ),
        (  # a value of ours changed and one added
            {
                "mtls": {"mode": "DISABLE"},
                "portLevelMtls": {"9090": {"mode": "PERMISSIVE"}},
                "x": 1,
            },
            {"mtls": {"mode": "STRICT"}, "x": None},
        ),
        (  # a field of ours removed
            {"mtls": {"mode": "STRICT"}},
            {"portLevelMtls": {"9090": {"mode": "PERMISSIVE"}}},
        ),
    ],
    ids=["map key", "top-level field", "changed and added", "removed"],
)
def test_the_merge_patch_turns_the_live_spec_into_the_desired_one(
    live_spec: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert merge_patch(live_spec, POLICY["spec"]) == patch
    # The emulated API server's RFC 7386 merge is the referee.
    assert apply_merge_patch(live_spec, patch) == POLICY["spec"]


def test_lists_are_replaced_whole() -> None:
    desired = {"rules": [{"to": [{"operation": {"notPaths": ["/healthz"]}}]}]}
    live = {"rules": [{"to": [{"operation": {"notPaths": ["/healthz"], "paths": ["/x"]}}]}]}
    assert merge_patch(live, desired) == desired


@pytest.mark.parametrize(
    ("kind", "extra", "annotations", "patch"),
    [
        (
            "PeerAuthentication",
            {"portLevelMtls": {"9090": {"mode": "PERMISSIVE"}, "8080": {"mode": "DISABLE"}}},
            {},
            {"spec": {"portLevelMtls": {"8080": None}}},
        ),
        ("NetworkPolicy", {"egress": [{}]}, {}, {"spec": {"egress": None}}),
        (
            "AuthorizationPolicy",
            {},
            {"istio.io/dry-run": "true", "argocd.argoproj.io/tracking-id": "x"},
            {"metadata": {"annotations": {"istio.io/dry-run": None}}},
        ),
        ("Deployment", {"paused": True}, {"sidecar.istio.io/x": "y"}, {}),
        ("PeerAuthentication", {}, {"team": "a"}, {}),
    ],
    ids=["policy addition", "network policy", "dry-run annotation", "not sealed", "nothing"],
)
def test_sealing_patch(
    kind: str, extra: dict[str, Any], annotations: dict[str, str], patch: dict[str, Any]
) -> None:
    desired = {**POLICY, "kind": kind}
    live = {
        **desired,
        "metadata": {**POLICY["metadata"], "annotations": annotations},
        "spec": {**POLICY["spec"], **extra},
        "status": {"any": "thing"},
    }
    assert sealing_patch(desired, live) == patch
    assert sealing_patch(desired, None) == {}
