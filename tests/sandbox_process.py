"""``mirage sandbox --keep`` as a user runs it, for tests that drive it with real tools."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO


@contextlib.contextmanager
def sandbox_process(tmp_path: Path, *paths: Path) -> Iterator[Path]:
    """Run ``mirage sandbox --keep PATHS`` (nothing when none); yield its kubeconfig once it
    keeps serving; stop it with Ctrl-C (SIGINT) and fail if that does not stop it."""
    work = tmp_path / "sandbox"
    if not paths:
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
                str(work),
                "--timeout",
                "30",
                *map(str, paths),
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 90
            while "keeping the sandbox running" not in log_path.read_text():
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "sandbox did not come up in 90s"
                time.sleep(0.1)
            yield work / "kubeconfig"
        finally:
            process.send_signal(signal.SIGINT)  # Ctrl-C, as a user stops it
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                raise AssertionError("mirage sandbox --keep did not stop on Ctrl-C") from None
