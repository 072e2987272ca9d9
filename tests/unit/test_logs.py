"""Routine per-event successes stay out of the operator's INFO log; everything else stays in."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

import pytest

from mirage_operator import logs
from mirage_operator.logs import RoutineSuccessFilter


def _record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    ("message", "level", "kept"),
    [
        ("Handler 'mirageservices-events' succeeded.", logging.INFO, False),
        ("Handler 'child-events-deployments' succeeded.", logging.INFO, False),
        ("Handler 'mirage-children' succeeded.", logging.INFO, False),
        ("Handler 'secret-event' succeeded.", logging.INFO, False),
        ("Timer 'resync' succeeded.", logging.INFO, False),
        ("Handler 'release' succeeded.", logging.INFO, True),
        ("Handler 'mirageservices-events' failed temporarily: 503", logging.ERROR, True),
        ("Creation is processed: 1 succeeded; 0 failed.", logging.INFO, True),
    ],
)
def test_filter(message: str, level: int, kept: bool) -> None:
    assert RoutineSuccessFilter().filter(_record(message, level)) is kept


@pytest.mark.parametrize(
    ("emit", "expected"),
    [
        (
            lambda log: logs.ObjectLogger(log, "team-a", "api").warning("sync failed: %s", "x"),
            "[team-a/api] sync failed: x",
        ),
        (
            lambda log: log.warning("applied", extra={"k8s_ref": {"namespace": "b", "name": "c"}}),
            "[b/c] applied",
        ),
        (
            lambda log: log.warning("cluster-wide", extra={"k8s_ref": {"name": "n"}}),
            "[n] cluster-wide",
        ),
        (lambda log: log.warning("no object"), "WARNING no object"),
    ],
)
def test_every_line_about_an_object_names_it(
    emit: Callable[[logging.Logger], None], expected: str
) -> None:
    """The sandbox's log (and ``mirage run``'s) says which object a line is about: with 30
    failing VaultSecrets, a line that names none cannot be told apart."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.TextFormatter())
    log = logging.getLogger("mirage.test.objects")
    log.addHandler(handler)
    log.propagate = False
    try:
        emit(log)
    finally:
        log.removeHandler(handler)
    assert stream.getvalue().rstrip("\n").endswith(expected), stream.getvalue()
