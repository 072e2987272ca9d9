"""Fixtures of the rule tests: the real promtool and the prometheus-operator CRD schemas."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import require_tool
from tests.schemas import third_party_schema


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool (fails under CI when missing, skips elsewhere)."""
    return require_tool("promtool")


@pytest.fixture(scope="session")
def prometheusrule_schema() -> dict[str, Any]:
    """The PrometheusRule schema of prometheus-operator."""
    return third_party_schema("prometheusrules")
