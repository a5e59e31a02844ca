"""The remote end of a Falco network alert: server address and port from its output fields.

Our rules output ``fd.sip`` and ``fd.sport``; many upstream rules output the connection only as
``fd.name``, libsinsp's ``client:port->server:port`` tuple (``172.17.0.9:43812->10.96.0.1:443``),
and ``fd.rport``. libsinsp writes IPv6 ends without brackets (``fd00::5:52522->fd00::254:80``: the
port is what follows the last colon); bracketed ends (``[fd00::254]:80``) are read too. The
tuple is always client first, so the server is the part after ``->``. A connect() that failed at
once has no ``fd.sip`` at all, only the tuple (falco_rules/README.md, "Failed connects").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Final

from correlation.event import EMPTY_IDENTITY, FieldText, Identity

_ARROW: Final = "->"


def target(fields: Mapping[str, FieldText]) -> Identity:
    """The server (or remote) address and port of the alert's connection, if it names one."""
    ip, port = _text(fields, "fd.sip") or _text(fields, "fd.rip"), _port(fields)
    if not ip or not port:
        parsed = server_of(_text(fields, "fd.name"))
        if parsed is not None and (not ip or parsed[0] == ip):
            ip, port = parsed[0], port or parsed[1]
    if not ip:  # fd.sip.name, when present, stays in fields for rules that match on it
        return EMPTY_IDENTITY
    return Identity(ips=(ip,), port=port)


def server_of(name: str) -> tuple[str, int] | None:
    """``(address, port)`` of the server end of a ``client->server`` tuple, else ``None``."""
    client, arrow, server = name.partition(_ARROW)
    if not arrow or not client:
        return None
    if server.startswith("["):
        host, bracket, rest = server[1:].partition("]")
        port_text = rest[1:] if bracket and rest.startswith(":") else ""
    else:
        host, _, port_text = server.rpartition(":")
    port = _port_number(port_text)
    if not port:
        return None
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:  # unix sockets (kernel pointers), names: not an address
        return None


def _text(fields: Mapping[str, FieldText], key: str) -> str:
    value = fields.get(key, "")
    return value if isinstance(value, str) else ""


def _port(fields: Mapping[str, FieldText]) -> int:
    return _port_number(_text(fields, "fd.sport") or _text(fields, "fd.rport"))


def _port_number(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        return 0
    port = int(text)
    return port if port < 65536 else 0
