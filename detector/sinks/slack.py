"""Slack sink: an incoming webhook, or a bot token that keeps one thread per incident.

Messages are built in :mod:`detector.sinks.slack_blocks`. Two ways to post:

* **incoming webhook** (``webhook_url``): one message per chain, each naming its
  incident, so an incident gets a message for every chain it gains (at least one per
  ``min_interval_s`` while it grows); a webhook can neither thread nor edit.
* **bot token** (``bot_token`` + ``channel``, Web API ``chat.postMessage``)::

      first chain of an incident   postMessage  incident message (the thread's root)
      every chain                  postMessage  chain message, thread_ts = root
      a chain joins the incident   chat.update  root rewritten: worst severity, N chains

  The root's ``ts`` is remembered per incident (the last ``max_threads`` incidents, in
  memory: after a restart an incident's next chain opens a new thread). Each step is
  remembered as done, so when the outbox retries a record after a failure only the
  missing calls are made again.

Posting reuses :mod:`detector.sinks.http`: HTTP 429 ``Retry-After`` and 5xx are retried
by the outbox. The Web API answers errors with HTTP 200 and ``{"ok": false, "error": …}``:
``ratelimited`` and Slack's own failures are retried, anything else (``channel_not_found``,
``invalid_auth``, ``invalid_blocks`` …) is permanent (dead-lettered). ``min_interval_s``
spaces posts out on our side (Slack allows about one message per second per channel).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import orjson

from detector.sinks import http
from detector.sinks.base import PermanentDeliveryError, TransientDeliveryError
from detector.sinks.config import SlackSinkConfig, resolve_secret
from detector.sinks.formats import Formatter
from detector.sinks.slack_blocks import build_incident_message, build_message, escape

__all__ = ["SlackSink", "build_incident_message", "build_message", "escape"]

_RETRY_ERRORS: Final = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


@dataclass
class Thread:
    """What was posted for one incident: where its root is and which chains it shows."""

    channel: str = ""
    ts: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    replied: set[str] = field(default_factory=set)  # chain ids posted in the thread
    shown: int = 0  # chains the root message shows


class SlackSink:
    """Posts chain records to Slack (webhook, or Web API threads per incident)."""

    def __init__(self, config: SlackSinkConfig, formatter: Formatter) -> None:
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
        self.threads: OrderedDict[str, Thread] = OrderedDict()

    async def deliver(self, record: dict[str, Any]) -> None:
        if self._token:
            await self._threaded(record)
            return
        await self._pace()
        body = orjson.dumps(build_message(record, self._config.link_template))
        await http.post(self._client(), self._url, body, {"Content-Type": "application/json"})

    async def _threaded(self, record: dict[str, Any]) -> None:
        thread = self._thread(str(record["incident"]))
        if record["id"] not in {r["id"] for r in thread.records}:
            thread.records.append(record)
        link = self._config.link_template
        if not thread.ts:
            root = await self._api("chat.postMessage", build_incident_message(thread.records, link))
            thread.channel, thread.ts = str(root["channel"]), str(root["ts"])
            thread.shown = len(thread.records)
        if record["id"] not in thread.replied:
            reply = {"thread_ts": thread.ts, **build_message(record, link)}
            await self._api("chat.postMessage", reply, thread.channel)
            thread.replied.add(str(record["id"]))
        if thread.shown < len(thread.records):
            update = {"ts": thread.ts, **build_incident_message(thread.records, link)}
            await self._api("chat.update", update, thread.channel)
            thread.shown = len(thread.records)

    def _thread(self, incident: str) -> Thread:
        thread = self.threads.get(incident)
        if thread is None:
            thread = self.threads[incident] = Thread()
            while len(self.threads) > self._config.max_threads:
                self.threads.popitem(last=False)  # the incident least recently posted to
        self.threads.move_to_end(incident)
        return thread

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
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None
