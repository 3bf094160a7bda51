"""Taps stay within their size; frames are typed."""

from __future__ import annotations

import time

import pytest

from zocalo_nb.dispatch.events import EVENTS_TOPIC
from zocalo_nb.errors import ZocaloNbError
from zocalo_nb.monitor import RecordBuffer, Tap
from zocalo_nb.transport import MemoryBroker, Message


def test_a_tap_over_a_million_messages_keeps_its_configured_size() -> None:
    broker = MemoryBroker()
    tap = Tap(broker.connect(), maxlen=1000)
    event = {"run": "r", "step": 1, "state": "succeeded", "service": "s", "time": 0.0}
    for _ in range(1_000_000 // 20):  # what the transport thread calls, 20 events a message
        tap._on_events(Message(f"/topic/{EVENTS_TOPIC}", [event] * 20, {}))
    assert len(tap.event_buffer) == 1000 and tap.event_buffer.appended == 1_000_000
    assert tap.event_buffer.dropped == 999_000 and len(tap.events()) == 1000
    # and through the broker itself
    sender = broker.connect()
    for n in range(3000):
        sender.broadcast(EVENTS_TOPIC, [{**event, "step": n, "time": float(n)}])
    broker.join(timeout=30)
    assert len(tap.event_buffer) == 1000
    assert list(tap.events()["step"])[-1] == 2999
    broker.close()


def test_frames_have_typed_columns() -> None:
    broker = MemoryBroker()
    tap = Tap(broker.connect()).ready()
    now = time.time()
    broker.connect().broadcast(
        EVENTS_TOPIC,
        [
            {
                "run": "r",
                "step": 1,
                "state": "failed",
                "service": "s",
                "host": "h",
                "time": now,
                "attempt": 1,
                "error": {"type": "ValueError", "message": "bad"},
            },
        ],
    )
    broker.join(timeout=10)
    frame = tap.events()
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"
    assert str(frame["step"].dtype) == "Int64" and str(frame["state"].dtype) == "category"
    assert frame["state"].cat.ordered and frame.loc[0, "error_type"] == "ValueError"
    assert tap.services().empty and list(tap.services().columns)[:3] == [
        "host",
        "service",
        "status",
    ]
    broker.close()


def test_record_buffers_refuse_a_useless_size() -> None:
    with pytest.raises(ZocaloNbError, match="maxlen"):
        RecordBuffer(0)
