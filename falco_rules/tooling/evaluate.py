"""A small evaluator of Falco conditions over test events (dicts of field values).

It mirrors libsinsp's semantics where the rules depend on them:

* A field the event does not have makes every comparison false, ``!=`` included (libsinsp
  cannot extract it, so the check fails); only ``not`` turns that into true.
* Multi-valued fields (a list, e.g. ``fd.ip`` = client and server address) match when any
  value matches; ``!=`` holds when no value equals the operand.
* Network fields (``fd.net``, ``fd.snet``, ``fd.cnet``, ``fd.rnet``, ``fd.lnet``) compare an
  address against CIDR operands for ``=``, ``!=`` and ``in``.
* ``pmatch`` is a path-prefix match on whole path components; ``glob`` is shell globbing.

The tree must be expanded first (:meth:`RuleSet.expanded_tree`); a macro left in it is an error.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from falco_rules.tooling import condition as cond
from falco_rules.tooling.errors import EvaluationError

Scalar = str | int | bool
FieldValue = Scalar | Sequence[Scalar]
EventFields = Mapping[str, FieldValue]

NETWORK_FIELDS: Final = frozenset({"fd.net", "fd.snet", "fd.cnet", "fd.rnet", "fd.lnet"})


def matches(tree: cond.Node, event: EventFields) -> bool:
    """Whether the expanded condition ``tree`` holds for ``event``."""
    if isinstance(tree, cond.And):
        return all(matches(item, event) for item in tree.items)
    if isinstance(tree, cond.Or):
        return any(matches(item, event) for item in tree.items)
    if isinstance(tree, cond.Not):
        return not matches(tree.item, event)
    if isinstance(tree, cond.MacroRef):
        raise EvaluationError(f"unexpanded macro {tree.name!r}: expand the condition first")
    return _check(tree, event)


def _values(event: EventFields, name: str) -> list[str] | None:
    raw = event.get(name)
    if raw is None:
        return None
    items = [raw] if isinstance(raw, str | int | bool) else list(raw)
    return [_text(item) for item in items]


def _text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check(check: cond.Check, event: EventFields) -> bool:
    values = _values(event, check.field)
    if check.op == "exists":
        return values is not None
    if values is None:
        return False
    operands = [v.text for v in check.values] if check.values is not None else []
    if check.value is not None:
        operands = [check.value.text]
    if check.field in NETWORK_FIELDS and check.op in ("=", "==", "!=", "in"):
        hit = any(_in_network(v, o) for v in values for o in operands)
        return not hit if check.op == "!=" else hit
    if check.op == "!=":
        return not any(_equal(v, operands[0]) for v in values)
    test = _OPERATORS.get(check.op)
    if test is None:
        raise EvaluationError(f"operator {check.op!r} is not supported by the evaluator")
    return any(test(v, o) for v in values for o in operands)


def _equal(value: str, operand: str) -> bool:
    if value == operand:
        return True
    number, other = _int(value), _int(operand)
    return number is not None and number == other


def _int(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None


def _number(value: str, operand: str) -> tuple[int, int]:
    left, right = _int(value), _int(operand)
    if left is None or right is None:
        raise EvaluationError(f"cannot compare {value!r} and {operand!r} as numbers")
    return left, right


def _in_network(value: str, operand: str) -> bool:
    try:
        address = ipaddress.ip_address(value)
        network = ipaddress.ip_network(operand, strict=False)
    except ValueError as exc:
        raise EvaluationError(f"bad address or network: {exc}") from exc
    return address.version == network.version and address in network


def _pmatch(value: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    return value == prefix or value.startswith(prefix + "/")


def _lt(value: str, operand: str) -> bool:
    left, right = _number(value, operand)
    return left < right


def _le(value: str, operand: str) -> bool:
    left, right = _number(value, operand)
    return left <= right


def _gt(value: str, operand: str) -> bool:
    left, right = _number(value, operand)
    return left > right


def _ge(value: str, operand: str) -> bool:
    left, right = _number(value, operand)
    return left >= right


_OPERATORS: Final[dict[str, Callable[[str, str], bool]]] = {
    "=": _equal,
    "==": _equal,
    "in": _equal,
    "intersects": _equal,
    "<": _lt,
    "<=": _le,
    ">": _gt,
    ">=": _ge,
    "contains": lambda v, o: o in v,
    "icontains": lambda v, o: o.lower() in v.lower(),
    "startswith": str.startswith,
    "endswith": str.endswith,
    "glob": fnmatch.fnmatchcase,
    "iglob": lambda v, o: fnmatch.fnmatchcase(v.lower(), o.lower()),
    "pmatch": _pmatch,
}
