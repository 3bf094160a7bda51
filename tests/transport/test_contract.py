"""One contract, two implementations: memory:// must behave like our ActiveMQ."""

from __future__ import annotations

import threading
import time

import pytest

from tests.brokers import eventually
from tests.transport.conftest import Harness
from zocalo_nb.transport import Message, RawBody, Transport, TransportError
from zocalo_nb.transport.message import MESSAGE_ID


class Inbox:
    """Collects messages; optionally acks or nacks them."""

    def __init__(self, transport=None, verdict: str | None = None) -> None:  # type: ignore[no-untyped-def]
        self.messages: list[Message] = []
        self.transport = transport
        self.verdict = verdict
        self.lock = threading.Lock()

    def __call__(self, message: Message) -> None:
        with self.lock:
            self.messages.append(message)
        if self.verdict == "ack":
            self.transport.ack(message)
        elif self.verdict == "nack":
            self.transport.nack(message)

    def bodies(self) -> list[object]:
        with self.lock:
            return [m.body for m in self.messages]

    def wait(self, count: int, timeout: float = 10.0) -> list[Message]:
        assert eventually(lambda: len(self.messages) >= count, timeout), (count, self.bodies())
        return list(self.messages)


def waiting(harness: Harness, transport: Transport, queue: str) -> list[Message]:
    """The messages waiting in ``queue`` (see :meth:`Site.waiting`)."""
    return harness.waiting(transport, queue)


def test_queue_messages_go_to_one_of_competing_consumers(harness: Harness) -> None:
    sender, a, b = harness.connect(), harness.connect(), harness.connect()
    inbox_a, inbox_b = Inbox(a, "ack"), Inbox(b, "ack")
    a.subscribe("work", inbox_a)
    b.subscribe("work", inbox_b)
    for n in range(20):
        sender.send("work", {"n": n})
    assert eventually(lambda: len(inbox_a.messages) + len(inbox_b.messages) == 20)
    time.sleep(0.3)
    assert sorted(inbox_a.bodies() + inbox_b.bodies(), key=lambda x: x["n"]) == [
        {"n": n} for n in range(20)
    ]
    assert inbox_a.messages and inbox_b.messages  # shared, not duplicated


def test_topic_messages_reach_every_subscriber_and_not_queues(harness: Harness) -> None:
    sender, a, b = harness.connect(), harness.connect(), harness.connect()
    inbox_a, inbox_b, queue_inbox = Inbox(), Inbox(), Inbox(a, "ack")
    a.subscribe_topic("news", inbox_a)
    b.subscribe_topic("news", inbox_b)
    a.subscribe("news", queue_inbox)
    time.sleep(0.2)  # STOMP subscriptions are asynchronous
    sender.broadcast("news", {"x": 1})
    assert inbox_a.wait(1)[0].body == {"x": 1} and inbox_b.wait(1)[0].body == {"x": 1}
    assert inbox_a.messages[0].destination == f"/topic/{harness.prefix}.news"
    time.sleep(0.3)
    assert queue_inbox.messages == []


def test_acked_messages_are_gone(harness: Harness) -> None:
    sender, consumer = harness.connect(), harness.connect()
    sender.send("acked", {"n": 1})
    inbox = Inbox(consumer, "ack")
    consumer.subscribe("acked", inbox)
    inbox.wait(1)
    assert eventually(lambda: sender.statistics("acked").depth == 0)
    assert waiting(harness, sender, "acked") == []


def test_nack_redelivers_then_dead_letters_with_the_original_destination(harness: Harness) -> None:
    sender, consumer = harness.connect(), harness.connect()
    inbox = Inbox(consumer, "nack")
    consumer.subscribe("poison", inbox)
    sent_id = sender.send("poison", {"bad": True})
    deliveries = inbox.wait(1 + harness.redeliveries, timeout=15)
    assert [m.redelivered for m in deliveries] == [False] + [True] * harness.redeliveries
    assert all(m.message_id == sent_id for m in deliveries)
    if harness.kind == "memory":  # ActiveMQ does not report the count over STOMP
        assert [m.delivery_count for m in deliveries] == [1, 2, 3]
    assert eventually(lambda: len(sender.browse(sender.dlq("poison"))) == 1, timeout=10)
    (dead,) = sender.browse(sender.dlq("poison"))
    assert dead.body == {"bad": True}
    assert dead.headers["original-destination"] == f"/queue/{harness.prefix}.poison"
    assert dead.message_id == sent_id
    time.sleep(0.5)
    assert len(inbox.messages) == 1 + harness.redeliveries  # no more deliveries after the DLQ


def test_a_consumer_that_disconnects_hands_back_unacked_messages(harness: Harness) -> None:
    sender, quitter = harness.connect(), harness.connect(prefetch=5)
    held = Inbox()  # never acks
    quitter.subscribe("handback", held)
    for n in range(3):
        sender.send("handback", {"n": n})
    held.wait(3)
    quitter.close()
    survivor = harness.connect()
    inbox = Inbox(survivor, "ack")
    survivor.subscribe("handback", inbox)
    received = inbox.wait(3)
    assert sorted(m.body["n"] for m in received) == [0, 1, 2]
    assert all(m.redelivered for m in received)
    time.sleep(0.3)
    assert sender.browse(sender.dlq("handback")) == []


def test_transaction_commit_delivers_sends_and_acks_together(harness: Harness) -> None:
    sender, worker, watcher = harness.connect(), harness.connect(), harness.connect()
    outputs = Inbox(watcher, "ack")
    watcher.subscribe("out", outputs)
    done = threading.Event()

    def work(message: Message) -> None:
        with worker.transaction() as tx:
            worker.ack(message, transaction=tx)
            worker.send("out", {"from": message.body["n"]}, transaction=tx)
            time.sleep(0.3)
            assert outputs.messages == []  # nothing visible before commit
        done.set()

    worker.subscribe("in", work)
    sender.send("in", {"n": 7})
    assert done.wait(10)
    assert outputs.wait(1)[0].body == {"from": 7}
    assert eventually(lambda: sender.statistics("in").depth == 0)


def test_transaction_abort_sends_nothing_and_the_input_comes_back(harness: Harness) -> None:
    sender, worker, watcher = harness.connect(), harness.connect(), harness.connect()
    outputs = Inbox(watcher, "ack")
    watcher.subscribe("out", outputs)
    seen: list[Message] = []

    def work(message: Message) -> None:
        seen.append(message)
        if len(seen) == 1:
            with pytest.raises(RuntimeError), worker.transaction() as tx:
                worker.ack(message, transaction=tx)
                worker.send("out", {"should": "vanish"}, transaction=tx)
                raise RuntimeError("handler failed")
        else:
            worker.ack(message)

    worker.subscribe("in", work)
    sender.send("in", {"n": 1})
    assert eventually(lambda: len(seen) == 2, timeout=10)
    assert seen[1].redelivered and seen[1].body == {"n": 1}
    time.sleep(0.3)
    assert outputs.messages == []


def test_plain_sends_in_a_transaction_wait_for_commit_or_vanish(harness: Harness) -> None:
    sender, watcher = harness.connect(), harness.connect()
    inbox = Inbox(watcher, "ack")
    watcher.subscribe("txq", inbox)
    tx = sender.begin()
    sender.send("txq", {"n": "aborted"}, transaction=tx)
    sender.abort(tx)
    tx = sender.begin()
    sender.send("txq", {"n": "committed"}, transaction=tx)
    time.sleep(0.3)
    assert inbox.messages == []
    sender.commit(tx)
    assert inbox.wait(1)[0].body == {"n": "committed"}
    time.sleep(0.3)
    assert inbox.bodies() == [{"n": "committed"}]


def test_delayed_messages_arrive_after_the_delay(harness: Harness) -> None:
    sender, consumer = harness.connect(), harness.connect()
    inbox = Inbox(consumer, "ack")
    consumer.subscribe("later", inbox)
    started = time.monotonic()
    sender.send("later", {"n": 1}, delay=1.5)
    inbox.wait(1, timeout=10)
    assert time.monotonic() - started >= 1.3


def test_expired_messages_are_not_delivered(harness: Harness) -> None:
    sender = harness.connect()
    sender.send("stale", {"n": "old"}, expiration=0.3)
    sender.send("stale", {"n": "fresh"}, expiration=60)
    time.sleep(1.0)
    consumer = harness.connect()
    inbox = Inbox(consumer, "ack")
    consumer.subscribe("stale", inbox)
    inbox.wait(1)
    time.sleep(0.5)
    assert inbox.bodies() == [{"n": "fresh"}]


def test_browse_leaves_messages_in_place(harness: Harness) -> None:
    sender = harness.connect()
    # RabbitMQ has no browser: it browses queues without a delivery limit (dead-letter queues)
    queue = sender.dlq("browsed") if harness.kind == "rabbitmq" else "browsed"
    for n in range(3):
        sender.send(queue, {"n": n})
    assert eventually(lambda: sender.statistics(queue).depth == 3)
    first = sender.browse(queue)
    assert [m.body for m in first] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [m.body for m in sender.browse(queue, limit=2)] == [{"n": 0}, {"n": 1}]
    assert len(sender.browse(queue)) == 3
    assert sender.statistics(queue).depth == 3
    consumer = harness.connect()
    inbox = Inbox(consumer, "ack")
    consumer.subscribe(queue, inbox)
    assert [m.body["n"] for m in inbox.wait(3)] == [0, 1, 2]


def test_statistics_count_depth_consumers_enqueued_and_dequeued(harness: Harness) -> None:
    sender = harness.connect()
    for n in range(4):
        sender.send("counted", {"n": n})

    def counters() -> tuple[int, int, int, int]:
        stats = sender.statistics("counted")
        return (stats.depth, stats.consumers, stats.enqueued, stats.dequeued)

    # counters may trail by the broker's statistics interval (RabbitMQ samples them)
    assert eventually(lambda: counters() == (4, 0, 4, 0)), counters()
    consumer = harness.connect()
    inbox = Inbox(consumer, "ack")
    consumer.subscribe("counted", inbox)
    inbox.wait(4)
    assert eventually(lambda: counters() == (0, 1, 4, 4)), counters()


def test_bodies_that_are_not_json_arrive_as_flagged_text(harness: Harness) -> None:
    sender, consumer = harness.connect(), harness.connect()
    inbox = Inbox(consumer, "ack")
    consumer.subscribe("raw", inbox)
    sender.send("raw", RawBody("not json {"))
    sender.send("raw", {"after": "still works"})
    first, second = inbox.wait(2)
    assert (first.body, first.is_json) == ("not json {", False)
    assert (second.body, second.is_json) == ({"after": "still works"}, True)


def test_large_and_unicode_bodies_and_headers_survive(harness: Harness) -> None:
    sender, consumer = harness.connect(), harness.connect()
    inbox = Inbox(consumer, "ack")
    consumer.subscribe("big", inbox)
    big = {"data": "x" * 1_000_000}
    text = {"sample": "lysozyme Å∂ 日本語 🚀", "quote": 'a "b" \\ c'}
    sender.send("big", big)
    sender.send("big", text, headers={"note": "ñandú"})
    first, second = inbox.wait(2, timeout=20)
    assert first.body == big
    assert second.body == text and second.headers["note"] == "ñandú"


def test_prefixes_separate_namespaces_and_absolute_names_cross_them(harness: Harness) -> None:
    ours, theirs = harness.connect(), harness.connect(prefix=harness.prefix + "x")
    inbox_ours, inbox_theirs = Inbox(ours, "ack"), Inbox(theirs, "ack")
    ours.subscribe("shared", inbox_ours)
    theirs.subscribe("shared", inbox_theirs)
    theirs.send("shared", {"for": "theirs"})
    theirs.send(f"/queue/{harness.prefix}.shared", {"for": "ours"})
    assert inbox_ours.wait(1)[0].body == {"for": "ours"}
    assert inbox_theirs.wait(1)[0].body == {"for": "theirs"}
    time.sleep(0.3)
    assert len(inbox_ours.messages) == len(inbox_theirs.messages) == 1


def test_every_message_carries_our_stable_id_and_headers_pass_through(harness: Harness) -> None:
    sender, consumer = harness.connect(), harness.connect()
    inbox = Inbox(consumer, "ack")
    consumer.subscribe("ids", inbox)
    returned = sender.send("ids", {}, headers={"workflows-recipe": True, "custom": 5})
    given = sender.send("ids", {}, headers={MESSAGE_ID: "keep-me"})
    first, second = inbox.wait(2)
    assert first.message_id == returned and len(returned) == 32
    assert first.headers["workflows-recipe"] == "True" and first.headers["custom"] == "5"
    assert second.message_id == given == "keep-me"
    assert "custom" in first.user_headers() and "message-id" not in first.user_headers()


def test_acking_twice_or_after_unsubscribing_is_an_error_or_harmless(harness: Harness) -> None:
    sender, consumer = harness.connect(), harness.connect()
    inbox = Inbox()
    sub = consumer.subscribe("twice", inbox)
    sender.send("twice", {})
    (message,) = inbox.wait(1)
    consumer.ack(message)
    if harness.kind == "memory":
        with pytest.raises(TransportError, match="not held unacknowledged"):
            consumer.ack(message, transaction=consumer.begin())
    consumer.unsubscribe(sub)
    assert eventually(lambda: sender.statistics("twice").depth == 0)


def test_a_callback_that_raises_does_not_stop_the_transport(harness: Harness) -> None:
    sender, consumer = harness.connect(), harness.connect()
    seen: list[object] = []

    def fragile(message: Message) -> None:
        seen.append(message.body)
        consumer.ack(message)
        if message.body == {"n": 0}:
            raise ValueError("boom")

    consumer.subscribe("fragile", fragile)
    sender.send("fragile", {"n": 0})
    sender.send("fragile", {"n": 1})
    assert eventually(lambda: len(seen) == 2)
    if harness.broker is not None:
        with pytest.raises(Exception, match="boom"):
            harness.broker.join()


def test_a_confirmed_commit_returns_once_the_broker_has_the_messages(harness: Harness) -> None:
    sender = harness.connect()
    for n in range(20):
        with sender.transaction(confirm=True) as tx:
            sender.send("confirmed", {"n": n}, transaction=tx)
    # no waiting: every message is already stored and visible
    assert [m.body["n"] for m in waiting(harness, sender, "confirmed")] == list(range(20))


def test_a_cumulative_ack_takes_every_earlier_message_of_its_subscription(
    harness: Harness,
) -> None:
    sender, worker, other = harness.connect(), harness.connect(), harness.connect()
    held, elsewhere = Inbox(), Inbox()
    worker.subscribe("cumul", held, ack="cumulative", prefetch=5)
    for n in range(3):
        sender.send("cumul", {"n": n})
    received = held.wait(3)
    with worker.transaction() as tx:
        worker.send("cumul.out", {"done": 3}, transaction=tx)
        worker.ack(received[1], transaction=tx)  # covers messages 0 and 1, not 2
    assert eventually(lambda: sender.statistics("cumul").depth == 1)
    worker.close()  # message 2 was never acked: it goes to another consumer
    other.subscribe("cumul", Inbox(other, "ack"))
    other.subscribe("cumul", elsewhere, ack="cumulative")
    assert eventually(lambda: sender.statistics("cumul").depth == 0)
    assert [m.body for m in waiting(harness, sender, "cumul.out")] == [{"done": 3}]
    assert sender.browse(sender.dlq("cumul")) == []


def test_an_aborted_cumulative_ack_takes_nothing(harness: Harness) -> None:
    sender, worker = harness.connect(), harness.connect()
    held = Inbox()
    worker.subscribe("cumul-abort", held, ack="cumulative", prefetch=5)
    for n in range(3):
        sender.send("cumul-abort", {"n": n})
    received = held.wait(3)
    tx = worker.begin()
    worker.ack(received[2], transaction=tx)
    worker.abort(tx)  # hands back only the message it acked (nacked: redelivered later)
    again = held.wait(4)[3]
    assert again.body == {"n": 2} and again.redelivered
    with worker.transaction() as tx2:
        worker.ack(received[0], transaction=tx2)
        worker.ack(received[1], transaction=tx2)
    assert eventually(lambda: sender.statistics("cumul-abort").depth == 1, timeout=10)


def test_queues_are_listed_by_name_prefix_with_their_counters(harness: Harness) -> None:
    sender = harness.connect()
    sender.send("listed.a", {"n": 1})
    sender.send("listed.a", {"n": 2})
    sender.send("listed.b", {"n": 3})
    sender.send("other", {"n": 4})

    def listed() -> list[tuple[str, int]]:
        return [(s.queue, s.depth) for s in sender.list_queues(f"{harness.prefix}.listed.")]

    expected = [(f"/queue/{harness.prefix}.listed.a", 2), (f"/queue/{harness.prefix}.listed.b", 1)]
    assert eventually(lambda: listed() == expected), listed()
    assert sender.list_queues(f"{harness.prefix}.nothing.") == []
    assert [s for s in sender.dead_letter_queues() if s.depth] == []  # a fresh namespace
    sender.send(sender.dlq("listed.a"), {"dead": True})
    assert eventually(
        lambda: (
            [(s.queue, s.depth) for s in sender.dead_letter_queues() if s.depth]
            == [(sender.dlq("listed.a"), 1)]
        )
    )


def test_statistics_leave_no_reply_queues_behind_and_may_be_asked_from_threads(
    harness: Harness,
) -> None:
    sender = harness.connect()
    sender.send("asked", {"n": 1})
    # RabbitMQ's counters lag by its statistics interval
    assert eventually(lambda: sender.statistics("asked").enqueued == 1)
    found: list[int] = []
    threads = [
        threading.Thread(target=lambda: found.append(sender.statistics("asked").enqueued))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert found == [1, 1, 1, 1]
    assert sender.list_queues("zocalo-nb.stats.") == []


def _two_held(harness: Harness, name: str) -> tuple[object, object, Message, Message]:
    """A worker with two cumulative subscriptions, each holding one message."""
    sender, worker = harness.connect(), harness.connect()
    first, second = Inbox(), Inbox()
    worker.subscribe(f"{name}.a", first, ack="cumulative", prefetch=5)
    worker.subscribe(f"{name}.b", second, ack="cumulative", prefetch=5)
    sender.send(f"{name}.a", {"q": "a"})
    sender.send(f"{name}.b", {"q": "b"})
    return sender, worker, first.wait(1)[0], second.wait(1)[0]


def test_a_commit_does_not_take_another_transactions_acks(harness: Harness) -> None:
    # Two workers' transactions open at once on one connection: committing one must not
    # commit the other's ack (ActiveMQ's STOMP layer keeps transacted acks per subscription).
    sender, worker, held_a, held_b = _two_held(harness, "cross-commit")
    tx_a = worker.begin()
    worker.send("cross-commit.out", {"from": "a"}, transaction=tx_a)
    worker.ack(held_a, transaction=tx_a)
    with worker.transaction() as tx_b:
        worker.send("cross-commit.out", {"from": "b"}, transaction=tx_b)
        worker.ack(held_b, transaction=tx_b)
    assert eventually(lambda: sender.statistics("cross-commit.b").depth == 0)
    worker.close()  # the process dies before tx_a commits: its input must come back
    assert eventually(lambda: sender.statistics("cross-commit.a").depth == 1)
    time.sleep(0.3)
    assert sender.statistics("cross-commit.a").depth == 1, "a's ack was committed by b"
    assert [m.body for m in waiting(harness, sender, "cross-commit.out")] == [{"from": "b"}]


def test_an_abort_does_not_drop_another_transactions_acks(harness: Harness) -> None:
    sender, worker, held_a, held_b = _two_held(harness, "cross-abort")
    tx_a = worker.begin()
    worker.send("cross-abort.out", {"from": "a"}, transaction=tx_a)
    worker.ack(held_a, transaction=tx_a)
    tx_b = worker.begin()
    worker.ack(held_b, transaction=tx_b)
    worker.abort(tx_b)  # must not drop a's ack
    worker.commit(tx_a, confirm=True)
    worker.close()
    assert eventually(lambda: sender.statistics("cross-abort.b").depth == 1)
    time.sleep(0.3)
    assert sender.statistics("cross-abort.a").depth == 0, "b's abort dropped a's ack"
    assert [m.body for m in waiting(harness, sender, "cross-abort.out")] == [{"from": "a"}]


def test_destinations_and_header_names_that_cannot_be_sent_fail_before_the_wire(
    harness: Harness,
) -> None:
    sender = harness.connect()
    for bad in ("/x", "/queue/", "//y", ""):
        with pytest.raises(TransportError, match="destination"):
            sender.send(bad, {"n": 1})
    for bad_name in ("a:b", "x\ndestination", "nul\0", ""):
        with pytest.raises(TransportError, match="header name"):
            sender.send("fine", {"n": 1}, headers={bad_name: "v"})
    with pytest.raises(TypeError):
        sender.prepare("queue", "fine", {"a set": {1, 2}})
    assert waiting(harness, sender, "fine") == []
