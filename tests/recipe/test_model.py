"""The Recipe value: reading, writing, normalising and staying immutable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import RECIPES
from zocalo_nb import Recipe, RecipeError, RecipeParseError


def test_json_round_trip_keeps_unknown_fields_and_normalises_output(linear: dict) -> None:
    recipe = Recipe.from_dict(linear)
    data = recipe.to_dict()
    assert data["1"]["output"] == [2]  # a bare output becomes a list, as upstream does
    assert data["3"]["custom-field"] == {"kept": True}
    assert data["start"] == [[1, {"file": "{file}"}]]
    again = Recipe.from_json(recipe.to_json())
    assert again == recipe
    assert again.to_dict() == data


def test_step_ids_become_ints_and_steps_expose_typed_fields(linear: dict) -> None:
    recipe = Recipe.from_dict(linear)
    assert list(recipe) == [1, 2, 3]
    assert recipe[1].queue == "first"
    assert recipe[3].topic == "results" and recipe[3].queue is None
    assert recipe[1].outputs() == {"": (2,)}
    assert recipe.start == ((1, {"file": "{file}"}),)
    assert 2 in recipe and "2" not in recipe and len(recipe) == 3


def test_recipes_are_immutable_values(linear: dict) -> None:
    recipe = Recipe.from_dict(linear)
    linear["1"]["queue"] = "changed-after-load"
    assert recipe[1].queue == "first"
    with pytest.raises(TypeError):
        recipe[1].parameters["dcid"] = 5  # type: ignore[index]
    copy = recipe.to_dict()
    copy["1"]["queue"] = "mutated copy"
    assert recipe[1].queue == "first"
    replaced = recipe.replace_step(1, queue="other", transport_delay=5)
    assert replaced[1].queue == "other" and replaced[1].transport_delay == 5.0
    assert recipe[1].queue == "first"
    assert hash(recipe) == hash(Recipe.from_json(recipe.to_json()))
    with pytest.raises(RecipeError, match="step 9 is not in the recipe") as caught:
        recipe.replace_step(9, queue="x")
    assert caught.value.hint == "steps are 1, 2, 3"


def test_load_and_save(tmp_path: Path, linear: dict) -> None:
    path = Recipe.from_dict(linear).save(tmp_path / "r.json")
    loaded = Recipe.load(path)
    assert loaded == Recipe.from_dict(linear)
    assert loaded.source == str(path)
    assert "3 steps" in repr(loaded)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_example_recipe_loads_validates_and_round_trips(path: Path) -> None:
    recipe = Recipe.load(path).validate()
    assert Recipe.from_json(recipe.to_json()) == recipe
    assert json.loads(recipe.to_json()) == recipe.to_dict()


def test_missing_file_is_a_parse_error_with_hint(tmp_path: Path) -> None:
    with pytest.raises(RecipeParseError) as caught:
        Recipe.load(tmp_path / "nope.json")
    assert "nope.json" in str(caught.value) and caught.value.hint


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("{", "line 1"),
        ('{"1": {"queue": "a",}}', "line 1"),
        ("[1, 2]", "JSON object"),
        ('"just a string"', "JSON object"),
        ("", "not valid JSON"),
        (b"\xff\xfe\x00", "JSON"),
        ("[" * 100_000 + "]" * 100_000, "JSON"),
        ('{"1": {}, "01": {}, "1.0": {}, "start": []}', None),
    ],
)
def test_unreadable_input_is_a_parse_error(text: str | bytes, fragment: str | None) -> None:
    if fragment is None:  # readable: odd keys are validation problems, not parse errors
        assert Recipe.from_json(text).problems()
        return
    with pytest.raises(RecipeParseError) as caught:
        Recipe.from_json(text, source="x.json")
    assert fragment in str(caught.value) and caught.value.hint
    assert str(caught.value).startswith("x.json")


def test_duplicate_step_ids_are_rejected_when_reading() -> None:
    with pytest.raises(RecipeParseError, match="appears twice"):
        Recipe.from_dict({"1": {}, 1: {}, "start": [[1, {}]]})


def test_python_objects_json_cannot_carry_are_rejected() -> None:
    with pytest.raises(RecipeParseError, match="set"):
        Recipe.from_dict({"1": {"queue": "a", "parameters": {"x": {1, 2}}}, "start": [[1, {}]]})


def test_deeply_nested_dicts_are_a_parse_error() -> None:
    nested: dict = {}
    inner = nested
    for _ in range(5000):
        inner["x"] = {}
        inner = inner["x"]
    with pytest.raises(RecipeParseError, match="nested too deeply"):
        Recipe.from_dict({"1": {"queue": "a", "parameters": nested}, "start": [[1, {}]]})


def test_a_recipe_s_mappings_show_as_the_dicts_they_hold_and_stay_read_only() -> None:
    """Users looked at ``ready[2].parameters`` and saw ``mappingproxy({...})``."""
    import copy
    import json
    import pickle

    recipe = Recipe.from_dict(
        {"1": {"queue": "a", "parameters": {"t": "{t}", "n": {"x": 1}}}, "start": [[1, {}]]}
    )
    parameters = recipe[1].parameters
    assert repr(parameters) == "{'t': '{t}', 'n': {'x': 1}}"
    assert json.loads(json.dumps(parameters)) == {"t": "{t}", "n": {"x": 1}}
    with pytest.raises(TypeError, match="immutable"):
        parameters["t"] = "changed"  # type: ignore[index]
    with pytest.raises(TypeError):
        parameters["n"].update(x=2)
    assert copy.deepcopy(recipe) == recipe and pickle.loads(pickle.dumps(recipe)) == recipe
