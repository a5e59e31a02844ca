"""File sink: one JSON object per line, on stdout (``path: "-"``) or appended to a file.

The embedded default when no other sink is configured. A line is written and flushed in
one call, so a reader tailing the file never sees half a record; ``fsync: true`` also
forces it to disk (in a worker thread, off the event loop) before the outbox forgets it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import IO, Any

import orjson

from detector.sinks.base import TransientDeliveryError
from detector.sinks.config import FileSinkConfig
from detector.sinks.formats import Formatter


class FileSink:
    """Appends JSON lines to ``config.path`` (``-`` = stdout)."""

    def __init__(self, config: FileSinkConfig, formatter: Formatter) -> None:
        self.name = config.name
        self._config = config
        self._format = formatter
        self._stream: IO[bytes] | None = None

    async def deliver(self, record: dict[str, Any]) -> None:
        """Write one line; a full disk or a closed stdout is transient (retried)."""
        line = orjson.dumps(self._format(record), option=orjson.OPT_APPEND_NEWLINE)
        try:
            stream = self._open()
            stream.write(line)
            stream.flush()
            if self._config.fsync:
                await asyncio.to_thread(os.fsync, stream.fileno())
        except OSError as exc:
            raise TransientDeliveryError(f"write failed: {exc.strerror}") from None

    def _open(self) -> IO[bytes]:
        if self._stream is None:
            if self._config.path == "-":
                self._stream = sys.stdout.buffer
            else:
                Path(self._config.path).parent.mkdir(parents=True, exist_ok=True)
                self._stream = open(self._config.path, "ab")  # noqa: SIM115 - kept open
        return self._stream

    async def close(self) -> None:
        """Close the file (stdout stays open)."""
        if self._stream is not None and self._config.path != "-":
            self._stream.close()
        self._stream = None
