"""YAML with line numbers: plain Python values plus where each came from.

PyYAML's composer keeps a start mark on every node; we turn the node tree into
plain dicts/lists/scalars and keep the line of every mapping value and list item
next to it, so the rule compiler can report ``path:line: message`` for any field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml


@dataclass
class Located:
    """A parsed YAML document: ``value`` and the lines of its parts.

    ``lines`` maps ``id()`` of every dict/list inside ``value`` to the line it starts
    on, and ``key_lines`` maps ``(id(dict), key)`` to the line of that key.
    """

    path: str
    value: Any
    lines: dict[int, int] = field(default_factory=dict)
    key_lines: dict[tuple[int, str], int] = field(default_factory=dict)

    def line_of(self, obj: object, key: str | None = None, default: int = 1) -> int:
        """Line of ``obj`` (or of ``obj[key]``), 1-based; ``default`` when unknown."""
        if key is not None and (id(obj), key) in self.key_lines:
            return self.key_lines[(id(obj), key)]
        return self.lines.get(id(obj), default)

    def where(self, obj: object, key: str | None = None, default: int = 1) -> str:
        """``"path:line"`` for error messages."""
        return f"{self.path}:{self.line_of(obj, key, default)}"


def load_located(path: str, text: str) -> Located:
    """Parse one YAML document; raises ``ValueError("line: message")`` on bad YAML."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        located = Located(path, None)
        located.value = _convert(loader, node, located) if node is not None else None
        return located
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ValueError(f"{line}: invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"1: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()


def _convert(loader: yaml.SafeLoader, node: yaml.Node, located: Located) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        located.lines[id(result)] = node.start_mark.line + 1
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise yaml.MarkedYAMLError(
                    problem="mapping keys must be scalars", problem_mark=key_node.start_mark
                )
            if key in result:
                raise yaml.MarkedYAMLError(
                    problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                )
            result[key] = _convert(loader, value_node, located)
            located.key_lines[(id(result), str(key))] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        items: list[Any] = []
        located.lines[id(items)] = node.start_mark.line + 1
        for item in node.value:
            items.append(_convert(loader, item, located))
        return items
    return loader.construct_object(node, deep=True)
