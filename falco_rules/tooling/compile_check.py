"""Compile rule conditions with a real Falco filter compiler: libsinsp, as shipped in sysdig.

``sysdig -r <empty file> "<filter>"`` compiles the filter before it opens the capture. A bad
field or bad syntax prints ``filter error ...`` (or ``syntax error``); a good filter gets as far
as the reader, which fails on the empty file with ``Could not initialize reader``. Anything
else is neither verdict and is reported as such, never taken as a pass.

Debian's sysdig 0.29.3 carries an older libsinsp than current Falco. Fields that Falco has and
that libsinsp lacks are listed in :data:`NEWER_FIELDS` with the Falco version that has them and a
stand-in of the same type; :func:`for_compiler` substitutes them *for the compile step only* and
the report says so. Nothing else is rewritten.

Run ``python -m falco_rules.tooling.compile_check [rules.yaml]`` for a per-rule report.
"""

from __future__ import annotations

import re
import shutil
import subprocess  # noqa: S404 - runs the local sysdig binary with an argument list, no shell
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

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

_GOOD: Final = "Could not initialize reader"
_BAD: Final = ("filter error", "syntax error")


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    message: str
    substituted: tuple[str, ...] = ()


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
    """Runs sysdig's filter compiler; one empty capture file for all calls."""

    def __init__(self, binary: str = "sysdig", timeout_s: float = 20.0) -> None:
        found = shutil.which(binary)
        if found is None:
            raise CompilerUnavailable(f"{binary} not found; run scripts/ensure-sysdig.sh")
        self._binary = found
        self._timeout = timeout_s
        self._dir = tempfile.TemporaryDirectory(prefix="lmd-sysdig-")
        self._empty = Path(self._dir.name) / "empty.scap"
        self._empty.touch()

    def close(self) -> None:
        self._dir.cleanup()

    def compile(self, text: str, substitute: bool = True) -> Verdict:
        """Compile one filter (macros and lists already expanded).

        ``substitute=False`` skips the :data:`NEWER_FIELDS` stand-ins (to show they are needed).
        """
        filtered, substituted = " ".join(text.split()), tuple[str, ...]()
        if substitute:
            filtered, substituted = for_compiler(filtered)
        try:
            done = subprocess.run(  # noqa: S603 - fixed binary, argument list
                [self._binary, "-r", str(self._empty), filtered],
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
        if _GOOD in stderr:
            return Verdict(True, "compiled", substituted)
        return Verdict(False, f"no verdict from sysdig (rc={done.returncode}): {stderr}")


def rule_filters(ruleset: rs.RuleSet, rule: rs.Rule) -> dict[str, str]:
    """The filters to compile for one rule: its expanded condition and its output fields."""
    fields = output_fields(rule.output)
    return {
        "condition": ruleset.expanded_text(rule.condition),
        "output": " and ".join(f"{f} exists" for f in fields),
    }


def main(argv: list[str]) -> int:
    path = argv[0] if argv else str(Path(__file__).parents[1] / "lmd_rules.yaml")
    ruleset = rs.load(path)
    compiler = Compiler()
    failures = 0
    try:
        for rule in ruleset.rules.values():
            for part, text in rule_filters(ruleset, rule).items():
                verdict = compiler.compile(text)
                failures += not verdict.ok
                note = (
                    " (stand-ins for "
                    + ", ".join(f"{f}, in {NEWER_FIELDS[f].since}" for f in verdict.substituted)
                    + ")"
                )
                suffix = note if verdict.substituted else ""
                print(f"{'ok  ' if verdict.ok else 'FAIL'} {rule.name} [{part}]{suffix}")
                if not verdict.ok:
                    print(f"     {verdict.message}")
    finally:
        compiler.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
