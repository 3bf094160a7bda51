"""StepContext and the envelope: upstream's message format exactly."""

from __future__ import annotations

import logging

import pytest

from zocalo_nb.dispatch import (
    NotARecipeMessage,
    RecipeMessage,
    StepContext,
    is_recipe_message,
    start_messages,
)
from zocalo_nb.recipe import Recipe

RECIPE = Recipe.from_dict(
    {
        "1": {"queue": "a", "output": {"success": [2, 3], "failure": 4}},
        "2": {"queue": "b", "transport-delay": 30},
        "3": {"topic": "t", "queue": "c"},
        "4": {"queue": "mail"},
        "start": [[1, {"file": "x"}]],
    }
)


def ctx(pointer: int = 1, path: tuple[int, ...] = ()) -> StepContext:
    return StepContext(RecipeMessage(RECIPE, pointer, {"in": 1}, path, {"ID": "run-1"}))


def test_start_messages_are_upstream_envelopes() -> None:
    run_id, messages = start_messages(RECIPE, run_id="run-9")
    (out,) = messages
    assert run_id == "run-9"
    assert (out.kind, out.destination, out.headers) == ("queue", "a", {"workflows-recipe": "True"})
    assert out.body == {
        "environment": {"ID": "run-9"},
        "payload": {"file": "x"},
        "recipe": RECIPE.to_dict(),
        "recipe-path": [],
        "recipe-pointer": 1,
    }


def test_send_to_a_channel_follows_links_appends_the_path_and_honours_delays() -> None:
    context = ctx()
    assert context.send_to("success", {"out": 2}) == 2
    kinds = [
        (o.kind, o.destination, o.delay, o.body["recipe-pointer"], o.body["recipe-path"])
        for o in context.outbox
    ]
    assert kinds == [
        ("queue", "b", 30.0, 2, [1]),
        ("queue", "c", None, 3, [1]),
        ("topic", "t", None, 3, [1]),
    ]
    assert all(
        o.body["environment"] == {"ID": "run-1"} and o.body["payload"] == {"out": 2}
        for o in context.outbox
    )


def test_checkpoint_returns_to_the_same_step_without_extending_the_path() -> None:
    context = ctx(2, path=(1,))
    context.checkpoint({"again": True}, delay=5)
    (out,) = context.outbox
    assert (out.destination, out.delay, out.body["recipe-pointer"], out.body["recipe-path"]) == (
        "b",
        5,
        2,
        [1],
    )


def test_unwired_sends_are_recorded_and_logged_with_the_run_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = ctx()
    with caplog.at_level(logging.WARNING):
        assert context.send({"plain": "but the step has named outputs"}) == 0
        assert context.send_to("updates", {}) == 0
    assert [(u.step, u.channel, u.run_id) for u in context.unwired] == [
        (1, "", "run-1"),
        (1, "updates", "run-1"),
    ]
    assert "run run-1 step 1" in caplog.text and "'updates'" in caplog.text
    assert context.outbox == []


@pytest.mark.parametrize(
    "body, headers, reason",
    [
        ({"recipe": RECIPE.to_dict(), "recipe-pointer": 1}, {}, "no workflows-recipe header"),
        ("text", {"workflows-recipe": "True"}, "not a JSON object"),
        ({"recipe-pointer": 1}, {"workflows-recipe": "True"}, "lacks recipe"),
        (
            {"recipe": RECIPE.to_dict(), "recipe-pointer": 9},
            {"workflows-recipe": "true"},
            "9 is not a step",
        ),
        ({"recipe": [1], "recipe-pointer": 1}, {"workflows-recipe": 1}, "cannot be read"),
    ],
)
def test_bad_recipe_messages_say_why(body: object, headers: dict, reason: str) -> None:
    with pytest.raises(NotARecipeMessage, match=reason):
        RecipeMessage.from_body(body, headers)


def test_recipe_headers_are_read_as_upstream_does() -> None:
    assert all(is_recipe_message({"workflows-recipe": v}) for v in (True, "True", "true", 1))
    assert not is_recipe_message({"workflows-recipe": "False"}) and not is_recipe_message({})
    parsed = RecipeMessage.from_body(
        {
            "recipe": RECIPE.to_dict(),
            "recipe-pointer": "2",
            "payload": [1],
            "environment": {"ID": 5},
        },
        None,
    )
    assert (parsed.pointer, parsed.run_id, parsed.path) == (2, "5", ())
