"""Relay mode: a node sidecar forwards normalized events to the central correlator.

In ``mode: relay`` ``detector run`` does not correlate. Its sources fill the same bounded
:class:`detector.pipeline.EventQueue` as in correlate mode, and a :class:`~.worker.Relay`
drains it in batches to one :class:`~.forward.Forwarder` (HTTP ``POST /events`` on the
correlator, or a Kafka topic keyed by the correlation identity)::

    /falco, gRPC, files ─► EventQueue(buffer.max_events) ─► Relay ─► Forwarder ─► correlator
                                  ▲ full: HTTP 429, emit() waits       │ retries with backoff
                                  └──────────── backpressure ──────────┘ (Retry-After honoured)

Modules: :mod:`.wire` (the batch format both transports carry), :mod:`.config`,
:mod:`.forward` (the Forwarder protocol and the HTTP forwarder), :mod:`.kafka`,
:mod:`.worker`.

Exceptions (one tree, shared with the sinks because the retry rules are the same)::

    detector.sinks.base.DeliveryError
     ├── TransientDeliveryError   network error, 5xx, 408/429, broker down: retry later
     └── PermanentDeliveryError   the correlator refused the batch (4xx): counted, dropped
    detector.relay.wire.WireError (ValueError)   a batch that does not decode or validate
"""
