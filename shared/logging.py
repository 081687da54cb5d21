"""structlog configuration shared by every process: JSON lines off a terminal, readable lines on one.

`configure_logging` is called once per process. Standard-library loggers (aiohttp, arq, asyncio) are routed
through the same processors, so every line has the same shape. Values under secret-looking keys are redacted
before rendering: tokens, keys, signatures and passwords never reach a log.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import msgspec
import structlog
from aiohttp.http_exceptions import BadHttpMessage

SECRET_KEY_PARTS = ("token", "secret", "password", "authorization", "signature", "api_key", "apikey", "x-payment")
REDACTED = "[redacted]"

_json_encoder = msgspec.json.Encoder()


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace the value of any key that names a secret; shows only the first 4 characters."""
    for key, value in event_dict.items():
        if isinstance(value, str) and _is_secret_key(key):
            event_dict[key] = redact(value)
    return event_dict


def redact(value: str) -> str:
    return f"{value[:4]}…{REDACTED}" if len(value) > 12 else REDACTED


@functools.lru_cache(maxsize=4096)  # a line's keys are our code's few names: each judged once, not on every line
def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in SECRET_KEY_PARTS)


def quiet_malformed_requests(record: logging.LogRecord) -> bool:
    """A request aiohttp's HTTP parser refuses (a line over 8190 bytes, bad bytes) is logged by aiohttp as an
    error with a traceback whose message quotes the start of the offending line: it may hold a credential. It is
    written as one warning naming only the kind of error."""
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, BadHttpMessage):
        record.msg, record.args = "refused a malformed HTTP request (%s)", (type(error).__name__,)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
    return True


def _json_dumps(obj: Any, **_: Any) -> str:
    return _json_encoder.encode(obj).decode()


class _QuickInfoLogger:
    """The standard-library logger of one name, except that its debug and info lines (a request line per request,
    a job line per job) skip the standard library's record, handler and lock while our handler is the only one:
    they are rendered by the same formatter processors and written to the handler's stream, about 15 µs sooner
    each. Anything else (warnings and errors, other handlers such as `caplog` in tests, a line that cannot be
    rendered or written) goes through the standard library, which reports its own failures and never raises."""

    def __init__(self, name: str, handler: logging.StreamHandler[Any]) -> None:
        self._stdlib = logging.getLogger(name)
        self._handler = handler
        formatter = handler.formatter
        self._processors = formatter.processors if isinstance(formatter, structlog.stdlib.ProcessorFormatter) else ()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stdlib, name)

    def _quick(self, method: str, event_dict: Any, **kw: Any) -> None:
        quick = self._processors and not self._stdlib.handlers and self._stdlib.propagate
        if quick and logging.root.handlers == [self._handler]:
            try:
                ed: Any = {**event_dict, "_record": None, "_from_structlog": True}  # as ProcessorFormatter has it
                for processor in self._processors:
                    ed = processor(self._stdlib, method, ed)
                stream = self._handler.stream
                stream.write(ed + "\n")
                stream.flush()
                return
            except Exception:  # noqa: BLE001 - the standard library writes it, or says why it cannot
                pass
        getattr(self._stdlib, method)(event_dict, **kw)

    def info(self, event_dict: Any, **kw: Any) -> None:
        self._quick("info", event_dict, **kw)

    def debug(self, event_dict: Any, **kw: Any) -> None:
        self._quick("debug", event_dict, **kw)


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_dumps)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)

    def logger_factory(*args: Any) -> _QuickInfoLogger:
        return _QuickInfoLogger(args[0] if args else "", handler)

    structlog.configure(
        # lines below the level are dropped before any processor runs (the stdlib handler would drop them last)
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=logger_factory,
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would duplicate our canonical request line.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.server").addFilter(quiet_malformed_requests)
