"""The benchmark generator: seeded determinism, real formats, and sane ground truth."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.generate import STREAM, TRUTH, GenerateError, Params, generate
from bench.plant import KINDS

SMALL = Params(events=6_000, pods=200, rate=25.0, gap_s=20.0)


def _docs(out: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (out / STREAM).read_bytes().splitlines()]


def _digest(out: Path) -> str:
    return hashlib.sha256((out / STREAM).read_bytes() + (out / TRUTH).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("gen")
    return out, generate(out, SMALL)


def test_same_seed_same_bytes(tmp_path: Path, dataset: tuple[Path, dict[str, Any]]) -> None:
    generate(tmp_path, SMALL)
    assert _digest(tmp_path) == _digest(dataset[0])


def test_other_seed_other_bytes(tmp_path: Path, dataset: tuple[Path, dict[str, Any]]) -> None:
    generate(tmp_path, Params(**{**SMALL.__dict__, "seed": 8}))
    assert _digest(tmp_path) != _digest(dataset[0])


def test_counts_and_mix(dataset: tuple[Path, dict[str, Any]]) -> None:
    out, truth = dataset
    docs = _docs(out)
    assert len(docs) == SMALL.events == truth["counts"]["events"]
    falco = sum(1 for d in docs if "rule" in d)
    assert falco == truth["counts"]["falco"]
    assert 0.02 < falco / len(docs) < 0.05  # ~97% audit noise


def test_time_sorted(dataset: tuple[Path, dict[str, Any]]) -> None:
    times = [d.get("time") or d["requestReceivedTimestamp"] for d in _docs(dataset[0])]
    # Both formats are fixed-width UTC RFC 3339, so text order is time order up to the
    # fraction; compare the first 26 characters (microseconds).
    assert [t[:26] for t in times] == sorted(t[:26] for t in times)


def test_real_falco_shape(dataset: tuple[Path, dict[str, Any]]) -> None:
    alert = next(d for d in _docs(dataset[0]) if "rule" in d)
    assert list(alert) == sorted(alert)  # Falco writes keys sorted
    assert len(alert["time"]) == 30 and alert["time"].endswith("Z")  # 9 fractional digits
    assert isinstance(alert["output_fields"]["evt.time"], int)
    assert any(tag.startswith("T") for tag in alert["tags"])


def test_real_audit_shape(dataset: tuple[Path, dict[str, Any]]) -> None:
    docs = [d for d in _docs(dataset[0]) if "auditID" in d]
    event = docs[0]
    assert event["apiVersion"] == "audit.k8s.io/v1" and event["kind"] == "Event"
    assert len(event["requestReceivedTimestamp"]) == 27  # metav1.MicroTime
    bound = [d for d in docs if "extra" in d["user"]]
    assert bound, "apps call the API with pod-bound tokens"
    extra = bound[0]["user"]["extra"]
    assert extra["authentication.kubernetes.io/pod-name"][0]
    assert {d["annotations"]["authorization.k8s.io/decision"] for d in docs} == {"allow", "forbid"}


def test_truth_has_every_kind_with_its_evidence(dataset: tuple[Path, dict[str, Any]]) -> None:
    out, truth = dataset
    chains = truth["chains"]
    assert Counter(c["rule"] for c in chains) == {kind: 2 for kind in KINDS}
    text = (out / STREAM).read_text()
    for chain in chains:
        namespace, name = chain["pod"].split("/")
        assert name in text and namespace in text
        assert chain["first_ns"] < chain["last_ns"]
        assert chain["first"] < chain["last"]


def test_planted_pods_stay_out_of_noise(dataset: tuple[Path, dict[str, Any]]) -> None:
    out, truth = dataset
    text = (out / STREAM).read_text()
    for chain in truth["chains"]:
        name = chain["pod"].split("/")[1]
        # A key pod appears only in its own chain's few events (fan-out: 14 connections).
        assert text.count(name) <= 2 * 14, chain


def test_too_short_stream_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GenerateError, match="too short"):
        generate(tmp_path, Params(events=1000, pods=50))
