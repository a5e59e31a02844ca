"""Falco alerts and Kubernetes audit events in their wire shapes, for generated data.

One library for everything in this repository that *writes* the two inputs: the
benchmark streams (``bench/``) and the bundled attack scenario
(``examples/attack-scenario/storyline/``). The product never imports it; it is the
other side of ``detector/parse/``, kept in one place so both generators write the same
shapes and a fix to a shape reaches both::

    times.py   RFC 3339 text from integer nanoseconds (Falco's 9 digits, metav1.MicroTime)
    falco.py   the alert document http_output posts, and its common output_fields
    audit.py   audit.k8s.io/v1 Event and EventList, user info, objectRef, request paths
    jsonl.py   one compact JSON document per line

Callers choose values (who, what, when); this library fixes key order, formats and the
parts real producers always write the same way.
"""
