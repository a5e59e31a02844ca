"""What the docs state that the code or the manifests can confirm, checked mechanically.

* every ``detector_*`` metric the docs name exists, with the labels they use, and every
  ``label="value"`` (or each alternative of a ``label=~"a|b"``) is a value the code sets;
* every audit-webhook kubeconfig snippet points at the correlator Service's ClusterIP and
  port as deploy/ declares them;
* the key table in docs/configuration.md *is* the generated table, whole;
* the Kafka version the compose section names is the image docker-compose.yml runs;
* every place that states the Falco gRPC socket's mode states the same one;
* relative links in the docs point at files that exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import yaml

from detector import config as cfg
from detector.commands.run import SOURCE_BUILDERS
from detector.metrics import ENDPOINTS, INTAKE_SOURCES, SPECS, Metrics
from detector.sources.events import EventsReceiver
from detector.sources.falco_grpc import FalcoGrpcSource
from detector.sources.falco_http import FalcoHttpReceiver
from detector.sources.k8s_audit import K8sAuditReceiver
from detector.sources.kafka_events import KafkaEventsSource
from detector.worker.metrics import FAMILIES as WORKER_FAMILIES

ROOT = Path(__file__).parents[3]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
MENTION = re.compile(r"\b(detector_[a-z_]+)(?:\{([^}]*)\})?")
MATCHER = re.compile(r'([a-z_]+)\s*(=~|!~|!=|=)\s*((?:"[^"]*"\|?)+)')
SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def _families() -> dict[str, tuple[str, ...]]:
    """Exported family name -> label names: the service's metrics (delivery's among
    them), read off its registry (prometheus_client has no public accessor for a
    collector's label names, hence ``_labelnames``)."""
    metrics = Metrics()
    collectors = metrics.registry._names_to_collectors  # noqa: SLF001 - see docstring
    found = {_base(name): tuple(c._labelnames) for name, c in collectors.items()}  # noqa: SLF001
    return found | dict(WORKER_FAMILIES)  # `detector worker`'s own /metrics


def _declared_values() -> dict[tuple[str, str], tuple[str, ...]]:
    return {(spec.name, label): v for spec in SPECS for label, v in spec.values.items()}


def _base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def _mentions() -> Iterator[tuple[str, str, str]]:
    for doc in DOCS:
        for match in MENTION.finditer(doc.read_text()):
            yield doc.name, match.group(1), match.group(2) or ""


def test_every_metric_the_docs_name_exists_with_those_labels_and_values() -> None:
    families = _families()
    values = _declared_values()
    problems = []
    for doc, name, selector in _mentions():
        family = _base(name)
        if family not in families:
            problems.append(f"{doc}: {name}: no such metric")
            continue
        for label, op, quoted in _selectors(selector):
            if label not in families[family]:
                problems.append(f"{doc}: {name}: no label {label!r}")
            elif op in ("=", "=~"):
                problems += _bad_values(doc, name, family, label, op, quoted, values)
    assert problems == []


def _selectors(selector: str) -> Iterator[tuple[str, str, str]]:
    for part in selector.split(","):
        part = part.strip()
        match = MATCHER.fullmatch(part)
        if match:
            yield match.group(1), match.group(2), match.group(3)
        elif re.fullmatch(r"[a-z_]+", part):
            yield part, "", ""  # `{sink}`: a label named, no value


def _bad_values(
    doc: str,
    name: str,
    family: str,
    label: str,
    op: str,
    quoted: str,
    values: dict[tuple[str, str], tuple[str, ...]],
) -> list[str]:
    known = values.get((family, label))
    if known is None:
        return [f"{doc}: {name}: label {label!r} has no declared values (metrics.SPECS)"]
    wanted = [v for v in re.findall(r'"([^"]*)"', quoted)]
    if op == "=":
        return [f"{doc}: {name}: {label}={v!r} is never set" for v in wanted if v not in known]
    alternatives = [alt for v in wanted for alt in v.split("|")]
    return [
        f"{doc}: {name}: {label}=~{alt!r} matches no value the code sets"
        for alt in alternatives
        if not any(re.fullmatch(alt, v) for v in known)
    ]


def test_the_checker_sees_a_wrong_label_value() -> None:
    values = _declared_values()
    assert _bad_values("t", "m", "detector_events_in", "source", "=", '"falco"', values)
    assert _bad_values(
        "t", "m", "detector_dropped_events", "reason", "=~", '"relay_.*|queue_full"', values
    ) == ["t: m: reason=~'queue_full' matches no value the code sets"]


def test_declared_intake_values_are_the_sources_names() -> None:
    receivers = [FalcoHttpReceiver, K8sAuditReceiver, EventsReceiver]
    names = {r.name for r in receivers} | {FalcoGrpcSource.name, KafkaEventsSource.name}
    names |= {key for key in SOURCE_BUILDERS if key.endswith("_file")}  # tailers: by key
    assert set(INTAKE_SOURCES) == names
    assert set(ENDPOINTS) == {r.path for r in receivers}


def _yaml_blocks(text: str) -> Iterator[str]:
    yield from re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)


def _kubeconfig_servers() -> Iterator[tuple[str, str]]:
    for doc in DOCS:
        for block in _yaml_blocks(doc.read_text()):
            data = yaml.safe_load(block)
            if isinstance(data, dict) and data.get("kind") == "Config":
                for cluster in data["clusters"]:
                    yield doc.name, cluster["cluster"]["server"]
    shipped = ROOT / "deploy/kubernetes/api-server/audit-webhook-kubeconfig.yaml"
    for cluster in yaml.safe_load(shipped.read_text())["clusters"]:
        yield shipped.name, cluster["cluster"]["server"]


def test_audit_webhook_kubeconfigs_point_at_the_correlator_service() -> None:
    manifests = yaml.safe_load_all((ROOT / "deploy/kubernetes/audit-receiver.yaml").read_text())
    service = next(m for m in manifests if m and m["kind"] == "Service")
    (port,) = [p["port"] for p in service["spec"]["ports"]]
    want = f"https://{service['spec']['clusterIP']}:{port}/k8s-audit"
    servers = list(_kubeconfig_servers())
    assert {doc for doc, _ in servers} >= {"README.md", "operations.md"}
    assert [(doc, server) for doc, server in servers if server != want] == []


def test_configuration_table_is_the_generated_table_whole() -> None:
    text = (ROOT / "docs/configuration.md").read_text()
    lines = text.splitlines()
    start = lines.index("| key | environment variable | type | default | meaning |")
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    assert "\n".join(lines[start:end]) + "\n" == cfg.render_reference(), (
        "docs/configuration.md is stale: replace its table with `python -m detector.config`"
    )
    assert text.count("| key | environment variable |") == 1


def test_compose_kafka_version_is_the_one_deploy_md_names() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    image = compose["services"]["kafka"]["image"]
    version = image.rpartition(":")[2]
    deploy = (ROOT / "docs/deploy.md").read_text()
    section = deploy[deploy.index("## 3. docker compose") :]
    assert re.findall(r"Apache Kafka (\d[\d.]*)", section) == [version]


def test_every_statement_of_the_grpc_socket_mode_agrees() -> None:
    places = [*DOCS, *(ROOT / "deploy").rglob("*.yaml")]
    modes = {
        (path.name, mode)
        for path in places
        for mode in re.findall(r"mode (0[0-7]{3})", path.read_text())
        if "socket" in path.read_text()
    }
    assert {mode for _, mode in modes} == {"0755"}, modes


def test_relative_links_point_at_files_that_exist() -> None:
    missing = []
    for doc in [*DOCS, ROOT / "CHANGELOG.md"]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                missing.append(f"{doc.relative_to(ROOT)}: {target}")
    assert missing == []
