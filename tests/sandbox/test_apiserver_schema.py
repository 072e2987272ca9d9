"""CRD schema enforcement (pruning, defaults, validation, CEL), CRD lifecycle and dry run."""

from __future__ import annotations

from typing import Any

import yaml

from mirage_sandbox.apiserver import APIServer
from tests.sandbox.conftest import CM, GROUP, WIDGETS, Kube, configmap, widget, widget_crd

MERGE = "application/merge-patch+json"


async def test_defaults_are_applied_on_create(kube: Kube) -> None:
    created = await kube.post(WIDGETS, widget("d"))
    assert created.body["spec"]["replicas"] == 1 and created.body["spec"]["maxReplicas"] == 10


async def test_unknown_fields_are_pruned_with_a_warning(kube: Kube) -> None:
    created = await kube.post(WIDGETS, widget("p", colour="red"))
    assert created.status == 201
    assert "colour" not in created.body["spec"]
    assert created.warnings == ['299 - "unknown field \\"spec.colour\\""']


async def test_strict_field_validation_rejects_unknown_fields(kube: Kube) -> None:
    answer = await kube.post(WIDGETS, widget("s", colour="red"), fieldValidation="Strict")
    assert answer.status == 400 and answer.body["reason"] == "BadRequest"
    assert answer.body["message"] == (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: '
        'unknown field "spec.colour"'
    )


async def test_ignore_field_validation_prunes_silently(kube: Kube) -> None:
    answer = await kube.post(WIDGETS, widget("i", colour="red"), fieldValidation="Ignore")
    assert answer.status == 201 and answer.warnings == [] and "colour" not in answer.body["spec"]


async def test_invalid_values_are_422_in_the_api_server_style(kube: Kube) -> None:
    answer = await kube.post(WIDGETS, widget("bad", replicas=0, mode="slow"))
    assert answer.status == 422 and answer.body["reason"] == "Invalid"
    message = answer.body["message"]
    assert message.startswith(f'Widget.{GROUP} "bad" is invalid: [')
    assert (
        "spec.replicas: Invalid value: 0: "
        "spec.replicas in body should be greater than or equal to 1" in message
    )
    assert 'spec.mode: Unsupported value: "slow"' in message
    causes = {c["field"]: c["reason"] for c in answer.body["details"]["causes"]}
    assert causes == {"spec.replicas": "FieldValueInvalid", "spec.mode": "FieldValueNotSupported"}
    assert answer.body["details"]["kind"] == "Widget" and answer.body["details"]["group"] == GROUP


async def test_required_fields_and_cel_rules(kube: Kube) -> None:
    missing = await kube.post(WIDGETS, {**widget("r"), "spec": {}})
    assert missing.status == 422 and "spec.image: Required value" in missing.body["message"]
    cel = await kube.post(WIDGETS, widget("c", replicas=20, maxReplicas=5))
    assert cel.status == 422 and "replicas must not exceed maxReplicas" in cel.body["message"]


async def test_validation_applies_to_updates_and_patches(kube: Kube) -> None:
    await kube.post(WIDGETS, widget("u"))
    answer = await kube.patch(f"{WIDGETS}/u", {"spec": {"replicas": -1}}, MERGE)
    assert answer.status == 422
    assert (await kube.get(f"{WIDGETS}/u")).body["spec"]["replicas"] == 1


async def test_crd_is_served_and_established_right_after_creation(
    api: APIServer, kube: Kube
) -> None:
    crd = widget_crd()
    crd["metadata"]["name"] = f"gadgets.{GROUP}"
    crd["spec"]["names"] = {"kind": "Gadget", "plural": "gadgets", "singular": "gadget"}
    created = await kube.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert created.status == 201
    conditions = {c["type"]: c["status"] for c in created.body["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    resources = await kube.get(f"/apis/{GROUP}/v1")
    assert "gadgets" in {r["name"] for r in resources.body["resources"]}
    body: dict[str, Any] = {**widget("g"), "kind": "Gadget"}
    assert (await kube.post(f"/apis/{GROUP}/v1/namespaces/default/gadgets", body)).status == 201


async def test_invalid_crd_is_rejected(kube: Kube) -> None:
    crd = widget_crd()
    crd["metadata"]["name"] = "wrong-name"
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "bad"
    ] = {}
    answer = await kube.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert answer.status == 422
    assert 'must be spec.names.plural+"."+spec.group' in answer.body["message"]
    assert "type: Required value" in answer.body["message"]


async def test_dry_run_create_validates_and_stores_nothing(api: APIServer, kube: Kube) -> None:
    revision = api.store.revision
    answer = await kube.post(WIDGETS, widget("dry"), dryRun="All")
    assert answer.status == 201 and answer.body["spec"]["replicas"] == 1
    assert "resourceVersion" not in answer.body["metadata"]
    assert (await kube.get(f"{WIDGETS}/dry")).status == 404
    invalid = await kube.post(WIDGETS, widget("dry", replicas=0), dryRun="All")
    assert invalid.status == 422
    assert api.store.revision == revision


async def test_dry_run_update_patch_apply_and_delete(api: APIServer, kube: Kube) -> None:
    created = (await kube.post(CM, configmap("dr", a="1"))).body
    revision = api.store.revision
    put = await kube.put(f"{CM}/dr", {**created, "data": {"a": "2"}}, dryRun="All")
    patched = await kube.patch(f"{CM}/dr", {"data": {"a": "3"}}, MERGE, dryRun="All")
    applied = await kube.patch(
        f"{CM}/dr",
        yaml.safe_dump(configmap("dr", a="4")),
        "application/apply-patch+yaml",
        fieldManager="me",
        dryRun="All",
        force="true",
    )
    deleted = await kube.delete(f"{CM}/dr", dryRun="All")
    assert [put.body["data"], patched.body["data"], applied.body["data"]] == [
        {"a": "2"},
        {"a": "3"},
        {"a": "4"},
    ]
    assert deleted.status == 200
    assert api.store.revision == revision
    assert (await kube.get(f"{CM}/dr")).body["data"] == {"a": "1"}
    assert all(r.dry_run for r in api.requests if r.method in {"PUT", "PATCH", "DELETE"})


async def test_apply_warns_about_and_prunes_unknown_fields(kube: Kube) -> None:
    answer = await kube.patch(
        f"{WIDGETS}/aw",
        yaml.safe_dump(widget("aw", colour="red")),
        "application/apply-patch+yaml",
        fieldManager="me",
    )
    assert answer.status == 201 and "colour" not in answer.body["spec"]
    assert answer.warnings == ['299 - "unknown field \\"spec.colour\\""']
    strict = await kube.patch(
        f"{WIDGETS}/aw",
        yaml.safe_dump(widget("aw", colour="red")),
        "application/apply-patch+yaml",
        fieldManager="me",
        fieldValidation="Strict",
    )
    assert strict.status == 400 and 'unknown field "spec.colour"' in strict.body["message"]
