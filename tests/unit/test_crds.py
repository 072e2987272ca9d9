"""The CRDs: valid apiextensions/v1, structural, documented, and embedded copies in sync."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import kubernetes_validate
import pytest

from mirage_operator.crds import embedded_secret_item, embedded_slo_item, load_crds, spec_schema
from mirage_operator.schema import structural_problems

CRDS = {crd["spec"]["names"]["kind"]: crd for crd in load_crds()}
KINDS = sorted(CRDS)


def _schema(crd: Mapping[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def _fields(schema: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, sub in (schema.get("properties") or {}).items():
        yield f"{path}.{name}", sub
        yield from _fields(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), Mapping):
        yield from _fields(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from _fields(schema["additionalProperties"], f"{path}{{}}")


def test_all_three_kinds_are_defined() -> None:
    assert KINDS == ["MirageService", "ServiceLevelObjective", "VaultSecret"]


@pytest.mark.parametrize("kind", KINDS)
def test_crd_is_valid_apiextensions_v1(kind: str) -> None:
    crd = CRDS[kind]
    kubernetes_validate.validate(crd, "1.33", strict=True)
    assert crd["metadata"]["name"] == f"{crd['spec']['names']['plural']}.mirage.dev"


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_structural(kind: str) -> None:
    assert structural_problems(_schema(CRDS[kind])) == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_spec_and_status_field_has_a_description(kind: str) -> None:
    schema = _schema(CRDS[kind])
    undocumented = [
        path
        for top in ("spec", "status")
        for path, sub in _fields(schema["properties"][top], top)
        if not sub.get("description")
    ]
    assert undocumented == []


@pytest.mark.parametrize("kind", KINDS)
def test_kind_is_usable_from_kubectl(kind: str) -> None:
    crd = CRDS[kind]
    names, version = crd["spec"]["names"], crd["spec"]["versions"][0]
    assert "mirage" in names["categories"]
    assert names["shortNames"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    status = _schema(crd)["properties"]["status"]["properties"]
    assert {"observedGeneration", "conditions"} <= set(status)
    condition = status["conditions"]["items"]
    assert set(condition["required"]) == {
        "type",
        "status",
        "lastTransitionTime",
        "reason",
        "message",
    }


def test_embedded_vault_secret_fields_equal_the_vault_secret_crd() -> None:
    service = CRDS["MirageService"]
    embedded = spec_schema(service)["properties"]["secrets"]["items"]
    assert embedded == embedded_secret_item(service, CRDS["VaultSecret"]), (
        "run hack/embed_schemas.py after changing the VaultSecret CRD"
    )


def test_embedded_slo_fields_equal_the_slo_crd() -> None:
    service = CRDS["MirageService"]
    embedded = spec_schema(service)["properties"]["monitoring"]["properties"]["slos"]["items"]
    assert embedded == embedded_slo_item(service, CRDS["ServiceLevelObjective"]), (
        "run hack/embed_schemas.py after changing the ServiceLevelObjective CRD"
    )
