"""The operator package is what runs in a cluster; the emulators are the mirage-sandbox
distribution (docs/adr/0120), which imports the operator and is never imported by it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mirage_operator import cli
from tests.conftest import REPO, require_tool

MIRAGE = Path(sys.executable).parent / "mirage"


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in ``path``, and of every call whose first argument is
    a string (``importlib.import_module("x")``, ``__import__("x")``), lazy ones included."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def imports_of(root: Path, package: str) -> list[str]:
    return [
        f"{path.relative_to(REPO)}:{line}: {module}"
        for path in sorted(root.rglob("*.py"))
        for line, module in imported_modules(path)
        if module == package or module.startswith(package + ".")
    ]


def sandbox_imports(root: Path) -> list[str]:
    return imports_of(root, "mirage_sandbox")


def test_the_typed_models_import_nothing_from_the_builders() -> None:
    """``api/`` is the types; ``render/`` builds from them, never the reverse (issue 13)."""
    api = REPO / "operator" / "mirage_operator" / "api"
    assert imports_of(api, "mirage_operator.render") == []
    assert imports_of(REPO / "operator" / "mirage_operator" / "render", "mirage_operator.api")


def test_no_operator_module_imports_the_sandbox() -> None:
    assert sandbox_imports(REPO / "operator") == []
    # The check sees imports where they are: the sandbox's own, and its use of the operator.
    sandbox_cli = REPO / "sandbox" / "mirage_sandbox" / "cli.py"
    assert sandbox_imports(sandbox_cli.parent)
    assert "mirage_operator.examples" in {module for _, module in imported_modules(sandbox_cli)}


def test_importing_the_operator_loads_nothing_of_the_sandbox() -> None:
    """Every module of the operator, and a command run, with the sandbox installed beside."""
    code = f"""
import importlib, importlib.util, pkgutil, sys
import mirage_operator, mirage_operator.cli
assert importlib.util.find_spec("mirage_sandbox")  # installed: importable, yet never imported
for module in pkgutil.walk_packages(mirage_operator.__path__, "mirage_operator."):
    importlib.import_module(module.name)
try:
    mirage_operator.cli.main(["validate", {str(REPO / "examples")!r}])
except SystemExit as exit:
    assert not exit.code, exit.code
print(sorted(m for m in sys.modules if m.startswith("mirage_sandbox")))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_mirage_sandbox_comes_from_the_sandbox_distribution() -> None:
    for args in (["--help"], ["sandbox", "--help"]):
        result = subprocess.run(
            [str(MIRAGE), *args], capture_output=True, text=True, check=False, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert "Run an emulated cluster with the operator" in result.stdout
    assert "--keep" in result.stdout  # the real command's options, not the stand-in's


@pytest.mark.parametrize(
    "args", [["sandbox"], ["sandbox", "--help"], ["sandbox", "--keep", "examples/"]]
)
def test_mirage_sandbox_without_the_sandbox_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setattr(cli.metadata, "entry_points", lambda **_: ())
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert "mirage-sandbox package, which is not installed" in line
    assert "pip install -e ./sandbox" in line
    assert "Traceback" not in result.output
    listing = CliRunner().invoke(cli.main, ["--help"]).stdout.splitlines()
    (entry,) = [line for line in listing if line.split()[:1] == ["sandbox"]]
    assert "Not installed: needs the mirage-sandbox package." in entry


def test_an_unknown_command_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.metadata, "entry_points", lambda **_: ())
    result = CliRunner().invoke(cli.main, ["sandboxx"])
    assert result.exit_code == 2
    assert "No such command" in result.stderr


def test_the_sandbox_command_reports_configuration_in_one_line() -> None:
    result = CliRunner().invoke(
        cli.main,
        ["sandbox"],
        env={"MIRAGE_RESYNC_INTERVAL": "soon", "KUBERNETES_SERVICE_HOST": None},
    )
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: configuration: ")
    assert "MIRAGE_RESYNC_INTERVAL" in line


@pytest.mark.parametrize("changed", ["pyproject.toml", "sandbox/pyproject.toml"])
def test_make_install_installs_both_distributions_when_either_changes(changed: str) -> None:
    """``make -n -W FILE``: what make would run were FILE newer than the install stamp."""
    make = require_tool("make")
    stamp = ".venv/.installed"
    # Not the flags of the `make test` this may run under.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    result = subprocess.run(
        [make, "-n", "-W", changed, stamp],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (install,) = [line for line in result.stdout.splitlines() if " install " in line]
    assert "-e '.[dev,stacks,sandbox]' -e ./sandbox" in install
    assert f"touch {stamp}" in result.stdout
