"""The real servers die with the test process that started them: a pytest killed with SIGKILL
(a timeout, a cancelled CI job) leaves no OpenBao or PostgreSQL running."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

STARTER = textwrap.dedent(
    """
    import contextlib, sys
    from tests.realservers import openbao_server, postgres_server

    with contextlib.contextmanager(openbao_server)() as bao, \\
            contextlib.contextmanager(postgres_server)() as db:
        print(bao._process.pid, db._process.pid, bao.workdir, db.workdir, flush=True)
        sys.stdin.read()  # until killed
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent's wait is missing.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


@pytest.mark.timeout(60)
def test_servers_die_with_a_killed_parent() -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert starter.stdout is not None
    *numbers, bao_dir, db_dir = starter.stdout.readline().split()
    pids = [int(p) for p in numbers]
    assert len(pids) == 2 and all(_alive(p) for p in pids), pids
    starter.kill()
    starter.wait()
    deadline = time.monotonic() + 20
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [p for p in pids if _alive(p)]
    for directory in (bao_dir, db_dir):  # the killed process could not remove them
        shutil.rmtree(directory, ignore_errors=True)
    assert not survivors, "servers outlived the killed test process"
