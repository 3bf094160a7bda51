"""The policy seam: a crash policy other than the quarantine plugs into the processor and the
runner without touching the batch and transaction loop (what RabbitMQ's real delivery counts
will use)."""

from __future__ import annotations

from typing import Any

from tests.brokers import eventually
from tests.service.helpers import Collector, pipeline, step_two
from zocalo_nb.dispatch import submit
from zocalo_nb.service import Service, ServiceRunner
from zocalo_nb.service.policies import CrashQuarantine, DeadLetters, Delivery, MessageCommit
from zocalo_nb.transport import MemoryBroker, Transport


class CountedByTheBroker:
    """A stand-in for a broker that counts deliveries itself: no quarantine queue; a
    redelivered message is dead-lettered at once here, so the test can see it was used."""

    def __init__(self, transport: Transport, dead_letters: DeadLetters) -> None:
        self.dead_letters = dead_letters
        self.seen: list[Delivery] = []

    def redelivered(self, delivery: Delivery, counted: int) -> MessageCommit:
        self.seen.append(delivery)
        return self.dead_letters.dead(delivery, "the broker says: delivered too often")

    def extra_queues(self, queue: str) -> list[str]:
        return []


def test_a_crash_policy_replaces_the_quarantine_without_touching_the_loop() -> None:
    broker = MemoryBroker()
    client = broker.connect()
    end = Collector(client, "pipe.b")
    policies: list[Any] = []

    def make(transport: Transport, dead_letters: DeadLetters) -> CountedByTheBroker:
        policies.append(CountedByTheBroker(transport, dead_letters))
        return policies[-1]

    runs: list[ServiceRunner] = []

    def dies_once(ctx: Any, payload: Any) -> None:
        if payload.get("die") and len(runs) == 1:
            runs[0].kill()  # the consumer dies holding it: the broker redelivers it
            return
        step_two(ctx, payload)

    service = Service("one", dies_once, queues=("pipe.a",))
    recipe = pipeline().to_dict()
    recipe["start"] = [[1, {"die": True}]]
    submit(recipe, transport=client)
    runs.append(ServiceRunner([service], broker=broker, crashes=make).start())
    assert eventually(lambda: not runs[0].running, timeout=10)
    runs.append(ServiceRunner([service], broker=broker, crashes=make).start())
    assert eventually(lambda: len(client.browse(client.dlq("pipe.a"))) == 1, timeout=10)
    assert client.statistics("pipe.a.suspects").consumers == 0  # no quarantine subscribed
    (dead,) = client.browse(client.dlq("pipe.a"))
    assert dead.headers["zocalo-nb-reason"] == "the broker says: delivered too often"
    assert len(policies[-1].seen) == 1
    submit(pipeline(), transport=client)  # and ordinary work flows as before
    assert eventually(lambda: len(end.messages) == 1)
    runs[-1].stop()
    broker.close()


def test_the_default_crash_policy_is_the_quarantine() -> None:
    broker = MemoryBroker()
    runner = ServiceRunner([Service("one", step_two, queues=("pipe.a",))], broker=broker).start()
    try:
        assert isinstance(runner.processor.crashes, CrashQuarantine)  # type: ignore[union-attr]
        assert runner.processor.crashes.extra_queues("pipe.a") == ["pipe.a.suspects"]  # type: ignore[union-attr]
        assert eventually(lambda: broker.stats("test.pipe.a.suspects")[1] == 1)
    finally:
        runner.stop()
        broker.close()
