"""Suppression lists: known scanners, CI namespaces, monitoring service accounts.

An :class:`Allowlist` names actor namespaces, images, service accounts and pods
(``fnmatch`` globs: ``ci-*``, ``docker.io/aquasec/*``). An event whose actor
matches is not evidence for a rule that carries the list (per rule) or for any
rule (the engine's global list). Suppressed events are counted, not dropped silently.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

import msgspec

from correlation.event import Event


class Allowlist(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Globs over the actor of an event. Empty lists match nothing."""

    namespaces: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    service_accounts: tuple[str, ...] = ()  # "ns:name"
    pods: tuple[str, ...] = ()  # "ns/name"

    def __bool__(self) -> bool:
        return bool(self.namespaces or self.images or self.service_accounts or self.pods)

    def matches(self, event: Event) -> bool:
        """True when the event's actor is on the list."""
        actor = event.actor
        return self.matches_actor(
            actor.namespace, actor.image, actor.service_account, actor.pod_ref
        )

    def matches_actor(self, namespace: str, image: str, service_account: str, pod_ref: str) -> bool:
        """:meth:`matches` for an actor given by its parts (before an Event exists)."""
        return (
            _any(namespace, self.namespaces)
            or _any(image, self.images)
            or _any(service_account, self.service_accounts)
            or _any(pod_ref, self.pods)
        )


def _any(value: str, patterns: tuple[str, ...]) -> bool:
    return bool(value) and any(fnmatchcase(value, p) for p in patterns)


EMPTY_ALLOWLIST = Allowlist()
