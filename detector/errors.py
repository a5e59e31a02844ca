"""The detector package's exception tree.

Every error the service raises on purpose derives from :class:`DetectorError`, so a
caller can catch the whole family with one clause and let real bugs propagate::

    DetectorError
     ├── ParseError          one input record could not be turned into events (.reason)
     │    └── SkippedInput   a well-formed record that is deliberately not an event
     │                       (Falco internal alerts); counted, never logged as bad
     └── UsageError          bad command line or configuration; the CLI exits 2

Sink delivery failures have their own small tree in :mod:`detector.sinks.base`
(``DeliveryError``) because the outbox retries on them rather than reporting them.
"""

from __future__ import annotations

from collections.abc import Sequence


class DetectorError(Exception):
    """Base of every error the detector raises deliberately."""


class ParseError(DetectorError):
    """A record that is not a valid Falco alert or audit event.

    ``reason`` is a short snake_case code used as a metrics label and in the replay
    summary (``malformed_json``, ``missing_field``, ``bad_time`` ...); the message is for
    humans and never contains the record's content beyond a field name.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.reason}: {self.args[0]}"


class SkippedInput(ParseError):
    """A valid record that carries no event for correlation (e.g. a Falco internal alert)."""


class UsageError(DetectorError):
    """Bad arguments or configuration: the command cannot start.

    ``problems`` holds one entry per mistake when there are several (a configuration
    check); the CLI prints each on its own line.
    """

    def __init__(self, message: str, problems: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.problems: Sequence[object] = tuple(problems)
