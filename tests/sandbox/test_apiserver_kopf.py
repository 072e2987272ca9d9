"""kopf 1.45 runs against the emulated API: discovery, list/watch, merge patches, Events."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner

from mirage_sandbox.apiserver import APIServer, run_apiserver_in_thread
from tests.sandbox.conftest import GROUP, widget, widget_crd

OPERATOR = f'''
import kopf


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.watching.server_timeout = 5


# As the operator logs in: from the kubeconfig, whichever client libraries are installed
# (kopf's default login with the `kubernetes` package reads KUBECONFIG at kopf's import).
@kopf.on.login()
def login(**kwargs):
    return kopf.login_with_kubeconfig(**kwargs)


@kopf.on.create("{GROUP}", "v1", "widgets")
def created(body, spec, patch, logger, **_):
    logger.info("widget created")
    kopf.info(body, reason="Seen", message="widget seen")
    patch.status["phase"] = "Seen"
    patch.status["observedReplicas"] = spec.get("replicas")
    return {{"image": spec["image"]}}


@kopf.on.update("{GROUP}", "v1", "widgets")
def updated(spec, patch, **_):
    patch.status["phase"] = "Updated"


@kopf.on.delete("{GROUP}", "v1", "widgets")
def deleted(**_):
    pass
'''


def wait_until(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll a condition from synchronous test code."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def threaded_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A server in its own thread (KopfRunner runs kopf in another) and KUBECONFIG for it."""
    with run_apiserver_in_thread(require_auth=True, bookmark_interval=1.0) as server:
        server.install_crds([widget_crd()])
        monkeypatch.setenv("KUBECONFIG", str(server.write_kubeconfig(tmp_path / "kubeconfig")))
        yield server


def status_of(server: APIServer, name: str, namespace: str = "default") -> dict[str, Any]:
    found = server.find("widgets", name, namespace) or {}
    status: dict[str, Any] = found.get("status") or {}
    return status


def test_kopf_handlers_fire_and_patch_status(threaded_api: APIServer, tmp_path: Path) -> None:
    server = threaded_api
    operator = tmp_path / "operator.py"
    operator.write_text(OPERATOR)
    with KopfRunner(
        ["run", "--standalone", "-A", "--verbose", str(operator)], timeout=60
    ) as runner:
        server.create(widget("k1", replicas=2))
        wait_until(lambda: status_of(server, "k1").get("phase") == "Seen")
        assert status_of(server, "k1")["observedReplicas"] == 2
        assert status_of(server, "k1")["created"] == {"image": "nginx:1.27"}
        server.patch("widgets", "k1", {"spec": {"replicas": 3}}, "default")
        wait_until(lambda: status_of(server, "k1").get("phase") == "Updated")
        # kopf posts Events about its handlers through the core v1 API.
        events = wait_until(
            lambda: [e for e in server.list("events", "default") if e["reason"] == "Seen"]
        )
        assert events[0]["involvedObject"]["kind"] == "Widget"
        assert events[0]["involvedObject"]["name"] == "k1"
        assert events[0]["message"] == "widget seen" and events[0]["type"] == "Normal"
        # Deletion goes through kopf's finalizer, which kopf removes after the handler.
        assert (
            "kopf.zalando.org/KopfFinalizerMarker"
            in server.get("widgets", "k1", "default")["metadata"]["finalizers"]
        )
        server.delete("widgets", "k1", "default")
        wait_until(lambda: server.find("widgets", "k1", "default") is None)
    assert runner.exception is None, runner.output
    assert runner.exit_code == 0
    assert "widget created" in runner.output
    patches = [r for r in server.requests if r.method == "PATCH" and r.resource == "widgets"]
    assert {r.content_type for r in patches} >= {"application/merge-patch+json"}
    assert any(r.subresource == "status" for r in patches)
    assert all(r.status < 400 for r in server.requests if r.resource == "widgets")


def test_kopf_namespaced_mode(threaded_api: APIServer, tmp_path: Path) -> None:
    server = threaded_api
    server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    operator = tmp_path / "operator.py"
    operator.write_text(OPERATOR)
    with KopfRunner(
        ["run", "--standalone", "--namespace=team", str(operator)], timeout=60
    ) as runner:
        server.create(widget("outside", namespace="default"))
        server.create(widget("inside", namespace="team"))
        wait_until(lambda: status_of(server, "inside", "team").get("phase") == "Seen")
        assert status_of(server, "outside") == {}
    assert runner.exception is None, runner.output
    watches = [r for r in server.requests if r.verb == "watch" and r.resource == "widgets"]
    assert watches and all(r.namespace == "team" for r in watches)
