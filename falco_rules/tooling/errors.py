"""The one exception tree of the rules tooling (drawn in the package docstring)."""

from __future__ import annotations


class RuleToolingError(Exception):
    """Base of every error raised by :mod:`falco_rules.tooling`."""


class ConditionSyntaxError(RuleToolingError):
    """A Falco condition that does not parse; ``str()`` shows the text with a caret."""

    def __init__(self, text: str, position: int, message: str) -> None:
        self.text = text
        self.position = position
        self.message = message
        caret = " " * position + "^"
        super().__init__(f"{message} at position {position}\n  {text}\n  {caret}")


class RuleFileError(RuleToolingError):
    """A rules file with problems; ``errors`` holds every ``path:line: message``."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


class EvaluationError(RuleToolingError):
    """The evaluator met an operator or a value it cannot apply."""


class CompilerUnavailable(RuleToolingError):
    """sysdig (the libsinsp filter compiler) is not installed or does not run."""
