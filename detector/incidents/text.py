"""The terminal's view of incidents (``detector incidents``, ``detector show``).

The same summaries and details as the pages (:mod:`detector.incidents.view`), as plain
lines: a list with one incident per line, and for one incident its path, the graph's
step edges (who → whom, technique, time) and the timeline of its evidence.
"""

from __future__ import annotations

from typing import Any

_SEVERITY_WIDTH = 8


def incident_lines(summaries: list[dict[str, Any]]) -> list[str]:
    """One line per incident: severity, id, last seen, chains, rules, pods."""
    if not summaries:
        return ["no incidents"]
    lines = []
    for inc in summaries:
        severity = inc["severity"].upper().ljust(_SEVERITY_WIDTH)
        pods = ", ".join(inc["pods"]) or "-"
        lines.append(
            f"{severity} {inc['id']}  {inc['last_seen']}  {inc['chains']} chain(s)  "
            f"{','.join(inc['rules'])}  {pods}"
        )
    return lines


def detail_lines(detail: dict[str, Any]) -> list[str]:
    """An incident: header, path, steps of the attack-path graph, timeline."""
    lines = [
        f"{detail['severity'].upper()} · {detail['title']}",
        f"incident {detail['id']}"
        + (f" · cluster {detail['cluster']}" if detail["cluster"] else ""),
        f"seen     {detail['first_seen']} – {detail['last_seen']}",
        f"rules    {', '.join(detail['rules'])}",
        f"path     {' → '.join(detail['path']) or '-'}",
    ]
    if detail.get("url"):
        lines.append(f"page     {detail['url']}")
    lines += ["", "attack path (chain steps):"]
    labels = {v["id"]: v["value"] for v in detail["graph"]["vertices"]}
    for edge in detail["graph"]["edges"]:
        if edge["kind"] == "step":
            denied = "  DENIED" if edge["denied"] else ""
            lines.append(
                f"  {labels[edge['source']]} → {labels[edge['target']]}  "
                f"[{edge['technique'] or '-'}] {edge['time']}  "
                f"{edge['rule']}/{edge['step']}{denied}"
            )
    lines += ["", "timeline:"]
    for row in detail["timeline"]:
        mark = " DENIED" if row["denied"] else ""
        steps = ", ".join(f"{s['rule']}/{s['step']}" for s in row["steps"])
        lines.append(f"  {row['time']}  {row['source']:<9} {row['summary']}{mark}")
        lines.append(f"  {'':27}  {'':9} ↳ {steps} · {row['event_id']}")
    return lines
