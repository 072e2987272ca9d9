"""Fixtures of the rule tests: the real promtool and the prometheus-operator CRD schemas."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.conftest import THIRD_PARTY_CRDS, require_path, require_tool


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool (fails under CI when missing, skips elsewhere)."""
    return require_tool("promtool")


def third_party_schema(plural: str) -> dict[str, Any]:
    """openAPIV3Schema of the v1 version of a prometheus-operator CRD, read in place."""
    path = require_path(THIRD_PARTY_CRDS / "monitoring.coreos.com" / f"{plural}.yaml")
    crd = yaml.safe_load(path.read_text(encoding="utf-8"))
    (version,) = (v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


@pytest.fixture(scope="session")
def prometheusrule_schema() -> dict[str, Any]:
    """The PrometheusRule schema of prometheus-operator."""
    return third_party_schema("prometheusrules")
