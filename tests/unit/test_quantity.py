"""The quantity parser held to Go's own: kubectl (resource.ParseQuantity) says which texts are
quantities and how they read canonically; the Kubernetes Python client reads that canonical
form back as the value (a second implementation, used here only as a referee)."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
from kubernetes.utils.quantity import parse_quantity as client_parse_quantity

from mirage_operator.k8s.children import is_subset
from mirage_operator.quantity import QuantityError, is_quantity, parse_quantity
from tests.conftest import require_tool

CORPUS = [
    # canonical and everyday
    "0", "1", "500m", "1.5", "2Gi", "1Ki", "100n", "250u", "3k", "1M", "7G", "2T", "1P", "1E",
    "1Ei", "512Mi",
    # exponents, signs, odd but valid spellings
    "1e3", "1E3", "1e+3", "1e-3", "0.1e-3", "+1", "-1", "-0", ".5", "1.", "007", "-", ".", "+",
    "12345678901234567890", "1e400", "0.0001n", "-0.0000000001", "1.5Gi",
    # not quantities
    "", " 1", "1 ", "1K", "1e", "1Ee3", "1m1", "1.2.3", "1_000", "1KiB", "e3", "1e+",
    "1e9223372036854775808", "0x10", "1/2",
]  # fmt: skip


Verdict = tuple[str | None, str | None]
"""(canonical form, None) for a quantity, (None, kubectl's error) for anything else."""


def _kubectl_reads(kubectl: str, pod: Path, texts: list[str]) -> list[Verdict]:
    """kubectl's verdicts on ``texts``, set as limits of one Pod (one call for them all)."""
    limits = ",".join(f"example.com/q{index}={text}" for index, text in enumerate(texts))
    result = subprocess.run(
        [
            kubectl,
            "set",
            "resources",
            "--local",
            "-f",
            str(pod),
            "-o",
            "json",
            f"--limits={limits}",
        ],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=30,
        env={"KUBECONFIG": "/dev/null", "PATH": ""},
    )
    if result.returncode:
        return [(None, result.stderr.splitlines()[0].removeprefix("error: "))] * len(texts)
    read = json.loads(result.stdout)["spec"]["containers"][0]["resources"]["limits"]
    return [(str(read[f"example.com/q{index}"]), None) for index in range(len(texts))]


@pytest.fixture(scope="module")
def referee(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Verdict]:
    kubectl = require_tool("kubectl")
    pod = tmp_path_factory.mktemp("quantity") / "pod.json"
    pod.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            }
        )
    )
    # What we read as quantities goes to kubectl in one call; should kubectl refuse it, and
    # for what we refuse, each text goes alone, so that its error is its own.
    ours = [text for text in CORPUS if is_quantity(text)]
    verdicts = dict(zip(ours, _kubectl_reads(kubectl, pod, ours), strict=True))
    alone = [text for text in CORPUS if text not in verdicts or verdicts[text][0] is None]
    with ThreadPoolExecutor(4) as pool:
        for text, (verdict,) in zip(
            alone, pool.map(lambda text: _kubectl_reads(kubectl, pod, [text]), alone), strict=True
        ):
            verdicts[text] = verdict
    return verdicts


@pytest.mark.parametrize("text", CORPUS)
def test_quantities_read_as_the_api_server_reads_them(
    text: str, referee: dict[str, Verdict]
) -> None:
    canonical, error = referee[text]
    if canonical is None:
        with pytest.raises(QuantityError) as caught:
            parse_quantity(text)
        assert str(caught.value) == error
        assert not is_quantity(text)
    else:
        assert parse_quantity(text) == client_parse_quantity(canonical)
        assert is_quantity(text)


@pytest.mark.parametrize(
    ("desired", "live"),
    [("1e3", "1k"), ("1000m", "1"), ("0.5Gi", "512Mi"), ("100n", "100n"), ("1.5", "1500m")],
)
def test_drift_checks_compare_quantities_by_value(desired: str, live: str) -> None:
    assert is_subset({"cpu": desired}, {"cpu": live})
    assert not is_subset({"cpu": desired}, {"cpu": "2"})


def test_huge_exponents_cost_nothing() -> None:
    assert parse_quantity("1e2147483647") > parse_quantity("1e2147483646") > Decimal(10**18)
