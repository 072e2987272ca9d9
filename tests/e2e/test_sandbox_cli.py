"""``mirage sandbox`` as a user starts it: from any directory, on free loopback ports only,
printing absolute paths, and failing in one line with the cause."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest

from mirage_operator.config import Config
from mirage_operator.errors import StartupError
from mirage_sandbox import session
from tests.sandbox_process import listening_addresses, sandbox_running

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

MIRAGE = Path(sys.executable).parent / "mirage"


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else listens on, on every interface (as a stray 8080 would)."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_sandbox_starts_anywhere_and_listens_only_on_loopback(
    tmp_path: Path, busy_port: int
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()  # no examples/ here
    with sandbox_running(
        tmp_path,
        cwd=elsewhere,
        env={"MIRAGE_METRICS_PORT": str(busy_port)},
        workdir="relative/work",
        default_examples=True,
    ) as running:
        # The packaged examples were applied and converged, though cwd has none.
        assert "payments" in running.output and "hello" in running.output
        assert running.kubeconfig == elsewhere / "relative" / "work" / "kubeconfig"
        # Every listening socket of the process is on 127.0.0.1: API, Vault, metrics.
        listening = listening_addresses(running.pid)
        assert len(listening) >= 3, listening
        assert {address for address, _ in listening} == {"127.0.0.1"}
        assert busy_port not in {port for _, port in listening}
        urls = re.findall(r"https?://[^\s,;]+", running.output)
        assert {int(u.rsplit(":", 1)[1].split("/")[0]) for u in urls} <= {p for _, p in listening}
        (metrics,) = [u for u in urls if u.endswith("/metrics")]
        with urllib.request.urlopen(metrics, timeout=10) as answer:
            assert b"mirage_reconciles" in answer.read()


def test_sandbox_on_a_busy_port_fails_in_one_line(tmp_path: Path, busy_port: int) -> None:
    result = subprocess.run(
        [str(MIRAGE), "sandbox", "--port", str(busy_port), "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{busy_port}: Address already in use" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def _failing_startup(error: Exception) -> Any:
    register = session.register

    def patched(registry: kopf.OperatorRegistry, config: Config) -> Any:
        @kopf.on.startup(registry=registry)
        def fail(**_: Any) -> None:
            raise error

        return register(registry, config)

    return patched


@pytest.mark.parametrize(
    ("error", "seconds", "expected"),
    [
        # kopf gives up on a permanent failure and stops (in about 5 s)...
        (kopf.PermanentError("no way"), 30.0, "^the operator stopped while starting: no way$"),
        # ... and retries any other error; the sandbox stops waiting and names it.
        (RuntimeError("still broken"), 2.0, r"not ready within 2 s: .*RuntimeError: still broken"),
    ],
)
async def test_operator_start_failure_names_its_cause(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    seconds: float,
    expected: str,
) -> None:
    monkeypatch.setattr(session, "register", _failing_startup(error))
    monkeypatch.setattr(session, "START_SECONDS", seconds)
    sandbox = session.Sandbox(workdir=tmp_path, config=Config())
    try:
        with pytest.raises(StartupError, match=expected) as raised:
            await asyncio.wait_for(sandbox.start(), timeout=60)
    finally:
        await sandbox.stop()
    assert "\n" not in str(raised.value)


def test_documents_the_api_refuses_are_reported_and_the_rest_applied(tmp_path: Path) -> None:
    """As ``kubectl apply`` does: each refusal in one line, the other documents applied."""
    (tmp_path / "mixed.yaml").write_text(
        "apiVersion: mirage.dev/v1alpha1\nkind: MirageService\nmetadata: {name: bad}\n"
        "spec: {image: nginx:1, replicas: many}\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: Bad_NS}\n"
        "---\napiVersion: v1\nkind: ConfigMap\ndata: {}\n"
        "---\napiVersion: example.com/v1\nkind: Gizmo\nmetadata: {name: g}\n"
        "---\napiVersion: mirage.dev/v1alpha1\nkind: VaultSecret\nmetadata: {name: v}\n"
        "spec: {vault: 5}\n"
        "---\napiVersion: mirage.dev/v1alpha1\nkind: MirageService\nmetadata: {name: good}\n"
        "spec: {image: nginx:1}\n"
    )
    result = subprocess.run(
        [str(MIRAGE), "sandbox", "--workdir", str(tmp_path / "w"), "--timeout", "30", "mixed.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1  # not everything was applied
    refused = [line for line in result.stdout.splitlines() if line.startswith("refused by")]
    assert [line.split(": ", 2)[1] for line in refused] == [
        "MirageService default/bad",
        "ConfigMap Bad_NS/c",
        "ConfigMap default/?",
        "Gizmo default/g",
        "VaultSecret default/v",
    ]
    assert re.search(r"MirageService +default +good +True", result.stdout), result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_resource_the_operator_refuses_fails_the_run(tmp_path: Path) -> None:
    """Accepted by the API but refused by the operator (InvalidSpec): the wait ends, the run
    fails, and the table says why."""
    (tmp_path / "refused.yaml").write_text(
        "apiVersion: mirage.dev/v1alpha1\nkind: MirageService\nmetadata: {name: good}\n"
        "spec: {image: nginx:1}\n"
        "---\napiVersion: mirage.dev/v1alpha1\nkind: MirageService\nmetadata: {name: meshy}\n"
        "spec: {image: nginx:1, mesh: {resilience: {connectionPool: {maxConnections: 5}}}}\n"
    )
    result = subprocess.run(
        [str(MIRAGE), "sandbox", "--workdir", str(tmp_path / "w"), "--timeout", "60",
         "refused.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert re.search(r"MirageService +default +meshy +False +InvalidSpec", result.stdout)
    assert re.search(r"MirageService +default +good +True", result.stdout), result.stdout
    assert "converging: 1/2 ready" in result.stdout
