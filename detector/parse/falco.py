"""Falco alerts (json_output, http_output, Falcosidekick, gRPC-as-dict) to :class:`Event`.

Falco's JSON alert carries ``time``, ``rule``, ``priority``, ``source``, ``hostname``,
``tags`` and ``output_fields``; Falcosidekick adds a ``uuid``. :class:`FalcoAlert` names
only those, so msgspec skips ``output`` and anything else without building objects.

``output_fields`` values arrive as JSON strings, numbers, booleans or ``null`` from
http_output and as strings from gRPC. Both are normalized to the same strings (``null``
and Falco's ``<NA>`` mean "missing" and are dropped), and the derived id hashes that
normalized content, so the same alert gets the same id whichever way it was delivered.
List-typed fields (``k8s.pod.labels``, ``container.image.digest``, upstream k8saudit outputs
such as ``ka.req.pod.containers.image``) arrive as JSON arrays and are kept as tuples of
those strings.

``time`` is Falco's RFC 3339 string, or the protobuf-JSON form of the gRPC output's
``Timestamp`` that falco-exporter-style tools write: ``{"seconds": "1637339716", "nanos":
490784795}`` (seconds as a string or a number). ``priority`` is matched without case, so
the gRPC enum names (``NOTICE``) are accepted. The connection's server end comes from
``fd.sip``/``fd.sport`` or, for upstream rules that output only ``fd.name``, from the tuple
(:mod:`detector.parse.connection`).

Credentials typed on command lines (``proc.cmdline``, ``proc.args``, ``proc.env``,
``fd.name``, plugin fields such as ``ka.uri`` ...) are replaced by ``[REDACTED]``
(:func:`detector.parse.redact.redact`) before anything else sees the fields: the id, the
summary, the Event's ``fields``. Only identity fields set by Falco's metadata (``k8s.*``,
``container.*``, ``user.*``, ``group.*``) skip that scan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import msgspec

from correlation.event import EMPTY_IDENTITY, FALCO, Event, FieldText, Identity, field_text
from detector.errors import ParseError, SkippedInput
from detector.parse.connection import target
from detector.parse.limits import MAX_FIELD_CHARS, MAX_LIST, MAX_OUTPUT_FIELDS, cut
from detector.parse.redact import redact, redact_args
from detector.parse.timestamps import rfc3339_ns

if TYPE_CHECKING:  # early.py imports this module
    from detector.parse.early import EarlyReject

Scalar = str | int | float | bool | None
FieldValue = Scalar | list[Scalar]
_NS_PER_S: Final = 1_000_000_000

PRIORITIES: Final = frozenset(
    ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")
)
_PRIORITY_ALIASES: Final = {"info": "informational"}
_MISSING: Final = frozenset(("<NA>", ""))
# Metadata Falco fills in itself, never a command line: skips the credential scan.
_NOT_FREE_TEXT: Final = ("k8s.", "container.", "user.", "group.")


class ProtoTime(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """google.protobuf.Timestamp as protobuf JSON without the well-known-type mapping."""

    seconds: str | int
    nanos: int = 0


class FalcoAlert(msgspec.Struct, gc=False):
    """The fields of a Falco alert we read; everything else is skipped while decoding."""

    time: str | ProtoTime
    rule: str
    priority: str
    output_fields: dict[str, FieldValue] = {}
    source: str = ""
    hostname: str = ""
    tags: list[str] = []
    uuid: str = ""


def parse_falco(doc: Mapping[str, Any], early: EarlyReject | None = None) -> Event:
    """One Falco alert (a decoded JSON object or the gRPC consumer's dict) as an Event.
    With ``early``, an alert no loaded rule can use comes back as a time-only tick."""
    try:
        alert = msgspec.convert(doc, FalcoAlert)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None
    return normalize_falco(alert) if early is None else early.falco(alert)


def _validation_error(exc: msgspec.ValidationError) -> ParseError:
    text = str(exc)
    reason = "missing_field" if text.startswith("Object missing required field") else "bad_type"
    return ParseError(reason, f"Falco alert: {text}")


def normalize_falco(alert: FalcoAlert) -> Event:
    """The decoded alert as a normalized Event (see ``correlation/event.py`` conventions)."""
    time_ns, priority = checked(alert)
    return build_falco(alert, time_ns, priority, actor_of(alert))


def checked(alert: FalcoAlert) -> tuple[int, str]:
    """The checks every alert must pass, ticks included: its event time and priority.

    Raises what a bad alert is refused with (SkippedInput for Falco's internal alerts);
    :func:`check_lists` is the one check that comes after these.
    """
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
    return alert_time_ns(alert.time), priority


def check_lists(raw: dict[str, FieldValue]) -> None:
    """The last check, on list values: run by :func:`_string_fields` for an alert that is
    built, and on its own for one that is not (the early reject's ticks)."""
    for key, value in raw.items():
        if isinstance(value, list):
            _check_list(key, value)


def _check_list(key: str, value: list[Scalar]) -> None:
    if len(value) > MAX_LIST:
        raise ParseError("too_large", f"Falco alert: {cut(key)[:80]} has {len(value)} items")


def rule_and_tags(alert: FalcoAlert) -> tuple[str, tuple[str, ...]]:
    """The Event's ``rule`` and ``tags`` (cut, tags sorted) of a decoded alert."""
    return cut(alert.rule), tuple(sorted(cut(t) for t in alert.tags))


def build_falco(alert: FalcoAlert, time_ns: int, priority: str, actor: Identity) -> Event:
    """The Event of an alert that passed :func:`checked`, whose actor is ``actor``."""
    fields = _string_fields(alert.output_fields)
    args = fields.get("proc.args")
    if isinstance(args, str):  # argv without argv[0]: redact again knowing the tool
        fields["proc.args"] = redact_args(field_text(fields.get("proc.name", "")), args)
    if alert.source:
        fields["falco.source"] = cut(alert.source)
    rule, tags = rule_and_tags(alert)
    return Event(
        time_ns=time_ns,
        source=FALCO,
        id=cut(alert.uuid) or _derived_id(time_ns, rule, priority, alert.hostname, tags, fields),
        summary=_summary(rule, fields, actor),
        rule=rule,
        priority=priority,
        tags=tags,
        actor=actor,
        target=target(fields),
        fields=fields,
    )


def alert_time_ns(value: str | ProtoTime) -> int:
    """Event time in ns: RFC 3339 text, or protobuf-JSON seconds and nanos."""
    if isinstance(value, str):
        return rfc3339_ns(value)
    seconds = value.seconds
    if isinstance(seconds, str):
        if not (seconds.isascii() and seconds.lstrip("-").isdigit()):
            raise ParseError("bad_time", f"Falco alert: time.seconds {cut(seconds)[:40]!r}")
        seconds = int(seconds)
    if not 0 <= value.nanos < _NS_PER_S or not 0 <= seconds < 1 << 34:
        raise ParseError("bad_time", f"Falco alert: time {seconds}s {value.nanos}ns out of range")
    return seconds * _NS_PER_S + value.nanos


def _string_fields(raw: dict[str, FieldValue]) -> dict[str, FieldText]:
    """output_fields as strings (tuples of strings for lists), as gRPC renders scalars."""
    fields: dict[str, FieldText] = {}
    for key, value in raw.items():
        if len(key) > MAX_FIELD_CHARS:
            key = cut(key)  # keeps its start: the prefix tests below answer the same
        if isinstance(value, str):  # most values: the same test _scalar makes, inlined
            if value not in _MISSING:
                if not key.startswith(_NOT_FREE_TEXT):
                    value = redact(value)
                fields[key] = value if len(value) <= MAX_FIELD_CHARS else cut(value)
            continue
        if isinstance(value, list):
            _check_list(key, value)
            items = tuple(text for item in value if (text := _scalar(key, item)) is not None)
            if items:
                fields[key] = items
            continue
        text = _scalar(key, value)
        if text is not None:
            fields[key] = text
    return fields


def _scalar(key: str, value: Scalar) -> str | None:
    """One value as the string gRPC would carry; ``None`` when Falco means "missing"."""
    if value is None:
        return None
    if isinstance(value, str):
        if value in _MISSING:
            return None
        # Redact before cutting: a cut could leave a secret too short to recognize.
        return cut(value if key.startswith(_NOT_FREE_TEXT) else redact(value))
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    return str(value)


def _derived_id(
    time_ns: int,
    rule: str,
    priority: str,
    host: str,
    tags: tuple[str, ...],
    fields: dict[str, FieldText],
) -> str:
    """``falco-`` + a hash of the normalized alert: stable across key order and transport."""
    content = (time_ns, rule, priority, host, tags, sorted(fields.items()))
    digest = hashlib.blake2b(msgspec.msgpack.encode(content), digest_size=12).hexdigest()
    return "falco-" + digest


def actor_of(alert: FalcoAlert) -> Identity:
    """Who the alert is about, read straight off its decoded ``output_fields``.

    Exactly the values the Event's ``fields`` hold for these keys: a string unless Falco
    means "missing" (``null``, ``<NA>``), cut to :data:`MAX_FIELD_CHARS`, numbers as gRPC
    renders them, lists ignored (identity fields are scalars). Every key read here is
    Falco's own metadata (``k8s.``, ``container.``, ``user.``), which is never redacted,
    so reading the raw values gives what normalization would. The early reject decides
    from this before anything else is normalized.
    """
    get = alert.output_fields.get
    pod_ip, container_ip = _identity_text(get("k8s.pod.ip")), _identity_text(get("container.ip"))
    if pod_ip and container_ip and pod_ip != container_ip:
        ips: tuple[str, ...] = (pod_ip, container_ip)
    else:
        ips = (pod_ip or container_ip,) if pod_ip or container_ip else ()
    namespace, pod = _identity_text(get("k8s.ns.name")), _identity_text(get("k8s.pod.name"))
    container = _identity_text(get("container.id"))
    hostname = cut(alert.hostname)
    if not (namespace or pod or container or ips or hostname):
        return EMPTY_IDENTITY
    return Identity(
        namespace=namespace,
        pod=pod,
        pod_uid=_identity_text(get("k8s.pod.uid")) or _identity_text(get("k8s.pod.id")),
        container_id="" if container == "host" else container,
        node=hostname,
        user=_identity_text(get("user.name")),
        image=_identity_text(get("container.image.repository"))
        or _identity_text(get("container.image")),
        ips=ips,
    )


def _identity_text(value: FieldValue | None) -> str:
    """One identity field's value as the Event's ``fields`` hold it ("" when absent)."""
    if isinstance(value, str):
        if len(value) <= MAX_FIELD_CHARS:
            return "" if value in _MISSING else value
        return cut(value)
    if value is None or isinstance(value, list):
        return ""
    return _scalar("", value) or ""  # a number or a boolean, as gRPC renders it


def _summary(rule: str, fields: dict[str, FieldText], actor: Identity) -> str:
    where = actor.pod_ref or (f"container {actor.container_id}" if actor.container_id else "host")
    process = fields.get("proc.cmdline") or fields.get("proc.name")
    detail = f": {field_text(process)}" if process else ""
    images = fields.get("ka.req.pod.containers.image")  # what a k8saudit pod alert is about
    if images:
        detail += f" (images {field_text(images)})"
    connection = fields.get("fd.name")
    if connection:
        detail += f" ({field_text(connection)})"
    return cut(f"{rule} in {where}{detail}")
