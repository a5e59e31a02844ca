"""``detector run --print-config`` masks webhook headers that carry credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from detector.cli import main

CONFIG = """
sinks:
  - type: webhook
    url: https://soc.example/hook
    headers:
      Authorization: "Bearer SECRET-printed-1"
      X-Api-Key: SECRET-printed-2
      X-Team: soc
"""


def test_print_config_masks_secret_headers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DETECTOR_CONFIG", raising=False)
    path = tmp_path / "detector.yaml"
    path.write_text(CONFIG)
    assert main(["run", "--config", str(path), "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "SECRET" not in out
    (sink,) = yaml.safe_load(out)["sinks"]
    assert sink["headers"] == {
        "Authorization": "********",
        "X-Api-Key": "********",
        "X-Team": "soc",
    }
