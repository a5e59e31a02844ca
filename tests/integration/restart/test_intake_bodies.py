"""The intake log keeps an audit webhook body as it arrived and replays it decoded again.

Real parts throughout: the segments on disk, the queue and the intake the HTTP receivers
use, the receiver's decoder with the early reject of the built-in rules. Older segments
(version 1, events only) are still replayed; a segment of a newer format is refused.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from structlog.testing import capture_logs

from correlation.event import Event
from detector import config as cfg
from detector.commands.run import build_intake, early_reject
from detector.delivery.checkpoint import Checkpointer
from detector.delivery.intake import Intake
from detector.delivery.intake_log import IntakeLog, LogVersionError
from detector.errors import UsageError
from detector.metrics import Metrics
from detector.pipeline import EventQueue
from detector.sources.k8s_audit import K8sAuditReceiver, audit_body_events
from tests.integration.restart.test_intake_covered import RULES, replayed
from tests.integration.restart.test_intake_log import events, segments
from tests.integration.run import scenario
from tests.integration.run.test_early_reject import lease_renewal
from tests.integration.support import shipped_engine

SOURCE = K8sAuditReceiver.name


def audit_body() -> bytes:
    """The attack's audit event, three lease renewals (ticks) and one bad item."""
    items: list[Any] = [lease_renewal(n) for n in range(3)]
    items.insert(1, {"kind": "Event", "apiVersion": "audit.k8s.io/v1"})  # no auditID
    return orjson.dumps(scenario.event_list() | {"items": items + scenario.audit_items()})


async def received(body: bytes) -> list[Event]:
    """What the receiver makes of ``body`` (ticks for the renewals, the bad item left out)."""
    receiver = K8sAuditReceiver(1 << 20, early_reject(shipped_engine()))
    decoded = await receiver.decode(body, 1000, 1000)
    assert decoded.rejected == {"missing_field": 1} and decoded.body == body
    return decoded.events


def logged_intake(directory: Path, covered: int = 0) -> tuple[Intake, IntakeLog, EventQueue]:
    queue = EventQueue(1000, Metrics())
    intake_log = IntakeLog(directory, Metrics(), covered=covered)
    intake = Intake(queue, intake_log)
    early = early_reject(shipped_engine())
    intake.decodes(SOURCE, lambda body: audit_body_events(body, early))
    return intake, intake_log, queue


async def opened(directory: Path) -> Intake:
    """An intake on an empty log, its (empty) replay done: it takes offers."""
    intake, _, queue = logged_intake(directory)
    assert await replayed(intake, queue) == []
    return intake


async def log_body_and_alerts(directory: Path, alerts_first: bool) -> tuple[bytes, list[Event]]:
    """The audit body and two Falco alerts offered and fsync'd, in that order or the
    other; the body and the events the receiver made of it."""
    scenario.rebase()
    body = audit_body()
    accepted = await received(body)
    intake = await opened(directory)
    offers = [(SOURCE, accepted, "k8s_audit@10.0.0.2", body),
              ("falco_http", events(0, 2), "falco_http@10.0.0.1", b"")]  # fmt: skip
    for offer in reversed(offers) if alerts_first else offers:
        assert intake.offer(*offer)
    await intake.committed()
    return body, accepted


async def test_an_audit_body_is_logged_as_it_arrived_and_replays_to_the_same_events(
    tmp_path: Path,
) -> None:
    scenario.rebase()
    body = audit_body()
    accepted = await received(body)
    assert len(accepted) == 4 and sum(1 for e in accepted if not e.id) == 3
    intake = await opened(tmp_path)
    assert intake.offer(SOURCE, accepted, "k8s_audit@10.0.0.2", body)
    await intake.committed()
    # no close(): as after kill -9
    [(seq, record)] = list(IntakeLog(tmp_path, Metrics()).tail())
    assert (seq, record.body, record.count, record.events) == (0, body, 4, [])
    assert [p.suffix for p in segments(tmp_path)] == [".seg2"]

    again, again_log, queue = logged_intake(tmp_path)
    assert again_log.next_seq == 4
    assert await replayed(again, queue) == accepted  # ticks, the attack's event, in order
    assert again.capture() == 4


async def test_a_body_cut_by_the_covered_seq_replays_only_its_uncovered_events(
    tmp_path: Path,
) -> None:
    _, accepted = await log_body_and_alerts(tmp_path, alerts_first=True)
    again, _, queue = logged_intake(tmp_path, covered=4)  # 2 alerts + 2 of the body's 4
    assert await replayed(again, queue) == accepted[2:]
    assert again.capture() == 6


async def test_a_body_that_no_longer_decodes_to_its_count_is_counted_and_left_as_a_hole(
    tmp_path: Path,
) -> None:
    body, _ = await log_body_and_alerts(tmp_path, alerts_first=False)
    metrics, queue = Metrics(), EventQueue(1000, Metrics())
    again = Intake(queue, IntakeLog(tmp_path, metrics))
    again.decodes(SOURCE, lambda body: audit_body_events(body)[:1])  # one of four
    with capture_logs() as logs:
        seen = await replayed(again, queue)
    assert seen == [*audit_body_events(body)[:1], *events(0, 2)]
    assert metrics.value("detector_intake_log_corrupt_total") == 1
    [entry] = [e for e in logs if e["event"] == "intake_log_body_unreadable"]
    assert (entry["reason"], entry["events"], entry["decoded"]) == ("count_mismatch", 4, 1)
    assert again.capture() == 6  # past the three missing events: the log can be deleted


def test_version_1_segments_are_still_read_then_appends_go_to_a_new_format_segment(
    tmp_path: Path,
) -> None:
    header = struct.Struct(">II")
    old = b""
    for first in (0, 2):  # two records as version 1 wrote them: four fields, events only
        payload = msgspec.msgpack.encode(["falco_http", "a", 7, events(first, 2)])
        old += header.pack(len(payload), zlib.crc32(payload)) + payload
    (tmp_path / f"{0:020d}.seg").write_bytes(old)
    log = IntakeLog(tmp_path, Metrics())
    assert log.next_seq == 4
    assert log.append("falco_http", "a", 7, events(4, 1))
    log.close()
    assert [p.name for p in segments(tmp_path)] == [f"{0:020d}.seg", f"{4:020d}.seg2"]
    replayed = [e for _, record in IntakeLog(tmp_path, Metrics()).tail() for e in record.events]
    assert replayed == events(0, 5)


def test_records_carry_zlibs_crc32_and_one_flipped_byte_of_a_body_is_caught(
    tmp_path: Path,
) -> None:
    # the checksum is computed with ISA-L's CRC-32: it must stay zlib's, or segments
    # written before (and read by older releases) would all look corrupt
    body = bytes(range(256)) * 1000  # a large body: the checksum runs over all of it
    log = IntakeLog(tmp_path, Metrics())
    assert log.append(SOURCE, "a", 7, events(0, 3), body)
    log.close()
    [path] = segments(tmp_path)
    data = bytearray(path.read_bytes())
    length, crc = struct.unpack(">II", data[:8])
    assert len(data) == 8 + length and crc == zlib.crc32(data[8:])
    data[8 + length // 2] ^= 0x01
    path.write_bytes(bytes(data))
    metrics = Metrics()
    again = IntakeLog(tmp_path, metrics)
    assert (again.next_seq, list(again.tail())) == (0, [])
    assert metrics.value("detector_intake_log_corrupt_total") == 1


def test_a_segment_of_a_newer_format_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    directory = tmp_path / "engine.ckpt.intake-log"
    directory.mkdir()
    newer = directory / f"{0:020d}.seg3"
    newer.write_bytes(b"whatever a later release writes")
    with pytest.raises(LogVersionError, match="seg3 is a segment of a newer format"):
        IntakeLog(directory, Metrics())
    config = cfg.load(environ={}, overrides={"checkpoint.path": str(tmp_path / "engine.ckpt")})
    checkpointer = Checkpointer(tmp_path / "engine.ckpt")
    checkpointer.restore(RULES, shipped_engine().config)
    with pytest.raises(UsageError, match="intake_log.path: .*newer format"):
        build_intake(config, EventQueue(10, Metrics()), Metrics(), checkpointer)
    assert newer.read_bytes() == b"whatever a later release writes"  # neither cut nor deleted
