"""Untrusted documents parsed with caps: YAML without aliases, JSON objects, both bounded in size, depth and nodes.

YAML anchors and aliases are refused while composing (an alias bomb never expands), a duplicate key while
constructing (PyYAML would keep the last one silently), and so is nesting past
``max_depth`` (PyYAML composes recursively: deep nesting would otherwise end in ``RecursionError``). Every
check is linear in the size of the text.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent, CollectionStartEvent, NodeEvent

MAX_DEPTH = 16  # a campaign definition nests four levels; params and conf rarely more than two
MAX_NODES = 20_000  # scalars, mappings and sequences of one document
MAX_YAML_BYTES = 256 * 1024
MAX_JSON_BYTES = 64 * 1024


class DocumentError(ValueError):
    """A document refused: too large, too deep, too many nodes, an alias, or not valid JSON/YAML."""


class DocumentTooLargeError(ComposerError):  # type: ignore[misc]  # PyYAML ships no type hints
    """A YAML document past a cap (depth or nodes), raised while composing."""


class _CappedLoader(yaml.SafeLoader):  # type: ignore[misc]
    """PyYAML's safe loader that refuses anchors and aliases and stops at ``max_depth`` and ``max_nodes``."""

    max_depth = MAX_DEPTH
    max_nodes = MAX_NODES

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            raise ComposerError(None, None, f"aliases (*{event.anchor}) are not allowed", event.start_mark)
        if isinstance(event, NodeEvent) and event.anchor is not None:
            raise ComposerError(None, None, f"anchors (&{event.anchor}) are not allowed", event.start_mark)
        self._nodes += 1
        if self._nodes > self.max_nodes:
            raise DocumentTooLargeError(None, None, f"more than {self.max_nodes} values", event.start_mark)
        nested = isinstance(event, CollectionStartEvent)
        if nested:
            self._depth += 1
            if self._depth > self.max_depth:
                raise DocumentTooLargeError(None, None, f"nested deeper than {self.max_depth} levels", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict) or key in seen:
                problem = "a key is a list or mapping" if isinstance(key, list | dict) else f"duplicate key {key!r}"
                raise ConstructorError(None, None, problem, key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(text: str, *, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """The YAML document of ``text`` (safe types only), or ``yaml.YAMLError`` / ``DocumentError`` saying why."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise DocumentError(f"the document is {size} bytes; the limit is {max_bytes}")
    loader = _CappedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def check_shape(value: Any, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Refuse a parsed value nested deeper than ``max_depth`` or holding more than ``max_nodes`` values."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    nodes = 0
    while pending:
        item, depth = pending.pop()
        nodes += 1
        if nodes > max_nodes:
            raise DocumentError(f"more than {max_nodes} values")
        if isinstance(item, dict | list | tuple):
            if depth + 1 > max_depth:
                raise DocumentError(f"nested deeper than {max_depth} levels")
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def _no_constant(name: str) -> Any:
    raise DocumentError(f"{name} is not a JSON number")


def load_json_object(text: str, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """A JSON object of at most ``max_bytes`` and ``max_depth`` levels, or ``DocumentError`` saying why."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise DocumentError(f"is {size} bytes; the limit is {max_bytes}")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise DocumentError(f"is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    except RecursionError:
        raise DocumentError(f"is nested deeper than {max_depth} levels") from None
    if not isinstance(value, dict):
        raise DocumentError('must be a JSON object such as {"audience_size": 10}')
    check_shape(value, max_depth=max_depth)
    return value


# The parser's words for what it read, in the user's.
_PARSER_WORDS = {"'<stream end>'": "the end of the text", "<stream end>": "the end of the text", "'<document start>'":
                 "the end of the text", "<block end>": "the end of the indented block"}  # fmt: skip


def _at(mark: Any) -> str:
    """``line 2, column 5`` of a PyYAML mark (counted from 1), "" without one."""
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def yaml_problem(error: yaml.YAMLError) -> str:
    """What is wrong with a YAML text, in the user's words and with line and column; never the parser's stream name."""
    if isinstance(error, yaml.reader.ReaderError):
        return f"the character U+{error.character:04X} at position {error.position + 1} is not allowed"
    problem, context = str(getattr(error, "problem", "") or ""), str(getattr(error, "context", "") or "")
    at, opened = _at(getattr(error, "problem_mark", None)), _at(getattr(error, "context_mark", None)) or "the start"
    if "flow mapping" in context or "flow sequence" in context:
        pair = "{}" if "mapping" in context else "[]"
        return f"the {pair[0]} opened at {opened} is not closed: a ',' or '{pair[1]}' is missing at {at}"
    if "quoted scalar" in context:
        return f"the quote opened at {opened} is not closed"
    if "simple key" in context or "expected ':'" in problem:
        return f"{opened} has no ':' (write key: value)"
    if "mapping values are not allowed" in problem:
        return f"a second ': ' at {at}: put a value that holds ': ' in quotes"
    if "cannot start any token" in problem:
        found = re.search(r"found character (.*) that cannot", problem)
        char = found.group(1) if found else "?"
        return f"a tab at {at}: indent with spaces" if char == "'\\t'" else f"{char} at {at} cannot start a value"
    if "block collection" in context or "block mapping" in context:
        return f"the indentation at {at} does not match the lines above it"
    for words, plain in _PARSER_WORDS.items():
        problem = problem.replace(words, plain)
    return (problem[:200] or "not valid YAML") + (f" at {at}" if at else "")


def document_problem(error: Exception) -> str:
    """A refused document in the user's words: a YAML error explained, any other refusal as it says."""
    return yaml_problem(error) if isinstance(error, yaml.YAMLError) else str(error)
