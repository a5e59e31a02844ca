"""``detector incidents``, ``detector show`` and ``detector replay --report`` end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from detector.cli import main
from detector.web import assets
from tests.unit.incidents.scenario import PQR_PATH, SCENARIO, chains, filled_store, pqr_incident


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "incidents.sqlite3"
    filled_store(path).close()
    return path


def test_incidents_lists_one_line_per_incident(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["incidents", "--store", str(store_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    (pqr,) = [line for line in lines if pqr_incident() in line]
    assert "3 chain(s)" in pqr and "recon-token-pivot,exec-pivot,workload-pivot" in pqr


def test_incidents_filters_and_json(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["incidents", "--store", str(store_path), "--pod", "data/etl-worker-0", "--json"]
    assert main(args) == 0
    found = json.loads(capsys.readouterr().out)["incidents"]
    assert [inc["rules"] for inc in found] == [["imds-credential-theft"]]
    # the scenario is from 2026-11-27: nothing in it is within an hour of now
    assert main(["incidents", "--store", str(store_path), "--since", "1h"]) == 0
    assert capsys.readouterr().out.strip() == "no incidents"


def test_incidents_bad_filter_exits_2(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["incidents", "--store", str(store_path), "--severity", "urgent"]) == 2
    assert "severity must be one of" in capsys.readouterr().err


def test_missing_store_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["incidents", "--store", str(tmp_path / "none.sqlite3")]) == 2
    assert "cannot open the incident store" in capsys.readouterr().err


def test_show_prints_path_steps_and_timeline(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show", pqr_incident(), "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert f"path     {' → '.join(PQR_PATH)}" in out
    assert "shop:frontend → payments/payments-api-7b8c6d5f4-q4w2e  [T1609, T1021]" in out
    timeline = out.split("timeline:")[1]
    pqr = [c for c in chains() if c.incident == pqr_incident()]
    events = {s.event.id for c in pqr for s in c.steps}
    assert sum(1 for line in timeline.splitlines() if "↳" in line) == len(events)
    assert re.search(r"list secrets payments -> 403 DENIED", timeline)


def test_show_by_chain_id_and_unknown_id(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = next(c for c in chains() if c.rule == "exec-pivot")
    assert main(["show", chain.id, "--store", str(store_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == pqr_incident()
    assert main(["show", "inc-nothing", "--store", str(store_path)]) == 1
    assert "no incident or chain" in capsys.readouterr().err


def test_replay_report_is_one_offline_file_with_every_incident(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    files = [str(p) for p in sorted(SCENARIO.glob("*.jsonl"))]
    allowlist = ["--allowlist", str(SCENARIO / "allowlist.yaml")]
    args = ["replay", "--quiet", "--output", str(tmp_path / "c.jsonl"), "--report", str(report)]
    assert main([*args, *allowlist, *files]) == 0
    page = report.read_text()
    data = json.loads(
        re.search(r'<script type="application/json" id="lmd-data">(.*?)</script>', page, re.S)[1]
    )  # type: ignore[index]
    assert len(data["incidents"]) == 4 and set(data["details"]) == {
        i["id"] for i in data["incidents"]
    }
    assert data["details"][pqr_incident()]["path"] == PQR_PATH
    # everything inline: no script or stylesheet is fetched from anywhere
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"(?!data:)", page)
    for name in ("app.js", "vendor/cytoscape.min.js", "vendor/cytoscape-dagre.min.js", "app.css"):
        assert assets.static_file(name).decode() in page


def test_report_data_cannot_close_its_script_element(tmp_path: Path) -> None:
    page = assets.report("t", {"x": "</script><script>alert(1)</script>"})
    assert page.count("</script>") == 4  # the data block and the three scripts, nothing else
