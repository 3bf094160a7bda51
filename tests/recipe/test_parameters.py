"""Parameter substitution: upstream's results, without its crashes or attribute access."""

from __future__ import annotations

from typing import Any

import pytest

from zocalo_nb import Recipe, RecipeParseError
from zocalo_nb.recipe.parameters import format_string, looks_like_json, placeholders

PARAMS = {"a": "x", "n": 7, "d": {"k": 3, "nested": {"z": "deep"}}, "l": [5, 6], "none": None}


def apply(value: Any, params: dict[str, Any] = PARAMS) -> Any:
    recipe = Recipe.from_dict({"1": {"queue": "q", "parameters": {"v": value}}, "start": [[1, {}]]})
    return recipe.apply_parameters(params)[1].to_dict()["parameters"]["v"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{a}_{missing}", "x_{missing}"),
        ("{{a}}", "{a}"),
        ("{a!r}", "'x'"),
        ("{missing!r}", "{missing}"),
        ("{a:>5}", "    x"),
        ("{n:03d}", "007"),
        ("{d[k]}", "3"),
        ("{d[nested][z]}", "deep"),
        ("{l[1]}", "6"),
        ("{missing[k]}", "{missing[k]}"),
        ("{none}", "None"),
        ("x{n:{a}}", "x7"),  # nested spec: 'x' (hex) applied to 7, as str.format does
        ("{a:{n}}", "x      "),
        ("plain text", "plain text"),
    ],
)
def test_upstream_semantics(text: str, expected: str) -> None:
    assert apply(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',  # JSON-like text: upstream raises TypeError
        '{"nested": {"b": [1, 2]}}',
        "}",  # upstream: ValueError "Single '}'"
        "{a",  # upstream: ValueError "expected '}'"
        "{0}",  # upstream: IndexError
        "{}",
        "{d[missing]}",  # upstream: KeyError
        "{missing:>5}",  # upstream: TypeError
        "{a[]}",
        "{a!x}",
    ],
)
def test_text_upstream_crashes_on_is_left_as_written(text: str) -> None:
    assert apply(text) == text


@pytest.mark.parametrize(
    "text", ["{d.__class__}", "{a.upper}", "{d[k].__class__.__mro__}", "{$REPLACE:d.keys}"]
)
def test_attribute_access_is_never_performed(text: str) -> None:
    result = apply(text)
    assert result in (text, None)
    assert "class" not in str(result) or result == text


def test_replace_substitutes_a_deep_copy_of_any_type() -> None:
    params = {"l": [1, {"x": 2}], "d": {"k": [3]}}
    data = {
        "1": {
            "queue": "q",
            "parameters": {
                "list": "{$REPLACE:l}",
                "item": "{$REPLACE:d[k]}",
                "gone": "{$REPLACE:nope}",
            },
        },
        "start": [[1, {"payload": "{$REPLACE:l}"}]],
    }
    result = Recipe.from_dict(data).apply_parameters(params)
    assert result[1].to_dict()["parameters"] == {"list": [1, {"x": 2}], "item": [3], "gone": None}
    assert result.start == ((1, {"payload": [1, {"x": 2}]}),)
    params["l"][1]["x"] = 99  # the recipe holds a copy
    assert result[1].to_dict()["parameters"]["list"] == [1, {"x": 2}]


def test_keys_queues_and_start_payloads_are_formatted_but_ids_are_not() -> None:
    data = {"1": {"queue": "{a}.q", "parameters": {"{a}_key": 1}}, "start": [[1, {"f": "{n}"}]]}
    result = Recipe.from_dict(data).apply_parameters(PARAMS)
    assert result[1].queue == "x.q"
    assert result[1].to_dict()["parameters"] == {"x_key": 1}
    assert result.start == ((1, {"f": "7"}),)


def test_applying_returns_a_new_recipe() -> None:
    recipe = Recipe.from_dict({"1": {"queue": "{a}"}, "start": [[1, {}]]})
    assert recipe.apply_parameters({"a": "b"})[1].queue == "b"
    assert recipe[1].queue == "{a}"


def test_parameters_must_be_a_mapping() -> None:
    recipe = Recipe.from_dict({"1": {"queue": "{a}"}, "start": [[1, {}]]})
    with pytest.raises(RecipeParseError, match="mapping"):
        recipe.apply_parameters(["a"])  # type: ignore[arg-type]


def test_placeholder_helpers() -> None:
    assert list(placeholders('{a}/{d[k]} {{x}} {0} {"j": 1}')) == ["a", "d[k]"]
    assert list(placeholders("{$REPLACE:files}")) == ["files"]
    assert looks_like_json('{"a": 1}') and not looks_like_json("{a}")
    assert format_string("no braces", {}) == "no braces"
