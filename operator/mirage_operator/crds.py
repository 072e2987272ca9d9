"""The Mirage CustomResourceDefinitions, read from ``crds/`` (shipped in the package as ``_crds``).

``crds/`` at the repository root is the source of truth; the package reaches it through the
``_crds`` link, which a wheel build turns into a copy.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CRDS_DIR = Path(__file__).resolve().parent / "_crds"


@cache
def load_crds() -> tuple[dict[str, Any], ...]:
    """Every Mirage CRD, in file-name order."""
    return tuple(
        yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(CRDS_DIR.glob("*.yaml"))
    )


def crd_for(group: str, kind: str) -> dict[str, Any] | None:
    """The CRD defining ``kind`` in ``group``, or ``None``."""
    for crd in load_crds():
        if crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind:
            return crd
    return None


def schema_for(api_version: str, kind: str) -> dict[str, Any] | None:
    """The openAPIV3Schema of ``kind`` at ``api_version`` (``group/version``), or ``None``."""
    group, _, version = api_version.rpartition("/")
    crd = crd_for(group, kind)
    if crd is None:
        return None
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
            return schema
    return None


def spec_schema(crd: Mapping[str, Any]) -> dict[str, Any]:
    """The ``spec`` schema of a CRD's first version."""
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"
    ]
    return schema


SECRET_SOURCE_FIELDS = ("vault", "keys", "templates", "refreshInterval")
"""The VaultSecret spec fields a MirageService's ``spec.secrets[]`` entry embeds."""


def embedded_secret_item(
    service_crd: Mapping[str, Any], secret_crd: Mapping[str, Any]
) -> dict[str, Any]:
    """``spec.secrets[]`` of the MirageService CRD with the VaultSecret source fields copied in.

    CRDs have no ``$ref``: ``hack/embed_schemas.py`` writes the copies, a test keeps them equal.
    """
    item: dict[str, Any] = copy.deepcopy(spec_schema(service_crd)["properties"]["secrets"]["items"])
    source = spec_schema(secret_crd)["properties"]
    for field in SECRET_SOURCE_FIELDS:
        item["properties"][field] = copy.deepcopy(source[field])
    return item


def embedded_slo_item(service_crd: Mapping[str, Any], slo_crd: Mapping[str, Any]) -> dict[str, Any]:
    """``spec.monitoring.slos[]`` of the MirageService CRD: the SLO spec without ``service``,
    plus the entry's ``name``."""
    current = spec_schema(service_crd)["properties"]["monitoring"]["properties"]["slos"]["items"]
    item = copy.deepcopy(spec_schema(slo_crd))
    item["properties"].pop("service")
    item["required"] = ["name"] + [r for r in item.get("required", []) if r != "service"]
    item["properties"] = {"name": current["properties"]["name"], **item["properties"]}
    item["description"] = current["description"]
    return item
