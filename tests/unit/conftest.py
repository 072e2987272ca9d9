"""Fixtures for the pure unit tests."""

from __future__ import annotations

from typing import Any

import pytest

from mirage_operator.api.mirageservice import MirageServiceSpec
from mirage_operator.api.validation import admit
from mirage_operator.config import Config
from tests.unit.factories import ServiceFactory, service_body


@pytest.fixture
def config() -> Config:
    """The default configuration."""
    return Config()


@pytest.fixture
def make_spec() -> ServiceFactory:
    """Build a typed spec the way the operator does: admit (defaults + validation), parse."""

    def make(**spec: Any) -> MirageServiceSpec:
        return MirageServiceSpec.from_spec(admit(service_body(**spec))["spec"])

    return make
