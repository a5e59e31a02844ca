"""Every rule evaluated by libsinsp on real syscalls: the project's recording of attack actions.

tests/data/captures/README.md lists the commands; the recording has no container runtime, so
the container macro (and nothing else) stands in as ``(container.id = host)``
(falco_rules/tooling/recording.py). Each rule must fire on exactly the events listed here,
the negative rows (curl to loopback, ping) must fire nothing, and no filter error may appear.
Event numbers are the capture's own ``evt.num``.
"""

from __future__ import annotations

import pytest

from falco_rules.tooling import recording
from falco_rules.tooling.compile_check import Compiler
from tests.unit.falco_rules.helpers import rules

pytestmark = pytest.mark.integration

# rule -> the events it fires on (README row: command)
EXPECTED: dict[str, tuple[int, ...]] = {
    # 1: execve of nmap
    "LMD Network Scanner Launched in Pod": (252,),
    # 3: execve of nc -z; 14: execve of nc -l and of socat TCP-LISTEN
    "LMD Netcat or Socat Listen or Scan in Pod": (1302, 4882, 5074),
    # 15: execve of dig ... axfr
    "LMD DNS Service Enumeration in Pod": (5222,),
    # 3: nc's three non-blocking connects to 10.1.2.3:79-81; 6: curl to 10.1.2.3:80
    "LMD Tool Connected to Cluster Internal Address": (1434, 1448, 1462, 2656),
    # 2: bash /dev/tcp to 10.1.2.3 ports 21 and 22 (refused at once) and 80 (open)
    "LMD Shell Connected to Cluster Internal Address": (662, 920, 1178),
    # 7: curl to the API ClusterIP 10.96.0.1:6443
    "LMD Tool Connected to Kubernetes API": (3056,),
    # 4: curl to 169.254.169.254; 5: curl to [fd00:ec2::254]
    "LMD Cloud Metadata Service Contacted": (1856, 2256),
    # 9: cat .../serviceaccount/token; 10: cat .../serviceaccount/..data/token
    "LMD Service Account Token Read": (3684, 3906),
    # 11: socket(AF_INET, SOCK_RAW); 12: socket(AF_PACKET, SOCK_RAW) (the enter events)
    "LMD Raw Socket Opened in Pod": (4151, 4393),
}
# rows 8 and 13: every event of these processes must stay quiet
NEGATIVE_ROWS = (
    'proc.name = ping or (proc.name = curl and proc.cmdline contains "http://127.0.0.1/")'
)


def test_every_rule_has_its_expected_events() -> None:
    assert set(EXPECTED) == set(rules().rules)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rule_fires_on_exactly_its_events(compiler: Compiler, name: str) -> None:
    rs = rules()
    verdict = recording.fired(compiler, rs, rs.rules[name])
    assert verdict.ok, verdict.message
    assert verdict.events == EXPECTED[name]


def test_negative_rows_fire_nothing(compiler: Compiler) -> None:
    negatives = compiler.compile(NEGATIVE_ROWS)
    assert negatives.ok, negatives.message
    assert len(negatives.events) > 100  # both processes are really in the recording
    rs = rules()
    fired = {n for rule in rs.rules.values() for n in recording.fired(compiler, rs, rule).events}
    assert fired.isdisjoint(negatives.events)


def test_connections_the_recording_holds_and_the_rules_leave_alone(compiler: Compiler) -> None:
    # nmap to 127.0.0.2 (loopback), curl to 127.0.0.1, ping's UDP probe, dig's DNS query:
    # real connects, none to an internal or metadata address, none fires a connection rule.
    connects = compiler.compile("evt.type = connect and evt.dir = < and fd.typechar in (4, 6)")
    rs = rules()
    fired = {n for rule in rs.rules.values() for n in recording.fired(compiler, rs, rule).events}
    assert set(connects.events) - fired == {390, 398, 406, 3456, 4636, 5426}


def test_shipped_conditions_fire_nothing_on_the_host(compiler: Compiler) -> None:
    # Without the stand-in, "in a container" holds for no event: the stand-in is what the
    # positives depend on, and the shipped rules never fire on host processes.
    rs = rules()
    for rule in rs.rules.values():
        verdict = compiler.compile(rs.expanded_text(rule.condition))
        assert verdict.ok, verdict.message
        assert verdict.events == (), rule.name
