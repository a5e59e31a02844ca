"""The incident pages in Debian's chromium (headless), driven by playwright's client.

Playwright only speaks to the system browser (``executable_path=/usr/bin/chromium``); it
never downloads one. The flags keep chromium from reaching for the network it does not
have here (without them it hangs). Screenshots go to ``artifacts/screenshots/`` (git
ignored) and are checked to show content, not a blank page.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, sync_playwright

from tests.integration.run import scenario as small_attack
from tests.integration.web.live import EXPECTED, ROOT, SCENARIO, TOKEN, Live, post, running
from tests.integration.web.png import content_share

CHROMIUM: Final = "/usr/bin/chromium"
FLAGS: Final = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SHOTS: Final = ROOT / "artifacts" / "screenshots"
VIEWPORT: Final = {"width": 1400, "height": 1000}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/ensure-chromium.sh"
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=FLAGS, headless=True,
            viewport=VIEWPORT, http_credentials={"username": "analyst", "password": TOKEN},
        )  # fmt: skip
        yield context
        context.close()


class Console:
    """Every console message and page error of one page (warnings count too)."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))

    def _message(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"{message.type}: {message.text}")


def _shot(page: Page, name: str, full_page: bool = True) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    page.screenshot(path=str(path), full_page=full_page)
    colours, share = content_share(path.read_bytes())
    assert colours > 50 and share > 0.05, f"{name} looks blank ({colours} colours, {share:.0%})"
    return path


def _pqr_id(live: Live) -> str:
    path = EXPECTED["incident_paths"]["P-Q-R"]
    return next(i["id"] for i in live.json("/api/incidents")["incidents"] if i["path"] == path)


def _graph(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        """() => ({
            vertices: lmdGraph.nodes().map(n => n.id()),
            steps: lmdGraph.edges('.step').map(e => e.data('event_id')),
            drawn: lmdGraph.nodes().every(n => n.renderedBoundingBox().w > 0),
        })"""
    )
    return result


def _entities(detail: dict[str, Any]) -> set[str]:
    kinds = {
        "pods": "pod",
        "service_accounts": "service_account",
        "namespaces": "namespace",
        "nodes": "node",
    }
    return {
        f"{kind}:{value}"
        for r in detail["records"]
        for key, kind in kinds.items()
        for value in r["entities"][key]
    }


def test_the_list_shows_the_stitched_incident(live: Live, browser: BrowserContext) -> None:
    page = browser.new_page()
    console = Console(page)
    page.goto(live.url + "/incidents")
    page.wait_for_selector("body[data-ready=list]")
    pqr = _pqr_id(live)
    row = page.locator(f"#incident-list tr[data-incident='{pqr}']")
    assert "recon-token-pivot, exec-pivot, workload-pivot" in row.inner_text()
    assert page.locator("#incident-list tbody tr").count() == len(
        live.json("/api/incidents")["incidents"]
    )
    _shot(page, "incidents-list.png")
    row.locator("a").click()
    page.wait_for_selector("body[data-ready=incident]")
    assert page.url == f"{live.url}/incidents/{pqr}"
    assert not console.problems, "\n".join(console.problems)
    page.close()


def test_the_incident_page_draws_exactly_its_entities_and_evidence(
    live: Live, browser: BrowserContext
) -> None:
    pqr = _pqr_id(live)
    detail = live.json(f"/api/incidents/{pqr}")
    page = browser.new_page()
    console = Console(page)
    page.goto(f"{live.url}/incidents/{pqr}")
    page.wait_for_selector("body[data-ready=incident]")
    graph = _graph(page)
    assert set(graph["vertices"]) == _entities(detail) and len(graph["vertices"]) == len(
        _entities(detail)
    )
    assert sorted(graph["steps"]) == sorted(
        s["event_id"] for r in detail["records"] for s in r["steps"]
    )
    assert graph["drawn"]
    rows = page.locator("#timeline li.evidence")
    evidence = {s["event_id"] for r in detail["records"] for s in r["steps"]}
    assert sorted(rows.evaluate_all("rows => rows.map(r => r.dataset.eventId)")) == sorted(evidence)
    assert page.locator("#timeline li.denied").count() == 1
    assert json.loads(page.locator("#records-json").text_content() or "") == detail["records"]
    _shot(page, "incident-attack-path.png")
    denied = page.locator("#timeline li.denied")
    denied.locator("button.raw-toggle").click()
    raw = json.loads(denied.locator("pre.raw").inner_text())
    assert raw["response_code"] == 403 and raw["actor"]["service_account"] == "shop:frontend"
    denied.scroll_into_view_if_needed()
    _shot(page, "incident-raw-event.png", full_page=False)
    assert not console.problems, "\n".join(console.problems)
    page.close()


def test_the_incident_page_on_a_phone(live: Live, browser: BrowserContext) -> None:
    page = browser.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    console = Console(page)
    page.goto(f"{live.url}/incidents/{_pqr_id(live)}")
    page.wait_for_selector("body[data-ready=incident]")
    _shot(page, "incident-phone.png")
    assert not console.problems, "\n".join(console.problems)
    page.close()


def test_the_replay_report_opens_offline(tmp_path: Path, browser: BrowserContext) -> None:
    report = tmp_path / "report.html"
    files = [str(p) for p in sorted(SCENARIO.glob("*.jsonl"))]
    out, allowlist = str(tmp_path / "c.jsonl"), str(SCENARIO / "allowlist.yaml")
    subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "detector.cli", "replay", "--quiet", "--output", out,
         "--allowlist", allowlist, "--report", str(report), *files],
        check=True,
    )  # fmt: skip
    page = browser.new_page()
    console = Console(page)
    outside: list[str] = []
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith("file://")
            else (outside.append(route.request.url), route.abort())
        ),
    )
    page.goto(report.as_uri())
    page.wait_for_selector("body[data-ready=list]")
    assert page.locator("#incident-list tbody tr").count() == 4
    page.locator("#incident-list a").first.click()
    page.wait_for_selector("body[data-ready=incident]")
    assert len(_graph(page)["vertices"]) > 0
    _shot(page, "report-offline.png")
    assert not outside and not console.problems, (outside, console.problems)
    page.close()


def test_the_list_updates_live_when_a_chain_arrives(
    tmp_path: Path, browser: BrowserContext
) -> None:
    with running(tmp_path, feed=False) as live:
        page = browser.new_page()
        console = Console(page)
        page.goto(live.url + "/incidents")
        page.wait_for_selector("p.empty")
        for endpoint, doc in _small_attack():
            post(live.url + endpoint, doc)
        page.wait_for_selector("#incident-list tbody tr", timeout=30_000)  # no reload
        assert "shop/web-0" in page.locator("#incident-list tbody tr").inner_text()
        assert not console.problems, "\n".join(console.problems)
        page.close()


def _small_attack() -> list[tuple[str, dict[str, Any]]]:
    """The recon → token read → denied secrets list attack of tests/integration/run, now."""
    small_attack.rebase()
    return [("/falco", alert) for alert in small_attack.falco_alerts()] + [
        ("/k8s-audit", small_attack.event_list())
    ]
