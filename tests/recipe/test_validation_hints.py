"""How a validation error reads: every problem with its hint, each hint once."""

from __future__ import annotations

import pytest

from zocalo_nb import Recipe, RecipeError


def test_a_single_problem_s_hint_is_printed_once() -> None:
    with pytest.raises(RecipeError) as raised:
        Recipe.from_dict({"1": {"queue": "a", "output": [7]}, "start": [[1, {}]]}).validate()
    text = str(raised.value)
    assert text.count("add the step or correct the id") == 1
    assert raised.value.hint == "add the step or correct the id"  # still there for code


def test_several_problems_each_keep_their_hint_and_one_summary_hint() -> None:
    with pytest.raises(RecipeError) as raised:
        Recipe.from_dict(
            {"1": {"queue": "a", "output": [7]}, "2": {"output": [9]}, "start": [[1, {}]]}
        ).validate()
    text = str(raised.value)
    assert text.count("(hint: ") >= 2 and text.endswith("hint: fix each problem listed above")
