"""Compile rule conditions with a real Falco filter compiler and run them on real events:
libsinsp, as shipped in Debian's sysdig, reading a recorded capture.

``sysdig -r <capture> -p '*%evt.num' "<filter>"`` compiles the filter, then evaluates it on
every event of the capture and prints the number of each event it accepts. A bad field or bad
syntax prints ``filter error ...`` (or ``syntax error``) before the first event. Some checks
only happen when libsinsp *evaluates* a field on an event: ``fd.sip.name startswith x``
compiles, then fails on the first socket event with ``fd.*ip.name filter only supports '='
and '!=' operators``. Compiling against an empty file (the reader fails before any event)
cannot see those, so the capture must hold real events: by default the project's own
recording, ``tests/data/captures/attack-actions.scap``. And because ``and`` short-circuits,
a check behind a condition that no recorded event meets is never evaluated:
:func:`isolated_checks` lists every field/operator check of a rule so each is run on its own.

Debian's sysdig 0.29.3 carries an older libsinsp than current Falco. Fields that Falco has and
that libsinsp lacks are listed in :data:`NEWER_FIELDS` with the Falco version that has them and a
stand-in of the same type; :func:`for_compiler` substitutes them *for the compile step only* and
the report says so. Nothing else is rewritten.

Run ``python -m falco_rules.tooling.compile_check [rules.yaml [capture.scap]]`` for a report.
"""

from __future__ import annotations

import re
import shutil
import subprocess  # noqa: S404 - runs the local sysdig binary with an argument list, no shell
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from falco_rules.tooling import condition as cond
from falco_rules.tooling import ruleset as rs
from falco_rules.tooling.errors import CompilerUnavailable
from falco_rules.tooling.structure import output_fields


@dataclass(frozen=True, slots=True)
class NewerField:
    """A field current Falco knows and libsinsp 0.29.3 does not."""

    since: str
    stand_in: str


# Both are string fields of libsinsp's k8s filtercheck after its API-server client was removed
# (the Falco 0.37 era; the first release is not pinned down) and of the container plugin bundled
# since Falco 0.41.0. Stand-ins are string fields 0.29.3 has: k8s.pod.id is k8s.pod.uid's
# legacy alias.
_SINCE: Final = "Falco 0.37-era libsinsp; container plugin in Falco >= 0.41"
NEWER_FIELDS: Final[dict[str, NewerField]] = {
    "k8s.pod.uid": NewerField(since=_SINCE, stand_in="k8s.pod.id"),
    "k8s.pod.ip": NewerField(since=_SINCE, stand_in="k8s.pod.name"),
}

CAPTURE: Final = Path(__file__).resolve().parents[2] / "tests/data/captures/attack-actions.scap"
_BAD: Final = ("filter error", "syntax error")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether libsinsp accepted and evaluated the filter, and the events it accepted."""

    ok: bool
    message: str
    substituted: tuple[str, ...] = ()
    events: tuple[int, ...] = ()


def for_compiler(text: str) -> tuple[str, tuple[str, ...]]:
    """``text`` with :data:`NEWER_FIELDS` replaced by their stand-ins, and which were replaced."""
    used = []
    for name, newer in NEWER_FIELDS.items():
        pattern = re.compile(rf"(?<![\w.]){re.escape(name)}(?![\w.])")
        if pattern.search(text):
            used.append(name)
            text = pattern.sub(newer.stand_in, text)
    return text, tuple(used)


class Compiler:
    """Runs sysdig's filter engine over one capture file, one process per filter."""

    def __init__(
        self, capture: Path = CAPTURE, binary: str = "sysdig", timeout_s: float = 20.0
    ) -> None:
        found = shutil.which(binary)
        if found is None:
            raise CompilerUnavailable(f"{binary} not found; run scripts/ensure-sysdig.sh")
        if not capture.is_file():
            raise CompilerUnavailable(f"capture {capture} is missing")
        self._binary = found
        self._capture = capture
        self._timeout = timeout_s

    def compile(self, text: str, substitute: bool = True) -> Verdict:
        """Compile one filter (macros and lists already expanded) and run it on the capture.

        ``substitute=False`` skips the :data:`NEWER_FIELDS` stand-ins (to show they are needed).
        """
        filtered, substituted = " ".join(text.split()), tuple[str, ...]()
        if substitute:
            filtered, substituted = for_compiler(filtered)
        try:
            done = subprocess.run(  # noqa: S603 - fixed binary, argument list
                [self._binary, "-r", str(self._capture), "-p", "*%evt.num", filtered],
                capture_output=True,
                text=True,
                timeout=self._timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CompilerUnavailable(f"{self._binary} did not run: {exc}") from exc
        stderr = done.stderr.strip()
        if any(marker in stderr for marker in _BAD):
            return Verdict(False, stderr, substituted)
        if done.returncode != 0 or stderr:
            return Verdict(False, f"no verdict from sysdig (rc={done.returncode}): {stderr}")
        events = tuple(int(line) for line in done.stdout.split())
        return Verdict(True, "compiled and evaluated", substituted, events)


def rule_filters(ruleset: rs.RuleSet, rule: rs.Rule) -> dict[str, str]:
    """The filters to compile for one rule: its expanded condition and its output fields."""
    fields = output_fields(rule.output)
    return {
        "condition": ruleset.expanded_text(rule.condition),
        "output": " and ".join(f"{f} exists" for f in fields),
    }


def isolated_checks(ruleset: rs.RuleSet, rule: rs.Rule) -> tuple[str, ...]:
    """Every check of the rule's expanded condition, rendered alone, in first-seen order.

    Run one by one on the capture, each meets every recorded event, so an operator libsinsp
    only refuses at evaluation time fails even where the full condition short-circuits first.
    """
    tree = ruleset.expanded_tree(rule.condition)
    found = [cond.render(node) for node in cond.walk(tree) if isinstance(node, cond.Check)]
    return tuple(dict.fromkeys(found))


def failures(compiler: Compiler, ruleset: rs.RuleSet, rule: rs.Rule) -> dict[str, str]:
    """What libsinsp refused for one rule: part or isolated check -> sysdig's message."""
    filters = dict(rule_filters(ruleset, rule))
    filters.update({f"check {text}": text for text in isolated_checks(ruleset, rule)})
    verdicts = {part: compiler.compile(text) for part, text in filters.items()}
    return {part: verdict.message for part, verdict in verdicts.items() if not verdict.ok}


def main(argv: list[str]) -> int:
    path = argv[0] if argv else str(Path(__file__).parents[1] / "lmd_rules.yaml")
    ruleset = rs.load(path)
    compiler = Compiler(Path(argv[1])) if len(argv) > 1 else Compiler()
    failed = 0
    for rule in ruleset.rules.values():
        problems = failures(compiler, ruleset, rule)
        failed += bool(problems)
        _, substituted = for_compiler(rule_filters(ruleset, rule)["output"])
        suffix = f" (output stand-ins for {', '.join(substituted)})" if substituted else ""
        print(f"{'FAIL' if problems else 'ok  '} {rule.name}{suffix}")
        for part, message in problems.items():
            print(f"     [{part}] {message}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
