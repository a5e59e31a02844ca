"""``detector run`` as a child process with the bundled attack scenario fed through it.

The scenario's Falco alerts and audit events (examples/attack-scenario) are tailed by a
real ``detector run`` (one Falco file, one audit file, see :func:`scenario_files`)
listening on loopback with a bearer token, an incident store and a public URL.
:func:`running` returns once every expected chain is in the store (polled through
``/api/incidents``); :func:`post` sends live events to its receivers.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from detector.parse.timestamps import rfc3339_ns
from tests.integration.support import free_port

ROOT: Final = Path(__file__).resolve().parents[3]
SCENARIO: Final = ROOT / "examples" / "attack-scenario"
EXPECTED: Final = json.loads((SCENARIO / "expected.json").read_text())
TOKEN: Final = "pages-test-token"
CLUSTER: Final = "demo-cluster"


@dataclass(frozen=True)
class Live:
    url: str
    store: Path
    log: Path

    def get(self, path: str, auth: str | None = "bearer") -> tuple[int, dict[str, str], bytes]:
        """GET ``path``: status, headers, body (``auth``: bearer, basic or None)."""
        request = urllib.request.Request(self.url + path)  # noqa: S310 - http://127.0.0.1
        if auth == "bearer":
            request.add_header("Authorization", f"Bearer {TOKEN}")
        elif auth == "basic":
            request.add_header(
                "Authorization", "Basic " + base64.b64encode(f"analyst:{TOKEN}".encode()).decode()
            )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)


def scenario_files(tmp: Path) -> tuple[Path, Path]:
    """The scenario as one Falco and one audit JSON-lines file, each in event-time order.

    Files are *pulled* inputs: their progress is their own event time (the engine waits
    for the slower one), so a recorded attack from days ago correlates as it did live.
    Pushed over HTTP, events that old would be late by the receiving clock.
    """
    falco: list[tuple[int, dict[str, Any]]] = []
    audit: list[tuple[int, dict[str, Any]]] = []
    for path in sorted(SCENARIO.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            doc = json.loads(line)
            if "output_fields" in doc:
                falco.append((rfc3339_ns(doc["time"]), doc))
                continue
            for item in doc["items"] if doc.get("kind") == "EventList" else [doc]:
                stamp = item.get("requestReceivedTimestamp") or item["stageTimestamp"]
                audit.append((rfc3339_ns(stamp), item))
    paths = tmp / "falco.jsonl", tmp / "audit.jsonl"
    for target, docs in zip(paths, (falco, audit), strict=True):
        docs.sort(key=lambda entry: entry[0])
        target.write_text("".join(json.dumps(doc) + "\n" for _, doc in docs))
    return paths


def post(url: str, doc: Any) -> None:
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1
        url, data=json.dumps(doc).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        assert response.status == 200


def _config(tmp: Path, port: int, feed: bool) -> Path:
    falco, audit = scenario_files(tmp) if feed else ("", "")
    config = {
        "sources": {"falco_file": {"path": str(falco)}, "audit_file": {"path": str(audit)}},
        "cluster": {"name": CLUSTER},
        "http": {"listen": f"127.0.0.1:{port}", "bearer_token": TOKEN},
        "engine": {
            "allowlist": str(SCENARIO / "allowlist.yaml"),
            "allowed_lateness_s": 2.0,
            "idle_advance_s": 0.1,
        },
        "checkpoint": {"path": ""},
        "outbox": {"path": str(tmp / "outbox.sqlite3")},
        "incidents": {
            "path": str(tmp / "incidents.sqlite3"),
            "public_url": f"http://127.0.0.1:{port}",
        },
        "output": str(tmp / "chains.jsonl"),
    }
    path = tmp / "detector.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait(live: Live, what: str, done: Any, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            if done():
                return
        except (urllib.error.URLError, ConnectionError):
            pass  # not listening yet
        time.sleep(0.1)
    raise TimeoutError(f"{what} within {limit_s}s; log: {live.log.read_text()[-3000:]}")


@contextmanager
def running(tmp: Path, feed: bool = True) -> Iterator[Live]:
    """The service (with the scenario fed through it); stopped (SIGTERM) afterwards."""
    port = free_port()
    live = Live(f"http://127.0.0.1:{port}", tmp / "incidents.sqlite3", tmp / "detector.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    config = _config(tmp, port, feed)
    with live.log.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "detector.cli", "run", "--config", str(config)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp,
        )  # fmt: skip
        try:
            wait(live, "ready", lambda: live.get("/readyz", None)[0] == 200)
            if feed:
                want = len(EXPECTED["chains"])
                wait(live, f"{want} chains", lambda: _chains(live) == want)
            yield live
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _chains(live: Live) -> int:
    return sum(inc["chains"] for inc in live.json("/api/incidents")["incidents"])
