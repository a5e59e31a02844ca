"""Pure correlation library: normalized events, chain rules, the sequence engine.

No I/O (except the YAML rule loader reading the files it is given), no asyncio,
no wall clock, no global state. Exceptions::

    CorrelationError
     └── RuleError        a chain-rule file is invalid (carries every error with its location)
"""
