"""``mirage sandbox --keep`` as a user runs it, for tests that drive it with real tools."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO


@dataclass(frozen=True)
class Running:
    """A ``mirage sandbox --keep`` process that keeps serving."""

    pid: int
    kubeconfig: Path
    """The kubeconfig it printed (checked absolute, and a file)."""
    output: str
    """What it printed until it kept serving."""


@contextlib.contextmanager
def sandbox_process(tmp_path: Path, *paths: Path) -> Iterator[Path]:
    """Run ``mirage sandbox --keep PATHS`` (nothing when none) in the repository; yield its
    kubeconfig once it keeps serving; stop it with Ctrl-C."""
    with sandbox_running(tmp_path, *paths) as running:
        yield running.kubeconfig


@contextlib.contextmanager
def sandbox_running(
    tmp_path: Path,
    *paths: Path,
    cwd: Path = REPO,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    default_examples: bool = False,
) -> Iterator[Running]:
    """Run ``mirage sandbox --keep PATHS`` (nothing when none, unless ``default_examples``)
    in ``cwd``, yield it once it keeps serving, stop it with Ctrl-C (SIGINT) and fail if that
    does not stop it."""
    if not paths and not default_examples:
        empty = tmp_path / "nothing"
        empty.mkdir()
        paths = (empty,)
    log_path = tmp_path / "sandbox.log"
    mirage = Path(sys.executable).parent / "mirage"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                str(mirage),
                "sandbox",
                "--keep",
                "--workdir",
                workdir or str(tmp_path / "sandbox"),
                "--timeout",
                "30",
                *map(str, paths),
            ],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 90
            while "Ctrl-C stops it" not in log_path.read_text():
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "sandbox did not come up in 90s"
                time.sleep(0.1)
            output = log_path.read_text()
            found = re.search(r"export KUBECONFIG=(\S+)", output)
            assert found, output
            kubeconfig = Path(found[1])
            assert kubeconfig.is_absolute() and kubeconfig.is_file(), found[0]
            yield Running(process.pid, kubeconfig, output)
        finally:
            process.send_signal(signal.SIGINT)  # Ctrl-C, as a user stops it
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                raise AssertionError("mirage sandbox --keep did not stop on Ctrl-C") from None


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(IPv4 or IPv6 address, port) of every TCP socket process ``pid`` listens on (Linux)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = str(fd.readlink())
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                raw = bytes.fromhex(address)
                # /proc prints each 32-bit word in host (little-endian) order.
                words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]
                ip = b"".join(words)
                text = ".".join(map(str, ip)) if width == 8 else ip.hex()
                found.add((text, int(port, 16)))
    return found
