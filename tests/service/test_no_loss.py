"""Nothing lost: one bad message, a failed commit, a handler raising SystemExit or a handler
output that cannot be encoded never takes other messages with it (memory:// and ActiveMQ)."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from typing import Any

from tests.brokers import eventually
from tests.service.helpers import Collector, pipeline
from tests.sites import Site
from zocalo_nb.dispatch import StepContext, submit
from zocalo_nb.dispatch.envelope import RECIPE_HEADER
from zocalo_nb.service import ATTEMPT, REDELIVERIES, Processor, Service, ServiceRunner
from zocalo_nb.transport import MemoryBroker, Message, RawBody, Transport


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def handler(ctx: StepContext, payload: Any) -> None:
    """Forwards; the payload's "do" says how to misbehave."""
    do = payload.get("do") if isinstance(payload, dict) else None
    if do == "send-a-set":
        ctx.send({"spots": {1, 2}})
    elif do == "unprintable":
        raise Unprintable()
    elif do == "exit":
        raise SystemExit(3)
    elif do == "interrupt":
        raise KeyboardInterrupt
    elif do == "fail":
        raise ValueError("always")
    elif do == "to-nowhere":
        ctx.send_message("/x", {"n": 1})
    else:
        ctx.send(payload)


def recipe_body(payload: Any, step_fields: dict[str, Any] | None = None) -> dict[str, Any]:
    recipe = pipeline().to_dict()
    recipe["1"].update(step_fields or {})
    return {
        "environment": {"ID": str(uuid.uuid4())},
        "payload": payload,
        "recipe": recipe,
        "recipe-path": [],
        "recipe-pointer": 1,
    }


def send_recipe_message(transport: Transport, body: Any, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    text = body if isinstance(body, str) else json.dumps(body)
    transport.send("pipe.a", RawBody(text), headers={RECIPE_HEADER: "True", **(headers or {})})


DEEP = 990


def deep(levels: int) -> str:
    """JSON text nested ``levels`` deep: Python decodes it, but cannot encode it again."""
    return '{"d": ' * levels + "1" + "}" * levels


def test_one_poisonous_message_does_not_take_its_batch_with_it(site: Site) -> None:
    client = site.connect()
    end = Collector(client, "pipe.b")
    good = [submit(pipeline(), {"n": n}, transport=client).id for n in range(3)]
    bad_pointer = recipe_body({"n": 1})
    bad_pointer["recipe-pointer"] = "\u00b2"  # isdigit() but not int()
    send_recipe_message(client, bad_pointer)
    good += [submit(pipeline(), {"n": n}, transport=client).id for n in range(3)]
    infinity = json.dumps(recipe_body({"do": "fail"})).replace(
        '"queue": "pipe.a"', '"queue": "pipe.a", "max-attempts": Infinity'
    )
    send_recipe_message(client, infinity)
    send_recipe_message(
        client, recipe_body({"do": "fail"}, {"max-attempts": 2000}), {ATTEMPT: "2000"}
    )
    send_recipe_message(client, recipe_body({"do": "to-nowhere"}))
    send_recipe_message(client, recipe_body({"do": "send-a-set"}))
    send_recipe_message(client, recipe_body({"do": "unprintable"}))
    # Deep enough that no worker can encode it (from the handler's frames, the C encoder
    # counts against the same recursion limit), yet a receiving thread with few frames may
    # decode it.
    deep_text = json.dumps(recipe_body("DEEP")).replace('"DEEP"', deep(DEEP))
    send_recipe_message(client, deep_text)
    send_recipe_message(client, recipe_body({"do": "fail"}), {ATTEMPT: "-100000000"})
    good += [submit(pipeline(), {"n": n}, transport=client).id for n in range(3)]
    service = Service("picky", handler, queues=("pipe.a",), backoff=0.01, max_attempts=2)
    with site.runner([service], workers=1, batch=20):
        assert eventually(lambda: len(client.browse(client.dlq("pipe.a"))) == 8, timeout=30), [
            m.headers.get("zocalo-nb-reason") for m in client.browse(client.dlq("pipe.a"))
        ]
        assert eventually(lambda: len(end.messages) == len(good), timeout=20)
        time.sleep(0.3)
    assert sorted(end.runs()) == sorted(good)  # every innocent neighbour, once
    dead = client.browse(client.dlq("pipe.a"))
    (deepest,) = [m for m in dead if '{"d": {"d": ' in m.text]
    # Decoding it may already hit Python's recursion limit on the receiving thread (then it
    # is "not JSON"); otherwise encoding its output does (a handler failure). Either way:
    # the DLQ, with the reason, and its text kept exactly.
    assert deepest.headers.get("zocalo-nb-error-type", "RecursionError") == "RecursionError"
    assert deepest.text.count('{"d": ') == DEEP
    errors = Counter(m.headers.get("zocalo-nb-error-type", "-") for m in dead if m is not deepest)
    assert errors == Counter(
        {"-": 1, "ValueError": 3, "TransportError": 1, "TypeError": 1, "Unprintable": 1}
    ), [dict(m.headers) for m in dead]
    reasons = {m.headers["zocalo-nb-reason"] for m in dead}
    assert any("is not a step of the recipe" in r for r in reasons)
    by_error = {m.headers.get("zocalo-nb-error-type"): m for m in dead}
    assert "not JSON serializable" in by_error["TypeError"].headers["zocalo-nb-error"]
    assert "<unprintable Unprintable>" in by_error["Unprintable"].headers["zocalo-nb-error"]
    # a negative attempt header does not buy endless retries (it counts from 1)
    assert sorted(int(m.headers["zocalo-nb-attempts"]) for m in dead)[-2:] == [2, 2000]


def test_a_batch_whose_commit_fails_hands_back_every_message(site: Site) -> None:
    client = site.connect()
    end = Collector(client, "pipe.b")
    runs = [submit(pipeline(), {"n": n}, transport=client).id for n in range(30)]
    service = Service("forward", handler, queues=("pipe.a",))
    runner = site.runner([service], workers=2, batch=5)
    failures = {"left": 3}
    with runner:
        assert runner.transport is not None
        real = runner.transport._commit

        def flaky_commit(transaction: str, confirm: bool) -> None:
            if failures["left"] > 0:
                failures["left"] -= 1
                raise RuntimeError("the commit blew up in a way nobody expected")
            real(transaction, confirm)

        runner.transport._commit = flaky_commit  # type: ignore[method-assign]
        assert eventually(lambda: len(set(end.runs())) == 30, timeout=60), len(end.messages)
        time.sleep(0.3)
    assert failures["left"] == 0
    assert sorted(end.runs()) == sorted(runs)


def test_a_handler_raising_systemexit_or_keyboardinterrupt_does_not_stop_the_service(
    site: Site,
) -> None:
    client = site.connect()
    end = Collector(client, "pipe.b")
    send_recipe_message(client, recipe_body({"do": "exit"}))
    send_recipe_message(client, recipe_body({"do": "interrupt"}))
    service = Service("exits", handler, queues=("pipe.a",), max_attempts=1)
    with site.runner([service], workers=1) as runner:
        assert eventually(lambda: len(client.browse(client.dlq("pipe.a"))) == 2, timeout=20)
        run = submit(pipeline(), {"n": 1}, transport=client)  # still served
        assert eventually(lambda: end.runs() == [run.id], timeout=20)
        assert runner.running
    types = {m.headers["zocalo-nb-error-type"] for m in client.browse(client.dlq("pipe.a"))}
    assert types == {"SystemExit", "KeyboardInterrupt"}


def _message(destination: str, headers: dict[str, str]) -> Message:
    body = recipe_body({"n": 1})
    return Message(
        destination,
        body,
        {RECIPE_HEADER: "True", **headers},
        redelivered=True,
        text=json.dumps(body),
    )


def test_messages_handed_back_unstarted_are_not_blamed_only_a_crash_in_quarantine_counts() -> None:
    broker = MemoryBroker()
    transport = broker.connect()
    processor = Processor(transport, "host", events=False, announce_after=0)
    service = Service("s", handler, queues=("pipe.a",), max_redeliveries=2)
    try:
        # Held by a consumer that died or stopped: not counted, moved to quarantine.
        for _ in range(5):
            outcome = processor.handle(service, _message("/queue/test.pipe.a", {REDELIVERIES: "0"}))
            ((sent, _),) = outcome.sends
            assert sent.name == "test.pipe.a.suspects"
            assert sent.headers[REDELIVERIES] == "0"
        # Redelivered from quarantine (handled alone): counted, then the DLQ.
        suspect = "/queue/test.pipe.a.suspects"
        outcome = processor.handle(service, _message(suspect, {REDELIVERIES: "1"}))
        assert outcome.sends[0][0].headers[REDELIVERIES] == "2"
        outcome = processor.handle(service, _message(suspect, {REDELIVERIES: "2"}))
        assert outcome.sends[0][0].name == "DLQ.test.pipe.a"
        # A negative counter is no licence to crash for ever.
        outcome = processor.handle(service, _message(suspect, {REDELIVERIES: "-1000000"}))
        assert outcome.sends[0][0].headers[REDELIVERIES] == "1"
    finally:
        processor.close()
        transport.close()
        broker.close()


def test_the_retry_delay_of_a_late_attempt_is_the_maximum_not_an_overflow() -> None:
    service = Service("s", handler, queues=("q",), backoff=1.0, max_backoff=60.0)
    assert service.retry_delay(1500) == 60.0
    assert service.retry_delay(10**9) == 60.0
    assert service.retry_delay(1) == 1.0


def test_stopping_a_runner_whose_service_fails_to_close_still_stops_it() -> None:
    broker = MemoryBroker()

    def refuse() -> None:
        raise RuntimeError("the history database went away")

    service = Service("closing", handler, queues=("pipe.a",), close=refuse)
    runner = ServiceRunner([service], broker=broker).start()
    runner.stop()  # does not raise
    assert not runner.running
    assert runner.transport is not None and not runner.transport.is_connected
    broker.close()
