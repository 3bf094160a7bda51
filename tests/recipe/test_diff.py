"""diff() compares graphs, not numbers."""

from __future__ import annotations

from zocalo_nb import Recipe, diff

A = {
    "1": {"queue": "find", "output": {"success": [2], "failure": [3]}},
    "2": {"queue": "store", "parameters": {"x": 1}},
    "3": {"queue": "mail"},
    "start": [[1, {}]],
}
RENUMBERED = {
    "10": {"queue": "find", "output": {"success": 30, "failure": [20]}},
    "30": {"queue": "store", "parameters": {"x": 1}},
    "20": {"queue": "mail"},
    "start": [[10, {}]],
}


def test_renumbering_is_not_a_difference() -> None:
    result = diff(Recipe.from_dict(A), Recipe.from_dict(RENUMBERED))
    assert not result and str(result) == "no differences"
    assert result.matched == {1: 10, 2: 30, 3: 20}


def test_changed_fields_added_and_removed_steps_and_relinks() -> None:
    b = {**RENUMBERED, "30": {"queue": "store", "parameters": {"x": 2}}, "40": {"queue": "extra"}}
    b["20"] = {"queue": "mail", "output": [40]}
    result = diff(Recipe.from_dict(A), Recipe.from_dict(b))
    kinds = [(c.kind, c.step_a, c.step_b, c.field) for c in result.changes]
    assert ("changed", 2, 30, "parameters") in kinds
    assert ("changed", 3, 20, "output") in kinds
    assert ("added", None, 40, None) in kinds
    assert len(result) == 3
    assert "~ step 2 -> 30 parameters" in str(result)


def test_removed_step_and_changed_start() -> None:
    b = {
        "1": {"queue": "find", "output": {"success": [2]}},
        "2": {"queue": "store", "parameters": {"x": 1}},
        "start": [[1, {"n": 1}]],
    }
    result = diff(Recipe.from_dict(A), Recipe.from_dict(b))
    kinds = {(c.kind, c.field or c.step_a) for c in result.changes}
    assert (
        ("removed", 3) in kinds and ("changed", "output") in kinds and ("changed", "start") in kinds
    )
