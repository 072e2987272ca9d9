"""Ownership moves the operator relies on (ADR 0080, 0081): a dropped ``replicas`` is
defaulted, a hand-over manager keeps it, the scaler's write takes it, a forced apply takes it
back; an update by another manager takes a field and a removal leaves it unowned."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.sandbox.conftest import DEPLOY, Kube, deployment
from tests.sandbox.test_apiserver_apply import MERGE, apply, entry


def _owned(obj: dict[str, Any], manager: str, operation: str, *path: str) -> bool:
    item = next(
        (
            e
            for e in obj["metadata"].get("managedFields") or []
            if e["manager"] == manager
            and e["operation"] == operation
            and e.get("subresource", "") != "status"
        ),
        None,
    )
    node: Any = item["fieldsV1"] if item else {}
    for key in path:
        if not isinstance(node, dict) or f"f:{key}" not in node:
            return False
        node = node[f"f:{key}"]
    return True


def _without_replicas(name: str) -> dict[str, Any]:
    body = deployment(name)
    del body["spec"]["replicas"]
    return body


@pytest.mark.parametrize("replicas", [0, 3, 7])
async def test_a_dropped_replicas_is_defaulted_to_one(kube: Kube, replicas: int) -> None:
    await apply(kube, f"{DEPLOY}/d", deployment("d", replicas=replicas), "op")
    answer = await apply(kube, f"{DEPLOY}/d", _without_replicas("d"), "op")
    assert answer.status == 200
    assert answer.body["spec"]["replicas"] == 1
    assert not _owned(answer.body, "op", "Apply", "spec", "replicas")


@pytest.mark.parametrize("replicas", [2, 3, 6])
async def test_a_hand_over_keeps_the_count_until_the_scaler_takes_it(
    kube: Kube, replicas: int
) -> None:
    await apply(kube, f"{DEPLOY}/h", deployment("h", replicas=replicas), "op")
    handover = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "h"},
        "spec": {"replicas": replicas},
    }
    assert (await apply(kube, f"{DEPLOY}/h", handover, "op-handover", force="false")).status == 200
    kept = (await apply(kube, f"{DEPLOY}/h", _without_replicas("h"), "op")).body
    assert kept["spec"]["replicas"] == replicas
    assert _owned(kept, "op-handover", "Apply", "spec", "replicas")
    assert not _owned(kept, "op", "Apply", "spec", "replicas")

    scaled = await kube.patch(
        f"{DEPLOY}/h/scale",
        {"spec": {"replicas": replicas + 1}},
        MERGE,
        fieldManager="kube-controller-manager",
    )
    assert scaled.status == 200
    live = (await kube.get(f"{DEPLOY}/h")).body
    assert live["spec"]["replicas"] == replicas + 1
    assert _owned(live, "kube-controller-manager", "Update", "spec", "replicas")
    assert any(e.get("subresource") == "scale" for e in live["metadata"]["managedFields"])
    # The hand-over manager owned nothing else: its entry is gone.
    assert entry(live, "op-handover") is None
    # The operator's applies without the field leave the scaler's count alone.
    again = (await apply(kube, f"{DEPLOY}/h", _without_replicas("h"), "op")).body
    assert again["spec"]["replicas"] == replicas + 1

    # Autoscaling off: one forced apply sets the spec's count and takes the field back.
    back = await apply(kube, f"{DEPLOY}/h", deployment("h", replicas=replicas), "op", force="true")
    assert back.body["spec"]["replicas"] == replicas
    assert _owned(back.body, "op", "Apply", "spec", "replicas")
    assert not _owned(back.body, "kube-controller-manager", "Update", "spec", "replicas")


async def test_a_hand_over_after_the_scaler_wrote_conflicts(kube: Kube) -> None:
    await apply(kube, f"{DEPLOY}/c", deployment("c", replicas=3), "op")
    await kube.patch(f"{DEPLOY}/c/scale", {"spec": {"replicas": 5}}, MERGE, fieldManager="kcm")
    stale = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "c"}}
    stale["spec"] = {"replicas": 3}
    answer = await apply(kube, f"{DEPLOY}/c", stale, "op-handover", force="false")
    assert answer.status == 409


@pytest.mark.parametrize("field", ["hostNetwork", "hostPID", "hostIPC"])
@pytest.mark.parametrize("how", ["merge-patch", "apply"])
async def test_a_field_another_manager_wrote_is_theirs_until_removed(
    kube: Kube, field: str, how: str
) -> None:
    await apply(kube, f"{DEPLOY}/u", deployment("u"), "op")
    insecure = {"spec": {"template": {"spec": {field: True}}}}
    if how == "apply":
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "u"}}
        changed = await apply(kube, f"{DEPLOY}/u", {**body, **insecure}, "intruder")
        operation = "Apply"
    else:
        changed = await kube.patch(f"{DEPLOY}/u", insecure, MERGE, fieldManager="intruder")
        operation = "Update"
    assert changed.status == 200
    assert changed.body["spec"]["template"]["spec"][field] is True
    assert _owned(changed.body, "intruder", operation, "spec", "template", "spec", field)
    # The operator's own apply does not touch it: it is not in its configuration.
    same = await apply(kube, f"{DEPLOY}/u", deployment("u"), "op")
    assert same.body["spec"]["template"]["spec"][field] is True

    removal = {"spec": {"template": {"spec": {field: None}}}}
    reverted = await kube.patch(f"{DEPLOY}/u", removal, MERGE, fieldManager="op")
    assert reverted.status == 200
    assert field not in reverted.body["spec"]["template"]["spec"]
    assert not _owned(reverted.body, "intruder", operation, "spec", "template", "spec", field)


@pytest.mark.parametrize(
    ("field", "ours", "theirs"),
    [("readOnlyRootFilesystem", True, False), ("allowPrivilegeEscalation", False, True)],
)
async def test_a_forced_apply_takes_a_field_back_with_our_value(
    kube: Kube, field: str, ours: bool, theirs: bool
) -> None:
    mine = deployment("f")
    mine["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {field: ours}
    await apply(kube, f"{DEPLOY}/f", mine, "op")
    intruder = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "f"},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "app", "securityContext": {field: theirs}}]}
            }
        },
    }
    refused = await apply(kube, f"{DEPLOY}/f", intruder, "intruder")
    assert refused.status == 409  # a conflict with the operator, unless forced
    taken = await apply(kube, f"{DEPLOY}/f", intruder, "intruder", force="true")
    path = ("spec", "template", "spec", "containers")
    assert (
        taken.body["spec"]["template"]["spec"]["containers"][0]["securityContext"][field] is theirs
    )
    back = await apply(kube, f"{DEPLOY}/f", mine, "op", force="true")
    assert back.body["spec"]["template"]["spec"]["containers"][0]["securityContext"][field] is ours
    assert _owned(back.body, "op", "Apply", *path)
    fields = json.dumps(entry(back.body, "intruder") or {})
    assert f"f:{field}" not in fields
