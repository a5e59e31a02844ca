"""Trimming: skip building the full Event for audit requests no rule step can use.

Most of a cluster's audit stream is noise to the chain rules (kubelets reading their
pods, controllers renewing leases). Building a full :class:`Event` for each — actor,
target, fields — is most of the parse cost. A :class:`Trimmer` answers, before that
work, "could any consumer use this request?" by asking ``wants`` (the engine's
:meth:`~correlation.engine.Engine.wants`) about a *probe*: an Event with the request's
verb, resource and subresource and an actor whose fields are marked set wherever the
full event's could be (after the engine's IP → pod resolution too). An unwanted
request becomes a trimmed Event (time, id, scalars) that still advances event time.

Requests that may teach the engine an IP → pod binding (a service account's bound
token with a pod name, and a source IP: see ``correlation/identity.py``) are always
built in full. Answers are memoized by the probe's key (bounded, cleared when full).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from correlation.event import K8S_AUDIT, Event, Identity
from detector.parse.audit import AuditEvent, ObjectRef

MEMO_MAX: Final = 4096
_SA_PREFIX: Final = "system:serviceaccount:"
_SET: Final = "?"  # any non-empty value: the index only asks "is it set?"
ProbeKey = tuple[str, str, str, bool, bool, bool]


class Trimmer:
    """The ``keep`` argument of the parsers: memoized ``wants(probe)``."""

    def __init__(self, wants: Callable[[Event], bool]) -> None:
        self._wants = wants
        self._memo: dict[ProbeKey, bool] = {}

    def wants(self, event: AuditEvent, ref: ObjectRef) -> bool:
        """False only when no step can take the full event and it teaches nothing."""
        user = event.user
        username = user.username if user is not None else ""
        account = username.startswith(_SA_PREFIX)
        bound_pod = user is not None and bool(user.extra.pod_name)
        if account and bound_pod and event.sourceIPs:
            return True  # may teach IP → pod (Resolver.learn)
        maybe_pod = bound_pod or bool(event.sourceIPs)  # extras, or resolved from the IP
        key = (event.verb, ref.resource, ref.subresource, account, maybe_pod, bool(username))
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= MEMO_MAX:
                self._memo.clear()
            found = self._memo[key] = self._wants(_probe(key))
        return found


def _probe(key: ProbeKey) -> Event:
    verb, resource, subresource, account, maybe_pod, has_user = key
    actor = Identity(
        cluster=_SET,
        namespace=_SET if account or maybe_pod else "",
        pod=_SET if maybe_pod else "",
        pod_uid=_SET,
        container_id=_SET,
        service_account=_SET if account else "",
        node=_SET,
        user=_SET if has_user else "",
        image=_SET,
        ips=(_SET,),
        port=1,
    )
    target = Identity(namespace=_SET, pod=_SET, ips=(_SET,), port=1)
    return Event(
        time_ns=0, source=K8S_AUDIT, id="", verb=verb, resource=resource,
        subresource=subresource, actor=actor, target=target,
    )  # fmt: skip
