"""Bad input never escapes as KeyError/TypeError/RecursionError: only RecipeError, with a hint."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from zocalo_nb import Recipe, RecipeError

JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 12),
        st.floats(allow_nan=False),
        st.sampled_from(["1", "start", "error", "{a}", '{"x": 1}', "}", "{$REPLACE:a}"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "1",
                    "2",
                    "start",
                    "error",
                    "output",
                    "queue",
                    "topic",
                    "parameters",
                    "transport-delay",
                    "x",
                ]
            ),
            children,
            max_size=5,
        ),
    ),
    max_leaves=25,
)


def exercise(data: Any) -> None:
    try:
        recipe = (
            Recipe.from_dict(data) if isinstance(data, dict) else Recipe.from_json(json.dumps(data))
        )
    except RecipeError as err:
        assert err.hint
        return
    for finding in recipe.problems():
        assert finding.hint and finding.message
    recipe.lint()
    recipe.lint({"a": 1})
    recipe.apply_parameters({"a": [1], "x": {"y": 2}})
    recipe.to_dot()
    recipe.diff(Recipe.from_json(recipe.to_json()))
    assert Recipe.from_json(recipe.to_json()) == recipe
    if recipe.is_valid():
        recipe.merge(recipe)


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_arbitrary_json_values_only_raise_recipe_errors(data: Any) -> None:
    exercise(data)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["1", "2", "3", "start", "error"]), JSON, max_size=5))
def test_arbitrary_values_at_every_level_only_raise_recipe_errors(data: dict[str, Any]) -> None:
    exercise(data)


def test_huge_recipe_is_handled() -> None:
    data: dict[str, Any] = {str(i): {"queue": f"q{i}", "output": [i + 1]} for i in range(1, 50_000)}
    data["50000"] = {"queue": "last"}
    data["start"] = [[1, {}]]
    recipe = Recipe.from_json(json.dumps(data)).validate()
    assert len(recipe) == 50_000
    assert "s50000" in recipe.to_dot()
