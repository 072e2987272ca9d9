"""Failover of ``mirage run`` replicas: ``python -m benchmarks.failover [--rounds N]``.

Two operator processes against the emulated API, with short election terms (lease 2 s,
renew deadline 1.5 s, retry 0.25 s; the chart's defaults scale every figure by 7.5-8x).
``--objects N`` MirageServices (default 100) are converged before the first round, so that a
takeover has something to start from. Each round starts a standby, waits until it is quiet
(no call but the Lease's for a second: its watches, if any, are listed), records its RSS,
then kills the leader (``kill -9``) or stops it (SIGTERM), and measures the time until the
standby holds the Lease and until a MirageService applied right after is Ready, and the
calls the new leader makes from the kill until that service is Ready (LISTs, GETs and writes
other than the Lease's). Finally the Lease calls a minute of the leader and of the standby.
Not part of ``make test``.
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


def _wait(condition: Callable[[], Any], timeout: float = 60, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(interval)


class Bench:
    def __init__(self, server: APIServer, workdir: Path) -> None:
        self.server = server
        self.workdir = workdir
        self.kubeconfig = server.write_kubeconfig(workdir / "kubeconfig")
        self.count = 0
        self.waiting_since = 0.0

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
        self.waiting_since = time.time()
        return process, log

    def quiet(self, identity: str, seconds: float = 1.0) -> None:
        """Wait until ``identity`` watches whatever it listed and made no call but the Lease's
        for ``seconds`` (counted from when it started waiting for the Lease, at the earliest)."""

        def settled() -> bool:
            mine = [
                r
                for r in self.server.requests
                if r.resource != "leases" and r.user_agent.endswith(f"{identity})")
            ]
            listed = {r.resource for r in mine if r.verb == "list"}
            watched = {r.resource for r in mine if r.verb == "watch"}
            last = max([*(r.time for r in mine), self.waiting_since])
            return listed <= watched and time.time() - last > seconds

        _wait(settled)

    def calls(self, identity: str, since: float) -> dict[str, int]:
        """``identity``'s calls since ``since`` (epoch), by verb, the Lease's left out."""
        counts: dict[str, int] = {}
        for r in self.server.requests:
            if r.time >= since and r.resource != "leases" and r.user_agent.endswith(f"{identity})"):
                what = f"{r.verb} {r.resource}" if r.verb in ("list", "watch") else str(r.verb)
                counts[what] = counts.get(what, 0) + 1
        return counts

    def holder(self) -> str:
        lease = self.server.find("leases.coordination.k8s.io", "mirage-operator", "mirage-system")
        return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")

    def ready(self, name: str) -> bool:
        body = self.server.find("mirageservices.mirage.dev", name, NAMESPACE) or {}
        conditions = (body.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def apply(self, name: str) -> None:
        self.server.create(self.service(name))

    @staticmethod
    def service(name: str) -> dict[str, Any]:
        return {
            "apiVersion": "mirage.dev/v1alpha1",
            "kind": "MirageService",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"image": "registry.example/app:1.0.0"},
        }


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--objects", type=int, default=100)
    args = parser.parse_args()
    rounds = args.rounds
    results: dict[str, list[float]] = {
        "kill-lease": [],
        "kill-ready": [],
        "term-lease": [],
        "standby-rss-mib": [],
        "leader-rss-mib": [],
    }
    takeover_calls: list[dict[str, int]] = []
    with tempfile.TemporaryDirectory() as tmp, run_apiserver_in_thread() as server:
        server.install_crds([*load_crds(), *monitoring_crds()])
        for namespace in ("mirage-system", NAMESPACE):
            server.create(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )
        bench = Bench(server, Path(tmp))
        for index in range(args.objects):
            server.create(bench.service(f"pre{index}"))
        leader, _ = bench.start("a")
        _wait(lambda: bench.holder() == "a")
        converged = [f"pre{i}" for i in range(args.objects)]

        def populated() -> bool:
            nonlocal leader
            if leader.poll() is not None:  # on a loaded machine a renewal can miss its deadline
                leader, _ = bench.start("a")
            return all(bench.ready(name) for name in converged)

        # Polled slowly: the emulated API shares this process (and its GIL) with the polling.
        _wait(populated, timeout=900, interval=1.0)
        _wait(lambda: bench.holder() == "a")
        names = iter(("a", "b") * rounds * 2)
        next(names)
        for index in range(rounds * 2):
            standby_id = next(names)
            standby, _ = bench.start(standby_id)
            bench.quiet(standby_id)
            results["standby-rss-mib"].append(_rss_mib(standby.pid))
            results["leader-rss-mib"].append(_rss_mib(leader.pid))
            killed = index % 2 == 0
            started, since = time.monotonic(), time.time()
            leader.send_signal(signal.SIGKILL if killed else signal.SIGTERM)
            if killed:
                bench.apply(f"svc{index}")
            _wait(lambda sid=standby_id: bench.holder() == sid)  # type: ignore[misc]
            led = time.monotonic() - started
            if killed:
                _wait(lambda i=index: bench.ready(f"svc{i}"))  # type: ignore[misc]
                results["kill-ready"].append(time.monotonic() - started)
                takeover_calls.append(bench.calls(standby_id, since))
            results["kill-lease" if killed else "term-lease"].append(led)
            leader.wait(30)
            leader = standby
        since = time.time()
        time.sleep(10)
        calls = [r for r in server.requests if r.resource == "leases" and r.time >= since]
        leader.send_signal(signal.SIGTERM)
        leader.wait(30)
    print(f"{args.objects} MirageServices converged before the first round")
    for key, values in results.items():
        unit = "MiB" if key.endswith("mib") else "s"
        print(f"{key}: median {statistics.median(values):.2f} {unit}, max {max(values):.2f} {unit}")
    for number, counts in enumerate(takeover_calls):
        print(f"kill round {number}: the new leader's calls until Ready (no Lease): {counts}")
    per_minute = len(calls) * 6
    print(
        f"Lease calls/min of the leader at retry 0.25 s: {per_minute}, at 2 s: {per_minute / 8:.0f}"
    )


if __name__ == "__main__":
    main()
