"""The README's "Install on a cluster" commands, run as written against ``mirage sandbox --keep``.

The sandbox is an emulated API server with the operator running in-process; the chart's
Deployment there is only an object (no kubelet runs it), so this shows that the chart installs
and that the README's steps work end to end, not that the image starts.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, require_tool


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
    work, empty = tmp_path / "sandbox", tmp_path / "nothing"
    empty.mkdir()
    log = (tmp_path / "sandbox.log").open("w")
    mirage = Path(sys.executable).parent / "mirage"
    process = subprocess.Popen(
        [str(mirage), "sandbox", "--keep", "--workdir", str(work), "--timeout", "1", str(empty)],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        kubeconfig = work / "kubeconfig"
        deadline = time.monotonic() + 60
        while "operator running" not in (tmp_path / "sandbox.log").read_text():
            assert process.poll() is None, (tmp_path / "sandbox.log").read_text()
            assert time.monotonic() < deadline, "sandbox did not start in 60s"
            time.sleep(0.1)
        assert kubeconfig.exists()
        yield kubeconfig
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C, as a user stops it
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError("mirage sandbox --keep did not stop on Ctrl-C") from None
        log.close()


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
