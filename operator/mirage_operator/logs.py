"""Logging setup of ``mirage run``: kopf's formatter, our level, and less per-event noise."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

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


class ObjectLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose lines start with ``[namespace/name]`` of the object, as kopf's own
    per-object lines do, under any formatter."""

    def __init__(self, logger: logging.Logger, namespace: str, name: str) -> None:
        super().__init__(logger, {"object": f"{namespace}/{name}"})

    def process(self, msg: object, kwargs: Any) -> tuple[object, Any]:
        """Prefix the message with the object."""
        return f"[{(self.extra or {})['object']}] {msg}", kwargs


class TextFormatter(logging.Formatter):
    """Plain text lines that keep kopf's ``[namespace/name]`` prefix (kopf passes the object
    as ``k8s_ref`` and prefixes it in its own formatters only)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(name)s %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The line, prefixed with the object when kopf logged it for one."""
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict) and ref.get("name"):
            record = copy.copy(record)
            where = "/".join(p for p in (ref.get("namespace"), ref["name"]) if p)
            record.msg = f"[{where}] {record.msg}"
        return super().format(record)


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
