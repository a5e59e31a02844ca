"""Chain rules: the YAML model, its compiler and the shipped rule files.

``load_rules(paths)`` compiles rule files (all errors at once, as
:class:`RuleError`); ``builtin_rules_paths()`` lists the shipped files. The
format is documented in docs/chain-rules.md.
"""

from correlation.errors import RuleError
from correlation.rules.loader import builtin_rules_paths, load_rules
from correlation.rules.model import ChainRule, Step, parse_duration

__all__ = ["ChainRule", "RuleError", "Step", "builtin_rules_paths", "load_rules", "parse_duration"]
