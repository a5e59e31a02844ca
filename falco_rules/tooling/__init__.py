"""Checks for this project's Falco rules: a rules-file loader, a Falco-condition evaluator, the
sysdig (libsinsp) compile check on a real capture (``compile_check``) and the rules evaluated
on the project's syscall recording (``recording``).

Test and CI tooling only: nothing under ``detector/`` or ``correlation/`` imports it.

Exception tree (all in :mod:`falco_rules.tooling.errors`)::

    RuleToolingError
     ├── ConditionSyntaxError   a condition the parser cannot read (position + caret)
     ├── RuleFileError          a rules file with structural problems (all of them, path:line)
     ├── EvaluationError        an operator or value the evaluator cannot apply
     └── CompilerUnavailable    the sysdig binary is missing or cannot run
"""
