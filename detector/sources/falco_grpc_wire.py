"""Falco gRPC wire helpers: responses as Falco JSON alert dicts, and channel construction.

A ``falco.outputs.response`` becomes the same dict Falco's ``json_output`` would have
written for that alert, so one parser (:func:`detector.parse.falco.parse_falco`) serves
gRPC, HTTP and files alike and the derived event id does not depend on the transport:

* ``time``: ``google.protobuf.Timestamp`` -> RFC 3339 UTC with 9 fractional digits
* ``priority``: enum number -> Falco's capitalised name (``Warning``)
* ``source``: field 9 (the real source name); field 3, the deprecated enum, only when
  9 is empty (servers older than Falco 0.31)
* ``rule``, ``output``, ``hostname``, ``tags``, ``output_fields`` copied as they are.

The RPC callables are built from the service descriptors of the generated ``*_pb2``
modules rather than through the generated ``*_pb2_grpc`` stubs: those are untyped, and
importing them would pull untyped code into the strictly type-checked service. The
method paths (``/falco.outputs.service/sub`` ...) come from the descriptors, not literals.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import grpc

from detector.proto import outputs_pb2, version_pb2

# Index = enum number in falco.schema.priority / falco.schema.source.
PRIORITY_NAMES: Final = (
    "Emergency",
    "Alert",
    "Critical",
    "Error",
    "Warning",
    "Notice",
    "Informational",
    "Debug",
)
SOURCE_NAMES: Final = ("syscall", "k8s_audit", "internal", "plugin")
UNIX_PREFIX: Final = "unix://"
# No BDP probing: the receive window stays at HTTP/2's 64 KiB instead of growing to
# megabytes, so when emit blocks only a window's worth of alerts is in flight and the
# rest waits in Falco's own queue (flow control, not buffering).
CHANNEL_OPTIONS: Final[tuple[tuple[str, Any], ...]] = (("grpc.http2.bdp_probe", 0),)
_OUTPUTS: Final = outputs_pb2.DESCRIPTOR.services_by_name["service"]
_VERSION: Final = version_pb2.DESCRIPTOR.services_by_name["service"]


def rfc3339_from_timestamp(seconds: int, nanos: int) -> str:
    """``2023-05-25T13:44:05.478445995Z`` from a protobuf Timestamp's two fields."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def _enum_name(names: Sequence[str], number: int) -> str:
    # proto3 enums are open: an unknown number is kept so the parser can reject it by name.
    return names[number] if 0 <= number < len(names) else str(number)


def response_to_alert(response: outputs_pb2.response) -> dict[str, Any]:
    """The alert dict Falco's JSON output would carry for this gRPC response."""
    source = response.source or _enum_name(SOURCE_NAMES, response.source_deprecated)
    return {
        "time": rfc3339_from_timestamp(response.time.seconds, response.time.nanos),
        "priority": _enum_name(PRIORITY_NAMES, response.priority),
        "rule": response.rule,
        "output": response.output,
        "output_fields": dict(response.output_fields),
        "hostname": response.hostname,
        "tags": list(response.tags),
        "source": source,
    }


def is_unix(endpoint: str) -> bool:
    """True for ``unix:///path`` endpoints (insecure, like Falco's server)."""
    return endpoint.startswith(UNIX_PREFIX)


def split_host_port(endpoint: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) -> (host, port); ValueError naming the problem."""
    host, sep, port_text = endpoint.rpartition(":")
    if not sep or not host or not port_text.isascii() or not port_text.isdigit():
        raise ValueError(f"expected unix:///path or HOST:PORT, got {endpoint!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port out of range in {endpoint!r}")
    return host, port


def mtls_credentials(ca: str, cert: str, key: str) -> grpc.ChannelCredentials:
    """Client credentials for Falco's mTLS server; files are read on every (re)connect.

    Reading at connect time picks up rotated certificates. An unreadable file raises
    ``OSError``; the caller logs the path (never the content) and retries.
    """
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes(),
        private_key=Path(key).read_bytes(),
        certificate_chain=Path(cert).read_bytes(),
    )


def open_channel(endpoint: str, ca: str, cert: str, key: str, server_name: str) -> grpc.aio.Channel:
    """An insecure channel for ``unix://`` endpoints, a mutual-TLS one for ``HOST:PORT``."""
    options = list(CHANNEL_OPTIONS)
    if is_unix(endpoint):
        return grpc.aio.insecure_channel(endpoint, options=options)
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.aio.secure_channel(endpoint, mtls_credentials(ca, cert, key), options=options)


def method_path(service: Any, method: str) -> str:
    """``/package.service/method`` as gRPC puts it on the wire."""
    return f"/{service.full_name}/{service.methods_by_name[method].name}"


def outputs_sub(channel: Any) -> Any:
    """The bidirectional ``falco.outputs.service/sub`` callable on ``channel``."""
    return channel.stream_stream(
        method_path(_OUTPUTS, "sub"),
        request_serializer=outputs_pb2.request.SerializeToString,
        response_deserializer=outputs_pb2.response.FromString,
    )


def outputs_get(channel: Any) -> Any:
    """The server-streaming ``falco.outputs.service/get`` callable on ``channel``."""
    return channel.unary_stream(
        method_path(_OUTPUTS, "get"),
        request_serializer=outputs_pb2.request.SerializeToString,
        response_deserializer=outputs_pb2.response.FromString,
    )


def version_call(channel: Any) -> Any:
    """The unary ``falco.version.service/version`` callable on ``channel``."""
    return channel.unary_unary(
        method_path(_VERSION, "version"),
        request_serializer=version_pb2.request.SerializeToString,
        response_deserializer=version_pb2.response.FromString,
    )
