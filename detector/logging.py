"""Structured JSON logs (structlog) with credentials redacted before rendering.

:func:`configure` sets up one JSON line per event on stderr. :func:`redact_secrets` is a
structlog processor that runs before the renderer and replaces the value of any key that
looks like a credential (``authorization``, ``token``, ``password``, ``key`` material,
``cookie``) — at any depth, so a logged headers mapping is covered too — and scrubs
``Bearer ...`` strings that slipped into free text. File *paths* of keys are not secret
and are kept (``key_file``, ``cert_file``).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Final

import structlog

REDACTED: Final = "[redacted]"
_SECRET_NAME = re.compile(
    r"(authorization|token|password|passwd|secret|cookie|api[_-]?key|private[_-]?key|webhook_url)",
    re.IGNORECASE,
)
# Names that contain a secret word but hold something harmless (a path, a count).
_HARMLESS_SUFFIXES: Final = ("_file", "_path", "_len", "_set")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return bool(_SECRET_NAME.search(lowered)) and not lowered.endswith(_HARMLESS_SUFFIXES)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _BEARER.sub(r"\1 " + REDACTED, value)
    if isinstance(value, MutableMapping) or isinstance(value, dict):
        return {k: REDACTED if _is_secret(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: credentials never reach the renderer."""
    for key in list(event_dict):
        value = event_dict[key]
        event_dict[key] = REDACTED if _is_secret(key) else _scrub(value)
    return event_dict


def configure(level: str = "info") -> None:
    """JSON lines on stderr at ``level``; safe to call more than once."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A lazy logger carrying ``component=name``; it binds on first use, so it follows
    :func:`configure` even when created at import time."""
    return structlog.get_logger(component=name)
