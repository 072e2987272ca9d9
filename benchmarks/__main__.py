"""Performance harness: ``make benchmark`` (``python -m benchmarks``). Not part of ``make test``.

The emulated Kubernetes API runs in this process; the operator (``mirage run``) runs in its
own process, so its CPU seconds and resident memory are its own (read from /proc). The
same-run baseline (:mod:`benchmarks.baseline`) is a minimal kopf operator that applies the
same pre-rendered children and sets Ready, measured in the same harness. Every API call the
operator makes is in the emulated API's request log, counted by verb and resource.

Results go to ``benchmarks/results.json`` and ``benchmarks/RESULTS.md``. ``--quick`` runs
small sizes; ``--sizes``/``--steady``/``--skip`` choose the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks import proc, workload
from mirage_operator.config import Config
from mirage_operator.crds import load_crds
from mirage_operator.tenancy import SERVICE_ACCOUNT
from mirage_sandbox.apiserver.server import APIServer
from mirage_sandbox.apiserver.store import Change
from mirage_sandbox.tenants import add_tenant
from mirage_sandbox.vault import EmulatedVault, VaultThread, apiserver_reviewer

ROOT = Path(__file__).resolve().parent.parent
THIRD_PARTY = ROOT.parent / "shared" / "third_party" / "crds" / "monitoring.coreos.com"
OPERATOR_NAMESPACE = "mirage-system"
READ_VERBS = ("get", "list", "watch")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _crds() -> list[dict[str, Any]]:
    return [
        *load_crds(),
        *(yaml.safe_load(p.read_text()) for p in sorted(THIRD_PARTY.glob("*.yaml"))),
    ]


def _ready(body: dict[str, Any] | None) -> bool:
    for cond in ((body or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


OPERATOR_AGENTS = ("mirage-operator", "kopf")
"""User agents of the operator's own client and of kopf (which the baseline is too)."""


def _operator_calls(api: APIServer) -> list[Any]:
    """The calls the operator made: not those of someone looking at the emulated API with
    kubectl or a client while the benchmark runs (a LIST by an onlooker is not the
    operator's)."""
    return [r for r in api.requests if r.user_agent.startswith(OPERATOR_AGENTS)]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Process:
    """The operator (or the baseline) under test, in its own process."""

    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    peak_rss_mb: float = 0.0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv, env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def cpu(self) -> float:
        return proc.cpu_seconds(self.pid)

    def rss(self) -> float:
        rss, peak = proc.memory_mb(self.pid)
        self.peak_rss_mb = max(self.peak_rss_mb, peak)
        return rss

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.rss()
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


@dataclass
class Run:
    """One cold convergence (and what follows it) of one operator at one size."""

    operator: str
    size: int
    namespaces: int
    secrets: int = 0
    profiled: bool = False
    """Sampled by py-spy: a run of its own, whose figures no target or ratio uses (the
    sampling slows the operator; the run of record in the issue's profile was also the
    measured one, and its wall time was 1.4x that of an unprofiled run)."""
    figures: dict[str, Any] = field(default_factory=dict)


class Harness:
    """The emulated API (on this process's loop) and one operator process at a time."""

    def __init__(
        self, workdir: Path, *, resync: float, timeout: float, profile: int, mirage: dict[str, str]
    ) -> None:
        self.mirage = mirage
        """Operator label (``mirage``, ``before``) → the ``mirage`` executable it runs."""
        self.workdir = workdir
        self.resync = resync
        self.timeout = timeout
        self.profile = profile

    async def _wait_all_ready(
        self, api: APIServer, names: list[tuple[str, str, str]], deadline: float
    ) -> float:
        """Seconds until every ``(resource, namespace, name)`` is Ready (or the deadline).

        Told by the emulated API's change feed, not by polling: each look at thousands of
        objects copied them out of the store on the loop that serves the operator (11 % of that
        process's CPU at 1,000 services), so that the harness's own cost counted as the API's.
        """
        start = time.monotonic()
        storages = {resource: api.resource(resource).storage for resource, _, _ in names}
        pending = {(storages[resource], ns, name) for resource, ns, name in names}
        done = asyncio.Event()

        def seen(change: Change) -> None:
            key = (change.storage, change.namespace, change.name)
            if key in pending and change.type != "DELETED" and _ready(change.obj):
                pending.discard(key)
                if not pending:
                    done.set()

        with api.store.lock:  # no change between the look and the subscription
            unsubscribe = api.store.subscribe(seen)
            pending = {
                (storage, ns, name)
                for storage, ns, name in pending
                if not _ready(api.store.peek(storage, ns, name))
            }
        try:
            if pending:
                await asyncio.wait_for(done.wait(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return float("nan")
        finally:
            unsubscribe()
        return time.monotonic() - start

    async def cold(self, run: Run, *, steady: float, latency: int) -> None:
        """Converge ``run.size`` services from nothing; then steady state and new services."""
        api = APIServer()
        await api.start()
        vault_thread = None
        try:
            api.install_crds(_crds())
            for ns in {workload.namespace_of(i, run.namespaces) for i in range(run.size)} | {
                OPERATOR_NAMESPACE
            }:
                api.cluster.ensure_namespace(ns)
            kubeconfig = api.write_kubeconfig(self.workdir / f"kubeconfig-{run.operator}")
            bodies = [
                workload.service(
                    i, namespace=workload.namespace_of(i, run.namespaces), secrets=run.secrets
                )
                for i in range(run.size + latency)
            ]
            env = {
                "KUBECONFIG": str(kubeconfig),
                "MIRAGE_RESYNC_INTERVAL": str(self.resync),
                "MIRAGE_METRICS_PORT": "0",
                "MIRAGE_LOG_LEVEL": "WARNING",
                "MIRAGE_OPERATOR_NAMESPACE": OPERATOR_NAMESPACE,
                # One replica, measured alone: its Lease renewals are not per-service work
                # (benchmarks/failover.py counts them), and on a loaded machine a renewal
                # that times out would stop the operator mid-run.
                "MIRAGE_LEADER_ELECTION": "false",
            }
            if run.secrets:
                vault_thread = VaultThread(EmulatedVault(token_reviewer=apiserver_reviewer(api)))
                vault_thread.__enter__()
                vault = vault_thread.vault
                for body in bodies:
                    for secret in body["spec"]["secrets"]:
                        vault.put_kv(secret["vault"]["path"], {"password": "x"})
                # Each namespace a Vault tenant, as the stacks make it (mirage_operator.tenancy).
                for ns in {b["metadata"]["namespace"] for b in bodies}:
                    api.create(
                        {
                            "apiVersion": "v1",
                            "kind": "ServiceAccount",
                            "metadata": {"name": SERVICE_ACCOUNT, "namespace": ns},
                        }
                    )
                    add_tenant(vault, ns, config=Config())
                env["MIRAGE_VAULT_ADDR"] = vault_thread.address
            if run.operator == "baseline":
                rendered = {
                    f"{b['metadata']['namespace']}/{b['metadata']['name']}": workload.rendered(b)
                    for b in bodies
                }
                rendered_path = self.workdir / "rendered.json"
                rendered_path.write_text(json.dumps(rendered))
                argv = [sys.executable, "-m", "benchmarks.baseline"]
                env["BENCH_RENDERED"] = str(rendered_path)
            else:
                argv = [self.mirage[run.operator.split()[0]], "run", "--liveness", ""]
            operator = Process(argv, env, self.workdir / f"{run.operator}-{run.size}.log")
            operator.start()
            try:
                await self._measure(api, operator, run, bodies, steady=steady, latency=latency)
                if vault_thread is not None:
                    run.figures["vault_logins"] = vault_thread.vault.logins()
                    run.figures["vault_reads"] = vault_thread.vault.count("GET")
                    run.figures["vault_reads_minimum"] = run.size * run.secrets
                    # One login per tenant (namespace): its token is kept and renewed.
                    run.figures["vault_logins_minimum"] = run.namespaces
            finally:
                operator.stop()
                run.figures["peak_rss_mb"] = round(operator.peak_rss_mb, 1)
        finally:
            if vault_thread is not None:
                vault_thread.__exit__(None, None, None)
            await api.stop()

    async def _measure(
        self,
        api: APIServer,
        operator: Process,
        run: Run,
        bodies: list[dict[str, Any]],
        *,
        steady: float,
        latency: int,
    ) -> None:
        # Let the operator log in and start its watches before the clock starts.
        deadline = time.monotonic() + 60
        while not any(r.verb == "watch" for r in api.requests) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        api.requests.clear()
        profiler = None
        if run.profiled:
            profiler = Profiler(operator.pid, self.workdir / f"profile-{run.size}.txt")
        cpu0, api_cpu0 = operator.cpu(), time.process_time()
        start = time.monotonic()
        created = bodies[: run.size]
        for index, body in enumerate(created):
            api.create(body)
            if index % 50 == 49:
                await asyncio.sleep(0)  # keep serving the operator meanwhile
        names = [(b["metadata"]["namespace"], b["metadata"]["name"]) for b in created]
        # The operator's own SLOs must be Ready too; the baseline only applies them.
        watched = [("mirageservices", ns, name) for ns, name in names]
        if run.operator != "baseline":
            watched += [
                ("servicelevelobjectives", ns, f"{name}-availability") for ns, name in names
            ]
        seconds = await self._wait_all_ready(api, watched, start + self.timeout)
        # Let the tail of the work (echoes, child SLO status) settle before counting.
        await asyncio.sleep(2.0)
        if profiler is not None:
            run.figures["hot_spots"] = profiler.stop()
        records = _operator_calls(api)
        cpu = operator.cpu() - cpu0
        api_cpu = time.process_time() - api_cpu0
        operator.rss()
        by_call = collections.Counter(
            f"{r.verb} {r.resource}{'/' + r.subresource if r.subresource else ''}"
            for r in records
            if r.verb != "watch"
        )
        writes = [r for r in records if r.is_write]
        # One write per rendered object (a VaultSecret's Secret is rendered as its preview)
        # and one status write per MirageService, SLO and VaultSecret. Until this counted two
        # status writes per service (its own and one SLO's) and none of the VaultSecrets':
        # the Vault variant's minimum said 17 per service with 2 secrets; it is 19.
        minimum = sum(workload.minimum_writes(b) for b in created)
        if run.secrets:
            minimum += run.namespaces  # one TokenRequest per tenant, for its Vault login
        ready = sum(_ready(api.find("mirageservices", n, ns)) for ns, n in names)
        calls = sum(by_call.values())
        run.figures.update(
            converge_seconds=round(seconds, 2),
            ready=ready,
            operator_cpu_seconds=round(cpu, 2),
            operator_cpu_ms_per_service=round(1000 * cpu / max(run.size, 1), 2),
            api_calls=calls,
            api_calls_per_service=round(calls / max(run.size, 1), 2),
            writes_per_service=round(len(writes) / max(run.size, 1), 2),
            writes_per_service_minimum=round(minimum / max(run.size, 1), 2),
            lists=sum(n for k, n in by_call.items() if k.startswith("list ")),
            errors=sum(1 for r in records if r.status >= 400),
            calls_by_verb_and_resource=dict(by_call.most_common()),
            apiserver_cpu_ms_per_request=round(1000 * api_cpu / max(len(records), 1), 3),
            rss_mb_after_converge=round(operator.rss(), 1),
        )
        if steady > 0:
            api.requests.clear()
            cpu0 = operator.cpu()
            await asyncio.sleep(steady)
            records = _operator_calls(api)
            used = operator.cpu() - cpu0
            run.figures["steady"] = {
                "seconds": steady,
                "writes": sum(1 for r in records if r.is_write),
                "lists": sum(1 for r in records if r.verb == "list"),
                "calls": sum(1 for r in records if r.verb != "watch"),
                # Watch requests too: a watch resumed from its resourceVersion is one call, a
                # watch that had to start over is a LIST and then a watch.
                "calls_by_verb_and_resource": dict(
                    collections.Counter(f"{r.verb} {r.resource}" for r in records).most_common()
                ),
                "operator_cpu_seconds": round(used, 2),
                "core_percent": round(100 * used / steady, 2),
            }
        if latency:
            times = []
            for body in bodies[run.size : run.size + latency]:
                began = time.monotonic()
                api.create(body)
                meta = body["metadata"]
                while not _ready(api.find("mirageservices", meta["name"], meta["namespace"])):
                    if time.monotonic() - began > 60:
                        break
                    await asyncio.sleep(0.005)
                times.append(time.monotonic() - began)
                await asyncio.sleep(0.1)
            run.figures["new_service_ready_seconds"] = {
                "count": len(times),
                "p50": round(statistics.median(times), 3),
                "p99": round(_percentile(times, 0.99), 3),
                "max": round(max(times), 3),
            }


class Profiler:
    """py-spy sampling the operator process during cold convergence (collapsed stacks)."""

    def __init__(self, pid: int, path: Path) -> None:
        self.path = path
        spy = Path(sys.executable).parent / "py-spy"
        self.popen = subprocess.Popen(
            [
                str(spy),
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--output",
                str(path),
                "--rate",
                "50",
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self, top: int = 15) -> dict[str, list[dict[str, Any]]]:
        """Where the samples were: the ``top`` functions by share of samples they were running
        themselves (``self``), each with its share on the stack (``inclusive``); the ``top``
        of Mirage's own functions by inclusive share (which of its paths cost most); and the
        self share of each package (first component of the frame's module path)."""
        self.popen.send_signal(signal.SIGINT)
        self.popen.wait(60)
        inclusive: collections.Counter[str] = collections.Counter()
        own: collections.Counter[str] = collections.Counter()
        packages: collections.Counter[str] = collections.Counter()
        total = 0
        for line in self.path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack:
                continue
            count = int(count_text)
            total += count
            # One row per function: py-spy names each line of it apart.
            frames = [
                f.rpartition(":")[0] + ")" if f.endswith(")") else f for f in stack.split(";") if f
            ]
            for frame in set(frames):
                inclusive[frame] += count
            if frames:
                own[frames[-1]] += count
                where = frames[-1].rpartition(" (")[2].rstrip(")")
                packages[where.split("/", 1)[0]] += count
        if not total:
            return {"self": [], "mirage_inclusive": [], "packages": []}

        def share(n: int) -> float:
            return round(100 * n / total, 1)

        def row(frame: str) -> dict[str, Any]:
            return {
                "function": frame,
                "inclusive_percent": share(inclusive[frame]),
                "self_percent": share(own[frame]),
            }

        mirage = [f for f, _ in inclusive.most_common() if "mirage_operator/" in f]
        return {
            "self": [row(f) for f, _ in own.most_common(top)],
            # The CLI and the event loop's entry are on every stack: they say nothing.
            "mirage_inclusive": [row(f) for f in mirage if inclusive[f] < 0.9 * total][:top],
            "packages": [
                {"package": k, "self_percent": share(n)} for k, n in packages.most_common(top)
            ],
        }


def render_cpu(size: int, workdir: Path, mirage: str) -> dict[str, Any]:
    """CPU seconds of ``mirage render`` of ``size`` services, and of ``helm template``
    producing the same objects (a chart whose template prints them from its values)."""
    bodies = [workload.service(i, namespace="bench") for i in range(size)]
    source = workdir / "services.yaml"
    source.write_text(yaml.safe_dump_all(bodies))

    def child_cpu(argv: list[str]) -> tuple[float, int]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(argv, check=True, capture_output=True).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), len(out)

    mirage_cpu, mirage_bytes = min(
        child_cpu([str(mirage), "render", str(source)]) for _ in range(3)
    )
    figures: dict[str, Any] = {
        "services": size,
        "mirage_render_cpu_seconds": round(mirage_cpu, 3),
        "mirage_render_ms_per_service": round(1000 * mirage_cpu / size, 3),
        "mirage_output_bytes": mirage_bytes,
    }
    helm = shutil.which("helm") or str(ROOT / ".tools" / "bin" / "helm")
    if Path(helm).exists():
        chart = workdir / "chart"
        (chart / "templates").mkdir(parents=True, exist_ok=True)
        (chart / "Chart.yaml").write_text("apiVersion: v2\nname: bench\nversion: 0.1.0\n")
        objects = [obj for body in bodies for obj in workload.rendered(body)]
        (chart / "values.yaml").write_text(yaml.safe_dump({"objects": objects}))
        (chart / "templates" / "all.yaml").write_text(
            "{{- range .Values.objects }}\n---\n{{ toYaml . }}\n{{- end }}\n"
        )
        helm_cpu, helm_bytes = min(
            child_cpu([helm, "template", "bench", str(chart)]) for _ in range(3)
        )
        figures.update(
            helm_template_cpu_seconds=round(helm_cpu, 3),
            helm_output_bytes=helm_bytes,
            ratio_to_helm=round(mirage_cpu / helm_cpu, 2) if helm_cpu else None,
        )
    return figures


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


def _machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    system = f"{platform.system()} {platform.machine()}"
    return f"{system}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def write_markdown(report: dict[str, Any], path: Path) -> None:
    """``RESULTS.md``: the tables a reader wants; the JSON has everything."""
    lines = [
        "# Benchmark results",
        "",
        f"- Date: {report['date']}",
        f"- Commit: {report['commit']}",
        f"- Machine: {report['machine']}",
        f"- Command: `{report['command']}`",
        "",
        "## Targets (issue 10), from this run",
        "",
        "| target | measured | met? |",
        "| --- | --- | --- |",
        *(f"| {name} | {value} | {verdict} |" for name, value, verdict in targets(report)),
        "",
        "## Cold convergence",
        "",
        "| operator | N | namespaces | secrets/svc | converge s | Ready | operator CPU s "
        "| CPU ms/svc | calls/svc | writes/svc (min) | LISTs | errors | peak RSS MB "
        "| API CPU ms/req | load before, after |",
        "|" + " --- |" * 15,
    ]
    for run in report["runs"]:
        f = run["figures"]
        lines.append(
            f"| {run['operator']} | {run['size']} | {run['namespaces']} | {run['secrets']} "
            f"| {f.get('converge_seconds')} | {f.get('ready')} | {f.get('operator_cpu_seconds')} "
            f"| {f.get('operator_cpu_ms_per_service')} | {f.get('api_calls_per_service')} "
            f"| {f.get('writes_per_service')} ({f.get('writes_per_service_minimum')}) "
            f"| {f.get('lists')} | {f.get('errors')} | {f.get('peak_rss_mb')} "
            f"| {f.get('apiserver_cpu_ms_per_request')} | {f.get('load_average')} |"
        )
    lines += ["", "## Steady state, new services, Vault", ""]
    for run in report["runs"]:
        f = run["figures"]
        label = f"{run['operator']} N={run['size']} ns={run['namespaces']}"
        if "steady" in f:
            lines.append(f"- {label}, steady state: `{json.dumps(f['steady'])}`")
        if "new_service_ready_seconds" in f:
            lines.append(f"- {label}, new services: `{json.dumps(f['new_service_ready_seconds'])}`")
        if "vault_logins" in f:
            lines.append(
                f"- {label}, Vault: {f['vault_logins']} logins "
                f"(minimum {f.get('vault_logins_minimum')}), {f['vault_reads']} reads "
                f"(minimum {f['vault_reads_minimum']})"
            )
    for name, value in report.get("derived", {}).items():
        lines.append(f"- {name}: {value}")
    if "render" in report:
        lines += ["", "## Offline render", "", f"`{json.dumps(report['render'])}`"]
    for run in report["runs"]:
        spots = run["figures"].get("hot_spots")
        if not spots:
            continue
        lines += ["", f"## Profile: {run['operator']} N={run['size']}, cold convergence"]
        for title, key in (
            ("Hot spots (self time)", "self"),
            ("Mirage's functions by inclusive time", "mirage_inclusive"),
        ):
            lines += [
                "",
                f"{title}:",
                "",
                "| function | inclusive % | self % |",
                "| --- | --- | --- |",
            ]
            lines += [
                f"| `{h['function']}` | {h['inclusive_percent']} | {h['self_percent']} |"
                for h in spots[key]
            ]
        lines += [
            "",
            "Self time by package: "
            + ", ".join(f"{p['package']} {p['self_percent']} %" for p in spots["packages"]),
        ]
    lines += ["", "Calls by verb and resource are in `results.json`.", ""]
    path.write_text("\n".join(lines))


def _verdict(value: float | None, limit: float) -> str:
    """``yes``, or by how much ``value`` misses the upper bound ``limit``."""
    if value is None:
        return "not measured"
    if value <= limit:
        return "yes"
    return (
        f"**missed** by {value - limit:.3g} ({value / limit:.2f}x the bound)"
        if limit
        else (f"**missed** ({value})")
    )


def targets(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Issue 10's targets against this run's figures: (target, measured, verdict)."""
    runs = {
        (r["operator"], r["size"], r["namespaces"], r["secrets"]): r["figures"]
        for r in report["runs"]
    }
    derived = report.get("derived", {})
    rows: list[tuple[str, str, str]] = []

    def row(name: str, value: float | None, limit: float, shown: str | None = None) -> None:
        rows.append((name, shown or ("—" if value is None else f"{value}"), _verdict(value, limit)))

    for n, ns in sorted({(k[1], k[2]) for k in runs if k[0] == "mirage" and not k[3]}):
        ratio = derived.get(f"mirage wall ratio to baseline, N={n} ns={ns}")
        if ratio is not None:
            row(f"N={n}, {ns} namespace(s): wall ≤ 1.25x baseline", ratio, 1.25, f"{ratio}x")
    for key, value in derived.items():
        if key.startswith("mirage CPU per service N="):
            row(f"{key.removeprefix('mirage ')} ≤ 1.2", value, 1.2, f"{value}x")
    for (op, n, ns, secrets), figures in sorted(runs.items()):
        if op == "mirage" and "writes_per_service" in figures:
            least, wrote = figures["writes_per_service_minimum"], figures["writes_per_service"]
            shown = f"{wrote} (minimum {least}; errors {figures.get('errors')})"
            row(
                f"N={n}, {ns} namespace(s), {secrets} secrets: writes per service",
                wrote,
                least,
                shown,
            )
    for (op, n, ns, secrets), figures in sorted(runs.items()):
        steady = figures.get("steady")
        if op != "mirage" or secrets or not steady:
            continue
        where = f"N={n}, {ns} namespace(s), {steady['seconds']:.0f} s at rest"
        row(f"{where}: writes = 0", steady["writes"], 0)
        row(f"{where}: LIST calls = 0", steady["lists"], 0)
        row(f"{where}: < 1 % of a core", steady["core_percent"], 1.0, f"{steady['core_percent']} %")
        latency = figures.get("new_service_ready_seconds")
        if latency:
            row(
                f"N={n}: p99 to Ready of {latency['count']} new services ≤ 1 s",
                latency["p99"],
                1.0,
                f"{latency['p99']} s (p50 {latency['p50']} s)",
            )
    for (op, n, ns, secrets), figures in sorted(runs.items()):
        if op == "mirage" and n == 1000 and not secrets:
            row(
                f"N=1000, {ns} namespace(s): peak RSS ≤ 250 MB",
                figures.get("peak_rss_mb"),
                250,
                f"{figures.get('peak_rss_mb')} MB",
            )
    growth = derived.get("mirage peak RSS growth per extra 1,000 services (MB)")
    rows.append(("peak RSS growth per extra 1,000 services", f"{growth} MB", "stated"))
    for (_, n, _, secrets), figures in sorted(runs.items()):
        if secrets and "vault_logins" in figures:
            rows.append(
                (
                    f"Vault, N={n} with {secrets} secrets each: logins and reads at the minimum",
                    f"{figures['vault_logins']} logins "
                    f"(min {figures.get('vault_logins_minimum')}), "
                    f"{figures['vault_reads']} reads (min {figures['vault_reads_minimum']})",
                    "yes"
                    if figures["vault_reads"] <= figures["vault_reads_minimum"]
                    and figures["vault_logins"] <= figures.get("vault_logins_minimum", 0)
                    else "**above the minimum**",
                )
            )
    render = report.get("render") or {}
    if render.get("ratio_to_helm") is not None:
        shown = (
            f"{render['ratio_to_helm']}x ({render['mirage_render_cpu_seconds']} s vs "
            f"{render['helm_template_cpu_seconds']} s)"
        )
        name = f"`mirage render` of {render['services']}: CPU ≤ `helm template`"
        if render["services"] < 1000:
            # Below the 1,000 the interpreter's start dominates: not judged.
            rows.append((name, shown, "not judged below 1,000 services"))
        else:
            row(name, render["ratio_to_helm"], 1.0, shown)
    return rows


def derived(runs: list[Run]) -> dict[str, Any]:
    """Ratios between runs of the same report."""
    out: dict[str, Any] = {}
    by_key = {(r.operator, r.size, r.namespaces, r.secrets): r.figures for r in runs}
    for (op, size, ns, secrets), figures in by_key.items():
        base = by_key.get(("baseline", size, ns, secrets))
        if op != "baseline" and base and base.get("converge_seconds"):
            out[f"{op} wall ratio to baseline, N={size} ns={ns}"] = round(
                figures["converge_seconds"] / base["converge_seconds"], 2
            )
        before = by_key.get(("before", size, ns, secrets))
        if op == "mirage" and before:
            for figure in ("peak_rss_mb", "operator_cpu_seconds", "converge_seconds"):
                if before.get(figure):
                    out[f"{figure} ratio to before, N={size} ns={ns}"] = round(
                        figures[figure] / before[figure], 2
                    )
    for operator in ("mirage", "before"):
        out.update(_growth(runs, operator))
    return out


def _growth(runs: list[Run], operator: str) -> dict[str, Any]:
    """CPU per service and peak RSS of ``operator`` against its smallest size."""
    out: dict[str, Any] = {}
    mirage_ones = sorted(
        (r for r in runs if r.operator == operator and r.namespaces == 1 and not r.secrets),
        key=lambda r: r.size,
    )
    if len(mirage_ones) > 1:
        first = mirage_ones[0].figures["operator_cpu_ms_per_service"]
        for r in mirage_ones[1:]:
            out[f"{operator} CPU per service N={r.size} / N={mirage_ones[0].size}"] = round(
                r.figures["operator_cpu_ms_per_service"] / first, 2
            )
        low, high = mirage_ones[0], mirage_ones[-1]
        out[f"{operator} peak RSS growth per extra 1,000 services (MB)"] = round(
            (high.figures["peak_rss_mb"] - low.figures["peak_rss_mb"])
            * 1000
            / (high.size - low.size),
            1,
        )
    return out


def _parse(argv: Iterable[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--sizes", default="100,1000,3000", help="N list, one namespace")
    parser.add_argument("--spread", default="1000,3000", help="N list spread over N/10 namespaces")
    parser.add_argument("--baseline-sizes", default="100,1000,3000", help="N list for the baseline")
    parser.add_argument("--steady", type=float, default=120.0, help="steady-state seconds")
    parser.add_argument("--latency", type=int, default=50, help="new services after N=1000")
    parser.add_argument("--vault-size", type=int, default=100, help="N with 2 secrets (0: skip)")
    parser.add_argument("--render-size", type=int, default=1000)
    parser.add_argument("--resync", type=float, default=60.0, help="operator resync seconds")
    parser.add_argument("--timeout", type=float, default=900.0, help="convergence limit, s")
    parser.add_argument("--quick", action="store_true", help="sizes 50,150; short phases")
    parser.add_argument("--profile", type=int, default=1000, help="N to profile (0: none)")
    parser.add_argument("--out", default=str(Path(__file__).parent))
    parser.add_argument(
        "--mirage",
        default=str(Path(sys.executable).parent / "mirage"),
        help="the mirage executable to measure",
    )
    parser.add_argument(
        "--before",
        default="",
        help="another checkout's mirage executable: each Mirage run of one namespace is "
        "repeated with it (operator 'before'), for ratios measured in the same run",
    )
    args = parser.parse_args(list(argv))
    if args.quick:
        args.sizes, args.spread, args.baseline_sizes = "50,150", "150", "150"
        args.steady, args.latency, args.vault_size, args.render_size = 15.0, 10, 20, 100
        args.profile = 150
    return args


def _sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


async def main(argv: Iterable[str]) -> None:
    args = _parse(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="mirage-bench-"))
    harness = Harness(
        workdir,
        resync=args.resync,
        timeout=args.timeout,
        profile=args.profile,
        mirage={"mirage": args.mirage, "before": args.before},
    )
    runs: list[Run] = []
    sizes = _sizes(args.sizes)
    latency_size = 1000 if 1000 in sizes else max(sizes, default=0)
    plan = [Run("baseline", n, 1) for n in _sizes(args.baseline_sizes)]
    # The checkout to compare runs right after each size, under much the same machine load.
    plan += [
        Run(op, n, 1) for n in sizes for op in ("mirage", "before") if op != "before" or args.before
    ]
    plan += [Run("mirage", n, max(n // 10, 1)) for n in _sizes(args.spread)]
    if args.vault_size:
        plan.append(Run("mirage", args.vault_size, 1, secrets=2))
    if args.profile:
        plan.append(Run("mirage (profiled)", args.profile, 1, profiled=True))
    for run in plan:
        measured = run.operator != "baseline" and not run.profiled
        steady = args.steady if measured and run.size == latency_size else 0.0
        latency = args.latency if steady and run.namespaces == 1 and not run.secrets else 0
        print(
            f"run {run.operator} N={run.size} ns={run.namespaces} secrets={run.secrets}", flush=True
        )
        load = os.getloadavg()[0]
        await harness.cold(run, steady=steady, latency=latency)
        # Other work on the machine slows both operators: the 1-minute load before and after.
        run.figures["load_average"] = [round(load, 1), round(os.getloadavg()[0], 1)]
        print(json.dumps(run.figures), flush=True)
        runs.append(run)
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "machine": _machine(),
        "command": "python -m benchmarks " + " ".join(argv),
        "runs": [
            {
                "operator": r.operator,
                "size": r.size,
                "namespaces": r.namespaces,
                "secrets": r.secrets,
                "figures": r.figures,
            }
            for r in runs
        ],
        "derived": derived(runs),
    }
    if args.render_size:
        report["render"] = render_cpu(args.render_size, workdir, args.mirage)
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(report, out / "RESULTS.md")
    print(json.dumps(report["derived"], indent=2))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
