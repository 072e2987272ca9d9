"""The README's "Install on a cluster" commands, run exactly as written (read from README.md),
against ``mirage sandbox --keep`` and against clusters where the CRDs came first.

The sandbox is an emulated API server with the operator running in-process; the chart's
Deployment there is only an object (no kubelet runs it), so this shows that the chart installs
and that the README's steps work end to end, not that the image starts. The sandbox installs
the CRDs itself (its operator needs them), as a GitOps repository applying ``mirage crds``
first would: the chart must leave such CRDs alone instead of refusing to install (ADR 0075).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mirage_operator.crds import load_crds
from mirage_sandbox.apiserver import run_apiserver_in_thread
from tests.conftest import REPO, require_tool
from tests.sandbox_process import sandbox_process

CRD_NAMES = sorted(crd["metadata"]["name"] for crd in load_crds())
RELEASE_ANNOTATION = "meta.helm.sh/release-name"


def _install_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text.split("## Install on a cluster", 1)[1].split("\n## ", 1)[0]


def readme_install_commands() -> list[list[str]]:
    """The shell commands of the README's install section, continuations joined."""
    block = re.search(r"```sh\n(.*?)```", _install_section(), flags=re.DOTALL)
    assert block, "README: no ```sh block under 'Install on a cluster'"
    joined = block.group(1).replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


def readme_crds_command() -> str:
    """The README's command that installs the CRDs alone (a shell pipeline)."""
    found = re.findall(r"`(mirage crds \|[^`]+)`", _install_section())
    assert found, "README: no `mirage crds | ...` command under 'Install on a cluster'"
    return str(found[0])


class Tools:
    """helm and kubectl (the pinned ones), and mirage, against one kubeconfig."""

    def __init__(self, kubeconfig: Path, home: Path) -> None:
        self.binaries = {
            "helm": require_tool("helm"),
            "kubectl": require_tool("kubectl"),
            "mirage": str(Path(sys.executable).parent / "mirage"),
        }
        self.env = dict(os.environ, KUBECONFIG=str(kubeconfig), HOME=str(home))
        for name in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            self.env[name] = str(home / name.lower())
        # The pipeline from the README finds the same binaries first.
        tools = {str(Path(b).parent) for b in self.binaries.values()}
        self.env["PATH"] = os.pathsep.join([*sorted(tools), self.env.get("PATH", "")])

    def run(self, command: list[str]) -> str:
        """Run ``command`` (its first word: helm, kubectl or mirage); fail unless it exits 0."""
        args = [self.binaries[command[0]], *command[1:]]
        result = subprocess.run(
            args, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=90, check=False
        )
        assert result.returncode == 0, f"{shlex.join(command)}:\n{result.stdout}{result.stderr}"
        return result.stdout

    def shell(self, pipeline: str) -> None:
        """Run a pipeline as a user's shell would (``set -o pipefail``)."""
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", pipeline],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert result.returncode == 0, f"{pipeline}:\n{result.stdout}{result.stderr}"

    def crds(self) -> dict[str, dict[str, Any]]:
        """The Mirage CRDs in the cluster, by name."""
        listed = yaml.safe_load(self.run(["kubectl", "get", "crd", "-o", "yaml"]))
        return {
            item["metadata"]["name"]: item
            for item in listed["items"]
            if item["metadata"]["name"] in CRD_NAMES
        }


def _owner(crd: dict[str, Any]) -> str | None:
    return (crd["metadata"].get("annotations") or {}).get(RELEASE_ANNOTATION)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Path]:
    """``mirage sandbox --keep`` with nothing applied; yields its kubeconfig."""
    with sandbox_process(tmp_path) as kubeconfig:
        yield kubeconfig


def test_readme_install_works_against_the_sandbox(sandbox: Path, tmp_path: Path) -> None:
    tools = Tools(sandbox, tmp_path)
    commands = readme_install_commands()
    assert [c[:2] for c in commands[:2]] == [["helm", "install"], ["kubectl", "apply"]]
    installed = ""
    for command in commands:
        output = tools.run(command)
        installed = installed or output
    # The chart's objects are there, next to what the examples became.
    listed = yaml.safe_load(
        tools.run(
            ["kubectl", "get", "-n", "mirage-system", "deployment,serviceaccount", "-o", "yaml"]
        )
    )
    names = {(i["kind"], i["metadata"]["name"]) for i in listed["items"]}
    assert {("Deployment", "mirage-operator"), ("ServiceAccount", "mirage-operator")} <= names
    # The sandbox's CRDs were left as they were, and the install's notes say so.
    crds = tools.crds()
    assert sorted(crds) == CRD_NAMES
    assert all(_owner(crd) is None for crd in crds.values())
    assert all(name in installed for name in CRD_NAMES), installed


@pytest.mark.parametrize("first", ["nothing", "readme-crds-command", "another-release"])
def test_readme_helm_install_whoever_installed_the_crds_first(tmp_path: Path, first: str) -> None:
    """On an API server without an operator: the README's ``helm install`` as written, after
    nothing (it installs the CRDs), after the README's ``mirage crds | kubectl apply``
    (GitOps), or after another release of the chart; then upgrade and uninstall."""
    install = readme_install_commands()[0]
    with run_apiserver_in_thread() as server:
        tools = Tools(server.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path)
        if first == "readme-crds-command":
            tools.shell(readme_crds_command())
        elif first == "another-release":
            other = ["helm", "install", "other", "charts/mirage-operator"]
            tools.run([*other, "--namespace", "other-system", "--create-namespace"])
        tools.run(install)
        crds = tools.crds()
        assert sorted(crds) == CRD_NAMES
        expected_owner = {"nothing": install[2], "another-release": "other"}.get(first)
        assert {_owner(crd) for crd in crds.values()} == {expected_owner}
        # Upgrading the release keeps working, and upgrades the CRDs it owns.
        upgrade = ["helm", "upgrade", *(a for a in install[2:] if a != "--create-namespace")]
        tools.run(upgrade)
        namespace = install[install.index("--namespace") + 1]
        tools.run(["helm", "uninstall", install[2], "--namespace", namespace])
        # Uninstalling never deletes the CRDs (and with them every custom resource).
        assert sorted(tools.crds()) == CRD_NAMES
