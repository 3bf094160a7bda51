"""The fast paths of a recipe message through a service: the body sent is the JSON text
json.dumps would make, and a recipe read from messages is read once per process."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.recipe.strategies import any_recipe, valid_recipe
from zocalo_nb.dispatch.context import outgoing_for
from zocalo_nb.dispatch.envelope import NotARecipeMessage, RecipeMessage, SendBody
from zocalo_nb.transport.message import encode

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def received(
    recipe: dict[str, Any], payload: Any = None, path: list[Any] | None = None, **more: Any
) -> RecipeMessage:
    pointer = next(int(k) for k in recipe if k.isdigit())
    body = {"environment": {"ID": "r-1", **more}, "payload": payload, "recipe": recipe,
            "recipe-path": [0] if path is None else path, "recipe-pointer": pointer}  # fmt: skip
    return RecipeMessage.from_body(json.loads(json.dumps(body)), {"workflows-recipe": "True"})


PATHS = st.lists(st.integers() | st.booleans() | st.floats(allow_nan=False), max_size=4)


@given(valid_recipe(), JSON, JSON, PATHS)
def test_the_text_sent_is_what_json_dumps_makes_of_the_body(
    recipe: dict[str, Any], payload: Any, extra: Any, path: list[Any]
) -> None:
    message = received(recipe, payload, path, extra=extra)
    body = message.to_body(to_send=True)
    assert isinstance(body, SendBody)
    assert encode(body) == json.dumps(message.to_body()) == json.dumps(body)
    assert json.loads(encode(body)) == message.to_body()


def test_a_body_changed_after_it_was_made_is_sent_as_it_is_now() -> None:
    message = received(
        {"start": [[1, {}]], "1": {"queue": "a", "output": [2]}, "2": {"queue": "b"}}
    )
    (out,) = outgoing_for(message)
    body = out.body
    body["payload"] = {"changed": True}
    assert json.loads(encode(body))["payload"] == {"changed": True}
    del body["environment"]
    body["environment"] = {"ID": "moved"}  # key order changed: json.dumps's order
    assert encode(body) == json.dumps(body)
    body["recipe"] = {"1": {"queue": "elsewhere"}}
    assert json.loads(encode(body))["recipe"] == {"1": {"queue": "elsewhere"}}


def test_the_recipe_in_a_body_to_send_cannot_be_changed() -> None:
    message = received({"1": {"queue": "a"}, "start": [[1, {}]]})
    with pytest.raises(TypeError, match="immutable"):
        message.to_body(to_send=True)["recipe"][1] = {}  # type: ignore[index]
    plain = message.to_body()
    plain["recipe"]["1"]["queue"] = "b"  # a copy: changing it changes nothing else
    assert message.recipe[1].queue == "a"


def test_messages_of_one_recipe_share_one_read_recipe() -> None:
    recipe = {"start": [[1, {"x": 1}]], "1": {"queue": "a", "parameters": {"p": [1, 2]}}}
    first, second = received(recipe, 1), received(recipe, 2)
    assert first.recipe is second.recipe
    other = received({**recipe, "1": {"queue": "b"}})
    assert other.recipe is not first.recipe and other.recipe[1].queue == "b"


@given(any_recipe())
def test_a_recipe_read_from_the_cache_says_what_reading_it_says(recipe: Any) -> None:
    body = {"recipe": recipe, "recipe-pointer": 1, "payload": None}
    results = []
    for _ in range(2):  # the second reading comes from the cache when the first succeeded
        try:
            results.append(RecipeMessage.from_body(body).recipe.to_dict())
        except NotARecipeMessage as err:
            results.append(err.reason)
    assert results[0] == results[1]


def from_text(text: str) -> RecipeMessage:
    """A message read as services read one: with the text its body was decoded from."""
    return RecipeMessage.from_body(json.loads(text), {"workflows-recipe": "True"}, text=text)


STEPS = {"start": [[1, {}]], "1": {"queue": "a", "parameters": {"n": 1}}}


def test_a_recipe_seen_before_is_found_in_the_text_of_the_next_message() -> None:
    first = from_text(json.dumps({"recipe": STEPS, "recipe-pointer": 1, "payload": 1}))
    second = from_text(json.dumps({"recipe": STEPS, "recipe-pointer": 1, "payload": 2}))
    assert second.recipe is first.recipe


SEEN = json.dumps(STEPS)


@pytest.mark.parametrize(
    "trick",
    [
        # The same text elsewhere (a payload that carries a recipe), the message's own recipe
        # equal to it in Python (1.0 == 1) but not in JSON: the message's own is read.
        '{"payload": {"recipe": SEEN}, "recipe": OTHER, "recipe-pointer": 1}',
        # The key spelled with an escape, the text seen before under a plain "recipe" key in
        # the payload.
        '{"payload": {"recipe": SEEN}, "r\\u0065cipe": OTHER, "recipe-pointer": 1}',
        # The key twice: JSON readers take the last.
        '{"recipe": SEEN, "recipe": OTHER, "recipe-pointer": 1}',
    ],
)
def test_only_the_message_s_own_recipe_is_ever_taken_from_its_text(trick: str) -> None:
    seen = from_text(json.dumps({"recipe": STEPS, "recipe-pointer": 1}))
    other = SEEN.replace('"n": 1', '"n": 1.0')
    message = from_text(trick.replace("SEEN", SEEN).replace("OTHER", other))
    assert message.recipe is not seen.recipe
    assert type(message.recipe[1].parameters["n"]) is float
