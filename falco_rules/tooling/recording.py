"""Rules evaluated on the project's syscall recording, where every process ran on the host.

``tests/data/captures/attack-actions.scap`` (its README lists the commands) was recorded
without a container runtime: ``container.id`` is ``host`` for every event and the ``k8s.*``
fields are empty. To see which events a rule fires on, its "in a container" macro (and only
that macro) is replaced by ``(container.id = host)``; every other macro, list and check stays
as shipped, so libsinsp evaluates the real condition on real syscalls.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from falco_rules.tooling import ruleset as rs
from falco_rules.tooling.compile_check import Compiler, Verdict

CONTAINER_MACRO: Final = "lmd_container"
HOST_STAND_IN: Final = "(container.id = host)"


def on_host(ruleset: rs.RuleSet) -> rs.RuleSet:
    """``ruleset`` with the container macro standing in for "on the recording's host"."""
    if CONTAINER_MACRO not in ruleset.macros:
        raise KeyError(f"{ruleset.path} has no macro {CONTAINER_MACRO}")
    return dataclasses.replace(ruleset, macros={**ruleset.macros, CONTAINER_MACRO: HOST_STAND_IN})


def fired(compiler: Compiler, ruleset: rs.RuleSet, rule: rs.Rule) -> Verdict:
    """libsinsp's verdict on ``rule`` over the recording: ``events`` are the ones it fires on."""
    return compiler.compile(on_host(ruleset).expanded_text(rule.condition))
