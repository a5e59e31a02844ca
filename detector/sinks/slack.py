"""Slack sink: an incoming-webhook message an on-call engineer reads in ten seconds.

Layout of :func:`build_message` (Block Kit, plus ``text`` as the plain-text fallback that
notifications and screen readers use)::

    header    🔴 HIGH · <title>
    section   *Rule* / *Incident* / *ATT&CK* / *Path*       (fields)
    section   *Timeline*: one line per step — time, source, what happened
    context   pods · service accounts · namespaces · nodes
    actions   [Open in SIEM]                                 (when link_template is set)

Slack limits (header text 150 chars, section text 3000, 10 fields, 50 blocks) are
respected by truncation here; the tests check the result with slack_sdk's own models.
Posting reuses :mod:`detector.sinks.http`, so 429 ``Retry-After`` and 5xx are retried by
the outbox; ``min_interval_s`` also spaces posts out on our side (Slack allows about one
message per second per webhook).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

import aiohttp
import orjson

from detector.sinks import http
from detector.sinks.config import SlackSinkConfig, resolve_secret
from detector.sinks.formats import Formatter

_MARK: Final = {"critical": "🟣", "high": "🔴", "medium": "🟠", "low": "🟡", "info": "⚪"}
_MAX_TIMELINE: Final = 12  # steps shown; longer chains say "... and N more"
_SECTION_MAX: Final = 3000
_HEADER_MAX: Final = 150


def escape(text: str) -> str:
    """Slack mrkdwn control characters (``& < >``) escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_message(record: dict[str, Any], link_template: str = "") -> dict[str, Any]:
    """The webhook payload (``text`` + ``blocks``) for one chain record."""
    severity = str(record["severity"])
    title = f"{_MARK.get(severity, '')} {severity.upper()} · {record['title']}".strip()
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, _HEADER_MAX)}},
        {"type": "section", "fields": _fields(record)},
        {"type": "section", "text": _mrkdwn(_timeline(record["steps"]))},
        {"type": "context", "elements": [_mrkdwn(_entities(record))]},
    ]
    if link_template:
        url = link_template.format(id=record["id"], incident=record["incident"])
        blocks.append(_button(url, record["id"]))
    fallback = f"[{severity.upper()}] {record['title']} ({record['rule']}, {record['id']})"
    return {"text": fallback, "blocks": blocks}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _cut(text, _SECTION_MAX)}


def _fields(record: dict[str, Any]) -> list[dict[str, str]]:
    techniques = ", ".join(record["techniques"]) or "—"
    path = " → ".join(record["path"]) or "—"
    pairs = [
        ("Rule", f"`{record['rule']}`"),
        ("Incident", f"`{record['incident']}`"),
        ("ATT&CK", techniques),
        ("Path", path),
    ]
    return [_mrkdwn(f"*{escape(k)}*\n{escape(v)}") for k, v in pairs]


def _timeline(steps: list[dict[str, Any]]) -> str:
    lines = ["*Timeline*"]
    for step in steps[:_MAX_TIMELINE]:
        clock = str(step["time"])[11:19]  # HH:MM:SS of the RFC 3339 UTC time
        what = escape(str(step["summary"]) or str(step["step"]))
        lines.append(f"`{clock}Z` {escape(str(step['source']))} · {what}")
    if len(steps) > _MAX_TIMELINE:
        lines.append(f"… and {len(steps) - _MAX_TIMELINE} more steps")
    return "\n".join(lines)


def _entities(record: dict[str, Any]) -> str:
    entities = record["entities"]
    parts = []
    for key, label in (("pods", "pods"), ("service_accounts", "SAs"), ("namespaces", "ns")):
        values = entities.get(key) or []
        if values:
            parts.append(f"{label}: {escape(', '.join(values))}")
    parts.append(f"first {record['first_seen']} · last {record['last_seen']}")
    return " · ".join(parts)


def _button(url: str, chain_id: str) -> dict[str, Any]:
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Open in SIEM"},
        "url": url,
        "action_id": f"open-{chain_id}",
    }
    return {"type": "actions", "elements": [button]}


class SlackSink:
    """Posts one message per record to a Slack incoming webhook."""

    def __init__(self, config: SlackSinkConfig, formatter: Formatter) -> None:
        del formatter  # Slack always gets Block Kit, whatever ``format`` says
        self.name = config.name
        self._config = config
        self._url = resolve_secret(
            config.webhook_url, config.webhook_url_file, config.webhook_url_env, "webhook_url"
        )
        if not self._url.startswith(("https://", "http://")):
            raise ValueError("webhook_url: an http(s) URL is required")
        self._session: aiohttp.ClientSession | None = None
        self._next_post = 0.0

    async def deliver(self, record: dict[str, Any]) -> None:
        """Post the message, first waiting out ``min_interval_s`` since the last post."""
        body = orjson.dumps(build_message(record, self._config.link_template))
        await asyncio.sleep(max(0.0, self._next_post - time.monotonic()))
        self._next_post = time.monotonic() + self._config.min_interval_s
        headers = {"Content-Type": "application/json"}
        await http.post(self._client(), self._url, body, headers)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = http.new_session(self._config.timeout_s)
        return self._session

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None
