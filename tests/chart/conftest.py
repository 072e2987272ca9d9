"""Fixtures of the chart tests: the real helm, and each case rendered once per session.

Every chart test is in the xdist group ``chart`` so that one worker renders each case once
(``make test`` runs ``pytest -n 2 --dist loadgroup``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.chart.helm import Helm, Rendered, case_values, values_args
from tests.conftest import require_tool


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put every test under tests/chart into one xdist group (one helm render per case)."""
    for item in items:
        if "tests/chart/" in item.path.as_posix():
            item.add_marker(pytest.mark.xdist_group("chart"))


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The pinned helm binary (``make tools``); fails under CI when missing."""
    return Helm(require_tool("helm"), tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def render(helm: Helm) -> Callable[[str], Rendered]:
    """``render(case)``: the case's ``helm template`` output, rendered on first use only."""
    cache: dict[str, Rendered] = {}

    def get(case: str) -> Rendered:
        if case not in cache:
            result = helm.template(*values_args(case))
            assert result.returncode == 0, f"helm template ({case}) failed:\n{result.stderr}"
            cache[case] = Rendered(case, result.stdout, case_values(case))
        return cache[case]

    return get


@pytest.fixture(scope="session")
def render_with(helm: Helm) -> Callable[..., Rendered]:
    """``render_with("key=value", ...)``: the default case with ``--set`` overrides (not
    cached; ``Rendered.values`` are the defaults, without the overrides)."""

    def run(*assignments: str) -> Rendered:
        args = [arg for assignment in assignments for arg in ("--set", assignment)]
        result = helm.template(*args)
        assert result.returncode == 0, f"helm template {args} failed:\n{result.stderr}"
        return Rendered("default+" + ",".join(assignments), result.stdout, case_values("default"))

    return run
