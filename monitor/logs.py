"""Structured logging: one structlog pipeline for our events and for stdlib loggers
(botocore, aiohttp, APScheduler), JSON lines off a TTY, readable console on one."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from monitor.redact import REDACTED, SECRET_NAME, redact

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
# Libraries whose debug output carries signed headers and tokens: never below INFO.
_CHATTY = ("botocore", "aiobotocore", "aioboto3", "urllib3", "s3transfer")


def _redact(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key, value in event.items():
        if SECRET_NAME.search(key) and key != "event":
            event[key] = REDACTED
        elif isinstance(value, str):
            event[key] = redact(value)
    return event


def renders_json(fmt: str, stream: TextIO | None = None) -> bool:
    """Whether `configure(fmt, ...)` writes JSON lines to `stream` (stdout by default)."""
    return fmt == "json" or (fmt == "auto" and not (stream or sys.stdout).isatty())


def configure(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    as_json = renders_json(fmt, out)
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _redact,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(_LEVELS[level], logging.INFO))
    # aiohttp's access log would log every scrape; APScheduler logs every job run at INFO.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # A failed role refresh is logged with a traceback on every call that waits for it;
    # our poll_failed line (AssumeRoleFailed, with STS's message) says it once per look.
    logging.getLogger("aiobotocore.credentials").setLevel(logging.ERROR)
    logging.getLogger("apscheduler").setLevel(max(_LEVELS[level], logging.WARNING))


def get_logger(**context: Any) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(**context)
    return logger
