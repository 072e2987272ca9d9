"""The real kubectl against ``mirage sandbox --keep``: list, describe, apply (client- and
server-side) and delete Mirage resources, and see the operator's status conditions."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, require_tool
from tests.e2e.kube import wait_for
from tests.sandbox_process import sandbox_process

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """``kubectl --kubeconfig <sandbox>`` with the minimal example applied by the sandbox."""
    binary = require_tool("kubectl")
    with sandbox_process(
        tmp_path_factory.mktemp("kubectl"), REPO / "examples" / "mirageservice-minimal.yaml"
    ) as kubeconfig:
        yield [binary, "--kubeconfig", str(kubeconfig)]


def run(kubectl: list[str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [*kubectl, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def test_get_lists_mirage_resources_with_their_ready_column(kubectl: list[str]) -> None:
    table = run(kubectl, "get", "mirage", "-A")
    header, *rows = table.splitlines()
    assert "READY" in header and "REASON" in header
    hello = next(r for r in rows if "hello" in r)
    assert "True" in hello and "Available" in hello


def test_describe_shows_the_conditions_and_the_event_of_a_change(kubectl: list[str]) -> None:
    """A creation is told by the conditions, with no Event (an Event is a write beyond issue
    10's minimum); a change of the spec by an ``Applied`` Event naming what was applied."""
    manifest = (
        "apiVersion: mirage.dev/v1alpha1\nkind: MirageService\n"
        "metadata: {name: described, namespace: default}\nspec: {image: registry.example/d:1}\n"
    )
    run(kubectl, "apply", "-f", "-", stdin=manifest)
    run(kubectl, "wait", "--for=condition=Ready", "msvc/described", "--timeout=60s")

    def events() -> str:
        return run(kubectl, "describe", "mirageservice", "described").split("Events:")[1]

    text = run(kubectl, "describe", "mirageservice", "described")
    assert "Conditions:" in text and "Available" in text
    assert events().split() == ["<none>"]

    run(kubectl, "apply", "-f", "-", stdin=manifest.replace("d:1", "d:2"))

    def applied() -> str | None:
        text = events()
        return text if "Applied" in text else None

    assert "Deployment/described" in wait_for(applied, what="an Applied Event")


def test_client_side_apply_then_wait_then_delete(kubectl: list[str], tmp_path: Path) -> None:
    manifest = tmp_path / "svc.yaml"
    manifest.write_text(
        "apiVersion: mirage.dev/v1alpha1\nkind: MirageService\n"
        "metadata: {name: client-side, namespace: default}\nspec: {image: registry.example/a:1}\n"
    )
    assert "created" in run(kubectl, "apply", "-f", str(manifest))
    run(kubectl, "wait", "--for=condition=Ready", "mirageservice/client-side", "--timeout=60s")
    deployment = json.loads(run(kubectl, "get", "deployment", "client-side", "-o", "json"))
    assert deployment["metadata"]["ownerReferences"][0]["name"] == "client-side"
    assert "deleted" in run(kubectl, "delete", "-f", str(manifest))
    assert "client-side" not in run(kubectl, "get", "msvc")


def test_server_side_apply_and_an_update(kubectl: list[str]) -> None:
    manifest = (
        "apiVersion: mirage.dev/v1alpha1\nkind: MirageService\n"
        "metadata: {name: server-side, namespace: default}\n"
        "spec: {image: registry.example/b:1, replicas: 1}\n"
    )
    run(kubectl, "apply", "--server-side", "-f", "-", stdin=manifest)
    run(kubectl, "wait", "--for=condition=Ready", "msvc/server-side", "--timeout=60s")
    run(
        kubectl,
        "apply",
        "--server-side",
        "-f",
        "-",
        stdin=manifest.replace("replicas: 1", "replicas: 3"),
    )
    run(
        kubectl,
        "wait",
        "--for=jsonpath={.status.readyReplicas}=3",
        "msvc/server-side",
        "--timeout=60s",
    )


def test_invalid_resource_is_rejected_by_the_schema(kubectl: list[str]) -> None:
    bad = (
        "apiVersion: mirage.dev/v1alpha1\nkind: MirageService\n"
        "metadata: {name: bad, namespace: default}\nspec: {image: x, replicas: -1}\n"
    )
    result = subprocess.run(
        [*kubectl, "apply", "-f", "-"], input=bad, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "spec.replicas" in result.stderr
