"""Upstream parity: each test is named after the upstream behaviour it checks, and where the
upstream package can say what it does, compares with it (workflows 3.3, zocalo 1.5.0)."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import eventually
from tests.service.helpers import Collector
from zocalo_nb import dlq
from zocalo_nb.dispatch import RecipeMessage, StepContext, submit
from zocalo_nb.dlq.files import read
from zocalo_nb.errors import RecipeValidationError
from zocalo_nb.recipe import Recipe
from zocalo_nb.service import ServiceRunner
from zocalo_nb.service.dispatcher import Dispatcher
from zocalo_nb.transport import MemoryBroker

pytestmark = pytest.mark.upstream
ROOT = Path(__file__).resolve().parents[1]


class Recorder:
    """Enough of an upstream transport for a RecipeWrapper: what it sends, and how."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, dict[str, Any]]] = []

    def send(self, destination: str, message: Any, **kwargs: Any) -> None:
        self.sent.append((destination, message, kwargs))

    def raw_send(self, destination: str, message: Any, **kwargs: Any) -> None:
        self.send(destination, message, **kwargs)

    def broadcast(self, destination: str, message: Any, **kwargs: Any) -> None:
        self.sent.append((destination, message, kwargs))


RECIPE = {
    "1": {"queue": "work", "transport-delay": 300, "output": {"done": 2, "other": 3}},
    "2": {"queue": "next", "transport-delay": 7},
    "3": {"queue": "elsewhere"},
    "4": {"queue": "plain", "output": [2]},
    "start": [[1, {}]],
}


def contexts(step: int) -> tuple[StepContext, Any]:
    """Ours and upstream's wrapper of the same message at ``step``."""
    from workflows.recipe.wrapper import RecipeWrapper

    recipe = Recipe.from_dict(RECIPE)
    message = RecipeMessage(recipe, step, {"n": 1}, (), {"ID": "r1"})
    theirs = RecipeWrapper(message=message.to_body(), transport=Recorder())
    return StepContext(message), theirs


def test_checkpoint_ignores_the_steps_transport_delay_unless_a_delay_is_given() -> None:
    ours, theirs = contexts(1)
    ours.checkpoint({"n": 2})
    theirs.checkpoint({"n": 2})
    ours.checkpoint({"n": 3}, delay=5)
    theirs.checkpoint({"n": 3}, delay=5)
    assert [o.delay for o in ours.outbox] == [s[2]["delay"] for s in theirs.transport.sent]
    assert [o.delay for o in ours.outbox] == [0, 5]


def test_send_uses_the_default_channel_on_a_step_with_named_outputs() -> None:
    ours, theirs = contexts(1)
    assert ours.send({"n": 2}) == 0 and len(ours.unwired) == 1  # upstream: silently nothing
    theirs.send({"n": 2})
    assert theirs.transport.sent == []
    ours.set_default_channel("done")
    theirs.set_default_channel("done")
    assert ours.send({"n": 3}) == 1
    theirs.send({"n": 3})
    (out,) = ours.outbox
    ((destination, body, kwargs),) = theirs.transport.sent
    assert out.destination == destination == "next"
    assert out.delay == kwargs["delay"] == 7
    assert out.body["recipe-pointer"] == body["recipe-pointer"] == 2


def test_send_to_the_default_channel_uses_the_plain_outputs_of_a_step_without_named_ones() -> None:
    ours, theirs = contexts(4)
    ours.set_default_channel("done")
    theirs.set_default_channel("done")
    assert ours.send_to("done", {"n": 4}) == 1 and not ours.unwired
    theirs.send_to("done", {"n": 4})
    assert [o.destination for o in ours.outbox] == [d for d, _, _ in theirs.transport.sent]
    assert ours.send_to("other", {"n": 5}, optional=True) == 0  # still nowhere, as upstream


def test_replace_as_a_dict_key_is_substituted_like_upstream() -> None:
    from workflows.recipe import Recipe as UpstreamRecipe

    document = {
        "1": {
            "queue": "q",
            "parameters": {
                "{$REPLACE:name}": 1,
                "{$REPLACE:number}": 2,
                "{$REPLACE:flag}": 3,
                "{$REPLACE:missing}": 4,
                "plain": "{$REPLACE:number}",
            },
        },
        "start": [[1, []]],
    }
    parameters = {"name": "key", "number": 7, "flag": True}
    theirs = UpstreamRecipe(json.loads(json.dumps(document)))
    theirs.apply_parameters(parameters)
    expected = json.loads(json.dumps(theirs.recipe))["1"]["parameters"]
    ours = Recipe.from_dict(document).apply_parameters(parameters).to_dict()["1"]["parameters"]
    assert ours == expected == {"key": 1, "7": 2, "true": 3, "null": 4, "plain": 7}


def test_replace_as_a_key_with_a_value_no_key_can_hold_is_left_as_written() -> None:
    document = {"1": {"queue": "q", "parameters": {"{$REPLACE:l}": 1}}, "start": [[1, []]]}
    ours = Recipe.from_dict(document).apply_parameters({"l": [1, 2]})
    assert ours.to_dict()["1"]["parameters"] == {"{$REPLACE:l}": 1}  # upstream: TypeError


# -- the dispatcher ----------------------------------------------------------------------


@pytest.fixture
def recipes(tmp_path: Path) -> Path:
    folder = tmp_path / "recipes"
    folder.mkdir()
    named = {
        "1": {"queue": "named.a", "parameters": {"run": "{guid}"}, "output": 2},
        "2": {"queue": "named.b"},
        "start": [[1, {"from": "named"}]],
    }
    (folder / "named.json").write_text(json.dumps(named))
    return folder


CUSTOM = {"1": {"queue": "custom.q"}, "start": [[1, {"from": "custom"}]]}


def test_the_dispatcher_merges_the_custom_recipe_first_then_the_named_ones_like_upstream(
    recipes: Path,
) -> None:
    from workflows.recipe import Recipe as UpstreamRecipe

    ours = Dispatcher(recipes, filters={}, gates={}).recipe(["named"], CUSTOM, {"guid": "g"})
    theirs = UpstreamRecipe().merge(UpstreamRecipe(json.dumps(CUSTOM)))
    theirs = theirs.merge(UpstreamRecipe((recipes / "named.json").read_text()))
    theirs.apply_parameters({"guid": "g"})
    assert ours.to_dict() == json.loads(json.dumps(theirs.recipe))
    assert ours[1].queue == "custom.q" and ours[2].queue == "named.a"


def dispatched(
    recipes: Path, request: dict[str, Any], queue: str, **dispatcher: Any
) -> tuple[list[Any], MemoryBroker]:
    broker = MemoryBroker()
    client = broker.connect()
    arrived = Collector(client, queue)
    service = Dispatcher(recipes, **{"filters": {}, "gates": {}, **dispatcher}).service()
    with ServiceRunner([service], broker=broker):
        client.send("processing_recipe", request)
        broker.join()
    return arrived.messages, broker


def test_the_dispatcher_sets_the_guid_parameter_to_the_run_id(recipes: Path) -> None:
    messages, _ = dispatched(recipes, {"recipes": ["named"], "parameters": {}}, "named.a")
    (message,) = messages
    run_id = message.body["environment"]["ID"]
    assert uuid.UUID(run_id) and message.body["recipe"]["1"]["parameters"] == {"run": run_id}
    given, _ = dispatched(
        recipes, {"recipes": ["named"], "parameters": {"guid": "abc-1"}}, "named.a"
    )
    assert given[0].body["recipe"]["1"]["parameters"] == {"run": "abc-1"}


def test_the_dispatcher_runs_site_filters_before_loading_recipes(recipes: Path) -> None:
    seen: list[tuple[Any, Any]] = []

    def ispyb_like(message: dict[str, Any], parameters: dict[str, Any]) -> Any:
        seen.append((type(message["recipe"]).__name__, parameters.get("guid")))
        parameters["beamline"] = "i04"
        message["recipes"] = ["named"]  # a filter may choose the recipes
        message["custom_recipe"] = None
        return message, parameters

    request = {"recipes": [], "custom_recipe": CUSTOM, "parameters": {"guid": "g-1"}}
    messages, _ = dispatched(recipes, request, "named.a", filters={"ispyb": ispyb_like})
    assert seen == [("Recipe", "g-1")]
    assert messages[0].body["payload"] == {"from": "named"}


def test_a_failing_filter_sends_the_request_to_the_dlq_naming_the_filter(recipes: Path) -> None:
    def broken(message: dict[str, Any], parameters: dict[str, Any]) -> Any:
        raise LookupError("no such data collection")

    request = {"recipes": ["named"], "parameters": {}}
    messages, broker = dispatched(recipes, request, "named.a", filters={"ispyb": broken})
    assert messages == []
    (letter,) = dlq.frame(broker.connect()).itertuples()
    assert "filter 'ispyb' failed: LookupError: no such data collection" in letter.error


def test_a_gate_that_says_not_yet_sends_the_request_back_until_it_is_ready(
    recipes: Path,
) -> None:
    answers = iter([False, False, True])
    asked: list[str] = []

    def gate(message: dict[str, Any], parameters: dict[str, Any]) -> bool:
        asked.append(parameters["guid"])
        return next(answers)

    request = {"recipes": ["named"], "parameters": {"guid": "wait-1"}}
    messages, _ = dispatched(recipes, request, "named.a", gates={"ready": gate})
    assert asked == ["wait-1"] * 3  # the same run each time
    assert messages[0].body["environment"]["ID"] == "wait-1"


def test_a_gate_still_closed_at_expiry_sends_to_the_error_queue_or_the_dlq(
    recipes: Path,
) -> None:
    def closed(message: dict[str, Any], parameters: dict[str, Any]) -> bool:
        return False

    request = {
        "recipes": ["named"],
        "parameters": {"dispatcher_timeout": 0, "dispatcher_error_queue": "not.ready"},
    }
    messages, _ = dispatched(recipes, request, "not.ready", gates={"ready": closed})
    assert messages[0].body["recipes"] == ["named"]
    del request["parameters"]["dispatcher_error_queue"]  # type: ignore[attr-defined]
    _, broker = dispatched(recipes, request, "not.ready", gates={"ready": closed})
    (letter,) = dlq.frame(broker.connect()).itertuples()
    assert "still not ready for processing (ready)" in letter.error


@pytest.fixture
def site_plugins(tmp_path: Path) -> Iterator[Path]:
    """A site's package of dispatcher plug-ins, installed (a dist-info with entry points)."""
    site = tmp_path / "site-packages"
    (site / "site_filters-1.0.dist-info").mkdir(parents=True)
    (site / "site_filters.py").write_text(
        textwrap.dedent(
            """
            def add_beamline(message, parameters):
                parameters["beamline"] = "i04"
                return message, parameters

            def always_ready(message, parameters):
                parameters["gate_asked"] = True
                return True
            """
        )
    )
    (site / "site_filters-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: site-filters\nVersion: 1.0\n"
    )
    (site / "site_filters-1.0.dist-info" / "entry_points.txt").write_text(
        "[zocalo.services.dispatcher.filters]\nbeamline = site_filters:add_beamline\n\n"
        "[zocalo.services.dispatcher.ready_for_processing]\nready = site_filters:always_ready\n"
    )
    sys.path.insert(0, str(site))
    yield site
    sys.path.remove(str(site))
    sys.modules.pop("site_filters", None)


def test_installed_filter_and_gate_plugins_load_into_our_dispatcher(
    recipes: Path, site_plugins: Path
) -> None:
    (recipes / "uses.json").write_text(
        json.dumps(
            {
                "1": {"queue": "uses.q", "parameters": {"bl": "{beamline}", "g": "{gate_asked}"}},
                "start": [[1, {}]],
            }
        )
    )
    dispatcher = Dispatcher(recipes)
    assert list(dispatcher.filters) == ["beamline"] and list(dispatcher.gates) == ["ready"]
    broker = MemoryBroker()
    client = broker.connect()
    arrived = Collector(client, "uses.q")
    with ServiceRunner([dispatcher.service()], broker=broker):
        submit(["uses"], {}, transport=client)
        assert eventually(lambda: len(arrived.messages) == 1)
    assert arrived.messages[0].body["recipe"]["1"]["parameters"] == {"bl": "i04", "g": "True"}


# -- dead-letter files -------------------------------------------------------------------


def rabbitmq_purge_file(tmp_path: Path) -> Path:
    """A file as upstream's zocalo.dlq_purge writes it on RabbitMQ (PikaTransport): no
    ``destination`` header; the queue is in ``x-death``, its time already converted."""
    path = tmp_path / "2026-11-30" / "msg-20261130-101500-123-ID_abc"
    path.parent.mkdir(parents=True)
    header = {
        "message-id": "ID:abc",
        "subscription": 1,
        "redelivered": False,
        "exchange": "",
        "routing_key": "dlq.per_image_analysis",
        "delivery_mode": 2,
        "workflows-recipe": True,
        "x-death": [
            {
                "count": 3,
                "exchange": "",
                "queue": "per_image_analysis",
                "reason": "delivery_limit",
                "routing-keys": ["per_image_analysis"],
                "time": 1796033700.0,
            }
        ],
        "x-first-death-queue": "per_image_analysis",
        "x-first-death-reason": "delivery_limit",
    }
    content = {
        "exported": {"date": "2026-11-30", "time": "10:15:00"},
        "header": header,
        "message": {"payload": {"file": "x.cbf"}},
    }
    path.write_text(json.dumps(content, indent=2, sort_keys=True))
    return path


def test_dlq_files_purged_from_rabbitmq_are_read_with_their_x_death_queue(
    tmp_path: Path,
) -> None:
    letter = read(rabbitmq_purge_file(tmp_path))
    assert letter.destination == "/queue/per_image_analysis"
    row = letter.row()
    assert "delivery-limit" in row["reason"]
    assert row["time"] == 1796033700.0
    broker = MemoryBroker()
    client = broker.connect(prefix="")  # RabbitMQ's queues have no namespace prefix
    arrived = Collector(client, "per_image_analysis")
    (_sent,) = dlq.reinject_files(client, [tmp_path])
    broker.join()
    (message,) = arrived.messages
    assert message.body == {"payload": {"file": "x.cbf"}}
    assert message.headers["dlq-reinjected"] == "True"
    assert not {"x-death", "x-first-death-queue", "routing_key"} & set(message.headers)


# -- recipes -----------------------------------------------------------------------------


def test_a_step_that_is_not_an_object_is_rejected_where_upstream_accepts_it() -> None:
    from workflows.recipe import Recipe as UpstreamRecipe

    document = {"1": {"queue": "q", "output": 2}, "2": "not a step", "start": [[1, []]]}
    UpstreamRecipe(json.loads(json.dumps(document))).validate()  # upstream: fine
    with pytest.raises(RecipeValidationError):
        Recipe.from_dict(document).validate()


def test_membership_tests_step_ids_only_where_upstream_tests_every_key() -> None:
    from workflows.recipe import Recipe as UpstreamRecipe

    document = {"1": {"queue": "q"}, "start": [[1, []]]}
    theirs, ours = UpstreamRecipe(json.loads(json.dumps(document))), Recipe.from_dict(document)
    assert ("start" in theirs, 1 in theirs) == (True, True)
    assert ("start" in ours, 1 in ours) == (False, True)  # documented: ours maps step ids


def test_the_readme_lists_each_deliberate_difference_from_upstream() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Differences from upstream") :]
    table = table[: table.index("\n## ", 1)]
    for difference in (
        "a step that is not an object",
        '`"start" in recipe`',
        "`{$REPLACE:name}` key",
        "`success` payload",
        "empty request",
        "loop",
        "command",
        "unwired",
    ):
        assert difference in table, difference
