"""Falco alerts (json_output, http_output, Falcosidekick, gRPC-as-dict) to :class:`Event`.

Falco's JSON alert carries ``time``, ``rule``, ``priority``, ``source``, ``hostname``,
``tags`` and ``output_fields``; Falcosidekick adds a ``uuid``. :class:`FalcoAlert` names
only those, so msgspec skips ``output`` and anything else without building objects.

``output_fields`` values arrive as JSON strings, numbers, booleans or ``null`` from
http_output and as strings from gRPC. Both are normalized to the same strings (``null``
and Falco's ``<NA>`` mean "missing" and are dropped), and the derived id hashes that
normalized content, so the same alert gets the same id whichever way it was delivered.

Credentials typed on command lines (``proc.cmdline``, ``proc.args``, ``proc.env``,
``fd.name``, plugin fields such as ``ka.uri`` ...) are replaced by ``[REDACTED]``
(:func:`detector.parse.redact.redact`) before anything else sees the fields: the id, the
summary, the Event's ``fields``. Only identity fields set by Falco's metadata (``k8s.*``,
``container.*``, ``user.*``, ``group.*``) skip that scan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from correlation.event import EMPTY_IDENTITY, FALCO, Event, Identity
from detector.errors import ParseError, SkippedInput
from detector.parse.limits import MAX_LIST, MAX_OUTPUT_FIELDS, cut
from detector.parse.redact import redact, redact_args
from detector.parse.timestamps import rfc3339_ns

FieldValue = str | int | float | bool | None

PRIORITIES: Final = frozenset(
    ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")
)
_PRIORITY_ALIASES: Final = {"info": "informational"}
_MISSING: Final = frozenset(("<NA>", ""))
# Metadata Falco fills in itself, never a command line: skips the credential scan.
_NOT_FREE_TEXT: Final = ("k8s.", "container.", "user.", "group.")


class FalcoAlert(msgspec.Struct, gc=False):
    """The fields of a Falco alert we read; everything else is skipped while decoding."""

    time: str
    rule: str
    priority: str
    output_fields: dict[str, FieldValue] = {}
    source: str = ""
    hostname: str = ""
    tags: list[str] = []
    uuid: str = ""


def parse_falco(doc: Mapping[str, Any]) -> Event:
    """One Falco alert (a decoded JSON object or the gRPC consumer's dict) as an Event."""
    try:
        alert = msgspec.convert(doc, FalcoAlert)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None
    return normalize_falco(alert)


def _validation_error(exc: msgspec.ValidationError) -> ParseError:
    text = str(exc)
    reason = "missing_field" if text.startswith("Object missing required field") else "bad_type"
    return ParseError(reason, f"Falco alert: {text}")


def normalize_falco(alert: FalcoAlert) -> Event:
    """The decoded alert as a normalized Event (see ``correlation/event.py`` conventions)."""
    if alert.source == "internal" or alert.rule.startswith("Falco internal:"):
        raise SkippedInput("falco_internal", f"Falco internal alert {cut(alert.rule)!r}")
    if not alert.rule:
        raise ParseError("missing_field", "Falco alert: empty rule")
    priority = alert.priority.lower()
    priority = _PRIORITY_ALIASES.get(priority, priority)
    if priority not in PRIORITIES:
        raise ParseError("bad_priority", f"Falco alert: unknown priority {cut(alert.priority)!r}")
    if len(alert.output_fields) > MAX_OUTPUT_FIELDS or len(alert.tags) > MAX_LIST:
        raise ParseError("too_large", "Falco alert: too many output_fields or tags")
    time_ns = rfc3339_ns(alert.time)
    fields = _string_fields(alert.output_fields)
    if "proc.args" in fields:  # argv without argv[0]: redact again knowing the tool
        fields["proc.args"] = redact_args(fields.get("proc.name", ""), fields["proc.args"])
    if alert.source:
        fields["falco.source"] = cut(alert.source)
    tags = tuple(sorted(cut(t) for t in alert.tags))
    rule = cut(alert.rule)
    actor = _actor(fields, cut(alert.hostname))
    return Event(
        time_ns=time_ns,
        source=FALCO,
        id=cut(alert.uuid) or _derived_id(time_ns, rule, priority, alert.hostname, tags, fields),
        summary=_summary(rule, fields, actor),
        rule=rule,
        priority=priority,
        tags=tags,
        actor=actor,
        target=_target(fields),
        fields=fields,
    )


def _string_fields(raw: dict[str, FieldValue]) -> dict[str, str]:
    """output_fields as strings, the way Falco's gRPC output renders them."""
    fields: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if isinstance(value, str):
            if value in _MISSING:
                continue
            # Redact before cutting: a cut could leave a secret too short to recognize.
            fields[cut(key)] = cut(value if key.startswith(_NOT_FREE_TEXT) else redact(value))
        elif isinstance(value, bool):  # before int: bool is an int subclass
            fields[cut(key)] = "true" if value else "false"
        else:
            fields[cut(key)] = str(value)
    return fields


def _derived_id(
    time_ns: int, rule: str, priority: str, host: str, tags: tuple[str, ...], fields: dict[str, str]
) -> str:
    """``falco-`` + a hash of the normalized alert: stable across key order and transport."""
    content = (time_ns, rule, priority, host, tags, sorted(fields.items()))
    digest = hashlib.blake2b(msgspec.msgpack.encode(content), digest_size=12).hexdigest()
    return "falco-" + digest


def _actor(fields: dict[str, str], hostname: str) -> Identity:
    get = fields.get
    ips = tuple(ip for ip in (get("k8s.pod.ip"), get("container.ip")) if ip)
    if len(ips) == 2 and ips[0] == ips[1]:
        ips = ips[:1]
    namespace, pod, container = get("k8s.ns.name", ""), get("k8s.pod.name", ""), get("container.id")
    if not (namespace or pod or container or ips or hostname):
        return EMPTY_IDENTITY
    return Identity(
        namespace=namespace,
        pod=pod,
        pod_uid=get("k8s.pod.uid", "") or get("k8s.pod.id", ""),
        container_id="" if container == "host" else (container or ""),
        node=hostname,
        user=get("user.name", ""),
        image=get("container.image.repository", "") or get("container.image", ""),
        ips=ips,
    )


def _target(fields: dict[str, str]) -> Identity:
    """The remote end of a network alert: server address (or remote) and its port."""
    get = fields.get
    ip = get("fd.sip") or get("fd.rip")
    if not ip:  # fd.sip.name, when present, stays in fields for rules that match on it
        return EMPTY_IDENTITY
    port_text = get("fd.sport") or get("fd.rport") or ""
    port = int(port_text) if port_text.isascii() and port_text.isdigit() else 0
    return Identity(ips=(ip,), port=port if port < 65536 else 0)


def _summary(rule: str, fields: dict[str, str], actor: Identity) -> str:
    where = actor.pod_ref or (f"container {actor.container_id}" if actor.container_id else "host")
    process = fields.get("proc.cmdline") or fields.get("proc.name")
    detail = f": {process}" if process else ""
    connection = fields.get("fd.name")
    if connection:
        detail += f" ({connection})"
    return cut(f"{rule} in {where}{detail}")
