"""The operator image and CI, checked statically: no Docker engine or CI runner here.

The Dockerfile must keep the promises the chart relies on (numeric non-root user, the
`mirage` entrypoint, the ports), build from a pinned base, and copy what the package build
reads; CI must run the same ``make test`` as a developer.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import yaml

from tests.chart.helm import default_values
from tests.conftest import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
DOCKERIGNORE = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
PROJECT: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_runs_as_the_numeric_non_root_user_the_chart_expects() -> None:
    (user,) = [args for word, args in final_stage() if word == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit(), "USER must be numeric for runAsNonRoot checks"
    assert int(uid) > 0
    assert int(uid) == default_values()["securityContext"]["runAsUser"]
    assert int(gid) == default_values()["securityContext"]["runAsGroup"]


def test_entrypoint_is_the_mirage_command_and_cmd_runs_the_operator() -> None:
    stage = dict(final_stage())
    assert stage["ENTRYPOINT"] == '["mirage"]'
    assert stage["CMD"] == '["run"]'
    assert "mirage" in PROJECT["project"]["scripts"]
    ports = set(stage["EXPOSE"].split())
    values = default_values()
    assert {str(values["metrics"]["port"]), str(values["livenessProbe"]["port"])} <= ports


def test_base_image_is_pinned_to_a_patch_release_of_the_tested_python() -> None:
    steps = instructions()
    (default,) = [
        a.split("=", 1)[1] for w, a in steps if w == "ARG" and a.startswith("PYTHON_IMAGE=")
    ]
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-\w+(@sha256:[0-9a-f]{64})?", default)
    assert match, f"base {default!r} is not pinned to a patch-level tag"
    minimum = PROJECT["project"]["requires-python"].removeprefix(">=")
    assert f"{match[1]}.{match[2]}" == minimum
    # Every stage builds on that one base (the virtualenv links to its interpreter).
    assert [a.split()[0] for w, a in steps if w == "FROM"] == ["${PYTHON_IMAGE}"] * 2
    assert "@sha256:" in DOCKERFILE, "the header must show how to pin by digest"


def test_build_context_holds_what_the_package_build_reads() -> None:
    allowed = {line.removeprefix("!").rstrip("/") for line in DOCKERIGNORE if line.startswith("!")}
    needed = {"pyproject.toml", PROJECT["project"]["readme"], "crds", "examples"}
    needed |= set(PROJECT["tool"]["setuptools"]["packages"]["find"]["where"])
    assert needed <= allowed
    copied = {
        part.rstrip("/")
        for w, a in instructions()
        if w == "COPY" and "--from" not in a
        for part in a.split()[:-1]
    }
    assert needed <= copied
    # The package's CRDs and examples are links to ../../crds and ../../examples, resolved
    # inside the build context.
    package = REPO / "operator" / "mirage_operator"
    assert (package / "_crds").resolve() == REPO / "crds"
    assert (package / "_examples").resolve() == REPO / "examples"


def test_ci_runs_make_test_with_only_the_allowed_actions() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    uses = {step["uses"].partition("@")[0] for step in steps if "uses" in step}
    assert uses <= {"actions/checkout", "actions/setup-python"}
    assert "actions/checkout" in uses
    assert [step["run"] for step in steps if "run" in step] == ["make test"]
    for job in workflow["jobs"].values():
        assert job["env"]["CI"] == "true"  # missing tools fail instead of skipping
    assert workflow["permissions"] == {"contents": "read"}


def build_context_sources() -> set[str]:
    """What the build stage copies from the context (the operator image's sources)."""
    return {
        part.rstrip("/")
        for w, a in instructions()
        if w == "COPY" and "--from" not in a
        for part in a.split()[:-1]
    }


def test_the_image_carries_no_sandbox() -> None:
    """The emulators are a distribution apart (docs/adr/0120): out of the context and image."""
    assert not any(part.startswith("sandbox") for part in build_context_sources())
    assert not any("sandbox" in line for line in DOCKERIGNORE if line.startswith("!"))
    steps = " ".join(a for w, a in instructions() if w == "RUN")
    assert "pip install . " in steps
    assert "sandbox" not in steps


def test_the_operator_wheel_built_from_the_image_context_holds_no_sandbox_code(
    tmp_path: Path,
) -> None:
    """``pip install .`` in the image builds this wheel, from what the Dockerfile copies."""
    context = tmp_path / "context"
    context.mkdir()  # a file may come first (a set's order changes between runs)
    for source in sorted(build_context_sources()):
        if (REPO / source).is_dir():
            shutil.copytree(REPO / source, context / source, symlinks=True,
                            ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))  # fmt: skip
        else:
            (context / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / source, context / source)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"),
         str(context)],
        capture_output=True, text=True, check=False, timeout=110,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("mirage_operator-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points_text = archive.read(entry_points).decode()
        archive_text = {n: archive.read(n).decode() for n in names if n.endswith(".py")}
    assert "mirage_operator/cli.py" in names
    assert "mirage_operator/_crds/mirage.dev_vaultsecrets.yaml" in names
    top = {name.split("/")[0] for name in names}
    assert top == {"mirage_operator", wheel.name.split("-py")[0] + ".dist-info"}
    assert [n for n in names if "sandbox" in n] == []
    # No public class of the sandbox's is defined in the wheel, under any file name.
    shipped = {
        node.name
        for name in names
        if name.endswith(".py")
        for node in ast.walk(ast.parse(archive_text[name]))
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
    }
    emulated = {
        node.name
        for path in (REPO / "sandbox" / "mirage_sandbox").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
    }
    assert {"APIServer", "EmulatedVault", "EmulatedAPIError"} <= emulated
    assert shipped & emulated == set()
    assert "mirage.commands" not in entry_points_text
