"""Routine per-event successes stay out of the operator's INFO log; everything else stays in."""

from __future__ import annotations

import logging

import pytest

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
