"""Templates run in bounded worker processes (docs/adr/0067): every hostile construct fails
with :class:`InvalidTemplate`, and a hostile template holds up neither the event loop nor
other renders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mirage_operator.errors import InvalidTemplate, TransientError
from mirage_operator.template_worker import TemplateRunner
from tests.unit.render.test_template_secrecy import DATA, FAILING, assert_value_free

NESTED_LOOPS = (
    "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)
HOSTILE = [
    # memory: what the sandbox lets through is stopped by the worker's address-space limit
    "{{ ('%*s' % (1000000000, data.password))|length }}",
    "{{ ('%*d' % (900000000, 1))|length }}",
    # time: only the worker's time budget stops these
    NESTED_LOOPS,
    "{% for a in range(1000) %}{% for b in range(1000) %}{{ (a * b)|string|length }}"
    "{% endfor %}{% endfor %}",
    # refused by the sandbox's own guards, before any allocation
    "{{ range(10 ** 9)|length }}",
    "{{ data.password * 10 ** 9 }}",
    "{{ range(1000)|join(data.password * 1000) }}",
    "{{ '%1000000000s' % data.password }}",
    "{{ '{:>1000000000}'.format(data.password) }}",
    "{{ data.password.center(10 ** 9) }}",
    "{{ data.password.ljust(1000000000) }}",
    "{{ 9 ** (9 ** 9) }}",
    "{% macro f(n) %}{{ f(n) ~ f(n) }}{% endmacro %}{{ f(1) }}",
    "{{ [[data.password] * 1000] * 1000 }}",
    "{{ ([data.password * 100000] * 1000)|join }}",
]


@pytest.fixture
async def runner() -> AsyncIterator[TemplateRunner]:
    made = TemplateRunner(timeout=1.0)
    yield made
    await made.close()


async def test_a_template_renders_in_the_worker(runner: TemplateRunner) -> None:
    rendered = await runner.render_all(
        {"a": "{{ data.user }}:{{ data.password }}", "b": "{{ data.bin|b64enc }}"}, DATA
    )
    assert rendered["a"] == b"u:MARKER-q8Zt-secret"
    assert rendered["b"] == b"//5NQVJLRVItcThadC1zZWNyZXQ="


@pytest.mark.parametrize("template", HOSTILE)
async def test_hostile_templates_fail_with_invalid_template(
    runner: TemplateRunner, template: str
) -> None:
    with pytest.raises(InvalidTemplate) as caught:
        await runner.render("conn", template, DATA)
    assert str(caught.value).startswith("template 'conn' failed")
    assert_value_free(caught.value)


@pytest.mark.parametrize(("template", "kind"), FAILING[::3])
async def test_errors_from_the_worker_are_value_free(
    runner: TemplateRunner, template: str, kind: str
) -> None:
    with pytest.raises(InvalidTemplate) as caught:
        await runner.render("conn", template, DATA)
    assert kind in str(caught.value)
    assert_value_free(caught.value)


async def test_limits_are_named(runner: TemplateRunner) -> None:
    with pytest.raises(InvalidTemplate, match="exceeded the time limit of 1s"):
        await runner.render("conn", NESTED_LOOPS, DATA)
    with pytest.raises(InvalidTemplate, match="exceeded the memory limit"):
        await runner.render("conn", HOSTILE[0], DATA)
    assert await runner.render("conn", "{{ data.num }}", DATA) == b"12"  # a fresh worker


async def test_a_hostile_template_blocks_neither_the_loop_nor_other_renders(
    runner: TemplateRunner,
) -> None:
    ticks = 0
    hostile = asyncio.create_task(runner.render("slow", NESTED_LOOPS, DATA))

    async def ticker() -> None:
        nonlocal ticks
        while not hostile.done():
            ticks += 1
            await asyncio.sleep(0)

    counting = asyncio.create_task(ticker())
    # Another VaultSecret's template renders in the second worker meanwhile.
    assert await runner.render("fast", "{{ data.user }}", DATA) == b"u"
    assert not hostile.done()
    with pytest.raises(InvalidTemplate):
        await hostile
    await counting
    # The loop went round many times while the hostile template ran: it was never blocked.
    assert ticks > 100


async def test_a_worker_that_cannot_start_is_a_transient_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    runner = TemplateRunner()
    with pytest.raises(TransientError, match="could not start a template worker"):
        await runner.render("conn", "{{ data.user }}", DATA)
    monkeypatch.undo()
    assert await runner.render("conn", "{{ data.user }}", DATA) == b"u"  # the slot was freed
    await runner.close()
