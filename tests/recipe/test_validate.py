"""Validation reports every problem, with the step, the field and a hint."""

from __future__ import annotations

import time
from typing import Any

import pytest

from zocalo_nb import Recipe, RecipeValidationError
from zocalo_nb.errors import ZocaloNbError


def problems(data: dict[str, Any]) -> list[tuple[Any, Any, str]]:
    return [(p.step, p.field, p.message) for p in Recipe.from_dict(data).problems()]


def test_a_valid_recipe_validates_and_returns_itself(linear: dict) -> None:
    recipe = Recipe.from_dict(linear)
    assert recipe.validate() is recipe
    assert recipe.is_valid()


def test_every_problem_is_listed_not_just_the_first() -> None:
    data = {
        "1": {"queue": "a", "output": [2, 9]},
        "2": {"queue": "b", "output": {"success": 1}},
        "3": {"queue": 5},
        "x": {"queue": "c"},
        "start": [[1, {}], [7, {}]],
    }
    with pytest.raises(RecipeValidationError) as caught:
        Recipe.from_dict(data).validate()
    err = caught.value
    assert isinstance(err, ZocaloNbError)
    found = {(p.step, p.field) for p in err.problems}
    assert ("start", "[1]") in found  # start points at missing step 7
    assert (1, "output") in found  # link to missing step 9
    assert (3, "queue") in found  # queue is not a string
    assert ("x", None) in found  # key is not numeric
    assert any("cycle" in p.message for p in err.problems)  # 1 -> 2 -> 1
    assert any(p.step == 3 and "no link" in p.message for p in err.problems)
    assert all(p.hint for p in err.problems)
    assert f"{len(err.problems)} problems" in str(err)


@pytest.mark.parametrize(
    "data, expected",
    [
        ({}, (None, None, "the recipe is empty")),
        ({"1": {"queue": "a"}}, ("start", None, 'the "start" entry is missing')),
        (
            {"1": {"queue": "a"}, "start": []},
            ("start", None, "start is empty: nothing would ever run"),
        ),
        (
            {"1": {"queue": "a"}, "start": {"1": {}}},
            ("start", None, "start must be a list, not an object"),
        ),
        ({"1": {"queue": "a"}, "start": [[1]]}, ("start", "[0]", "entry [1] is not a pair")),
        (
            {"1": {"queue": "a"}, "start": [["start", {}]]},
            ("start", "[0]", "start points to itself"),
        ),
        (
            {"1": {"queue": "a"}, "start": [["1", {}]]},
            ("start", "[0]", 'entry points at "1", not a step id'),
        ),
        (
            {"1": {"queue": "a"}, "start": [[1, {}]], "error": ["start"]},
            ("error", "[0]", 'points to the "start" entry'),
        ),
        (
            {"1": {"queue": "a"}, "start": [[1, {}]], "error": ["error"]},
            ("error", "[0]", "points to itself"),
        ),
        (
            {"1": {"queue": "a"}, "start": [[1, {}]], "error": [4]},
            ("error", "[0]", "points at step 4, which is missing"),
        ),
        (
            {"1": {"queue": "a"}, "start": [[1, {}]], "error": {"a": 1}},
            ("error", None, "must be a list, not an object"),
        ),
        ({"1": "queue a", "start": [[1, {}]]}, (1, None, "a step must be an object, not a string")),
        (
            {"0": {"queue": "a"}, "1": {"queue": "a"}, "start": [[1, {}]]},
            (0, None, "step id 0 is not allowed"),  # read as 0 (as upstream), then refused
        ),
        (
            {"-1": {"queue": "a"}, "1": {"queue": "a"}, "start": [[1, {}]]},
            (-1, None, "step id -1 is not allowed"),
        ),
        (
            {0: {"queue": "a"}, "1": {"queue": "a"}, "start": [[1, {}], [0, {}]]},
            (0, None, "step id 0 is not allowed"),
        ),
        (
            {"1": {"queue": ""}, "start": [[1, {}]]},
            (1, "queue", 'queue must be a non-empty string, not ""'),
        ),
        (
            {"1": {"topic": ["t"]}, "start": [[1, {}]]},
            (1, "topic", 'topic must be a non-empty string, not ["t"]'),
        ),
        (
            {"1": {"queue": "a", "parameters": [1]}, "start": [[1, {}]]},
            (1, "parameters", "parameters must be an object, not a list"),
        ),
        (
            {"1": {"queue": "a", "transport-delay": -1}, "start": [[1, {}]]},
            (1, "transport-delay", "must be a number of seconds >= 0, not -1"),
        ),
        (
            {"1": {"queue": "a", "transport-delay": "5"}, "start": [[1, {}]]},
            (1, "transport-delay", 'must be a number of seconds >= 0, not "5"'),
        ),
        (
            {"1": {"queue": "a", "output": "2"}, "start": [[1, {}]]},
            (1, "output", 'link "2" is not a step id'),
        ),
        (
            {"1": {"queue": "a", "output": None}, "start": [[1, {}]]},
            (1, "output", "link null is not a step id"),
        ),
        (
            {"1": {"queue": "a", "output": [True]}, "start": [[1, {}]]},
            (1, "output", "link true is not a step id"),
        ),
        (
            {
                "1": {"queue": "a", "output": {"x": {"y": 2}}},
                "2": {"queue": "b"},
                "start": [[1, {}]],
            },
            (1, "output['x']", 'malformed link {"x": {"y": 2}}'),
        ),
        (
            {"1": {"queue": "a", "error": 1.5}, "start": [[1, {}]]},
            (1, "error", "malformed link 1.5"),
        ),
        (
            {"1": {"queue": "a", "output": 1}, "start": [[1, {}]]},
            (1, "output", "links form a cycle: 1 -> 1"),
        ),
        (
            {"1": {"queue": "a"}, "2": {"queue": "b"}, "start": [[1, {}]]},
            (2, None, "no link, start or error entry leads to this step"),
        ),
    ],
)
def test_each_rule_names_step_field_and_reason(data: dict, expected: tuple) -> None:
    assert expected in problems(data)


def test_a_bare_int_top_level_error_is_read_as_a_list() -> None:
    # Upstream's constructor crashes on this (TypeError); we accept it as [2].
    recipe = Recipe.from_dict(
        {"1": {"queue": "a"}, "2": {"queue": "b"}, "start": [[1, {}]], "error": 2}
    )
    assert recipe.validate().error == (2,)
    assert recipe.to_dict()["error"] == [2]


def test_error_steps_are_reachable_through_step_error_links() -> None:
    data = {"1": {"queue": "a", "error": [2]}, "2": {"queue": "mail"}, "start": [[1, {}]]}
    assert problems(data) == []


def test_named_channels_with_null_are_empty_not_invalid() -> None:
    data = {
        "1": {"queue": "a", "output": {"success": None, "failure": [2]}},
        "2": {"queue": "b"},
        "start": [[1, {}]],
    }
    assert problems(data) == []


def _chain(n: int) -> dict[str, Any]:
    data: dict[str, Any] = {str(i): {"queue": f"q{i}", "output": [i + 1]} for i in range(1, n)}
    data[str(n)] = {"queue": f"q{n}"}
    data["start"] = [[1, {}]]
    return data


def _diamonds(n: int) -> dict[str, Any]:
    """Every step links to the next two: 2**n paths, which upstream walks one by one."""
    data: dict[str, Any] = {}
    for i in range(1, n + 1):
        data[str(i)] = {"queue": "q", "output": [j for j in (i + 1, i + 2) if j <= n]}
    data["start"] = [[1, {}]]
    return data


def test_long_chains_and_many_paths_validate_in_linear_time() -> None:
    started = time.perf_counter()
    Recipe.from_dict(_chain(20_000)).validate()  # upstream: RecursionError
    Recipe.from_dict(_diamonds(2_000)).validate()  # upstream: ~2**2000 paths
    assert time.perf_counter() - started < 20  # a hang guard, not a benchmark


def test_a_cycle_deep_in_a_long_chain_is_found() -> None:
    data = _chain(5_000)
    data["5000"]["output"] = [17]
    found = Recipe.from_dict(data).problems()
    assert len(found) == 1 and found[0].message.startswith("links form a cycle: 17 -> 18")
