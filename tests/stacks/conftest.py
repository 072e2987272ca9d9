"""Fixtures of the stack tests: each stack built once per process under Pulumi's mocks."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from tests.stacks.harness import Built, build

SECRETS = {
    "mirage:vaultToken": "root-token-for-tests",
    "mirage:kubeconfig": "apiVersion: v1\n",
    "mirage:oauth2ProxyClientSecret": "idp-client-secret-for-tests",
}
STACKS = ("dev", "prod", "local")


@functools.cache
def built(stack: str) -> Built:
    """``Pulumi.<stack>.yaml`` built under mocks (cached: the runtime is process-global)."""
    return build(stack, secrets=SECRETS)


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> Iterator[Built]:
    yield built(request.param)


@pytest.fixture
def dev() -> Built:
    return built("dev")


@pytest.fixture
def prod() -> Built:
    return built("prod")


@pytest.fixture
def local() -> Built:
    return built("local")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # One worker builds the stacks once: keep every stack test on it (pytest-xdist loadgroup).
    for item in items:
        if "tests/stacks/" in str(item.fspath):
            item.add_marker(pytest.mark.xdist_group("stacks"))
