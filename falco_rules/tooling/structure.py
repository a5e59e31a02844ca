"""Structural checks of a Falco rules file, before any condition is parsed.

What Falco itself requires (keys per item kind, valid priorities) plus this project's own
contract: ``lmd_`` names, MITRE technique and tactic tags, ``source: syscall``, and outputs that
carry every field the correlation parser reads, in ``key=%field`` form so they land in the
JSON ``output_fields``. Every problem is reported with ``path:line``.
"""

from __future__ import annotations

import re
from typing import Any, Final

KINDS: Final = ("rule", "macro", "list", "required_engine_version", "required_plugin_versions")

ALLOWED_KEYS: Final[dict[str, frozenset[str]]] = {
    "rule": frozenset(
        {"rule", "desc", "condition", "output", "priority", "source", "tags", "enabled"}
        | {"exceptions", "warn_evttypes", "skip-if-unknown-filter", "append", "override"}
    ),
    "macro": frozenset({"macro", "condition", "append", "override"}),
    "list": frozenset({"list", "items", "append", "override"}),
    "required_engine_version": frozenset({"required_engine_version"}),
    "required_plugin_versions": frozenset({"required_plugin_versions"}),
}

REQUIRED_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "rule": ("rule", "desc", "condition", "output", "priority", "source", "tags"),
    "macro": ("macro", "condition"),
    "list": ("list", "items"),
}

PRIORITIES: Final = frozenset(
    {"emergency", "alert", "critical", "error", "warning", "notice", "info", "informational"}
    | {"debug"}
)

# Fields every rule output must carry (the correlation parser reads them).
REQUIRED_OUTPUT_FIELDS: Final = (
    "k8s.ns.name",
    "k8s.pod.name",
    "k8s.pod.uid",
    "container.id",
    "container.image.repository",
    "proc.name",
    "proc.cmdline",
    "proc.pname",
    "user.name",
)
# ... and network rules (those built on lmd_ip_connect) carry the connection too.
NETWORK_OUTPUT_FIELDS: Final = ("fd.sip", "fd.sport", "fd.cip", "fd.name", "fd.sip.name")

TECHNIQUE: Final = re.compile(r"T\d{4}(\.\d{3})?")
_OUTPUT_FIELD: Final = re.compile(r"(\w+)=%([A-Za-z0-9_.]+(?:\[[^\]]*\])?)")


def output_fields(output: str) -> list[str]:
    """Fields referenced as ``key=%field`` in an output string, in order."""
    return [m.group(2) for m in _OUTPUT_FIELD.finditer(output)]


def check_items(path: str, data: Any, lines: list[int]) -> list[str]:
    """Every structural problem of a loaded rules file, as ``path:line: message``."""
    if not isinstance(data, list):
        return [f"{path}:1: a rules file is a YAML sequence of items"]
    errors: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for index, item in enumerate(data):
        line = lines[index] if index < len(lines) else 0
        where = f"{path}:{line}"
        errors += [f"{where}: {e}" for e in _check_item(item)]
        kind = _kind(item)
        if kind in REQUIRED_KEYS and isinstance(item, dict):
            key = (kind, str(item.get(kind)))
            if key in seen:
                errors.append(f"{where}: duplicate {kind} {key[1]!r} (first at line {seen[key]})")
            seen.setdefault(key, line)
    engines = [i for i in data if _kind(i) == "required_engine_version"]
    if len(engines) != 1:
        errors.append(f"{path}:1: required_engine_version must appear exactly once")
    return errors


def _kind(item: Any) -> str:
    if not isinstance(item, dict):
        return ""
    kinds = [k for k in KINDS if k in item]
    return kinds[0] if len(kinds) == 1 else ""


def _check_item(item: Any) -> list[str]:
    kind = _kind(item)
    if not kind:
        return [f"an item needs exactly one of {', '.join(KINDS)}"]
    errors = [f"unknown key {k!r} in a {kind}" for k in item if k not in ALLOWED_KEYS[kind]]
    missing = [k for k in REQUIRED_KEYS.get(kind, ()) if item.get(k) in (None, "")]
    errors += [f"{kind} {item.get(kind)!r} is missing {k!r}" for k in missing]
    if missing:
        return errors
    if kind == "rule":
        errors += _check_rule(item)
    elif kind in ("macro", "list") and not str(item[kind]).startswith("lmd_"):
        errors.append(f"{kind} {item[kind]!r} must use the lmd_ prefix")
    elif kind == "list" and not _is_scalar_list(item["items"]):
        errors.append(f"list {item['list']!r}: items must be a list of scalars")
    elif kind == "required_engine_version" and not re.fullmatch(r"\d+\.\d+\.\d+", str(item[kind])):
        errors.append("required_engine_version must be MAJOR.MINOR.PATCH")
    return errors


def _is_scalar_list(items: Any) -> bool:
    return isinstance(items, list) and all(isinstance(i, str | int | float) for i in items)


def _check_rule(item: dict[str, Any]) -> list[str]:
    name = str(item["rule"])
    errors = []
    if not name.startswith("LMD "):
        errors.append(f"rule {name!r} must start with 'LMD '")
    if str(item["priority"]).lower() not in PRIORITIES:
        errors.append(f"rule {name!r}: unknown priority {item['priority']!r}")
    if item["source"] != "syscall":
        errors.append(f"rule {name!r}: source must be syscall")
    errors += [f"rule {name!r}: {e}" for e in _check_tags(item["tags"])]
    errors += [f"rule {name!r}: {e}" for e in _check_output(item)]
    return errors


def _check_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return ["tags must be a list of strings"]
    errors = []
    if not any(TECHNIQUE.fullmatch(t) for t in tags):
        errors.append("tags need a MITRE ATT&CK technique id (T1234 or T1234.001)")
    if not any(t.startswith("mitre_") for t in tags):
        errors.append("tags need a MITRE tactic tag (mitre_<tactic>)")
    return errors


def _check_output(item: dict[str, Any]) -> list[str]:
    present = set(output_fields(str(item["output"])))
    wanted = list(REQUIRED_OUTPUT_FIELDS)
    if "lmd_ip_connect" in str(item["condition"]):
        wanted += NETWORK_OUTPUT_FIELDS
    return [f"output lacks key=%{f}" for f in wanted if f not in present]
