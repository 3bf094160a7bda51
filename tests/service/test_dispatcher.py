"""The dispatcher: upstream requests in, runs out; bad requests to the DLQ with a reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.service.helpers import Collector, pipeline
from zocalo_nb.dispatch import submit
from zocalo_nb.service import ServiceRunner
from zocalo_nb.service.dispatcher import Dispatcher
from zocalo_nb.service.registry import UnknownService, find_service
from zocalo_nb.transport import MemoryBroker


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    pipeline().replace_step(1, parameters={"dcid": "{dcid}"}).save(recipes / "pipe.json")
    extra = {"1": {"queue": "extra.q"}, "start": [[1, {"x": "{dcid}"}]]}
    (recipes / "extra.json").write_text(json.dumps(extra))
    broker = MemoryBroker()
    dispatcher = Dispatcher(recipes, tmp_path / "logbook")
    runner = ServiceRunner([dispatcher.service()], broker=broker).start()
    yield broker, broker.connect(), tmp_path
    runner.stop()
    broker.close()


def test_named_recipes_are_merged_parameterised_and_started_with_the_guid(setup: Any) -> None:
    broker, client, tmp_path = setup
    first, extra = Collector(client, "pipe.a"), Collector(client, "extra.q")
    run = submit(["pipe", "extra"], {"dcid": 1234}, transport=client)
    broker.join()
    assert run.via_dispatcher and len(run.id) == 36
    (message,) = first.messages
    body = message.body
    assert body["environment"]["ID"] == run.id and body["environment"]["recipes"] == [
        "pipe",
        "extra",
    ]
    assert body["recipe"]["1"]["parameters"] == {"dcid": "1234"}
    assert sorted(body["recipe"]) == ["1", "2", "3", "4", "start"]  # merged, renumbered
    assert extra.messages[0].body["payload"] == {"x": "1234"}
    assert extra.messages[0].body["recipe-pointer"] == 4
    entry = json.loads(next((tmp_path / "logbook").rglob(f"{run.id}.json")).read_text())
    assert entry["request"]["parameters"]["dcid"] == 1234


def test_upstream_go_style_requests_with_custom_recipes_and_headers(setup: Any) -> None:
    broker, client, _ = setup
    custom = Collector(client, "custom.q")
    client.send(
        "processing_recipe",
        {
            "custom_recipe": {"1": {"queue": "custom.q"}, "start": [[1, {"hello": "{who}"}]]},
            "parameters": {"guid": "fixed-run-id", "who": "world"},
        },
        headers={"zocalo.go.user": "scientist", "zocalo.go.host": "ws01"},
    )
    broker.join()
    (message,) = custom.messages
    assert message.body["environment"]["ID"] == "fixed-run-id"
    assert message.body["environment"]["zocalo.go.user"] == "scientist"
    assert message.body["payload"] == {"hello": "world"}


@pytest.mark.parametrize(
    "request_body, reason",
    [
        ({"parameters": {}}, "the request names no recipe"),
        ({"recipes": ["nope"]}, "unknown recipe 'nope'"),
        ({"recipes": ["../etc/passwd"]}, "is not a plain name"),
        ({"recipes": "pipe"}, "'recipes' must be a list"),
        ({"recipes": ["pipe"], "parameters": [1]}, "'parameters' must be an object"),
        (
            {"custom_recipe": {"1": {"queue": "q", "output": 9}, "start": [[1, {}]]}},
            "custom_recipe: invalid recipe",
        ),
        (["not", "an", "object"], "the request is not a JSON object"),
    ],
)
def test_bad_requests_go_to_the_dlq_with_a_reason(
    setup: Any, request_body: Any, reason: str
) -> None:
    broker, client, _ = setup
    client.send("processing_recipe", request_body)
    broker.join()
    (dead,) = client.browse(client.dlq("processing_recipe"))
    assert reason in dead.headers["zocalo-nb-reason"]
    good = Collector(client, "pipe.a")
    submit(["pipe"], {"dcid": 1}, transport=client)
    broker.join()
    assert len(good.messages) == 1  # the dispatcher kept running


def test_services_are_found_by_name_prefix_or_suggestion() -> None:
    assert find_service("dispatcher").queues == ("processing_recipe",)
    assert find_service("disp").name == "dispatcher"
    with pytest.raises(UnknownService) as caught:
        find_service("dispatchr")
    assert "did you mean 'dispatcher'" in caught.value.hint
    with pytest.raises(UnknownService, match="no single service"):
        find_service("zzz")


def test_submit_can_send_a_custom_recipe_to_the_dispatcher(setup: Any) -> None:
    broker, client, _ = setup
    custom = Collector(client, "custom.q")
    run = submit(
        [],
        {"who": "me"},
        transport=client,
        custom_recipe={"1": {"queue": "custom.q"}, "start": [[1, {"by": "{who}"}]]},
    )
    broker.join()
    assert run.via_dispatcher
    (message,) = custom.messages
    assert message.body["environment"]["ID"] == run.id and message.body["payload"] == {"by": "me"}
