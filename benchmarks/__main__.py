"""Performance harness: ``make benchmark`` (``python -m benchmarks``). Not part of ``make test``.

Measures, in one run, on this machine:

1. offline work per custom resource: ``admit`` (schema + rules) and ``render_document``;
2. the operator against the emulated API: time for N MirageServices to become Ready, API
   calls per service, and the cost of a resync in steady state — for the operator's
   write-only-what-differs strategy and, as the comparison, for applying every child on every
   resync (what an operator without the intent-hash check does). Figures are reported as
   ratios of the two, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

from mirage_operator import metrics
from mirage_operator.api.validation import admit
from mirage_operator.config import Config
from mirage_operator.k8s import children
from mirage_operator.render.documents import render_document
from mirage_operator.sandbox.session import Sandbox

ROOT = Path(__file__).resolve().parent.parent


def _per_second(fn: Callable[[], Any], *, seconds: float = 1.0) -> float:
    """Calls of ``fn`` per second (best of three runs of ``seconds`` each)."""
    rates = []
    for _ in range(3):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            fn()
            count += 1
        rates.append(count / (time.perf_counter() - start))
    return max(rates)


def offline() -> dict[str, float]:
    """Validation and rendering throughput on the full example."""
    (document,) = yaml.safe_load_all((ROOT / "examples" / "mirageservice-full.yaml").read_text())
    config = Config()
    objects = len(render_document(document, config=config))
    return {
        "admit_per_second": round(_per_second(lambda: admit(document)), 1),
        "render_per_second": round(
            _per_second(lambda: render_document(document, config=config)), 1
        ),
        "objects_per_render": objects,
    }


def _service(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "MirageService",
        "metadata": {"name": f"svc{index:03d}", "namespace": "bench"},
        "spec": {
            "image": f"registry.example/svc{index}:1.0.0",
            "ingress": {"host": f"svc{index}.example.com"},
            "autoscaling": {"maxReplicas": 4, "targetCPUUtilization": 70},
        },
    }


def _reconciles() -> tuple[float, float]:
    """(count, total seconds) of MirageService reconciles so far, from the operator's metrics."""
    samples = {
        sample.name: sample.value
        for metric in metrics.RECONCILE_DURATION.collect()
        for sample in metric.samples
        if sample.labels.get("kind") == "MirageService"
    }
    return (
        samples.get("mirage_reconcile_duration_seconds_count", 0.0),
        samples.get("mirage_reconcile_duration_seconds_sum", 0.0),
    )


async def _resync_cost(sandbox: Sandbox, reconciles: int) -> dict[str, float]:
    """API calls and seconds per reconcile over the next ``reconciles`` reconciles."""
    api = sandbox.api
    count0, seconds0 = _reconciles()
    calls0, writes0 = len(api.requests), len(api.requests.writes(namespace="bench"))
    while _reconciles()[0] < count0 + reconciles:  # noqa: ASYNC110 - polling the operator's metrics
        await asyncio.sleep(0.05)
    count, seconds = _reconciles()
    done = count - count0
    return {
        "writes": (len(api.requests.writes(namespace="bench")) - writes0) / done,
        "calls": (len(api.requests) - calls0) / done,
        "seconds": (seconds - seconds0) / done,
    }


async def operator_run(services: int, rounds: int) -> dict[str, Any]:
    """Converge ``services`` MirageServices, then compare steady-state resync strategies."""
    with tempfile.TemporaryDirectory() as workdir:
        config = Config(resync_interval=2.0, metrics_port=0)
        sandbox = Sandbox(workdir=Path(workdir), config=config)
        await sandbox.start()
        try:
            requests_before = len(sandbox.api.requests)
            start = time.perf_counter()
            sandbox.apply(_service(i) for i in range(services))
            rows = await sandbox.converge(wait_seconds=300, out=io.StringIO())
            converge_seconds = time.perf_counter() - start
            ready = sum(r.ready == "True" for r in rows)
            calls_per_service = (len(sandbox.api.requests) - requests_before) / services
            # Settle: the emulated controllers keep scaling (HPA minimum) for a while after
            # Ready; wait for two rounds of reconciles in a row without a write.
            quiet = 0
            for _ in range(40):
                quiet = quiet + 1 if (await _resync_cost(sandbox, services))["writes"] == 0 else 0
                if quiet == 2:
                    break
            ours = await _resync_cost(sandbox, rounds * services)
            # The comparison: the same operator, but every child applied on every resync.
            with mock.patch.object(children, "needs_apply", lambda desired, live: True):
                naive = await _resync_cost(sandbox, rounds * services)
        finally:
            await sandbox.stop()
    return {
        "services": services,
        "ready": ready,
        "converge_seconds": round(converge_seconds, 2),
        "api_calls_per_service_to_converge": round(calls_per_service, 1),
        "steady_reconcile": {k: round(v, 4) for k, v in ours.items()},
        "apply_all_reconcile": {k: round(v, 4) for k, v in naive.items()},
        "reconcile_seconds_ratio_apply_all_over_ours": round(
            naive["seconds"] / max(ours["seconds"], 1e-9), 2
        ),
        "api_calls_ratio_apply_all_over_ours": round(naive["calls"] / max(ours["calls"], 1e-9), 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print one JSON document."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument(
        "--services", type=int, default=30, help="MirageServices in the operator run"
    )
    parser.add_argument("--rounds", type=int, default=3, help="resync rounds measured per strategy")
    args = parser.parse_args(argv)
    results = {
        "offline": offline(),
        "operator": asyncio.run(operator_run(args.services, args.rounds)),
    }
    results["environment"] = {
        "python": sys.version.split()[0],
        "cpus": len(os.sched_getaffinity(0)),
    }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
