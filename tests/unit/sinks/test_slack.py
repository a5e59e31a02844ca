"""Slack Block Kit payloads, checked with slack_sdk's own models and rendered for review."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from correlation.chain import to_record
from detector.incidents.service import annotate
from detector.sinks.config import decode
from detector.sinks.slack import SlackSink, build_incident_message, build_message
from tests.unit.incidents.scenario import PQR_PATH, chains
from tests.unit.sinks.records import make_record

FIXTURES = Path(__file__).with_name("fixtures")
LINK = "https://siem.example/search?chain={id}&incident={incident}"


def render(message: dict[str, Any]) -> str:
    """A reviewer's plain-text view of the message, block by block."""
    lines = [f"fallback: {message['text']}"]
    for block in message["blocks"]:
        lines.append(f"--- {block['type']}")
        texts = [block.get("text")] + block.get("fields", []) + block.get("elements", [])
        for item in filter(None, texts):
            # a button shows its URL; a text object its text
            lines.append(item["url"] if "url" in item else item["text"])
    return "\n".join(lines) + "\n"


def check_block_kit(message: dict[str, Any]) -> None:
    """Every block parses into slack_sdk's model, validates, and round-trips unchanged."""
    assert 1 <= len(message["blocks"]) <= 50
    for raw in message["blocks"]:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()  # raises SlackObjectFormationError on a broken block
        assert block.to_dict() == raw


@pytest.mark.parametrize(
    ("name", "record", "link"),
    [
        ("high", make_record(3), LINK),
        ("long", {**make_record(4, severity="critical"), "title": "x" * 400}, ""),
    ],
)
def test_message_is_valid_block_kit_and_matches_fixture(
    name: str, record: dict[str, Any], link: str
) -> None:
    if name == "long":
        step = record["steps"][0]
        record["steps"] = [step] * 30
    message = build_message(record, link)
    check_block_kit(message)
    text = render(message)
    fixture = FIXTURES / f"slack_{name}.txt"
    if os.environ.get("UPDATE_FIXTURES"):
        fixture.write_text(text, encoding="utf-8")
    assert text == fixture.read_text(encoding="utf-8")


def test_mrkdwn_is_escaped_and_link_filled() -> None:
    message = build_message(make_record(3), LINK)
    timeline = message["blocks"][3]["text"]["text"]
    assert "&lt;scan &amp; probe&gt;" in timeline
    button = message["blocks"][-1]["elements"][0]
    assert button["text"]["text"] == "Open in SIEM"
    assert button["url"].endswith(
        "chain=lmc-00000000000000000003&incident=inc-00000000000000000001"
    )


def test_long_chains_are_cut_to_slack_limits() -> None:
    record = {**make_record(4), "title": "y" * 400}
    record["steps"] = [record["steps"][0]] * 30
    record["path"] = [f"shop/{'w' * 200}"]
    record["entities"] = {**record["entities"], "pods": record["path"]}
    message = build_message(record)
    assert len(message["blocks"][0]["text"]["text"]) == 150
    assert "… and 18 more steps" in message["blocks"][3]["text"]["text"]
    check_block_kit(message)


@pytest.fixture(scope="module")
def scenario() -> dict[str, dict[str, Any]]:
    """The bundled scenario's records (real summaries), by rule, named for a cluster."""
    return {
        chain.rule: annotate(
            to_record(chain), "prod-eu", f"https://lmd.example/incidents/{chain.incident}"
        )
        for chain in chains()
    }


def test_notification_says_who_did_what_where_and_marks_denied(
    scenario: dict[str, dict[str, Any]],
) -> None:
    recon = build_message(scenario["recon-token-pivot"])
    assert recon["text"] == (
        "🔴 HIGH · prod-eu: shop/frontend-6f7c9d8b5-x2x9z: token used to list secrets in "
        "payments (403, denied) after nmap, cat"
    )
    assert recon["blocks"][0]["text"]["text"] == (
        "🔴 HIGH · shop/frontend-6f7c9d8b5-x2x9z · recon-token-pivot"
    )
    assert "-&gt; 403 ⛔ denied" in recon["blocks"][3]["text"]["text"]
    exec_pivot = build_message(scenario["exec-pivot"])["text"]
    assert exec_pivot.startswith("🔴 HIGH · prod-eu: shop/frontend-6f7c9d8b5-x2x9z: ran sh in ")
    assert "after token used to create pods/exec on payments/payments-api" in exec_pivot
    for record in scenario.values():
        check_block_kit(build_message(record))


def test_the_button_opens_the_incident_page_by_default(scenario: dict[str, dict[str, Any]]) -> None:
    record = scenario["workload-pivot"]
    button = build_message(record)["blocks"][-1]["elements"][0]
    assert (button["text"]["text"], button["url"]) == ("Open incident", record["url"])
    assert {"type": "mrkdwn", "text": "*Cluster*\nprod-eu"} in build_message(record)["blocks"][2][
        "fields"
    ]


def test_incident_message_names_worst_severity_first_pod_and_every_chain(
    scenario: dict[str, dict[str, Any]],
) -> None:
    records = [scenario[r] for r in ("recon-token-pivot", "exec-pivot", "workload-pivot")]
    message = build_incident_message(records)
    check_block_kit(message)
    assert message["blocks"][0]["text"]["text"] == (
        "🔴 HIGH · shop/frontend-6f7c9d8b5-x2x9z · incident (3 chains)"
    )
    lines = message["blocks"][2]["text"]["text"].splitlines()
    assert [line.split("`")[3] for line in lines] == [r["rule"] for r in records]
    assert " → ".join(PQR_PATH) in message["blocks"][1]["text"]["text"]
    assert message["text"].startswith("🔴 HIGH · prod-eu: incident of 3 chains, latest payments/")


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        (
            {"webhook_url": "https://hooks.example/x", "bot_token": "xoxb-1", "channel": "c"},
            "not both",
        ),
        ({"bot_token": "xoxb-1"}, "channel: bot_token needs a channel"),
    ],
)
def test_slack_sink_takes_a_webhook_or_a_bot_token_with_a_channel(
    sink: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        decode({"sinks": [{"type": "slack", **sink}]})


def test_a_slack_sink_with_neither_needs_the_webhook_url() -> None:
    config = decode({"sinks": [{"type": "slack"}]}).sinks[0]
    with pytest.raises(ValueError, match="webhook_url: an http"):
        SlackSink(config, None)  # type: ignore[arg-type]
