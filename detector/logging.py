"""Structured JSON logs (structlog) with credentials redacted before rendering.

:func:`configure` sets up one JSON line per event on stderr — for the service's own
structlog loggers *and* for the standard-library loggers of the libraries it runs
(aiokafka, aiohttp, asyncio, grpc ...), which go through the same processors via
``structlog.stdlib.ProcessorFormatter``; their ``component`` is the logger's name.

:func:`redact_secrets` is a structlog processor that runs before the renderer and replaces
the value of any key that looks like a credential (:func:`is_secret_name`:
``authorization``, ``token``, ``password``, ``*_key``, ``cookie``, ``signature`` ...) — at
any depth, so a logged headers mapping is covered too — and passes free text through the
parsers' credential scrubber (:func:`detector.parse.redact.redact`: ``Bearer ...``,
``token=...``, JWTs ...). File *paths* of keys are not secret and are kept (``key_file``,
``cert_file``).

The service's own words are not data and are never rewritten: the event name, and any
text wrapped in :class:`OwnText` (a fixed message such as "missing or wrong bearer
token", which the scrubber would otherwise read as ``Bearer <token>``). Everything else —
exception text, values from requests, library messages — is scrubbed.

:func:`is_secret_name` is the one name rule: the sinks' configuration uses it to mask
webhook ``headers`` values when a config is printed.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Final

import structlog

from detector.parse.redact import redact

REDACTED: Final = "[redacted]"
_SECRET_NAME = re.compile(
    r"authorization|token|password|passwd|secret|cookie|signature|webhook_url|apikey"
    # "key" as a word of the name (x-api-key, access_key), not inside one (monkey, keyboard)
    r"|(?:^|[-_. ])key(?:s|$|[-_. ])",
    re.IGNORECASE,
)
# Names that contain a secret word but hold something harmless (a path, a count).
_HARMLESS_SUFFIXES: Final = ("_file", "_path", "_len", "_set")
# Keys whose values the service writes itself: the event name, and the log record's name.
_OWN_KEYS: Final = frozenset({"event", "component", "level", "timestamp"})


class OwnText(str):
    """A message the service wrote (not data): logged as it is, never scrubbed."""

    __slots__ = ()


def is_secret_name(name: str) -> bool:
    """Whether a key or header called ``name`` holds a credential (not a path to one)."""
    lowered = name.lower()
    return bool(_SECRET_NAME.search(lowered)) and not lowered.endswith(_HARMLESS_SUFFIXES)


def _scrub(value: Any) -> Any:
    if isinstance(value, OwnText):
        return str(value)
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, MutableMapping) or isinstance(value, dict):
        return {k: REDACTED if is_secret_name(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: credentials never reach the renderer."""
    for key in list(event_dict):
        value = event_dict[key]
        if key in _OWN_KEYS:
            continue
        event_dict[key] = REDACTED if is_secret_name(key) else _scrub(value)
    return event_dict


def _library_fields(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A standard-library record: its logger name as ``component``, the message as data."""
    record = event_dict.pop("_record", None)
    event_dict.pop("_from_structlog", None)
    if record is not None:
        event_dict.setdefault("component", record.name)
    return event_dict


_SHARED: Final = (
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.format_exc_info,
    redact_secrets,
)


def configure(level: str = "info") -> None:
    """JSON lines on stderr at ``level``, for structlog and stdlib loggers; idempotent."""
    threshold = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*_SHARED, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # the library's message is its own text; only its arguments could hold data,
            # and they are already in the message: scrub it like any data field
            foreign_pre_chain=[structlog.stdlib.ExtraAdder()],
            processors=[
                _library_fields,
                _message_as_data,
                *_SHARED,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_detector", False)]:
        root.removeHandler(old)
    handler._detector = True  # type: ignore[attr-defined]  # ours: replaced on reconfigure
    root.addHandler(handler)
    root.setLevel(threshold)


def _message_as_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A library's message may carry addresses or URLs with credentials: it is data.

    It moves to ``message`` (scrubbed); ``event`` becomes a fixed name, so every line's
    ``event`` is an identifier a query can match on.
    """
    event_dict["message"] = str(event_dict.get("event", ""))
    event_dict["event"] = "library_log"
    return event_dict


def get_logger(name: str) -> Any:
    """A lazy logger carrying ``component=name``; it binds on first use, so it follows
    :func:`configure` even when created at import time."""
    return structlog.get_logger(component=name)
