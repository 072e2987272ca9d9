"""Evaluate VaultSecret templates in worker processes bounded in memory and time.

The sandbox in :mod:`mirage_operator.templating` refuses the constructs it knows to be
costly, with a clear message; this module bounds what it does not know (docs/adr/0067). Each
template is evaluated in a long-lived worker process (``python -m
mirage_operator.template_worker``: a fresh interpreter holding none of the operator's state
or tokens) whose address space is capped with ``RLIMIT_AS``. The operator talks to it through
asyncio pipes, so its event loop keeps serving other reconciles while a template runs, and
kills the worker when the answer takes longer than the time budget. Either way the template
fails with :class:`InvalidTemplate` naming its key.

The protocol is one JSON line per request (``key``, ``source``, ``data``) and per answer
(``ok``: the rendered bytes in base64, or ``error``: a value-free message): nothing the
worker sends is unpickled or executed by the operator.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mirage_operator.errors import InvalidTemplate, SecretDataError, TransientError

TEMPLATE_TIMEOUT = 2.0
"""Seconds one template evaluation may take (wall clock) before its worker is killed."""

TEMPLATE_MEMORY = 64 * 1024 * 1024
"""Bytes of address space a worker may add to what it holds after start-up: 64 times the
largest Secret, and small enough that two workers fit in the chart's 256 MiB limit beside
the operator."""

WORKERS = 2
"""Worker processes at most: one hostile template cannot hold up every other render."""

START_TIMEOUT = 60.0
"""Seconds a new worker may take to start (import Jinja) before it counts as failed; not
part of any template's time budget."""

READY = b"ready\n"
"""The worker's first line: it has started and its memory limit is set."""

_LINE_LIMIT = 8 * 1024 * 1024
"""Longest JSON line read from a worker (a 1 MiB Secret value in base64, with room)."""


def _encode(value: str | bytes) -> dict[str, str]:
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode("ascii")}
    return {"s": value}


def _decode(value: Mapping[str, str]) -> str | bytes:
    return base64.b64decode(value["b"]) if "b" in value else value["s"]


def _address_space() -> int | None:
    # /proc/self/statm: the first field is the virtual size in pages (Linux only).
    try:
        pages = Path("/proc/self/statm").read_text(encoding="ascii").split()[0]
        return int(pages) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _limit_memory(budget: int) -> None:
    import resource

    current = _address_space()
    if current is not None:
        resource.setrlimit(resource.RLIMIT_AS, (current + budget, current + budget))
    # Should the container still run short of memory, the kernel kills a worker first.
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text("1000", encoding="ascii")


def _answer(request: Mapping[str, Any]) -> dict[str, str]:
    from mirage_operator.templating import render_template

    key = str(request["key"])
    try:
        data = {k: _decode(v) for k, v in request["data"].items()}
        rendered = render_template(key, str(request["source"]), data)
        return {"ok": base64.b64encode(rendered).decode("ascii")}
    except SecretDataError as error:
        return {"error": str(error)}
    except MemoryError:
        return {"error": f"template {key!r} failed: exceeded the memory limit"}


def serve(budget: int = TEMPLATE_MEMORY) -> None:
    """The worker's loop on stdin/stdout, until stdin closes. Runs in the worker process."""
    import mirage_operator.render.secret  # noqa: F401 - imported before the limit is set

    _limit_memory(budget)
    sys.stdout.buffer.write(READY)
    sys.stdout.buffer.flush()
    for line in sys.stdin.buffer:
        answer = _answer(json.loads(line))
        sys.stdout.buffer.write(json.dumps(answer).encode("ascii") + b"\n")
        sys.stdout.buffer.flush()


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, budget: int) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mirage_operator.template_worker",
            str(budget),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )
        worker = cls(process)
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        except BaseException:
            await worker.kill()
            raise
        if line != READY:
            await worker.kill()
            raise OSError("the template worker did not start")
        return worker

    async def exchange(self, request: Mapping[str, Any]) -> dict[str, str]:
        """Send one request and read its answer; ``EOFError`` when the worker died (its
        memory limit, most likely)."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(request).encode("utf-8") + b"\n")
        await stdin.drain()
        line = await stdout.readline()
        if not line:
            raise EOFError
        answer: dict[str, str] = json.loads(line)
        return answer

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


class TemplateRunner:
    """Renders templates in up to ``workers`` bounded worker processes, started on demand."""

    def __init__(
        self,
        *,
        timeout: float = TEMPLATE_TIMEOUT,
        memory: int = TEMPLATE_MEMORY,
        workers: int = WORKERS,
    ) -> None:
        self.timeout = timeout
        self.memory = memory
        self.workers = workers
        self._idle: list[_Worker] = []
        self._busy = 0
        self._freed = asyncio.Condition()

    async def _acquire(self) -> _Worker:
        async with self._freed:
            await self._freed.wait_for(lambda: self._busy < self.workers)
            self._busy += 1
        if self._idle:
            return self._idle.pop()
        try:
            return await _Worker.start(self.memory)
        except BaseException:
            await self._release(None)
            raise

    async def _release(self, worker: _Worker | None) -> None:
        if worker is not None:
            self._idle.append(worker)
        async with self._freed:
            self._busy -= 1
            self._freed.notify()

    async def render(self, key: str, source: str, data: Mapping[str, str | bytes]) -> bytes:
        """The bytes ``source`` renders to with ``data``; :class:`InvalidTemplate` (naming
        ``key``) when it fails, runs out of memory or takes longer than the time budget."""
        try:
            worker = await self._acquire()
        except (OSError, TimeoutError) as error:
            raise TransientError(f"could not start a template worker ({error!r})") from None
        request = {"key": key, "source": source, "data": {k: _encode(v) for k, v in data.items()}}
        kept: _Worker | None = None
        try:
            answer = await asyncio.wait_for(worker.exchange(request), self.timeout)
        except TimeoutError:
            failure = f"template {key!r} failed: exceeded the time limit of {self.timeout:g}s"
        except (EOFError, OSError, ValueError):
            failure = f"template {key!r} failed: exceeded the memory limit"
        else:
            kept = worker
            if "ok" in answer:
                return base64.b64decode(answer["ok"])
            failure = str(answer.get("error", f"template {key!r} failed"))
        finally:
            if kept is None:
                await worker.kill()
            await self._release(kept)
        raise InvalidTemplate(failure)

    async def render_all(
        self, templates: Mapping[str, str], data: Mapping[str, str | bytes]
    ) -> dict[str, bytes]:
        """Each template's key to its rendered bytes (see :meth:`render`)."""
        return {key: await self.render(key, source, data) for key, source in templates.items()}

    async def close(self) -> None:
        """Stop every idle worker (a render in flight stops its own when it fails)."""
        idle, self._idle = self._idle, []
        for worker in idle:
            if worker.process.stdin is not None:
                worker.process.stdin.close()
            await worker.kill()


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else TEMPLATE_MEMORY)
