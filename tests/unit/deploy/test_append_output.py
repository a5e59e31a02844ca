"""Every shipped falco.yaml snippet adds the fields the chains read to upstream alerts.

Upstream rules (Falco >= 0.41) carry neither the pod fields nor fd.sip/fd.sport; the chains
join on the pod (namespace + name, container.id as fallback), tell a replayed token by the
pod's own address (k8s.pod.ip) and count server endpoints (fd.sip:fd.sport). The snippets live
in four places; this keeps them from drifting apart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
WANTED = {"k8s.ns.name", "k8s.pod.name", "k8s.pod.uid", "k8s.pod.ip", "fd.sip", "fd.sport"}
_YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def _extra_fields(config: Any) -> set[str]:
    entries = config.get("append_output", []) if isinstance(config, dict) else []
    return {field for entry in entries for field in entry.get("extra_fields", [])}


def _from_file(path: Path) -> set[str]:
    return _extra_fields(yaml.safe_load(path.read_text(encoding="utf-8")))


def _from_markdown(path: Path) -> set[str]:
    found: set[str] = set()
    for block in _YAML_BLOCK.findall(path.read_text(encoding="utf-8")):
        if "append_output" in block:
            found |= _extra_fields(yaml.safe_load(block))
    return found


def _from_configmap(path: Path) -> set[str]:
    found: set[str] = set()
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        for text in (doc or {}).get("data", {}).values():
            found |= _extra_fields(yaml.safe_load(text))
    return found


@pytest.mark.parametrize(
    ("path", "read"),
    [
        ("deploy/compose/falco/config.d/lateral-chain.yaml", _from_file),
        ("deploy/kubernetes/configmap-falco.yaml", _from_configmap),
        ("README.md", _from_markdown),
        ("docs/operations.md", _from_markdown),
        ("falco_rules/README.md", _from_markdown),
    ],
)
def test_snippet_adds_the_fields_chains_use(path: str, read: Any) -> None:
    fields = read(ROOT / path)
    assert fields, f"{path}: no append_output extra_fields found"
    assert WANTED <= fields, sorted(WANTED - fields)
