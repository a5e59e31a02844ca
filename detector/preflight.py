"""Everything ``detector run`` would refuse, found before it starts.

``detector check``, ``detector run`` and ``detector run --print-config`` all go through
:func:`checked`: the configuration's structure (:func:`detector.config.collect`), then
what the keys point at, and every problem is reported at once, one line each, as
``key: path: message`` (:class:`detector.config.Problem`)::

    http.tls.cert_file: /etc/detector/tls.crt: no such file
    sinks[1].secret_file: /run/secrets/hook: permission denied
    sinks[2].webhook_url: an http(s) URL is required (slack sink)
    engine.rules: rules/mine.yaml:4: unknown signal 'recn'

What is checked is chosen by the key's *name* (:data:`FILE_CHECKS`, :data:`ENV_KEYS`) or
its full path (:data:`WRITTEN_KEYS`), so a new ``*_file`` key anywhere is covered by the
registry line for its kind, and a unit test fails when a file-like key has no check.
Files are opened the way the service opens them (``ssl`` loads the PEM pairs and CA
bundles, the rule loader compiles the rules, the sinks are built), so "check passed" means
"run gets past start-up".
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from correlation.errors import RuleError
from correlation.rules import ChainRule, builtin_rules_paths, load_rules
from detector import config as cfg
from detector.allowlist import load_allowlist
from detector.config import Problem
from detector.errors import UsageError
from detector.readable import why_uncreatable, why_unreadable
from detector.sinks.config import MEMORY
from detector.sinks.registry import build_sink

# A check gets the file's path and the mapping holding the key (for its partner key).
FileCheck = Callable[[Path, Mapping[str, Any]], str]
_SSL_LOCATION: Final = re.compile(r"\s*\(_ssl\.c:\d+\)$")


def _cert_with(key_name: str) -> FileCheck:
    """A PEM certificate that must load together with the private key in ``key_name``."""

    def check(path: Path, siblings: Mapping[str, Any]) -> str:
        key = Path(str(siblings.get(key_name) or ""))
        if why_unreadable(key):
            return ""  # the key's own line says what is wrong with it
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(path, key)
        except ssl.SSLError as exc:
            return f"does not load as a PEM certificate with {key_name} {key}: {_ssl(exc)}"
        return ""

    return check


def _ca_bundle(path: Path, _siblings: Mapping[str, Any]) -> str:
    try:
        ssl.create_default_context().load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        return f"not a PEM CA bundle: {_ssl(exc)}"
    return ""


def _secret(path: Path, _siblings: Mapping[str, Any]) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    return "" if text.strip() else "is empty"


def _allowlist(path: Path, _siblings: Mapping[str, Any]) -> str:
    try:
        load_allowlist(str(path))
    except UsageError as exc:  # "bad allowlist PATH: why": the path is on the line already
        return f"not a valid allowlist: {str(exc).partition(f'{path}: ')[2] or exc}"
    return ""


def _readable_only(_path: Path, _siblings: Mapping[str, Any]) -> str:
    return ""  # existence and permissions are checked for every file key


def _ssl(exc: ssl.SSLError) -> str:
    return _SSL_LOCATION.sub("", str(exc.args[1] if len(exc.args) > 1 else exc))


# Key name -> what the file must be. Keys named here must name an existing file.
FILE_CHECKS: Final[dict[str, FileCheck]] = {
    "cert_file": _cert_with("key_file"),  # http.tls, relay.http
    "tls_cert_file": _cert_with("tls_key_file"),  # Kafka clients
    "key_file": _readable_only,
    "tls_key_file": _readable_only,
    "client_ca_file": _ca_bundle,
    "ca_file": _ca_bundle,
    "tls_ca_file": _ca_bundle,
    "secret_file": _secret,
    "webhook_url_file": _secret,
    "sasl_password_file": _secret,
}
# Whole keys whose names alone say too little ("key" is also the Kafka sink's message key).
FILE_KEYS: Final[dict[str, FileCheck]] = {
    "sources.falco_grpc.ca": _ca_bundle,
    "sources.falco_grpc.cert": _cert_with("key"),
    "sources.falco_grpc.key": _readable_only,
    "engine.allowlist": _allowlist,
}
# Key names whose value names an environment variable that must be set.
ENV_KEYS: Final = frozenset({"secret_env", "webhook_url_env", "sasl_password_env"})
# Keys (list indexes as []) naming files the service creates or appends to, each with
# the value that names no file (stdout, kept in memory).
WRITTEN_KEYS: Final = {
    "outbox.path": "",
    "checkpoint.path": "",
    "sinks[].path": "-",
    "sinks[].threads_path": MEMORY,
    "output": "-",
}
# File-like keys that need no check: the service creates them, and a missing one is normal.
UNCHECKED_FILE_KEYS: Final = frozenset({"state_file"})
_GRPC_TLS_KEYS: Final = frozenset(f"sources.falco_grpc.{name}" for name in ("ca", "cert", "key"))


Adjust = Callable[[cfg.Config], cfg.Config]


def checked(
    path: str | None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    adjust: Adjust | None = None,
    sections: frozenset[str] | None = None,
) -> cfg.Config:
    """The configuration, or :class:`detector.config.ConfigError` listing every problem.

    ``adjust`` applies what is not a plain key override (``run``'s delivery flags); its
    ConfigError's problems join the others. ``sections``: the top-level sections whose
    files, variables, rules and sinks the command uses (default: all, as ``run``); the
    structure of every section is checked either way (one file serves several commands).
    """
    config, problems = cfg.collect(path, environ, overrides)
    if config is not None and adjust is not None:
        try:
            config = adjust(config)
        except cfg.ConfigError as exc:
            config, problems = None, list(exc.problems)
    if config is not None:
        problems = problems_of(config, os.environ if environ is None else environ, sections)
    if config is None or problems:
        raise cfg.ConfigError("\n".join(map(str, problems)), problems)
    return config


def problems_of(
    config: cfg.Config, environ: Mapping[str, str], sections: frozenset[str] | None = None
) -> list[Problem]:
    """What is wrong with the files, variables, rules and sinks a decoded config names
    (in ``sections`` only, when given: see :func:`checked`)."""
    data = cfg.masked(config)  # plain data; the masked secrets are never looked at
    if sections is not None:
        data = {name: value for name, value in data.items() if name in sections}
    found = list(_key_problems(data, "", environ))
    if sections is None or "engine" in sections:
        found += _rule_problems(config.engine)
    if config.mode == "correlate" and (sections is None or "sinks" in sections):
        found += _sink_problems(config, {p.key.partition(".")[0] for p in found})
    return found


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, str, Any, Mapping[str, Any]]]:
    """``(key, name, value, the mapping holding it)`` for every leaf, depth first."""
    if isinstance(node, Mapping):
        for name, value in node.items():
            key = f"{prefix}.{name}" if prefix else str(name)
            if isinstance(value, Mapping | list):
                yield from _leaves(value, key)
            else:
                yield key, str(name), value, node
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _leaves(item, f"{prefix}[{i}]")


def _key_problems(
    data: Mapping[str, Any], prefix: str, environ: Mapping[str, str]
) -> Iterator[Problem]:
    for key, name, value, siblings in _leaves(data, prefix):
        if not value or not isinstance(value, str):
            continue
        general = re.sub(r"\[\d+\]", "[]", key)
        if general in _GRPC_TLS_KEYS and str(siblings.get("endpoint", "")).startswith("unix://"):
            continue  # the unix socket uses no TLS: leftover paths are not read
        check = FILE_KEYS.get(general) or FILE_CHECKS.get(name)
        if check is not None:
            if why := why_unreadable(Path(value)) or check(Path(value), siblings):
                yield Problem(key, why, value)
        elif name in ENV_KEYS and value not in environ:
            yield Problem(key, "environment variable is not set", value)
        elif general in WRITTEN_KEYS and value != WRITTEN_KEYS[general]:
            if why := why_uncreatable(Path(value)):
                yield Problem(key, why, value)


def engine_rules(engine: cfg.EngineSettings) -> list[ChainRule]:
    """The rules ``engine.*`` selects, compiled; ConfigError lists every rule error."""
    paths: list[str | Path] = [*engine.rules]
    if engine.builtin_rules:
        paths[:0] = builtin_rules_paths()
    elif not engine.rules:
        problem = Problem("engine.rules", "no rules: builtin_rules is false and rules is empty")
        raise cfg.ConfigError(str(problem), [problem])
    try:
        return load_rules(paths)
    except RuleError as exc:
        problems = [Problem("engine.rules", line) for line in exc.errors]
        raise cfg.ConfigError("\n".join(map(str, problems)), problems) from None


def _rule_problems(engine: cfg.EngineSettings) -> list[Problem]:
    try:
        engine_rules(engine)
    except cfg.ConfigError as exc:
        return list(exc.problems)
    return []


def _sink_problems(config: cfg.Config, already: set[str]) -> list[Problem]:
    """Build every sink the way run does (secrets resolved, URLs checked); skip the sinks
    whose files were already reported, so one mistake is one line."""
    found: list[Problem] = []
    for i, sink in enumerate(config.effective_sinks):
        key = f"sinks[{i}]" if config.sinks else "output"
        if key in already or any(k.startswith(key + ".") for k in already):
            continue
        try:
            build_sink(sink)
        except ValueError as exc:
            found.append(_sink_problem(key, str(exc), sink))
    return found


def _sink_problem(key: str, message: str, sink: Any) -> Problem:
    """``"webhook_url: an http(s) URL is required"`` → key ``sinks[0].webhook_url``."""
    name, sep, rest = message.partition(": ")
    kind = type(sink).__struct_config__.tag
    if sep and name.removesuffix("_file").removesuffix("_env") in sink.__struct_fields__:
        return Problem(f"{key}.{name}", f"{rest} ({kind} sink)")
    return Problem(key, f"{message} ({kind} sink)")
