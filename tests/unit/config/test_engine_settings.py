"""``engine.*`` keys reach the engine: allowlist file (replay's loader) and the caps."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from correlation.engine import Engine
from correlation.rules import builtin_rules_paths, load_rules
from detector import config as cfg
from detector.commands.run import build_engine_config
from detector.errors import UsageError
from detector.parse import parse_audit, parse_falco
from tests.integration.run import scenario
from tests.integration.support import spawn_run


def test_caps_and_lateness_map_onto_the_engine_config(tmp_path: Path) -> None:
    settings = cfg.load(
        environ={
            "DETECTOR_ENGINE__MAX_PARTIALS_PER_KEY": "7",
            "DETECTOR_ENGINE__MAX_PARTIALS_TOTAL": "70",
            "DETECTOR_ENGINE__MAX_PENDING": "3",
            "DETECTOR_ENGINE__MAX_IDENTITIES": "30",
            "DETECTOR_ENGINE__ALLOWED_LATENESS_S": "2.5",
        }
    ).engine
    engine = build_engine_config(settings)
    assert (engine.max_partials_per_key, engine.max_partials_total) == (7, 70)
    assert (engine.max_pending, engine.max_identities) == (3, 30)
    assert engine.lateness_ns == 2_500_000_000
    assert not engine.allowlist  # no file: nothing suppressed


def test_defaults_are_the_engines_own() -> None:
    from correlation.state import EngineConfig

    built, default = build_engine_config(cfg.EngineSettings()), EngineConfig()
    assert built.max_partials_total == default.max_partials_total
    assert built.max_identities == default.max_identities


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_cap_below_one_names_the_key(value: str) -> None:
    with pytest.raises(cfg.ConfigError, match="engine.max_pending"):
        cfg.load(environ={"DETECTOR_ENGINE__MAX_PENDING": value})


def test_the_allowlist_suppresses_the_attackers_namespace(tmp_path: Path) -> None:
    path = tmp_path / "allow.yaml"
    path.write_text("namespaces: [shop]\n")
    config = build_engine_config(cfg.EngineSettings(allowlist=str(path)))
    engine = Engine(load_rules(builtin_rules_paths()), config)
    for alert in scenario.falco_alerts():
        engine.process(parse_falco(alert))
    for item in scenario.audit_items():
        engine.process(parse_audit(item))
    assert engine.flush() == []
    assert engine.stats().suppressed == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, "cannot read allowlist"), ("namespace: [x]\n", "bad allowlist")],
)
def test_a_bad_allowlist_is_a_usage_error(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "allow.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(UsageError, match=message):
        build_engine_config(cfg.EngineSettings(allowlist=str(path)))


async def test_run_exits_2_at_start_on_a_missing_allowlist(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    process = await spawn_run(
        "--listen", "127.0.0.1:0", env={"DETECTOR_ENGINE__ALLOWLIST": str(missing)}
    )
    async with asyncio.timeout(20):
        _, stderr = await process.communicate()
    assert process.returncode == 2
    assert str(missing) in stderr.decode()
