"""Shared test helpers: where the repository and the real tools are."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
THIRD_PARTY_CRDS = SHARED / "third_party" / "crds"


def require_tool(name: str) -> str:
    """Path of a real tool (``.tools/bin`` first, then PATH).

    Missing: fail under CI (a missing tool is a broken setup), skip on a developer's machine.
    """
    local = REPO / ".tools" / "bin" / name
    found = str(local) if local.exists() else shutil.which(name)
    if found:
        return found
    message = f"{name} not found: run `make tools`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_path(path: Path) -> Path:
    """``path``, which a test needs; fail under CI when missing, skip elsewhere."""
    if path.exists():
        return path
    message = f"{path} not found"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def openbao() -> Iterator[Any]:
    """A real OpenBao server on loopback (one per test worker); see :mod:`tests.realservers`."""
    from tests.realservers import openbao_server

    yield from openbao_server()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A real PostgreSQL server on loopback (one per test worker)."""
    from tests.realservers import postgres_server

    yield from postgres_server()
