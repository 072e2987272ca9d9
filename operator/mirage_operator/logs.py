"""Logging setup of ``mirage run``: kopf's formatter, our level, and less per-event noise."""

from __future__ import annotations

import logging
import re

import kopf

from mirage_operator.config import Config

# Handlers that run on every watch event or timer tick: their success is routine, and at INFO
# it would print a line per event of every child object.
_ROUTINE = re.compile(
    r"^((Handler|Indexer) '(.*-events|child-events-.*|mirage-children|secret-event)'|Timer '.*') "
    r"succeeded\.$"
)


class RoutineSuccessFilter(logging.Filter):
    """Drops INFO lines saying an event or timer handler succeeded (DEBUG keeps them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is worth a line."""
        return not (record.levelno == logging.INFO and _ROUTINE.match(record.getMessage()))


def configure(config: Config) -> None:
    """Configure the root logger as ``config`` says (JSON or text, level)."""
    kopf.configure(
        debug=config.log_level == "DEBUG",
        quiet=config.log_level in ("WARNING", "ERROR"),
        log_format=kopf.LogFormat.JSON if config.log_format == "json" else kopf.LogFormat.FULL,
    )
    root = logging.getLogger()
    if config.log_level == "ERROR":
        root.setLevel(logging.ERROR)
    if config.log_level != "DEBUG":
        for handler in root.handlers:
            handler.addFilter(RoutineSuccessFilter())
