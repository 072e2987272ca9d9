"""``mirage sandbox`` on the repository's examples: the emulated API, the emulated Vault seeded
as the Pulumi stacks would, and the operator — every resource, VaultSecrets included, Ready."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mirage_operator.api.validation import is_mirage
from mirage_operator.config import Config
from mirage_operator.render.documents import render_document
from mirage_sandbox.session import PLURALS, load_examples
from tests.conftest import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

EXAMPLES = REPO / "examples"


def expected_resources() -> set[tuple[str, str]]:
    """(kind, name) of every Mirage resource the examples are and make."""
    found = set()
    for document in load_examples([EXAMPLES]):
        for item in [document, *render_document(document, config=Config())]:
            if is_mirage(item):
                found.add((item["kind"], item["metadata"]["name"]))
    return found


def test_every_example_becomes_ready_with_vault_seeded(tmp_path: Path) -> None:
    mirage = Path(sys.executable).parent / "mirage"
    workdir = tmp_path / "sandbox"
    result = subprocess.run(
        [str(mirage), "sandbox", "--workdir", str(workdir), "--timeout", "60", str(EXAMPLES)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    table = {(r[0], r[2]): r[3] for r in rows if r and r[0] in PLURALS}
    assert set(table) == expected_resources()
    assert set(table.values()) == {"True"}, result.stdout
    assert ("VaultSecret", "payments-db") in table  # dynamic database credentials
    # The seeded values ("demo-" and random hex) appear in no output and no log line.
    log = (workdir / "operator.log").read_text(encoding="utf-8")
    assert "demo-" not in result.stdout + result.stderr + log
