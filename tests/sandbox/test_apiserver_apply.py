"""Server-side apply: field managers, managed fields, conflicts, force, removal."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.sandbox.conftest import DEPLOY, WIDGETS, Kube, deployment, widget

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"


async def apply(kube: Kube, path: str, body: dict[str, Any], manager: str, **params: str) -> Any:
    """Apply ``body`` as YAML, like kubectl does."""
    return await kube.patch(path, yaml.safe_dump(body), APPLY, fieldManager=manager, **params)


def entry(obj: dict[str, Any], manager: str, operation: str = "Apply") -> dict[str, Any] | None:
    """The managedFields entry of ``manager``."""
    for item in obj["metadata"].get("managedFields") or []:
        if item["manager"] == manager and item["operation"] == operation:
            return item
    return None


async def test_apply_requires_a_field_manager(kube: Kube) -> None:
    answer = await kube.patch(f"{WIDGETS}/x", yaml.safe_dump(widget("x")), APPLY)
    assert answer.status == 422
    assert "fieldManager: Required value" in answer.body["message"]


async def test_apply_creates_a_missing_object_and_records_its_fields(kube: Kube) -> None:
    answer = await apply(
        kube, f"{WIDGETS}/a", widget("a", replicas=2, ports=[{"name": "http", "port": 80}]), "alice"
    )
    assert answer.status == 201
    mine = entry(answer.body, "alice")
    assert (
        mine is not None
        and mine["fieldsType"] == "FieldsV1"
        and mine["apiVersion"] == "test.mirage.dev/v1"
    )
    spec = mine["fieldsV1"]["f:spec"]
    assert set(spec) == {"f:image", "f:replicas", "f:ports"}
    assert spec["f:ports"]['k:{"name":"http"}'] == {".": {}, "f:name": {}, "f:port": {}}


async def test_reapplying_the_same_configuration_changes_nothing(kube: Kube) -> None:
    first = await apply(kube, f"{WIDGETS}/same", widget("same"), "alice")
    second = await apply(kube, f"{WIDGETS}/same", widget("same"), "alice")
    assert second.status == 200
    assert second.body["metadata"]["resourceVersion"] == first.body["metadata"]["resourceVersion"]
    assert second.body["metadata"]["managedFields"] == first.body["metadata"]["managedFields"]


async def test_conflict_with_another_applier_is_409_naming_manager_and_field(kube: Kube) -> None:
    await apply(kube, f"{WIDGETS}/c", widget("c", replicas=2), "alice")
    answer = await apply(kube, f"{WIDGETS}/c", widget("c", replicas=3), "bob")
    assert answer.status == 409 and answer.body["reason"] == "Conflict"
    assert (
        answer.body["message"]
        == 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'
    )
    assert answer.body["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "alice"',
            "field": ".spec.replicas",
        }
    ]
    assert (await kube.get(f"{WIDGETS}/c")).body["spec"]["replicas"] == 2


async def test_force_takes_ownership(kube: Kube) -> None:
    await apply(kube, f"{WIDGETS}/f", widget("f", replicas=2), "alice")
    forced = await apply(kube, f"{WIDGETS}/f", widget("f", replicas=3), "bob", force="true")
    assert forced.status == 200 and forced.body["spec"]["replicas"] == 3
    alice = entry(forced.body, "alice")
    bob = entry(forced.body, "bob")
    assert alice is not None and "f:replicas" not in alice["fieldsV1"]["f:spec"]
    assert bob is not None and "f:replicas" in bob["fieldsV1"]["f:spec"]


async def test_same_value_is_shared_ownership_without_conflict(kube: Kube) -> None:
    await apply(kube, f"{WIDGETS}/s", widget("s", replicas=2), "alice")
    shared = await apply(kube, f"{WIDGETS}/s", widget("s", replicas=2), "bob")
    assert shared.status == 200
    for manager in ("alice", "bob"):
        found = entry(shared.body, manager)
        assert found is not None and "f:replicas" in found["fieldsV1"]["f:spec"]


async def test_fields_a_manager_stops_applying_are_removed(kube: Kube) -> None:
    await apply(
        kube, f"{WIDGETS}/r", widget("r", mode="fast", labels={"x": "1", "y": "2"}), "alice"
    )
    answer = await apply(kube, f"{WIDGETS}/r", widget("r", labels={"x": "1"}), "alice")
    assert "mode" not in answer.body["spec"]
    assert answer.body["spec"]["labels"] == {"x": "1"}


async def test_fields_still_owned_by_another_manager_stay(kube: Kube) -> None:
    await apply(kube, f"{WIDGETS}/k", widget("k", mode="fast"), "alice")
    await apply(kube, f"{WIDGETS}/k", widget("k", mode="fast"), "bob")
    answer = await apply(kube, f"{WIDGETS}/k", widget("k"), "alice")
    assert answer.body["spec"]["mode"] == "fast"


async def test_keyed_list_items_are_owned_per_item(kube: Kube) -> None:
    await apply(kube, f"{WIDGETS}/l", widget("l", ports=[{"name": "http", "port": 80}]), "alice")
    both = await apply(
        kube, f"{WIDGETS}/l", widget("l", ports=[{"name": "metrics", "port": 9090}]), "bob"
    )
    assert [p["name"] for p in both.body["spec"]["ports"]] == ["http", "metrics"]
    dropped = await apply(kube, f"{WIDGETS}/l", widget("l", ports=[]), "alice")
    assert [p["name"] for p in dropped.body["spec"]["ports"]] == ["metrics"]


async def test_updates_by_other_managers_are_tracked_and_conflict(kube: Kube) -> None:
    await apply(kube, f"{WIDGETS}/u", widget("u", replicas=2), "alice")
    edited = await kube.patch(
        f"{WIDGETS}/u", {"spec": {"replicas": 4}}, MERGE, fieldManager="kubectl-edit"
    )
    editor = entry(edited.body, "kubectl-edit", "Update")
    assert editor is not None and editor["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    alice = entry(edited.body, "alice")
    assert alice is not None and "f:replicas" not in alice["fieldsV1"]["f:spec"]
    answer = await apply(kube, f"{WIDGETS}/u", widget("u", replicas=2), "alice")
    assert answer.status == 409
    assert answer.body["details"]["causes"][0]["message"].startswith(
        'conflict with "kubectl-edit" using test.mirage.dev/v1'
    )


async def test_first_apply_on_an_untracked_object_uses_before_first_apply(kube: Kube) -> None:
    await kube.post(DEPLOY, deployment("legacy", replicas=2))
    stripped = await kube.patch(f"{DEPLOY}/legacy", {"metadata": {"managedFields": [{}]}}, MERGE)
    assert "managedFields" not in stripped.body["metadata"]
    answer = await apply(kube, f"{DEPLOY}/legacy", deployment("legacy", replicas=3), "alice")
    assert answer.status == 409
    assert 'conflict with "before-first-apply"' in answer.body["message"]


async def test_apply_of_a_built_in_merges_containers_by_name(kube: Kube) -> None:
    await apply(kube, f"{DEPLOY}/b", deployment("b"), "alice")
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "b"},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}},
    }
    answer = await apply(kube, f"{DEPLOY}/b", sidecar, "bob")
    assert [c["name"] for c in answer.body["spec"]["template"]["spec"]["containers"]] == [
        "app",
        "sidecar",
    ]


async def test_apply_to_status_subresource(kube: Kube) -> None:
    await apply(kube, f"{WIDGETS}/st", widget("st"), "alice")
    body = {**widget("st"), "status": {"phase": "Ready"}}
    answer = await apply(kube, f"{WIDGETS}/st/status", body, "controller")
    assert answer.status == 200 and answer.body["status"] == {"phase": "Ready"}
    mine = entry(answer.body, "controller")
    assert mine is not None and mine["subresource"] == "status"
    assert set(mine["fieldsV1"]) == {"f:status"}


async def test_apply_json_body_and_mismatched_kind(kube: Kube) -> None:
    import json

    ok = await kube.patch(f"{WIDGETS}/j", json.dumps(widget("j")), APPLY, fieldManager="alice")
    assert ok.status == 201
    wrong = await kube.patch(
        f"{WIDGETS}/j", json.dumps({**widget("j"), "kind": "Gadget"}), APPLY, fieldManager="alice"
    )
    assert wrong.status == 400


async def test_managed_fields_written_in_an_update_replace_the_live_ones(kube: Kube) -> None:
    created = (await apply(kube, f"{WIDGETS}/mf", widget("mf", replicas=2), "alice")).body
    entries = created["metadata"]["managedFields"]
    renamed = [{**e, "manager": "carol"} for e in entries]
    answer = await kube.patch(
        f"{WIDGETS}/mf", {"metadata": {"managedFields": renamed}}, MERGE, fieldManager="editor"
    )
    assert {e["manager"] for e in answer.body["metadata"]["managedFields"]} == {"carol"}
    conflict = await apply(kube, f"{WIDGETS}/mf", widget("mf", replicas=3), "alice")
    assert conflict.status == 409 and 'conflict with "carol"' in conflict.body["message"]


async def test_removing_the_last_item_drops_the_list(kube: Kube) -> None:
    await apply(kube, f"{WIDGETS}/ll", widget("ll", ports=[{"name": "http", "port": 80}]), "alice")
    answer = await apply(kube, f"{WIDGETS}/ll", widget("ll"), "alice")
    assert "ports" not in answer.body["spec"]


ENCODINGS: dict[str, Callable[[Any], str]] = {
    "yaml": yaml.safe_dump,
    "json": json.dumps,
    "indented-json": functools.partial(json.dumps, indent=2),
}


async def test_an_apply_body_in_json_or_yaml_stores_the_same_object(kube: Kube) -> None:
    """Clients send JSON under the apply-patch+yaml type; the emulated API decodes it with the
    JSON decoder (its speed), which must store what the YAML decoder stores."""
    stored = {}
    for name, encode in ENCODINGS.items():
        body = deployment(name, replicas=3)
        body["spec"]["template"]["metadata"]["labels"] = {"app": "same"}
        body["spec"]["selector"] = {"matchLabels": {"app": "same"}}
        body["metadata"]["labels"] = {"app": "same"}
        body["metadata"]["annotations"] = {"note": 'ünïcode \\ "quoted"', "empty": ""}
        answer = await kube.patch(f"{DEPLOY}/{name}", encode(body), APPLY, fieldManager="m")
        assert answer.status == 201, answer.body
        stored[name] = {
            "spec": answer.body["spec"],
            "labels": answer.body["metadata"]["labels"],
            "annotations": answer.body["metadata"]["annotations"],
        }
    assert stored["json"] == stored["yaml"] == stored["indented-json"]
    assert stored["json"]["annotations"]["note"] == 'ünïcode \\ "quoted"'


@pytest.mark.parametrize(
    "text",
    [
        '{"apiVersion": "apps/v1", "kind": "Deployment", "kind": "Deployment"}',
        '{"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": NaN}}',
    ],
    ids=["duplicate-key", "nan"],
)
async def test_json_the_json_rules_do_not_decide_goes_to_the_yaml_decoder(
    kube: Kube, text: str
) -> None:
    """A duplicate key or NaN is not taken from the JSON decoder: the answer is the YAML
    decoder's, as for the same text sent as YAML."""
    as_json = await kube.patch(f"{DEPLOY}/odd", text, APPLY, fieldManager="m")
    as_yaml = await kube.patch(f"{DEPLOY}/odd", "# yaml\n" + text, APPLY, fieldManager="m")
    assert as_json.status == as_yaml.status >= 400
    assert as_json.body["message"] == as_yaml.body["message"].replace("line 2", "line 1")
