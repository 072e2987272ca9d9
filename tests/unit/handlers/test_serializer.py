"""The per-object locks: they serialize work on one object and go when it is done."""

from __future__ import annotations

import asyncio

from mirage_operator.handlers.context import Serializer

KEY = ("VaultSecret", "shop", "db")


async def test_locks_serialize_one_object_and_leave_none_behind() -> None:
    serializer = Serializer()
    order: list[str] = []
    inside = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with serializer.lock(KEY):
            order.append("first in")
            inside.set()
            await release.wait()
            order.append("first out")

    async def second() -> None:
        await inside.wait()
        async with serializer.lock(KEY):
            order.append("second in")

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await inside.wait()
    while serializer.locks[KEY].users < 2:  # the second task is waiting for the lock
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["first in", "first out", "second in"]
    assert serializer.locks == {}


async def test_the_table_shrinks_back_after_many_objects() -> None:
    serializer = Serializer()
    sizes = []

    async def work(name: str) -> None:
        async with serializer.lock(("VaultSecret", "shop", name)):
            await asyncio.sleep(0)
            sizes.append(len(serializer.locks))

    await asyncio.gather(*(work(f"s{i}") for i in range(1000)))
    assert max(sizes) == 1000  # all held at once
    assert serializer.locks == {}


async def test_a_failure_inside_releases_the_lock() -> None:
    serializer = Serializer()
    try:
        async with serializer.lock(KEY):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert serializer.locks == {}
    async with serializer.lock(KEY):
        assert serializer.locks[KEY].users == 1
