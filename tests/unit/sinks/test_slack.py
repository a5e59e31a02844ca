"""Slack Block Kit payloads, checked with slack_sdk's own models and rendered for review."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from detector.sinks.slack import build_message
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
    timeline = message["blocks"][2]["text"]["text"]
    assert "&lt;scan &amp; probe&gt;" in timeline
    button = message["blocks"][-1]["elements"][0]
    assert button["url"].endswith(
        "chain=lmc-00000000000000000003&incident=inc-00000000000000000001"
    )
    assert message["text"].startswith("[HIGH] Scan then service-account token")


def test_long_chains_are_cut_to_slack_limits() -> None:
    record = {**make_record(4), "title": "y" * 400}
    record["steps"] = [record["steps"][0]] * 30
    message = build_message(record)
    assert len(message["blocks"][0]["text"]["text"]) == 150
    assert "… and 18 more steps" in message["blocks"][2]["text"]["text"]
