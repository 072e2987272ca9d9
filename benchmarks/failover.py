"""Failover of ``mirage run`` replicas: ``python -m benchmarks.failover [--rounds N]``.

Two operator processes against the emulated API, with short election terms (lease 2 s,
renew deadline 1.5 s, retry 0.25 s; the chart's defaults scale every figure by 7.5-8x).
Each round kills the leader (``kill -9``) or stops it (SIGTERM), and measures the time until
the standby holds the Lease and until a MirageService applied right after is Ready; then
the Lease calls a minute of the leader and of the standby. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mirage_operator.crds import load_crds
from mirage_sandbox.apiserver.server import APIServer, run_apiserver_in_thread
from mirage_sandbox.monitoring_crds import monitoring_crds

TERMS = {
    "MIRAGE_LEASE_DURATION": "2",
    "MIRAGE_RENEW_DEADLINE": "1.5",
    "MIRAGE_RETRY_PERIOD": "0.25",
}
NAMESPACE = "bench"


def _wait(condition: Callable[[], Any], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.02)


class Bench:
    def __init__(self, server: APIServer, workdir: Path) -> None:
        self.server = server
        self.workdir = workdir
        self.kubeconfig = server.write_kubeconfig(workdir / "kubeconfig")
        self.count = 0

    def start(self, identity: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.workdir / f"{identity}-{self.count}.log"
        self.count += 1
        env = {
            **os.environ,
            **TERMS,
            "KUBECONFIG": str(self.kubeconfig),
            "MIRAGE_LEADER_ELECTION_IDENTITY": identity,
            "MIRAGE_METRICS_PORT": "0",
            "MIRAGE_LOG_FORMAT": "text",
        }
        mirage = Path(sys.executable).parent / "mirage"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(mirage), "run", "--liveness", ""], env=env, stdout=out, stderr=out
            )
        _wait(lambda: "Waiting to lead" in log.read_text(errors="replace"))
        return process, log

    def holder(self) -> str:
        lease = self.server.find("leases.coordination.k8s.io", "mirage-operator", "mirage-system")
        return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")

    def ready(self, name: str) -> bool:
        body = self.server.find("mirageservices.mirage.dev", name, NAMESPACE) or {}
        conditions = (body.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def apply(self, name: str) -> None:
        self.server.create(
            {
                "apiVersion": "mirage.dev/v1alpha1",
                "kind": "MirageService",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"image": "registry.example/app:1.0.0"},
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    results: dict[str, list[float]] = {"kill-lease": [], "kill-ready": [], "term-lease": []}
    with tempfile.TemporaryDirectory() as tmp, run_apiserver_in_thread() as server:
        server.install_crds([*load_crds(), *monitoring_crds()])
        for namespace in ("mirage-system", NAMESPACE):
            server.create(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )
        bench = Bench(server, Path(tmp))
        leader, _ = bench.start("a")
        _wait(lambda: bench.holder() == "a")
        names = iter(("a", "b") * rounds * 2)
        next(names)
        for index in range(rounds * 2):
            standby_id = next(names)
            standby, _ = bench.start(standby_id)
            killed = index % 2 == 0
            started = time.monotonic()
            leader.send_signal(signal.SIGKILL if killed else signal.SIGTERM)
            if killed:
                bench.apply(f"svc{index}")
            _wait(lambda sid=standby_id: bench.holder() == sid)  # type: ignore[misc]
            led = time.monotonic() - started
            if killed:
                _wait(lambda i=index: bench.ready(f"svc{i}"))  # type: ignore[misc]
                results["kill-ready"].append(time.monotonic() - started)
            results["kill-lease" if killed else "term-lease"].append(led)
            leader.wait(30)
            leader = standby
        since = time.time()
        time.sleep(10)
        calls = [r for r in server.requests if r.resource == "leases" and r.time >= since]
        leader.send_signal(signal.SIGTERM)
        leader.wait(30)
    for key, values in results.items():
        print(f"{key}: median {statistics.median(values):.2f} s, max {max(values):.2f} s")
    per_minute = len(calls) * 6
    print(
        f"Lease calls/min of the leader at retry 0.25 s: {per_minute}, at 2 s: {per_minute / 8:.0f}"
    )


if __name__ == "__main__":
    main()
