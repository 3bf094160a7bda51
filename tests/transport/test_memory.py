"""What only memory:// does: private brokers, join() for tests, errors on misuse."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.brokers import Counting, eventually
from zocalo_nb.transport import MemoryBroker, Message, TransportError, connect
from zocalo_nb.transport.memory_broker import CallbackFailed


def test_each_plain_memory_url_gets_a_broker_of_its_own() -> None:
    with connect("memory://") as a, connect("memory://") as b:
        got: list[Message] = []
        b.subscribe("q", got.append, ack="auto")
        a.send("q", {"n": 1})
        b.broker.join()
        assert got == []  # nothing shared between transports


def test_transports_on_one_broker_talk_and_join_waits_for_all_work() -> None:
    broker = MemoryBroker()
    a, b = broker.connect(), broker.connect()
    got: list[object] = []

    def relay(message: Message) -> None:
        b.send("second", {"n": message.body["n"] + 1})
        b.ack(message)

    b.subscribe("first", relay)
    a.subscribe("second", lambda m: (got.append(m.body), a.ack(m)))
    for n in range(100):
        a.send("first", {"n": n}, delay=0.01 if n % 10 == 0 else None)
    broker.join(timeout=10)
    assert sorted(x["n"] for x in got) == list(range(1, 101))  # type: ignore[index]
    a.close(), b.close(), broker.close()


def test_join_reraises_callback_errors_and_times_out_when_work_is_stuck() -> None:
    broker = MemoryBroker()
    transport = broker.connect()
    transport.subscribe("boom", lambda m: 1 / 0, ack="auto")
    transport.send("boom", {})
    with pytest.raises(CallbackFailed, match="ZeroDivisionError") as caught:
        broker.join()
    assert isinstance(caught.value.__cause__, ZeroDivisionError)
    transport.subscribe("held", lambda m: None)  # client ack, never acked
    transport.send("held", {})
    with pytest.raises(TimeoutError):
        broker.join(timeout=0.3)
    transport.close()
    broker.join()  # closing handed the message back; nobody consumes it now


def test_using_a_closed_transport_says_how_to_fix_it() -> None:
    transport = connect("memory://")
    transport.close()
    with pytest.raises(TransportError, match="not connected") as caught:
        transport.send("q", {})
    assert "connect()" in caught.value.hint
    assert "closed" in repr(transport)


def test_ack_on_the_wrong_transport_or_unknown_transaction_is_explained() -> None:
    broker = MemoryBroker()
    a, b = broker.connect(), broker.connect()
    got: list[Message] = []
    a.subscribe("q", got.append)
    b.send("q", {})
    assert eventually(lambda: bool(got))
    with pytest.raises(TransportError, match="not received by a subscription of this transport"):
        b.ack(got[0])
    with pytest.raises(TransportError, match="unknown transaction"):
        a.ack(got[0], transaction="tx-nope")
    with pytest.raises(TransportError, match="unknown ack mode"):
        a.subscribe("q", got.append, ack="sometimes")  # type: ignore[arg-type]
    a.ack(got[0])
    broker.join()


def _woken(thread: threading.Thread | None) -> int:
    """How often ``thread`` blocked and was woken again (its voluntary context switches)."""
    assert thread is not None
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    (line,) = [x for x in status.splitlines() if x.startswith("voluntary_ctxt_switches")]
    return int(line.split()[1])


def test_a_pending_delay_does_not_wake_the_timer_thread_for_every_message() -> None:
    # The timer thread waits for its next deadline; sends, acks and deliveries are no reason
    # to wake it (it used to share the condition that every broker operation notifies).
    broker = MemoryBroker()
    with broker.connect() as transport:
        transport.send("later", {"n": 0}, delay=60)
        got: list[Message] = []
        transport.subscribe("now", got.append, ack="auto")
        timers = broker._scheduler  # this broker's timer thread
        assert eventually(lambda: _woken(timers) >= 1)  # waiting
        before = _woken(timers)
        for n in range(300):
            transport.send("now", {"n": n})
            time.sleep(0.0005)  # a steady flow: the timer thread could run between messages
        assert eventually(lambda: len(got) == 300)
        assert _woken(timers) - before <= 2
    broker.close()


def test_sends_acks_and_deliveries_notify_nobody_unless_a_join_waits() -> None:
    # join() is the only thing that waits for "something changed"; notifying its condition
    # (Python code, as is a Condition's ``with``) on every send, ack and delivery cost the
    # memory:// pipeline about a tenth of its time.
    broker = MemoryBroker()
    counting = Counting(broker._cond._lock)  # type: ignore[attr-defined]
    broker._cond = counting
    with broker.connect() as transport:
        done: list[int] = []

        def handle(message: Message) -> None:
            with transport.transaction() as tx:
                transport.send("next", message.body, transaction=tx)
                transport.ack(message, transaction=tx)
            done.append(message.body["n"])

        transport.subscribe("work", handle, ack="client", prefetch=10)
        transport.subscribe("next", lambda m: None, ack="auto")
        for n in range(200):
            transport.send("work", {"n": n})
        assert eventually(lambda: len(done) == 200 and broker.stats("work")[0] == 0)
        assert counting.notified == 0

        # While a join() waits it is told of every change, and returns once all is done.
        slow = threading.Event()
        transport.subscribe("slow", lambda m: slow.wait(5), ack="auto")
        transport.send("slow", {})
        joined = threading.Thread(target=broker.join, kwargs={"timeout": 5})
        joined.start()
        assert eventually(lambda: counting.waiting == 1)
        slow.set()
        joined.join(timeout=5)
        assert not joined.is_alive()
        assert counting.notified >= 1
    broker.close()


def test_a_handoff_callback_runs_where_the_message_becomes_deliverable() -> None:
    # The service runner's receivers only put messages in a worker's inbox: on memory://
    # they run on the sending (acking, closing) thread, not via the transport's delivery
    # thread, whose switch and back cost the pipeline a fifth of its rate.
    broker = MemoryBroker()
    sender, receiver = broker.connect(), broker.connect()
    inbox: list[tuple[str, Message]] = []
    receiver.subscribe(
        "work",
        lambda m: inbox.append((threading.current_thread().name, m)),
        ack="cumulative",
        prefetch=5,
        handoff=True,
    )
    for n in range(3):
        sender.send("work", {"n": n})
    me = threading.current_thread().name
    # Already there when send returns: nothing else ran in between.
    assert [(name, m.body["n"]) for name, m in inbox] == [(me, 0), (me, 1), (me, 2)]
    assert inbox[0][1].subscription and not inbox[0][1].redelivered

    # join() waits until they are acked, not until the callback returned.
    def ack_later() -> None:
        time.sleep(0.3)
        receiver.ack(inbox[-1][1])  # cumulative: all three

    acker = threading.Thread(target=ack_later, name="acker")
    started = time.monotonic()
    acker.start()
    broker.join(timeout=5)
    assert time.monotonic() - started >= 0.25
    assert broker.stats("test.work")[0] == 0
    acker.join()
    sender.close(), receiver.close(), broker.close()


def test_a_handoff_subscription_gets_redeliveries_on_the_thread_that_gave_them_up() -> None:
    broker = MemoryBroker()
    holder, taker = broker.connect(), broker.connect()
    held: list[Message] = []
    holder.subscribe("work", held.append, prefetch=10)  # on holder's delivery thread
    holder.send("work", {"n": 1})
    assert eventually(lambda: len(held) == 1)
    taken: list[tuple[str, Message]] = []
    taker.subscribe(
        "work",
        lambda m: taken.append((threading.current_thread().name, m)),
        prefetch=10,
        handoff=True,
    )
    closer = threading.Thread(target=holder.close, name="closer")
    closer.start()
    closer.join()
    assert [(name, m.body, m.redelivered) for name, m in taken] == [("closer", {"n": 1}, True)]
    taker.ack(taken[0][1])
    broker.join(timeout=5)
    taker.close(), broker.close()


def test_handoff_is_ignored_where_acks_do_not_say_when_the_work_is_done() -> None:
    # ack="auto": join() counts a message done when its callback returns, so the callback
    # keeps running on the delivery thread, and join() waits for it.
    broker = MemoryBroker()
    with broker.connect() as transport:
        ran: list[str] = []

        def slow(message: Message) -> None:
            time.sleep(0.3)
            ran.append(threading.current_thread().name)

        transport.subscribe("auto", slow, ack="auto", handoff=True)
        transport.send("auto", {})
        broker.join(timeout=5)
        assert ran == ["zocalo-nb-memory-delivery"]
    broker.close()


def test_a_handoff_callback_that_raises_is_reported_by_join() -> None:
    broker = MemoryBroker()
    with broker.connect() as transport:
        sub = transport.subscribe("boom", lambda m: 1 / 0, handoff=True)
        transport.send("boom", {})  # the promise is broken: the sender is not hurt by it
        assert broker.stats("test.boom")[0] == 1  # still held, as after a raising callback
        transport.unsubscribe(sub)  # given back: nothing is held any more
    with pytest.raises(CallbackFailed, match="ZeroDivisionError"):
        broker.join(timeout=5)
    broker.close()
