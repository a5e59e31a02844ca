"""Kubernetes audit events (``audit.k8s.io/v1`` and ``v1beta1``) to :class:`Event`.

:class:`AuditEvent` names only the fields the detector reads. ``requestObject`` and
``responseObject`` are kept as undecoded :class:`msgspec.Raw` bytes and are only ever
decoded (into names, nothing else) for workload creations. Bodies of secrets, configmaps,
token reviews and token requests are therefore never decoded, stored or printed: the
Event keeps the fields extracted here and nothing of the body. ``requestURI`` is kept
without its query string (tokens have been seen there); for exec/attach only the
``command`` and ``container`` parameters are extracted. The path and the exec command
pass through :func:`detector.parse.redact.redact` (``sh -c "curl -H 'Authorization:
Bearer ...'"`` typed through ``kubectl exec``). ``summary`` is left empty:
:func:`correlation.event.describe` builds it from these fields for evidence only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

import msgspec

from correlation.event import EMPTY_IDENTITY, K8S_AUDIT, Event, Identity
from detector.errors import ParseError
from detector.parse.limits import MAX_FIELD_CHARS, MAX_LIST, cut
from detector.parse.long_running import event_id
from detector.parse.redact import redact
from detector.parse.timestamps import rfc3339_ns

API_VERSIONS: Final = frozenset(("audit.k8s.io/v1", "audit.k8s.io/v1beta1", ""))
WORKLOADS: Final = frozenset(
    ("pods", "jobs", "cronjobs", "deployments", "daemonsets", "replicasets", "statefulsets")
)
# Never decoded, whatever the audit level: their bodies hold credentials.
SENSITIVE: Final = frozenset(("secrets", "configmaps", "tokenreviews", "tokenrequests"))
_EXTRA: Final = "authentication.kubernetes.io/"
_SA_PREFIX: Final = "system:serviceaccount:"
_SA_PREFIX_LEN: Final = len(_SA_PREFIX)


class Extra(msgspec.Struct, frozen=True, gc=False):
    """The bound-token claims we join on; every other ``extra`` key is skipped undecoded."""

    pod_name: list[str] = msgspec.field(default=[], name=_EXTRA + "pod-name")
    pod_uid: list[str] = msgspec.field(default=[], name=_EXTRA + "pod-uid")
    node_name: list[str] = msgspec.field(default=[], name=_EXTRA + "node-name")
    credential_id: list[str] = msgspec.field(default=[], name=_EXTRA + "credential-id")


class Annotations(msgspec.Struct, frozen=True, gc=False):
    """The one annotation we read (the RBAC reason may be long and is not needed)."""

    decision: str = msgspec.field(default="", name="authorization.k8s.io/decision")


_NO_EXTRA: Final = Extra()
_NO_ANNOTATIONS: Final = Annotations()


class UserInfo(msgspec.Struct, gc=False):
    username: str = ""
    extra: Extra = _NO_EXTRA


class ObjectRef(msgspec.Struct, gc=False):
    resource: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    apiGroup: str = ""


class Status(msgspec.Struct, gc=False):
    code: int = 0


class AuditEvent(msgspec.Struct, gc=False):
    """The fields of an audit Event we read (camelCase: the wire names).

    ``auditID`` defaults to empty so the auto-detecting document type can extend this
    struct; :func:`normalize_audit` refuses an empty one.
    """

    auditID: str = ""
    stage: str = ""
    kind: str = ""
    apiVersion: str = ""
    requestURI: str = ""
    verb: str = ""
    user: UserInfo | None = None
    impersonatedUser: UserInfo | None = None
    sourceIPs: list[str] = []
    userAgent: str = ""
    objectRef: ObjectRef | None = None
    responseStatus: Status | None = None
    requestObject: msgspec.Raw = msgspec.Raw(b"")
    responseObject: msgspec.Raw = msgspec.Raw(b"")
    requestReceivedTimestamp: str = ""
    stageTimestamp: str = ""
    timestamp: str = ""  # v1beta1 only
    annotations: Annotations = _NO_ANNOTATIONS


class _Meta(msgspec.Struct, gc=False):
    name: str = ""
    generateName: str = ""
    namespace: str = ""


class _Body(msgspec.Struct, gc=False):
    metadata: _Meta | None = None


_body_decoder: Final = msgspec.json.Decoder(_Body)
_event_decoder: Final = msgspec.json.Decoder(AuditEvent)
_NO_REF: Final = ObjectRef()


def parse_audit(doc: Mapping[str, Any]) -> Event:
    """One audit Event (a decoded JSON object) as a normalized Event.

    The mapping is re-encoded and decoded like wire bytes, so bodies take the same
    never-decoded path as in :func:`detector.parse.parse_document`.
    """
    try:
        data = msgspec.json.encode(doc)
        event = _event_decoder.decode(data)
    except (TypeError, OverflowError) as exc:
        raise ParseError("bad_type", f"audit: not JSON data ({exc})") from None
    except msgspec.ValidationError as exc:
        text = str(exc)
        missing = text.startswith("Object missing required field")
        raise ParseError("missing_field" if missing else "bad_type", f"audit: {text}") from None
    except RecursionError:
        raise ParseError("too_deep", "audit: nesting too deep") from None
    return normalize_audit(event)


def audit_json(data: bytes | msgspec.Raw) -> Event:
    """The normalized Event of one audit Event's JSON already decoded once without
    error (a claim's build: ``detector/parse/early.py``); decoding it again as the
    struct's base type reads the same fields the same way."""
    return normalize_audit(_event_decoder.decode(data))


def normalize_audit(event: AuditEvent) -> Event:
    """The decoded audit event as a normalized Event (see ``correlation/event.py``)."""
    time_ns = audit_time_ns(event)
    ref = event.objectRef or _NO_REF
    fields = _fields(event, ref)
    target = _target(event, ref, fields)
    actor = _actor(event.user, event.impersonatedUser, event.sourceIPs, fields)
    code = event.responseStatus.code if event.responseStatus else 0
    decision = event.annotations.decision
    verb, resource, subresource, name = event.verb, ref.resource, ref.subresource, ref.name
    # One length check instead of a cut() call per field: these are short in practice.
    if len(verb) + len(resource) + len(subresource) + len(name) + len(decision) > MAX_FIELD_CHARS:
        verb, resource, subresource = cut(verb), cut(resource), cut(subresource)
        name, decision = cut(name), cut(decision)
    stage = event.stage if len(event.stage) <= MAX_FIELD_CHARS else cut(event.stage)
    return Event(
        time_ns=time_ns,
        source=K8S_AUDIT,
        id=audit_event_id(event),
        verb=verb,
        resource=resource,
        subresource=subresource,
        name=name,
        response_code=code,
        decision=decision,
        stage=stage,
        actor=actor,
        target=target,
        fields=fields,
    )


def audit_event_id(event: AuditEvent) -> str:
    """The normalized Event's ``id`` (see ``correlation/event.py``)."""
    subresource = event.objectRef.subresource if event.objectRef else ""
    return _short(event_id(event.auditID, event.stage, event.verb, subresource))


def audit_time_ns(event: AuditEvent) -> int:
    """The event's time, after the checks every audit event must pass (else ParseError)."""
    if event.apiVersion not in API_VERSIONS:
        raise ParseError("unknown_api_version", f"audit: apiVersion {cut(event.apiVersion)!r}")
    if not event.auditID:
        raise ParseError("missing_field", "audit: empty auditID")
    if len(event.sourceIPs) > MAX_LIST:
        raise ParseError("too_large", "audit: too many sourceIPs")
    stamp = event.requestReceivedTimestamp or event.stageTimestamp or event.timestamp
    if not stamp:
        raise ParseError("missing_field", "audit: no requestReceivedTimestamp/stageTimestamp")
    return rfc3339_ns(stamp)


def service_account_of(username: str) -> tuple[str, str]:
    """``system:serviceaccount:NS:NAME`` → ``("NS", "NS:NAME")``; ``("", "")`` otherwise."""
    if username.startswith(_SA_PREFIX):
        parts = username[_SA_PREFIX_LEN:].split(":")
        if len(parts) == 2 and parts[0] and parts[1]:
            return parts[0], f"{parts[0]}:{parts[1]}"
    return "", ""


def _actor(
    user: UserInfo | None,
    impersonated: UserInfo | None,
    source_ips: list[str],
    fields: dict[str, str],
) -> Identity:
    """The identity the API server authorized: the impersonated one when there is one.

    With ``Impersonate-User`` the request is authorized (and acts) as ``impersonatedUser``,
    so chains join on it; the real user is kept in ``fields["impersonated_by"]``. Pod
    claims are taken from the real user's token only, and do not follow the impersonation:
    an impersonator can send any ``Impersonate-Extra-*`` values, and the real token's pod
    is not a pod of the impersonated identity.
    """
    username, extra = (user.username, user.extra) if user is not None else ("", _NO_EXTRA)
    if len(username) > MAX_FIELD_CHARS:
        username = cut(username)
    if extra is _NO_EXTRA:
        pod = pod_uid = node = ""
    else:
        pod, pod_uid = _first(extra.pod_name), _first(extra.pod_uid)
        node = _first(extra.node_name)
        credential = _first(extra.credential_id)
        if credential:
            fields["credential_id"] = credential
    if impersonated is not None and impersonated.username:
        fields["impersonated_by"] = username
        username, pod, pod_uid, node = cut(impersonated.username), "", "", ""
    namespace, account = service_account_of(username)
    return Identity(
        namespace=namespace,
        pod=pod,
        pod_uid=pod_uid,
        service_account=account,
        node=node,
        user=username,
        ips=actor_ips(source_ips),
    )


def actor_ips(source_ips: list[str]) -> tuple[str, ...]:
    """The actor's addresses as normalized, the API server's own view first: only the
    last sourceIP is that; the others are client-supplied. (The early reject's claims
    take their ``ip`` from here too: ``detector/parse/early.py``.)"""
    if len(source_ips) == 1:  # the common case: one address, no proxies
        ip = source_ips[0]
        return (ip if len(ip) <= MAX_FIELD_CHARS else cut(ip),) if ip else ()
    return tuple(dict.fromkeys(cut(ip) for ip in (source_ips[-1:] + source_ips[:-1]) if ip))


def _first(values: list[str]) -> str:
    if not values:
        return ""
    value = values[0]
    return value if len(value) <= MAX_FIELD_CHARS else cut(value)


def _fields(event: AuditEvent, ref: ObjectRef) -> dict[str, str]:
    fields: dict[str, str] = {}
    path, agent = event.requestURI.partition("?")[0], event.userAgent
    if path:
        if "/proxy" in path:  # only a proxy path carries client text; API paths are names
            path = redact(path)
        fields["request_uri"] = path if len(path) <= MAX_FIELD_CHARS else cut(path)
    if agent:
        fields["user_agent"] = agent if len(agent) <= MAX_FIELD_CHARS else cut(agent)
    if ref.apiGroup:
        fields["api_group"] = cut(ref.apiGroup)
    if reads_query(ref.resource, ref.subresource):
        _exec_fields(event.requestURI, fields)
    return fields


def reads_query(resource: str, subresource: str) -> bool:
    """Whether normalization parses the request's query string (exec and attach only)."""
    return resource == "pods" and subresource in ("exec", "attach")


def _exec_fields(uri: str, fields: dict[str, str]) -> None:
    """``command=sh&command=-c&command=id&container=app`` → exec.command/exec.container."""
    params = parse_qsl(uri.partition("?")[2], max_num_fields=MAX_LIST)
    command = " ".join(value for key, value in params if key == "command")
    container = next((value for key, value in params if key == "container"), "")
    if command:
        fields["exec.command"] = cut(redact(command))
    if container:
        fields["exec.container"] = cut(container)


def _target(event: AuditEvent, ref: ObjectRef, fields: dict[str, str]) -> Identity:
    if ref is _NO_REF:
        return EMPTY_IDENTITY
    namespace, name = ref.namespace, ref.name
    if len(namespace) > MAX_FIELD_CHARS or len(name) > MAX_FIELD_CHARS:
        namespace, name = cut(namespace), cut(name)
    if event.verb == "create" and ref.resource in WORKLOADS and not ref.subresource:
        meta = _created_meta(event)
        name = name or cut(meta.name)
        namespace = namespace or cut(meta.namespace)
        fields["workload.kind"] = cut(ref.resource)
        fields["workload.name"] = name
        fields["workload.generate_name"] = cut(meta.generateName)
        fields["workload.namespace"] = namespace
    elif ref.resource != "pods":
        return Identity(namespace=namespace) if namespace else EMPTY_IDENTITY
    return Identity(namespace=namespace, pod=name)


def _created_meta(event: AuditEvent) -> _Meta:
    """Name/generateName of the created object: the response knows the final name."""
    found = _Meta()
    for raw in (event.responseObject, event.requestObject):
        meta = _decode_meta(raw)
        found = _Meta(
            name=found.name or meta.name,
            generateName=found.generateName or meta.generateName,
            namespace=found.namespace or meta.namespace,
        )
    return found


def _decode_meta(raw: msgspec.Raw) -> _Meta:
    if not raw or bytes(raw)[:1] != b"{":
        return _Meta()  # absent, null, or a patch document (a JSON array)
    try:
        body = _body_decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return _Meta()
    return body.metadata or _Meta()


def _short(text: str) -> str:
    """:func:`cut` without the call on the common path (this runs for every event)."""
    return text if len(text) <= MAX_FIELD_CHARS else cut(text)
