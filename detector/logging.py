"""Structured JSON logs (structlog) with credentials redacted before rendering.

:func:`configure` sets up one JSON line per event on stderr. :func:`redact_secrets` is a
structlog processor that runs before the renderer and replaces the value of any key that
looks like a credential (:func:`is_secret_name`: ``authorization``, ``token``,
``password``, ``*_key``, ``cookie``, ``signature`` ...) — at any depth, so a logged headers
mapping is covered too — and passes free text through the parsers' credential scrubber
(:func:`detector.parse.redact.redact`: ``Bearer ...``, ``token=...``, JWTs ...). File
*paths* of keys are not secret and are kept (``key_file``, ``cert_file``).

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


def is_secret_name(name: str) -> bool:
    """Whether a key or header called ``name`` holds a credential (not a path to one)."""
    lowered = name.lower()
    return bool(_SECRET_NAME.search(lowered)) and not lowered.endswith(_HARMLESS_SUFFIXES)


def _scrub(value: Any) -> Any:
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
        event_dict[key] = REDACTED if is_secret_name(key) else _scrub(value)
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
