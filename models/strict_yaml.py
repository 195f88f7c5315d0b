"""YAML and JSON as every dcoflow reader parses them: duplicate keys refused, depth bounded.

PyYAML keeps the last of two equal keys and both parsers recurse once per nesting level, so a
hand-edited file with a repeated key silently loses a value and a ``[[[[…`` file ends in a
RecursionError. Here a repeated key is a ``yaml.YAMLError`` naming its line, and too deep a
document is a ``yaml.YAMLError`` (YAML) or a ``ValueError`` (JSON): the exceptions each reader
already turns into its own error naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

MERGE_TAG = "tag:yaml.org,2002:merge"


class StrictLoader(yaml.CSafeLoader):
    """``CSafeLoader`` that refuses a mapping with the same key twice (merge keys may override)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: SafeConstructor reports it below
                continue
            if duplicate:
                raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(stream: str | bytes | IO[str] | IO[bytes]) -> Any:
    """One YAML document (None when empty)."""
    try:
        return yaml.load(stream, Loader=StrictLoader)
    except RecursionError as exc:
        raise yaml.YAMLError("document nested too deeply") from exc


def load_yaml_all(stream: str | bytes | IO[str] | IO[bytes]) -> list[Any]:
    """Every YAML document of a stream."""
    try:
        return list(_all(stream))
    except RecursionError as exc:
        raise yaml.YAMLError("document nested too deeply") from exc


def _all(stream: str | bytes | IO[str] | IO[bytes]) -> Iterator[Any]:
    yield from yaml.load_all(stream, Loader=StrictLoader)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: what is wrong and where (``duplicate key 'name' at line 4``)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        return exc.problem + (f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "")
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def load_json(data: str | bytes) -> Any:
    """JSON text; too deep a document is a ValueError like any other malformed JSON."""
    try:
        return json.loads(data)
    except RecursionError as exc:
        raise ValueError("JSON document nested too deeply") from exc
