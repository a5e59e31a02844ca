"""Slack sink: an incoming webhook, or a bot token that keeps one thread per incident.

Messages are built in :mod:`detector.sinks.slack_blocks`. Two ways to post:

* **incoming webhook** (``webhook_url``): one message per chain, each naming its
  incident, so an incident gets a message for every chain it gains (at least one per
  ``min_interval_s`` while it grows); a webhook can neither thread nor edit.
* **bot token** (``bot_token`` + ``channel``, Web API ``chat.postMessage``)::

      first chain of an incident   postMessage  incident message (the thread's root)
      every chain                  postMessage  chain message, thread_ts = root
      a chain joins the incident   chat.update  root rewritten: worst severity, N chains

  The root's ``ts`` is remembered per incident (the last ``max_threads`` incidents posted
  to), with the chains the root shows and those replied in the thread, in the SQLite file
  ``threads_path`` (:mod:`detector.sinks.slack_threads`; by default
  ``slack-<sink name>.threads`` beside the outbox): after a restart, ``kill -9``
  included, an incident's next chain is replied in its thread and the root updated,
  never a second root. ``threads_path: memory`` keeps the map in memory only (a restart
  opens new threads). Each step is written as done right after its call succeeded, so
  when the outbox retries a record only the missing calls are made again; a crash
  between a call and its write repeats that one call (a second root, reply or update
  after the restart), which the outbox's at-least-once delivery allows anyway. A state
  file that cannot be read is moved aside and logged, and the sink goes on with an empty
  map; a write that fails is logged and the sink goes on from memory.

Posting reuses :mod:`detector.sinks.http`: HTTP 429 ``Retry-After`` and 5xx are retried
by the outbox. The Web API answers errors with HTTP 200 and ``{"ok": false, "error": …}``:
``ratelimited`` and Slack's own failures are retried, anything else (``channel_not_found``,
``invalid_auth``, ``invalid_blocks`` …) is permanent (dead-lettered). ``min_interval_s``
spaces posts out on our side (Slack allows about one message per second per channel).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, TypeVar

import aiohttp
import orjson

from detector.logging import get_logger
from detector.metrics import Metrics
from detector.sinks import http
from detector.sinks.base import PermanentDeliveryError, TransientDeliveryError
from detector.sinks.config import MEMORY, SlackSinkConfig, resolve_secret
from detector.sinks.formats import Formatter
from detector.sinks.slack_blocks import build_incident_message, build_message, escape
from detector.sinks.slack_threads import Thread, Threads, ThreadStore

__all__ = ["SlackSink", "build_incident_message", "build_message", "escape"]

T = TypeVar("T")
log = get_logger("detector.sinks.slack")
_RETRY_ERRORS: Final = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackSink:
    """Posts chain records to Slack (webhook, or Web API threads per incident)."""

    def __init__(
        self, config: SlackSinkConfig, formatter: Formatter, metrics: Metrics | None = None
    ) -> None:
        """``metrics``: where thread-file problems are counted (a registry of its own by
        default), ``detector_slack_thread_errors_total{sink, reason}``."""
        del formatter  # Slack always gets Block Kit, whatever ``format`` says
        self.name = config.name
        self._config = config
        self._url = resolve_secret(
            config.webhook_url, config.webhook_url_file, config.webhook_url_env, "webhook_url"
        )
        self._token = resolve_secret(
            config.bot_token, config.bot_token_file, config.bot_token_env, "bot_token"
        )
        if not self._token and not self._url.startswith(("https://", "http://")):
            raise ValueError("webhook_url: an http(s) URL is required")
        self._session: aiohttp.ClientSession | None = None
        self._next_post = 0.0
        self.threads = Threads(config.max_threads)
        self._state_path = config.threads_path if config.threads_path != MEMORY else ""
        self._store: ThreadStore | None = None
        self._executor: ThreadPoolExecutor | None = None  # the store's one thread
        self._errors = (metrics or Metrics()).slack_thread_errors

    async def deliver(self, record: dict[str, Any]) -> None:
        if self._token:
            await self._threaded(record)
            return
        await self._pace()
        body = orjson.dumps(build_message(record, self._config.link_template))
        await http.post(self._client(), self._url, body, {"Content-Type": "application/json"})

    async def _threaded(self, record: dict[str, Any]) -> None:
        await self._load()
        incident = str(record["incident"])
        thread = self.threads.get(incident)
        if record["id"] not in {r["id"] for r in thread.records}:
            thread.records.append(record)
        link = self._config.link_template
        if not thread.ts:
            root = await self._api("chat.postMessage", build_incident_message(thread.records, link))
            thread.channel, thread.ts = str(root["channel"]), str(root["ts"])
            thread.shown = len(thread.records)
            await self._save(incident, thread)
        if record["id"] not in thread.replied:
            reply = {"thread_ts": thread.ts, **build_message(record, link)}
            await self._api("chat.postMessage", reply, thread.channel)
            thread.replied.add(str(record["id"]))
            await self._save(incident, thread)
        if thread.shown < len(thread.records):
            update = {"ts": thread.ts, **build_incident_message(thread.records, link)}
            await self._api("chat.update", update, thread.channel)
            thread.shown = len(thread.records)
            await self._save(incident, thread)

    async def _load(self) -> None:
        """Open the state file and read its threads, once (at the first threaded post:
        building the sink, as ``detector check`` does, writes nothing)."""
        if not self._state_path or self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"slack-{self.name}")
        try:
            path = Path(self._state_path)
            self._store = await self._run(ThreadStore, path, self.name, self.threads)
            for reason, count in self._store.problems.items():
                self._errors.labels(self.name, reason).inc(count)
        except (OSError, sqlite3.Error) as exc:
            self._errors.labels(self.name, "unavailable").inc()
            log.error(
                "slack_threads_unavailable", sink=self.name, path=self._state_path,
                error=str(exc), effect="threads kept in memory only until restart",
            )  # fmt: skip
            await self._close_store()

    async def _save(self, incident: str, thread: Thread) -> None:
        if self._store is None:
            return
        try:
            await self._run(self._store.save, incident, thread, self.threads)
        except sqlite3.Error as exc:  # disk full, I/O error: Slack goes on, from memory
            self._errors.labels(self.name, "write").inc()
            log.error("slack_threads_not_saved", sink=self.name, incident=incident, error=str(exc))

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def _api(self, method: str, payload: dict[str, Any], channel: str = "") -> dict[str, Any]:
        """One Web API call; its answer when ``ok``, else the matching delivery error."""
        await self._pace()
        body = orjson.dumps({"channel": channel or self._config.channel, **payload})
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": f"Bearer {self._token}",
        }
        raw = await http.post(
            self._client(), f"{self._config.api_url.rstrip('/')}/{method}", body, headers
        )
        try:
            answer: dict[str, Any] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise TransientDeliveryError(f"slack {method}: answer is not JSON") from None
        if answer.get("ok") is True:
            return answer
        error = str(answer.get("error", "unknown_error"))
        if error in _RETRY_ERRORS:
            raise TransientDeliveryError(f"slack {method}: {error}")
        raise PermanentDeliveryError(f"slack {method}: {error}")

    async def _pace(self) -> None:
        """Wait out ``min_interval_s`` since the last post."""
        await asyncio.sleep(max(0.0, self._next_post - time.monotonic()))
        self._next_post = time.monotonic() + self._config.min_interval_s

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = http.new_session(self._config.timeout_s)
        return self._session

    async def close(self) -> None:
        """Close the connection pool and the state file."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._close_store()

    async def _close_store(self) -> None:
        if self._store is not None:
            await self._run(self._store.close)
            self._store = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
