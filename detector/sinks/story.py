"""A chain in one line a phone notification can show: who did what where, and after what.

::

    shop/frontend-6f7c: token used to list secrets in payments (403, denied) after nmap, cat

Built from the chain record alone (sinks get nothing else), by reading back the step
summaries this project writes itself: audit ``<user> <verb> <resource> <ns/name> -> <code>``
(:func:`correlation.event.describe`) and Falco ``<rule> in <ns/pod>: <command> (<fd>)``
(:mod:`detector.parse.falco`). A summary of another shape falls back to the step's name,
so a user rule with odd events still gets a line.

*Who* is the chain's first pod in incident-path order (where it started), else the
service account that made the first audited request. An audit request is *denied* when
its code is 4xx/5xx; denied calls are marked wherever they are shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

_AUDIT: Final = re.compile(r"^(?P<user>\S+) (?P<verb>\S+) (?P<what>.*?) -> (?P<code>\d{3})$")
_FALCO: Final = re.compile(
    r"^(?P<rule>.+?) in (?P<where>container \S+?|\S+?)(?:: (?P<command>.*))?$"
)
_SA_USER: Final = "system:serviceaccount:"


@dataclass(frozen=True)
class Step:
    """One step as read back from its summary."""

    phrase: str  # what happened, short
    where: str = ""  # the pod it happened in (Falco), if known
    service_account: str = ""  # "ns:name" of an audited request made with a token
    denied: bool = False


def read_step(step: dict[str, Any]) -> Step:
    summary, name = str(step.get("summary", "")), str(step.get("step", ""))
    if step.get("source") == "k8s_audit" and (audit := _AUDIT.match(summary)):
        return _audit_step(audit)
    if step.get("source") == "falco" and (falco := _FALCO.match(summary)):
        program = _program(falco["command"] or "")
        return Step(program or falco["rule"], falco["where"])
    return Step(name or summary[:60])


def _audit_step(match: re.Match[str]) -> Step:
    user, verb, code = match["user"], match["verb"], int(match["code"])
    resource, _, target = match["what"].partition(" ")
    denied = code >= 400
    outcome = f"({code}, denied)" if denied else f"({code})"
    place = f" {'on' if '/' in target else 'in'} {target}" if target else ""
    if user.startswith(_SA_USER):
        account = user.removeprefix(_SA_USER)
        return Step(f"token used to {verb} {resource}{place} {outcome}", "", account, denied)
    return Step(f"{user} {verb} {resource}{place} {outcome}", denied=denied)


def _program(command: str) -> str:
    """``/usr/bin/curl -s http://…`` → ``curl``; the first word's base name."""
    first = command.strip().split(" ", 1)[0]
    return first.rsplit("/", 1)[-1][:40]


def who(record: dict[str, Any], steps: list[Step]) -> str:
    """The chain's first pod in path order, else the first requesting service account."""
    pods = set(record.get("entities", {}).get("pods", []))
    for pod in record.get("path", []):
        if pod in pods:
            return str(pod)
    if pods:
        return str(sorted(pods)[0])
    return next((s.service_account for s in steps if s.service_account), "unknown workload")


def story(record: dict[str, Any]) -> str:
    """``who: last step[ in pod] after earlier steps`` for one chain record."""
    steps = [read_step(step) for step in record.get("steps", [])]
    if not steps:
        return str(record.get("title", ""))
    actor = who(record, steps)
    *earlier, last = steps
    what = f"ran {last.phrase}" if last.where else last.phrase
    if last.where and last.where != actor:
        what += f" in {last.where}"
    after = f" after {', '.join(_counted([s.phrase for s in earlier]))}" if earlier else ""
    return f"{actor}: {what}{after}"


def _counted(phrases: list[str]) -> list[str]:
    """Repeats folded: ``[a, a, a, b]`` → ``[a ×3, b]`` (a fan-out has many equal steps)."""
    folded: list[list[Any]] = []
    for phrase in phrases:
        if folded and folded[-1][0] == phrase:
            folded[-1][1] += 1
        else:
            folded.append([phrase, 1])
    return [p if n == 1 else f"{p} ×{n}" for p, n in folded]


def denied_steps(record: dict[str, Any]) -> int:
    return sum(1 for step in record.get("steps", []) if read_step(step).denied)
