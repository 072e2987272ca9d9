"""The ``mirage`` command line: validate, render and crds, run as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from mirage_operator.cli import main
from tests.conftest import REPO

EXAMPLES = str(REPO / "examples")


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_validate_passes_the_examples() -> None:
    result = CliRunner().invoke(main, ["validate", EXAMPLES])
    assert result.exit_code == 0, result.output
    assert "4 resource(s) valid" in result.output


def test_validate_exits_1_with_one_line_per_problem(tmp_path: Path) -> None:
    bad = _write(
        tmp_path,
        "bad.yaml",
        """
apiVersion: mirage.dev/v1alpha1
kind: MirageService
metadata: {name: api, namespace: shop}
spec:
  replicas: many
  colour: blue
  ports: [{name: http, port: 80}, {name: http, port: 81}]
""",
    )
    result = CliRunner().invoke(main, ["validate", bad])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert any("spec.image: Required value" in line for line in lines)
    assert any("spec.replicas:" in line for line in lines)
    assert any("spec.colour: Unknown field" in line for line in lines)
    assert any("spec.ports[1]: Duplicate value" in line for line in lines)
    assert all(line.startswith(f"{bad}#0 MirageService/api: ") for line in lines)


def test_non_mirage_documents_are_passed_over_with_a_note(tmp_path: Path) -> None:
    path = _write(tmp_path, "mixed.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    result = CliRunner().invoke(main, ["validate", path])
    assert result.exit_code == 0
    assert "skipping ConfigMap: not a Mirage resource" in result.output


def test_render_prints_children_and_grandchildren_as_yaml() -> None:
    result = CliRunner().invoke(main, ["render", f"{EXAMPLES}/mirageservice-full.yaml"])
    assert result.exit_code == 0, result.output
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    names = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert ("Deployment", "payments") in names
    assert ("ServiceLevelObjective", "payments-availability") in names
    # The child SLO is expanded into its own PrometheusRule.
    assert any(kind == "PrometheusRule" and "availability" in name for kind, name in names)


def test_render_of_an_invalid_resource_fails(tmp_path: Path) -> None:
    bad = _write(
        tmp_path,
        "bad.yaml",
        "apiVersion: mirage.dev/v1alpha1\nkind: MirageService\nmetadata: {name: a}\nspec: {}\n",
    )
    result = CliRunner().invoke(main, ["render", bad])
    assert result.exit_code == 1
    assert "spec.image: Required value" in result.output


def test_crds_prints_the_three_definitions() -> None:
    result = CliRunner().invoke(main, ["crds"])
    assert result.exit_code == 0
    kinds = sorted(d["spec"]["names"]["kind"] for d in yaml.safe_load_all(result.stdout) if d)
    assert kinds == ["MirageService", "ServiceLevelObjective", "VaultSecret"]


def test_console_script_is_installed() -> None:
    mirage = Path(sys.executable).parent / "mirage"
    result = subprocess.run(
        [str(mirage), "validate", EXAMPLES], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
