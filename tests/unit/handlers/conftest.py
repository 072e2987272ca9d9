"""Fixtures of the handler tests: the emulated Vault of the Vault client tests, and the Events
the handlers post."""

from typing import Any

import pytest

from mirage_operator.handlers import common
from tests.unit.vault.vaultkit import (  # noqa: F401 - pytest finds fixtures by name
    clock,
    sleeps,
    vault,
)


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every Event the handlers post, as (reason, message), instead of posting it."""
    posted: list[tuple[str, str]] = []

    def post(body: Any, reason: str, message: str, **_: Any) -> None:
        posted.append((reason, message))

    monkeypatch.setattr(common, "post_event", post)
    return posted
