"""A busy service does not wake its helper threads for every message: each wake-up is a
thread switch (the GIL changing hands), which cost the memory:// pipeline more than the
handling itself. The helpers still do their jobs: slow handlers are announced, and the
status topic says "processing" while busy and "idle" soon after."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.brokers import Counting, eventually
from tests.service.helpers import pipeline, step_two
from zocalo_nb.dispatch import StepContext, submit
from zocalo_nb.service import Service, ServiceRunner
from zocalo_nb.service.watch import SlowWatch
from zocalo_nb.transport import MemoryBroker


def test_the_slow_watch_is_woken_only_when_it_has_nothing_to_wait_for() -> None:
    announced: list[str] = []
    watch = SlowWatch(0.2, announced.append)
    cond = Counting(watch._lock)
    watch._cond = cond
    try:
        for n in range(100):
            watch.start(n, f"fast-{n}")
        for n in range(100):
            watch.done(n)
        assert cond.notified == 0  # its thread starts with the first item in hand
        # Then it waits for the first item's deadline (or, past it, for nothing: woken once).
        watch.start(100, "slow")
        watch.start(101, "finished")
        watch.done(101)
        assert cond.notified <= 1
        assert eventually(lambda: announced == ["slow"], timeout=3)
        time.sleep(0.3)
        assert announced == ["slow"]  # the fast ones and the finished one never
        assert watch._waiting_for_nothing
        watch.start(102, "after a quiet spell")  # nothing to wait for: woken
        assert cond.notified <= 2
        watch.done(102)
    finally:
        watch.close()


def test_a_worker_handling_messages_one_after_another_does_not_wake_the_watch_each_time() -> None:
    # One worker: every message starts after the previous one is done, so the watch has
    # nothing in hand between them; it is already waiting (for the first deadline) and an
    # item started later is due later, so it need not be woken.
    announced: list[str] = []
    watch = SlowWatch(0.2, announced.append)
    cond = Counting(watch._lock)
    watch._cond = cond
    try:
        watch.start(0, "first")
        # Its thread waits for item 0's deadline, holding item 0:
        assert eventually(lambda: cond.waiting == 1)
        assert getattr(watch, "_waiting_for_nothing", False) is False
        watch.done(0)  # it now waits for item 0's deadline, which later items come after
        before = cond.notified
        for n in range(1, 101):
            watch.start(n, f"fast-{n}")
            watch.done(n)
        assert cond.notified == before
        watch.start(101, "slow")
        assert eventually(lambda: announced == ["slow"], timeout=3)
        time.sleep(0.3)
        assert announced == ["slow"]
    finally:
        watch.close()


def forward(ctx: StepContext, payload: Any) -> None:
    ctx.send(payload)


def test_status_flips_between_batches_do_not_wake_the_status_thread() -> None:
    broker = MemoryBroker()
    statuses: list[str] = []
    client = broker.connect()
    client.subscribe_topic("transient.status", lambda m: statuses.append(m.body["statustext"]))
    runner = ServiceRunner([Service("s", forward, queues=("pipe.a",))], broker=broker)
    cond = Counting()
    runner._status_changed = cond
    try:
        with runner:
            assert eventually(lambda: "idle" in statuses)
            before, statuses[:] = cond.notified, []
            for _ in range(100):  # one by one: every message a batch, busy then idle again
                submit(pipeline(), transport=client)
                time.sleep(0.002)
            broker.join()
            flips = cond.notified - before
            assert "processing" in statuses
            assert eventually(lambda: statuses[-1] == "idle", timeout=2)  # settle + a poll
        assert flips <= 10, f"the status thread was woken {flips} times for 100 batches"
    finally:
        client.close()
        broker.close()


def test_a_batch_done_before_the_status_thread_looked_is_still_announced() -> None:
    # A quick batch can begin and end before the status thread gets to look (a busy
    # machine): the runner still says it was processing, then idle.
    broker = MemoryBroker()
    statuses: list[str] = []
    client = broker.connect()
    client.subscribe_topic("transient.status", lambda m: statuses.append(m.body["statustext"]))
    runner = ServiceRunner([Service("s", forward, queues=("pipe.a",))], broker=broker)
    try:
        with runner:
            assert eventually(lambda: statuses[-1:] == ["idle"])
            with runner._status_changed:  # the status thread cannot look in between
                runner._busy_change(+1)
                runner._busy_change(-1)
            assert eventually(lambda: statuses[-2:] == ["processing", "idle"], timeout=5)
    finally:
        client.close()
        broker.close()


def test_on_memory_a_worker_gets_its_messages_without_the_delivery_thread() -> None:
    # The receiver only puts a message in the worker's inbox (a hand-off subscription), so
    # the embedded broker calls it on the thread that made the message deliverable (a send
    # or a commit), never on the transport's delivery thread. Going through
    # the transport's delivery thread cost a thread switch and back per message.
    broker = MemoryBroker()
    client = broker.connect()
    end: list[Any] = []
    client.subscribe("pipe.end", lambda m: (end.append(m.body["payload"]), client.ack(m)))
    runner = ServiceRunner(
        [Service("a", step_two, queues=("pipe.a",)), Service("b", step_two, queues=("pipe.b",))],
        broker=broker,
    )
    received: list[tuple[str, str]] = []
    make = runner._receiver

    def receiver(service: Service, inbox: Any) -> Any:
        put = make(service, inbox)

        def receive(message: Any) -> None:
            received.append((service.name, threading.current_thread().name))
            put(message)

        return receive

    runner._receiver = receiver  # type: ignore[method-assign]
    try:
        with runner:
            for _ in range(20):
                submit(pipeline(), transport=client)
            broker.join()
    finally:
        client.close()
        broker.close()
    assert len(end) == 20 and all(p == {"n": 2} for p in end)
    assert len(received) == 40
    # The first step's messages: from the submitter, or, past the prefetch, from the
    # worker's commit that made room for them.
    worker = "zocalo-nb-worker-0"
    assert {name for service, name in received if service == "a"} <= {
        threading.current_thread().name,
        worker,
    }
    assert {name for service, name in received if service == "b"} == {worker}
