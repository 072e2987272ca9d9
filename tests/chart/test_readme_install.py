"""The README's "Install on a cluster" commands, run as written against ``mirage sandbox --keep``.

The sandbox is an emulated API server with the operator running in-process; the chart's
Deployment there is only an object (no kubelet runs it), so this shows that the chart installs
and that the README's steps work end to end, not that the image starts.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, require_tool
from tests.sandbox_process import sandbox_process


def readme_install_commands() -> list[list[str]]:
    """The shell commands of the README's install section, continuations joined."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Install on a cluster", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert block, "README: no ```sh block under 'Install on a cluster'"
    joined = block.group(1).replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Path]:
    """``mirage sandbox --keep`` with nothing applied; yields its kubeconfig."""
    with sandbox_process(tmp_path) as kubeconfig:
        yield kubeconfig


def test_readme_install_works_against_the_sandbox(sandbox: Path, tmp_path: Path) -> None:
    tools = {"helm": require_tool("helm"), "kubectl": require_tool("kubectl")}
    env = dict(os.environ, KUBECONFIG=str(sandbox))
    for name in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[name] = str(tmp_path / name.lower())
    commands = readme_install_commands()
    assert [c[:2] for c in commands[:2]] == [["helm", "install"], ["kubectl", "apply"]]
    for command in commands:
        args = [tools[command[0]], *command[1:]]
        if command[:2] == ["helm", "install"]:
            # The sandbox installs the CRDs for its in-process operator before anything else;
            # a real cluster has none, so plain `helm install` creates them.
            args.append("--take-ownership")
        result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=90)
        assert result.returncode == 0, f"{shlex.join(command)}:\n{result.stdout}{result.stderr}"
    # The chart's objects are there, next to what the examples became.
    get = [
        tools["kubectl"],
        "get",
        "-n",
        "mirage-system",
        "deployment,serviceaccount",
        "-o",
        "yaml",
    ]
    listed = yaml.safe_load(subprocess.run(get, env=env, capture_output=True, text=True).stdout)
    names = {(i["kind"], i["metadata"]["name"]) for i in listed["items"]}
    assert {("Deployment", "mirage-operator"), ("ServiceAccount", "mirage-operator")} <= names
