"""The duration parsers held to the originals: Go's ``time.ParseDuration`` as kubectl runs it
(``kubectl create token --duration``: its flag parsing, its checks, and the seconds it sends
to a fake API server), Prometheus's ``model.ParseDuration`` as promtool runs it (``for`` of a
rule, and ``eval_time`` of a rule test whose expression is ``time()``)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from mirage_operator import durations
from mirage_operator.durations import DurationError
from tests.conftest import require_tool
from tests.unit.factories import write_kubeconfig

GO_CORPUS = [
    "0", "-0", "+0", "1s", "90s", "1h30m", "1.5h", "1h1h", "30m1h", "+5s", "1.s", "3000ms",
    "1000000us", "1000000µs", "1000000μs", "1000000000ns", "2562047h", "0.5s", ".5s", "500ms",
    "-1s", "1.0000000001s",
    "", "1", ".s", "-", "5d", "1.5x", "5 m", "1h 1m", "2562048h", "9223372036854775808ns",
    "1e3s", "0x10s", "1h-1m",
]  # fmt: skip

PROMETHEUS_CORPUS = [
    "0", "0s", "5m", "1h30m", "90s", "500ms", "1w2d3h4m5s6ms", "1d", "2w", "007m",
    "", "5", "-5m", "5 m", "1.5h", "30m1h", "5M", "1h1h", "5m\n", "1mo", "+5m", "293y",
    "99999999999999999999y",
]  # fmt: skip
PROMETHEUS_OK_TOO_LONG_TO_EVALUATE = {"1y": 31_536_000.0, "292y": 9_208_512_000.0}


# ---------------------------------------------------------------------------------------------
# Go: kubectl create token --duration against a fake API server.


def _varints(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of a protobuf message: kubectl sends TokenRequests as
    protobuf, which is all this reads of it."""
    pos = 0

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while pos < len(buf):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, wire, varint()
        elif wire == 2:
            size = varint()
            yield number, wire, buf[pos : pos + size]
            pos += size
        else:  # fixed 64/32 bits: not in a TokenRequest
            pos += 8 if wire == 1 else 4
            yield number, wire, None


def _field(buf: bytes, number: int) -> Any:
    return next((value for n, _, value in _varints(buf) if n == number), None)


def _expiration_seconds(body: bytes) -> int:
    """``spec.expirationSeconds`` of a protobuf TokenRequest (0 when kubectl leaves it out)."""
    raw = _field(body.removeprefix(b"k8s\x00"), 2)  # runtime.Unknown.raw
    spec = _field(raw, 2)  # TokenRequest.spec
    return int(_field(spec, 4) or 0)  # TokenRequestSpec.expirationSeconds


class _TokenAPI(BaseHTTPRequestHandler):
    requests: dict[str, int]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests[self.path.split("/")[-2]] = _expiration_seconds(body)
        answer = json.dumps({"kind": "TokenRequest", "status": {"token": "t"}}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def go_referee(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[float | None, str]]:
    """kubectl's reading of each Go corpus text: (seconds, "") when sent to the server, else
    (None, kubectl's error)."""
    kubectl = require_tool("kubectl")
    requests: dict[str, int] = {}
    handler = type("Handler", (_TokenAPI,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = write_kubeconfig(
        tmp_path_factory.mktemp("durations") / "kubeconfig",
        server=f"http://127.0.0.1:{server.server_port}",
        token="x",
    )

    def run(index: int) -> tuple[float | None, str]:
        result = subprocess.run(
            [kubectl, "create", "token", f"sa{index}", f"--duration={GO_CORPUS[index]}"],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=30,
            env={"KUBECONFIG": str(kubeconfig), "PATH": ""},
        )
        if result.returncode:
            return None, result.stderr.splitlines()[0].removeprefix("error: ")
        return float(requests[f"sa{index}"]), ""

    try:
        with ThreadPoolExecutor(4) as pool:
            verdicts = list(pool.map(run, range(len(GO_CORPUS))))
    finally:
        server.shutdown()
        server.server_close()
    return dict(zip(GO_CORPUS, verdicts, strict=True))


@pytest.mark.parametrize("text", GO_CORPUS)
def test_go_durations_read_as_go_reads_them(
    text: str, go_referee: dict[str, tuple[float | None, str]]
) -> None:
    seconds, error = go_referee[text]
    flag = f'invalid argument "{text}" for "--duration" flag: '
    if error.startswith(flag):
        with pytest.raises(DurationError) as caught:
            durations.parse_go(text)
        assert str(caught.value) == error.removeprefix(flag)
    elif error == "--duration must be greater than or equal to 0":
        assert durations.parse_go(text) < 0
    elif error == "--duration cannot be expressed in units less than seconds":
        assert durations.parse_go(text) % 1
    else:
        assert error == ""
        assert durations.parse_go(text) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"), [("1h30m", 5400.0), ("0", 0.0), ("1.5h", 5400.0), ("3000ms", 3.0)]
)
def test_intervals_are_whole_non_negative_go_durations(text: str, seconds: float) -> None:
    assert durations.parse_interval(text) == seconds
    assert durations.parse_interval(durations.format_interval(seconds)) == seconds


@pytest.mark.parametrize("text", ["500ms", "-1s", "5d", "", "1h "])
def test_intervals_refuse_the_rest(text: str) -> None:
    with pytest.raises(DurationError):
        durations.parse_interval(text)


# ---------------------------------------------------------------------------------------------
# Prometheus: promtool.


@pytest.fixture(scope="module")
def prometheus_referee(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """promtool's verdict on each Prometheus corpus text as a rule's ``for``: "" or its error."""
    promtool = require_tool("promtool")
    folder = tmp_path_factory.mktemp("prometheus-durations")
    files = []
    for index, text in enumerate(PROMETHEUS_CORPUS):
        rule = {"alert": "A", "expr": "up", "for": text}
        files.append(folder / f"r{index}.yml")
        files[-1].write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
    result = subprocess.run(
        [promtool, "check", "rules", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    errors = {}
    for line in (result.stdout + result.stderr).splitlines():
        name, _, error = line.partition(": ")
        if name.endswith(".yml") and error:
            errors[Path(name).name] = error
    return {text: errors.get(f"r{index}.yml", "") for index, text in enumerate(PROMETHEUS_CORPUS)}


@pytest.mark.parametrize("text", PROMETHEUS_CORPUS)
def test_prometheus_durations_are_accepted_as_promtool_accepts_them(
    text: str, prometheus_referee: dict[str, str]
) -> None:
    error = prometheus_referee[text]
    if not error:
        durations.parse_prometheus(text)
    elif text:  # promtool reads an empty for as no for at all
        with pytest.raises(DurationError) as caught:
            durations.parse_prometheus(text)
        assert str(caught.value).replace("\n", "\\n") in error


def test_prometheus_durations_read_as_promtool_reads_them(tmp_path: Path) -> None:
    """Each accepted text as ``eval_time`` of ``time()`` in one promtool rule test: promtool
    fails the test whose expected value (our seconds) differs from the time it evaluates at."""
    promtool = require_tool("promtool")
    accepted = [text for text in PROMETHEUS_CORPUS if _evaluable(text)]
    cases = [
        {
            "expr": "vector(time())",
            "eval_time": text,
            "exp_samples": [{"labels": "{}", "value": durations.parse_prometheus(text)}],
        }
        for text in accepted
    ]
    test_file = tmp_path / "durations_test.yml"
    test_file.write_text(yaml.safe_dump({"tests": [{"interval": "1m", "promql_expr_test": cases}]}))
    result = subprocess.run(
        [promtool, "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(accepted) >= 8


def _evaluable(text: str) -> bool:
    """Accepted by our parser, and short enough for promtool to step through to it."""
    try:
        return durations.parse_prometheus(text) <= 14 * 86400
    except DurationError:
        return False


@pytest.mark.parametrize(("text", "seconds"), PROMETHEUS_OK_TOO_LONG_TO_EVALUATE.items())
def test_long_prometheus_durations(text: str, seconds: float) -> None:
    # promtool evaluates a rule test step by step from 0: years take it minutes.
    assert durations.parse_prometheus(text) == seconds
