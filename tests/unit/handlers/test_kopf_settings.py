"""The kopf settings the operator makes at startup: the diff-base kopf builds for each event
only where a change handler reads it, and how long an idle object's event worker lives; and
the process's garbage-collector settings (docs/adr/0020, amendments)."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
from click.testing import CliRunner
from kopf._core.intents.causes import Activity

from mirage_operator import cli
from mirage_operator.config import Config
from mirage_operator.handlers import register
from mirage_operator.handlers.activities import (
    CHANGE_HANDLED_KINDS,
    GC_THRESHOLDS,
    IDLE_WORKER_TIMEOUT,
    SECRET_WATCH_SELECTOR,
    ChangeHandledDiffBase,
)
from mirage_operator.k8s import resources
from tests.unit.factories import write_kubeconfig

PREFIX, KEY = "mirage.dev", "last-handled-configuration"


def _body(kind: str) -> kopf.Body:
    raw: dict[str, Any] = {
        "apiVersion": "mirage.dev/v1alpha1" if kind == "VaultSecret" else "apps/v1",
        "kind": kind,
        "metadata": {"name": "a", "namespace": "shop", "labels": {"app": "a"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a"}]}}},
        "status": {"replicas": 2},
    }
    return kopf.Body(raw)


def test_every_kind_with_a_change_handler_gets_its_diff_base() -> None:
    registry = kopf.OperatorRegistry()
    register(registry, Config())
    plurals = {
        h.selector.any_name or h.selector.plural for h in registry._changing.get_all_handlers()
    }
    by_plural = {r.plural: r.kind for r in vars(resources).values() if hasattr(r, "plural")}
    assert plurals and {by_plural[p] for p in plurals} <= CHANGE_HANDLED_KINDS


@pytest.mark.parametrize("kind", sorted(CHANGE_HANDLED_KINDS))
def test_a_change_handled_kind_gets_kopfs_own_essence(kind: str) -> None:
    ours = ChangeHandledDiffBase(kinds=CHANGE_HANDLED_KINDS, prefix=PREFIX, key=KEY)
    kopfs = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX, key=KEY)
    essence = ours.build(body=_body(kind))
    assert essence == kopfs.build(body=_body(kind))
    assert essence["spec"]["replicas"] == 2


@pytest.mark.parametrize("kind", ["Deployment", "ConfigMap", "MirageService"])
def test_other_kinds_get_an_empty_essence(kind: str) -> None:
    ours = ChangeHandledDiffBase(kinds=CHANGE_HANDLED_KINDS, prefix=PREFIX, key=KEY)
    assert ours.build(body=_body(kind)) == {}


async def test_startup_makes_the_settings() -> None:
    registry = kopf.OperatorRegistry()
    register(registry, Config(metrics_port=0))
    settings = kopf.OperatorSettings()
    (startup,) = registry._activities.get_handlers(activity=Activity.STARTUP)
    await startup.fn(settings=settings, logger=logging.getLogger(__name__))
    assert isinstance(settings.persistence.diffbase_storage, ChangeHandledDiffBase)
    assert settings.persistence.diffbase_storage.kinds == CHANGE_HANDLED_KINDS
    assert settings.queueing.idle_timeout == IDLE_WORKER_TIMEOUT < 5.0  # kopf's default
    assert settings.watching.server_timeout == 300
    # The API server sends only the Secrets Mirage labels (docs/adr/0126): kopf's labels=
    # filters in the operator, after every Secret of the cluster, data included, arrived.
    secrets = kopf.Resource("", "v1", "secrets", kind="Secret")
    assert settings.watching.label_selectors.collect(secrets) == [SECRET_WATCH_SELECTOR]
    assert SECRET_WATCH_SELECTOR == "app.kubernetes.io/managed-by=mirage-operator"
    deployments = kopf.Resource("apps", "v1", "deployments", kind="Deployment")
    assert settings.watching.label_selectors.collect(deployments) == []


@pytest.fixture
def collector() -> Iterator[None]:
    """The process's garbage-collector settings, restored after the test."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
def test_run_tunes_the_garbage_collector_before_the_operator_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig")
    gc.unfreeze()
    seen: list[tuple[tuple[int, ...], int]] = []

    async def operator(**_: Any) -> None:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))

    monkeypatch.setattr(kopf, "operator", operator)
    env = {"KUBECONFIG": str(kubeconfig), "MIRAGE_LEADER_ELECTION": "false"}
    result = CliRunner().invoke(cli.main, ["run", "--liveness", ""], env=env)

    assert result.exit_code == 0, result.output
    [(thresholds, frozen)] = seen
    assert thresholds == GC_THRESHOLDS != (700, 10, 10)
    assert frozen > 0  # the objects alive at start are out of every collection's reach
