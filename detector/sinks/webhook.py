"""Webhook sink: one JSON POST (or PUT) per chain record, HMAC-signed.

Headers sent with every request: ``Content-Type: application/json``, ``Idempotency-Key``
(the chain id, for receivers that deduplicate), ``X-Chain-Schema`` and, when a secret is
configured, ``X-Chain-Signature`` (see :mod:`detector.sinks.signing`). Retries belong to
the outbox: this module only classifies each response (:mod:`detector.sinks.http`).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from detector.sinks import http, signing
from detector.sinks.config import WebhookSinkConfig, resolve_secret
from detector.sinks.formats import Formatter, schema_of


class WebhookSink:
    """POSTs records to ``config.url``."""

    def __init__(self, config: WebhookSinkConfig, formatter: Formatter) -> None:
        self.name = config.name
        self._config = config
        self._format = formatter
        secret = resolve_secret(config.secret, config.secret_file, config.secret_env, "secret")
        self._secret = secret.encode()
        self._session: aiohttp.ClientSession | None = None

    async def deliver(self, record: dict[str, Any]) -> None:
        """POST the formatted record; raises a delivery error unless the answer is 2xx."""
        body = orjson.dumps(self._format(record))
        headers = {
            **self._config.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": str(record["id"]),
            "X-Chain-Schema": schema_of(self._config.format),
        }
        if self._secret:
            headers[signing.HEADER] = signing.sign(self._secret, body)
        await http.post(self._client(), self._config.url, body, headers, self._config.method)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = http.new_session(self._config.timeout_s, self._config.tls_ca_file)
        return self._session

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None
