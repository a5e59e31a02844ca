"""Test events for the rules: derived fields, and the Falco JSON alert a rule would emit.

A behaviour case states what matters (``fd.sip``, ``proc.cmdline`` ...); :func:`derive` adds
the fields libsinsp computes from them, the way it computes them, so cases stay short:

* network events: ``fd.name`` (``cip:cport->sip:sport``), ``fd.ip``/``fd.net`` (both ends),
  ``fd.snet``/``fd.rnet``/``fd.rip`` (server), ``fd.cnet``/``fd.lnet``/``fd.lip`` (client),
  ``fd.l4proto`` defaulting to ``tcp``;
* file events (``fd.typechar`` ``f``): ``fd.filename`` and ``fd.directory`` from ``fd.name``;
* every event: ``evt.dir`` ``<`` (an exit event) unless given.

:func:`alert` renders a rule's ``output`` for an event into the JSON document Falco's
``json_output`` produces (keys and types as in reference/falco.md §2.2: ISO time with
nanoseconds, capitalised priority, ``output_fields`` with every ``%field`` and ``null`` for a
missing one).
"""

from __future__ import annotations

import posixpath
import re
from datetime import UTC, datetime
from typing import Any, Final

from falco_rules.tooling.evaluate import EventFields, FieldValue
from falco_rules.tooling.ruleset import Rule
from falco_rules.tooling.structure import output_fields

_FIELD_REF: Final = re.compile(r"%([A-Za-z0-9_.]+(?:\[[^\]]*\])?)")
# Fields Falco renders as JSON numbers in output_fields (the rest are strings).
_NUMERIC: Final = frozenset({"fd.sport", "fd.cport", "fd.lport", "fd.rport", "proc.tty", "evt.num"})


def derive(event: EventFields) -> dict[str, FieldValue]:
    """``event`` plus the fields libsinsp derives from the ones given."""
    out: dict[str, FieldValue] = {"evt.dir": "<", **event}
    if str(out.get("fd.typechar")) in ("4", "6") and "fd.sip" in out:
        _network(out)
    if out.get("fd.typechar") == "f" and "fd.name" in out:
        path = str(out["fd.name"])
        out.setdefault("fd.filename", posixpath.basename(path))
        out.setdefault("fd.directory", posixpath.dirname(path))
    return out


def _network(out: dict[str, FieldValue]) -> None:
    sip, cip = str(out["fd.sip"]), str(out.get("fd.cip", "10.244.1.7"))
    sport, cport = out.get("fd.sport", 80), out.get("fd.cport", 40112)
    out.setdefault("fd.cip", cip)
    out.setdefault("fd.cport", cport)
    out.setdefault("fd.l4proto", "tcp")
    out.setdefault("fd.name", f"{_host(cip)}:{cport}->{_host(sip)}:{sport}")
    for name, value in (("fd.ip", [cip, sip]), ("fd.net", [cip, sip])):
        out.setdefault(name, value)
    for name in ("fd.snet", "fd.rnet", "fd.rip"):
        out.setdefault(name, sip)
    for name in ("fd.cnet", "fd.lnet", "fd.lip"):
        out.setdefault(name, cip)


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def alert(rule: Rule, event: EventFields, time_ns: int, hostname: str) -> dict[str, Any]:
    """The JSON alert Falco would send for ``rule`` firing on ``event``."""
    fields = {name: _json_value(name, event.get(name)) for name in output_fields(rule.output)}
    fields["evt.time"] = time_ns
    stamp = datetime.fromtimestamp(time_ns // 1_000_000_000, tz=UTC)
    iso = f"{stamp:%Y-%m-%dT%H:%M:%S}.{time_ns % 1_000_000_000:09d}Z"
    message = _FIELD_REF.sub(lambda m: _text(event.get(m.group(1))), rule.output)
    priority = rule.priority.capitalize()
    return {
        "hostname": hostname,
        "output": f"{stamp:%H:%M:%S}.{time_ns % 1_000_000_000:09d}: {priority} {message}",
        "output_fields": fields,
        "priority": priority,
        "rule": rule.name,
        "source": rule.source,
        "tags": sorted(rule.tags),
        "time": iso,
    }


def _json_value(name: str, value: FieldValue | None) -> Any:
    if value is None:
        return None
    if not isinstance(value, str | int | bool):
        return _text(value)
    if name in _NUMERIC:
        return int(value)
    return str(value)


def _text(value: FieldValue | None) -> str:
    if value is None:
        return "<NA>"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)
