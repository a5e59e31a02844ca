"""Slack messages an on-call engineer reads in ten seconds, on a phone.

``text`` is what a notification shows (and screen readers read): severity, cluster, and
the chain's story (:mod:`detector.sinks.story`) — who did what where, denied calls said
so. Block Kit, for one chain (:func:`build_message`)::

    header    🔴 HIGH · shop/frontend-6f7c · recon-token-pivot      (names the pod)
    section   *<title>*
    section   *Rule* / *Incident* / *ATT&CK* / *Path* [/ *Cluster*]   (fields)
    section   *Timeline*: time, source, what happened, ⛔ denied
    context   pods · service accounts · namespaces · first/last
    actions   [Open incident] / [Open in SIEM]        (record url or link_template)

and for the first message of an incident's thread (:func:`build_incident_message`,
updated as chains join): the worst severity, the first pod, the path, one line per
chain. Slack limits (header 150 chars, section text 3000, 10 fields, 50 blocks) are
respected by truncation; the tests check the result with slack_sdk's own models.
"""

from __future__ import annotations

from typing import Any, Final

from correlation.chain import severity_rank
from detector.sinks.story import read_step, story, who

_MARK: Final = {"critical": "🟣", "high": "🔴", "medium": "🟠", "low": "🟡", "info": "⚪"}
_DENIED: Final = "⛔ denied"
_MAX_TIMELINE: Final = 12  # steps shown; longer chains say "... and N more"
_MAX_CHAINS: Final = 20  # chain lines in an incident's first message
_SECTION_MAX: Final = 3000
_HEADER_MAX: Final = 150


def escape(text: str) -> str:
    """Slack mrkdwn control characters (``& < >``) escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lead(severity: str, cluster: str) -> str:
    mark = f"{_MARK.get(severity, '')} {severity.upper()}".strip()
    return f"{mark} · {cluster}" if cluster else mark


def notification(record: dict[str, Any]) -> str:
    """The plain text a phone shows: ``🔴 HIGH · prod: a/p: token used … after nmap``."""
    return f"{_lead(str(record['severity']), record.get('cluster', ''))}: {story(record)}"


def build_message(record: dict[str, Any], link_template: str = "") -> dict[str, Any]:
    """The message (``text`` + ``blocks``) for one chain record."""
    actor = who(record, [read_step(s) for s in record["steps"]])
    header = f"{_lead(str(record['severity']), '')} · {actor} · {record['rule']}"
    blocks: list[dict[str, Any]] = [
        _header(header),
        {"type": "section", "text": _mrkdwn(f"*{escape(str(record['title']))}*")},
        {"type": "section", "fields": _fields(record)},
        {"type": "section", "text": _mrkdwn(_timeline(record["steps"]))},
        {"type": "context", "elements": [_mrkdwn(_entities(record))]},
    ]
    blocks.extend(_link(record, link_template))
    return {"text": notification(record), "blocks": blocks}


def build_incident_message(
    records: list[dict[str, Any]], link_template: str = ""
) -> dict[str, Any]:
    """The first message of an incident's thread: every chain so far, worst severity."""
    worst = max(records, key=lambda r: severity_rank(str(r["severity"])))
    first, latest = records[0], records[-1]
    severity, cluster = str(worst["severity"]), latest.get("cluster", "")
    actor = who(first, [read_step(s) for s in first["steps"]])
    path = max((r["path"] for r in records), key=len)
    chains = f"{len(records)} chain" + ("s" if len(records) > 1 else "")
    lines = [
        f"`{str(r['last_seen'])[11:19]}Z` `{r['rule']}` {escape(story(r))}"
        for r in records[-_MAX_CHAINS:]
    ]
    if len(records) > _MAX_CHAINS:
        lines.insert(0, f"… {len(records) - _MAX_CHAINS} earlier chains")
    blocks: list[dict[str, Any]] = [
        _header(f"{_lead(severity, '')} · {actor} · incident ({chains})"),
        {"type": "section", "text": _mrkdwn(f"*Path* {escape(' → '.join(path) or actor)}")},
        {"type": "section", "text": _mrkdwn("\n".join(lines))},
        {"type": "context", "elements": [_mrkdwn(_incident_context(latest, cluster))]},
    ]
    blocks.extend(_link(latest, link_template))
    text = f"{_lead(severity, cluster)}: incident of {chains}, latest {story(latest)}"
    return {"text": text, "blocks": blocks}


def _incident_context(record: dict[str, Any], cluster: str) -> str:
    parts = [f"incident `{record['incident']}`", f"last {record['last_seen']}"]
    return " · ".join(([f"cluster {escape(cluster)}"] if cluster else []) + parts)


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": _cut(text, _HEADER_MAX)}}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _cut(text, _SECTION_MAX)}


def _fields(record: dict[str, Any]) -> list[dict[str, str]]:
    pairs = [
        ("Rule", f"`{record['rule']}`"),
        ("Incident", f"`{record['incident']}`"),
        ("ATT&CK", ", ".join(record["techniques"]) or "—"),
        ("Path", " → ".join(record["path"]) or "—"),
    ]
    if record.get("cluster"):
        pairs.append(("Cluster", str(record["cluster"])))
    return [_mrkdwn(f"*{escape(k)}*\n{escape(v)}") for k, v in pairs]


def _timeline(steps: list[dict[str, Any]]) -> str:
    lines = ["*Timeline*"]
    for step in steps[:_MAX_TIMELINE]:
        clock = str(step["time"])[11:19]  # HH:MM:SS of the RFC 3339 UTC time
        what = escape(str(step["summary"]) or str(step["step"]))
        mark = f" {_DENIED}" if read_step(step).denied else ""
        lines.append(f"`{clock}Z` {escape(str(step['source']))} · {what}{mark}")
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


def _link(record: dict[str, Any], link_template: str) -> list[dict[str, Any]]:
    """The button: ``link_template`` when set (a SIEM), else the incident's own page."""
    if link_template:
        url, label = (
            link_template.format(id=record["id"], incident=record["incident"]),
            "Open in SIEM",
        )
    elif record.get("url"):
        url, label = str(record["url"]), "Open incident"
    else:
        return []
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "url": url,
        "action_id": f"open-{record['id']}",
    }
    return [{"type": "actions", "elements": [button]}]
