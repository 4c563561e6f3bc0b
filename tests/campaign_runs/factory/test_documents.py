"""Untrusted YAML and JSON: no alias ever expands, nesting and size are capped, nothing ends in RecursionError."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from campaign_runs.factory.documents import (
    MAX_DEPTH,
    MAX_NODES,
    DocumentError,
    check_shape,
    load_json_object,
    load_yaml,
)
from hypothesis import given, settings
from hypothesis import strategies as st

# The 337-character value: nine levels of ten aliases each, 10**9 strings once expanded.
BOMB = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + level)}: &{chr(98 + level)} [{','.join(['*' + chr(97 + level)] * 10)}]\n" for level in range(8)
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (BOMB, "anchors (&a) are not allowed"),
        ("base: &b {x: 1}\nother:\n  <<: *b\n", "anchors (&b) are not allowed"),
        ("a: *undefined\n", "aliases (*undefined) are not allowed"),
        ("[" * 20_000 + "]" * 20_000, f"nested deeper than {MAX_DEPTH} levels"),
        ("{a: " * 5_000 + "1" + "}" * 5_000, f"nested deeper than {MAX_DEPTH} levels"),
        ("- " * 2_000 + "x", f"nested deeper than {MAX_DEPTH} levels"),
        ("[" + ",".join(["1"] * (MAX_NODES + 1)) + "]", f"more than {MAX_NODES} values"),
    ],
)
def test_hostile_yaml_is_refused_before_it_expands(text: str, words: str) -> None:
    with pytest.raises((yaml.YAMLError, DocumentError)) as raised:
        load_yaml(text)
    assert words in str(raised.value)


def test_yaml_over_the_byte_cap_is_refused_before_parsing() -> None:
    with pytest.raises(DocumentError, match="the limit is 1024"):
        load_yaml("x: " + "é" * 600, max_bytes=1024)


def test_yaml_within_the_caps_loads_as_safe_load_does() -> None:
    text = "a: [1, 2, {b: c}]\nd: 2026-01-05\ne: 'x'\n"
    assert load_yaml(text) == yaml.safe_load(text)
    assert load_yaml(json.dumps(nested(MAX_DEPTH - 1))) == nested(MAX_DEPTH - 1)


def test_python_tags_stay_refused() -> None:
    with pytest.raises(yaml.YAMLError):
        load_yaml("!!python/object/apply:os.system ['true']")


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_any_json_document_within_the_caps_loads_unchanged(value: Any) -> None:
    text = json.dumps(value)
    assert load_yaml(text) == yaml.safe_load(text)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=MAX_DEPTH + 1, max_value=5_000))
def test_any_depth_past_the_cap_is_a_document_error_never_a_recursion_error(depth: int) -> None:
    text = "[" * depth + "1" + "]" * depth
    with pytest.raises(yaml.YAMLError, match="nested deeper"):
        load_yaml(text)
    with pytest.raises(DocumentError, match="nested deeper"):
        load_json_object('{"a": ' + text + "}")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[1, 2]", "must be a JSON object"),
        ("{audience_size: 5}", "is not valid JSON"),
        ('{"a": &x [1]}', "is not valid JSON"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": ' + "[" * 20_000 + "]" * 20_000 + "}", "nested deeper"),
        ('{"a": "' + "x" * 70_000 + '"}', "the limit is 65536"),
    ],
)
def test_json_objects_are_parsed_strictly(text: str, words: str) -> None:
    with pytest.raises(DocumentError, match=words.replace("[", r"\[")):
        load_json_object(text)


def test_a_json_object_within_the_caps_is_returned() -> None:
    assert load_json_object('{"audience_size": 5, "tags": ["a"]}') == {"audience_size": 5, "tags": ["a"]}


def test_check_shape_counts_depth_and_nodes_without_recursion() -> None:
    check_shape({"a": nested(MAX_DEPTH - 1)})
    with pytest.raises(DocumentError, match="nested deeper"):
        check_shape({"a": nested(100_000)})
    with pytest.raises(DocumentError, match="more than 10 values"):
        check_shape(list(range(20)), max_nodes=10)


@pytest.mark.parametrize(
    ("text", "words"),
    [("a: 1\nb: 2\na: 3\n", "duplicate key 'a'"), ("? [1, 2]\n: x\n", "a key is a list or mapping")],
)
def test_duplicate_and_unhashable_keys_are_refused(text: str, words: str) -> None:
    with pytest.raises(yaml.YAMLError, match=re.escape(words)):
        load_yaml(text)
