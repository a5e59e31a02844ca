"""A parser for Falco's condition language, producing a small AST with source spans.

Grammar (libsinsp's filter syntax, the subset rules use)::

    expr    := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | primary
    primary := "(" expr ")" | check | MACRO
    check   := FIELD ( "exists" | CMP value | LISTOP "(" [value ("," value)*] ")" )
    value   := '"' ... '"' | "'" ... "'" | bare word (up to space, comma or parenthesis)

A bare identifier that is not followed by an operator is a macro reference. Values keep their
span in the source text, so list names inside ``in (...)`` can be substituted textually for
the real compiler (see :mod:`falco_rules.tooling.ruleset`) without re-rendering the condition.
The lexer is driven by the parser: after ``=`` the value ``<`` (as in ``evt.dir = <``) is a
value, not an operator, which a context-free tokenizer would get wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from falco_rules.tooling.errors import ConditionSyntaxError

# Longest first, so "<=" wins over "<"; word operators need a word boundary after them.
COMPARE_OPS: Final = ("==", "!=", "<=", ">=", "=", "<", ">")
WORD_COMPARE_OPS: Final = (
    "icontains",
    "bcontains",
    "contains",
    "bstartswith",
    "startswith",
    "endswith",
    "iglob",
    "glob",
    "regex",
)
LIST_OPS: Final = ("intersects", "pmatch", "in")
UNARY_OPS: Final = ("exists",)
KEYWORDS: Final = frozenset({"and", "or", "not"})

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*(\[[^\]]*\])?")
_BARE = re.compile(r"[^\s(),]+")


@dataclass(frozen=True, slots=True)
class Value:
    """A literal operand; ``start``/``end`` locate it in the condition text."""

    text: str
    start: int
    end: int
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class Check:
    """``field op value``, ``field op (values)`` or ``field exists``."""

    field: str
    op: str
    value: Value | None = None
    values: tuple[Value, ...] | None = None


@dataclass(frozen=True, slots=True)
class MacroRef:
    """A bare name standing for a macro's condition."""

    name: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


Node = Check | MacroRef | Not | And | Or


def parse(text: str) -> Node:
    """Parse one condition; raises :class:`ConditionSyntaxError` with the failing position."""
    parser = _Parser(text)
    node = parser.expr()
    parser.skip_ws()
    if parser.pos != len(text):
        raise parser.error("unexpected text after the condition")
    return node


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str) -> ConditionSyntaxError:
        return ConditionSyntaxError(self.text, self.pos, message)

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def keyword(self, word: str) -> bool:
        """Consume ``word`` if it is next and ends at a word boundary."""
        self.skip_ws()
        end = self.pos + len(word)
        if self.text[self.pos : end] != word:
            return False
        if end < len(self.text) and (self.text[end].isalnum() or self.text[end] in "_.-["):
            return False
        self.pos = end
        return True

    def expr(self) -> Node:
        items = [self.conjunction()]
        while self.keyword("or"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self) -> Node:
        items = [self.negation()]
        while self.keyword("and"):
            items.append(self.negation())
        return items[0] if len(items) == 1 else And(tuple(items))

    def negation(self) -> Node:
        if self.keyword("not"):
            return Not(self.negation())
        return self.primary()

    def primary(self) -> Node:
        self.skip_ws()
        if self.text.startswith("(", self.pos):
            self.pos += 1
            node = self.expr()
            self.skip_ws()
            if not self.text.startswith(")", self.pos):
                raise self.error("expected ')'")
            self.pos += 1
            return node
        match = _IDENT.match(self.text, self.pos)
        if match is None or match.group(0) in KEYWORDS:
            raise self.error("expected a field, a macro or '('")
        self.pos = match.end()
        return self.check_or_macro(match.group(0), match.start())

    def check_or_macro(self, name: str, start: int) -> Node:
        for op in UNARY_OPS:
            if self.keyword(op):
                return Check(name, op)
        for op in LIST_OPS:
            if self.keyword(op):
                return Check(name, op, values=self.value_list())
        compare = self.compare_op()
        if compare is None:
            return MacroRef(name, start, start + len(name))
        return Check(name, compare, value=self.value())

    def compare_op(self) -> str | None:
        self.skip_ws()
        for op in COMPARE_OPS:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        for op in WORD_COMPARE_OPS:
            if self.keyword(op):
                return op
        return None

    def value_list(self) -> tuple[Value, ...]:
        self.skip_ws()
        if not self.text.startswith("(", self.pos):
            raise self.error("expected '(' after a list operator")
        self.pos += 1
        values: list[Value] = []
        while True:
            self.skip_ws()
            if self.text.startswith(")", self.pos):
                self.pos += 1
                return tuple(values)
            if values:
                if not self.text.startswith(",", self.pos):
                    raise self.error("expected ',' or ')' in a value list")
                self.pos += 1
            values.append(self.value())

    def value(self) -> Value:
        self.skip_ws()
        start = self.pos
        if start < len(self.text) and self.text[start] in "\"'":
            return self.quoted(self.text[start])
        match = _BARE.match(self.text, start)
        if match is None:
            raise self.error("expected a value")
        self.pos = match.end()
        return Value(match.group(0), start, self.pos)

    def quoted(self, quote: str) -> Value:
        start = self.pos
        out: list[str] = []
        self.pos += 1
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if char == quote:
                return Value("".join(out), start, self.pos, quoted=True)
            out.append(char)
        self.pos = start
        raise self.error("unterminated string")


def walk(node: Node) -> list[Node]:
    """Every node of the tree, depth first (parents before children)."""
    found: list[Node] = [node]
    if isinstance(node, Not):
        found += walk(node.item)
    elif isinstance(node, And | Or):
        for item in node.items:
            found += walk(item)
    return found


def fields_of(node: Node) -> set[str]:
    """The field names a (macro-expanded) tree reads."""
    return {n.field for n in walk(node) if isinstance(n, Check)}


def render(check: Check) -> str:
    """One check as condition text (quoted values re-quoted), to run it on its own."""
    if check.values is not None:
        return f"{check.field} {check.op} ({', '.join(_literal(v) for v in check.values)})"
    if check.value is not None:
        return f"{check.field} {check.op} {_literal(check.value)}"
    return f"{check.field} {check.op}"  # exists


def _literal(value: Value) -> str:
    if not value.quoted:
        return value.text
    escaped = value.text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
