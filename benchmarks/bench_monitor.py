"""Benchmark: monitoring costs, in one run.

- tap: events appended per second by a tap's transport callback (messages of 20 events, as
  the service runners send them), target >= 20,000/s;
- frames: time to build the events DataFrame from 100,000 records, target < 1 s;
- tracker: sustained events per second written into SQLite and into PostgreSQL
  (127.0.0.1:5432, database test; skipped with a note when it does not answer).

Run: python benchmarks/bench_monitor.py [--events N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from zocalo_nb.dispatch.events import EVENTS_TOPIC  # noqa: E402
from zocalo_nb.monitor import History, Tap, Tracker  # noqa: E402
from zocalo_nb.monitor.frames import events_frame  # noqa: E402
from zocalo_nb.transport import MemoryBroker, Message  # noqa: E402


def sample_event(n: int) -> dict[str, object]:
    return {
        "run": f"run-{n // 3}",
        "step": n % 3 + 1,
        "service": ("one", "two", "end")[n % 3],
        "host": "org.example.node1.4242",
        "state": "succeeded",
        "time": 1.7e9 + n * 0.001,
        "attempt": 1,
        "message_id": uuid.uuid4().hex,
        "queue": "/queue/zocalo.per_image_analysis",
        "started": 1.7e9 + n * 0.001,
        "duration": 0.002,
        "payload": {"image": f"/dls/i04/data/x_{n:05d}.cbf"},
        "path": [1],
        "sent_to": [2],
    }


def bench_tap(count: int) -> float:
    tap = Tap(MemoryBroker().connect(), maxlen=100_000)
    messages = [
        Message(f"/topic/{EVENTS_TOPIC}", [sample_event(n + i) for i in range(20)], {})
        for n in range(0, 2000, 20)
    ]
    started = time.perf_counter()
    done = 0
    while done < count:
        for message in messages:
            tap._on_events(message)  # what the transport thread runs per message
        done += 2000
    return done / (time.perf_counter() - started)


def bench_tap_through_memory(count: int) -> float:
    """Events per second from broadcast to the tap's buffer, through memory://."""
    broker = MemoryBroker()
    tap = Tap(broker.connect(), maxlen=100_000)
    sender = broker.connect()
    batch = [sample_event(i) for i in range(20)]
    started = time.perf_counter()
    for _ in range(count // 20):
        sender.broadcast(EVENTS_TOPIC, batch)
    broker.join(timeout=120)
    rate = tap.event_buffer.appended / (time.perf_counter() - started)
    broker.close()
    return rate


def bench_frame(count: int) -> float:
    records = [sample_event(n) for n in range(count)]
    started = time.perf_counter()
    frame = events_frame(records)
    elapsed = time.perf_counter() - started
    assert len(frame) == count
    return elapsed


def bench_tracker(url: str, count: int) -> float:
    prefix = f"b{uuid.uuid4().hex[:8]}_"
    history = History(url, prefix=prefix)
    tracker = Tracker(history, batch=2000)
    try:
        started = time.perf_counter()
        for n in range(0, count, 20):
            tracker.add([sample_event(n + i) for i in range(20)])
        tracker.close()  # flushes everything
        rate = count / (time.perf_counter() - started)
        assert tracker.recorded == count, tracker.recorded
    finally:
        with history.engine.begin() as db:
            for table in ("events", "runs", "run_parameters"):
                db.execute(sa.text(f"DROP TABLE IF EXISTS {prefix}{table}"))
        history.engine.dispose()
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    tap = bench_tap(1_000_000)
    through = bench_tap_through_memory(200_000)
    frame = bench_frame(100_000)
    with tempfile.TemporaryDirectory() as folder:
        sqlite = bench_tracker(f"sqlite:///{folder}/history.sqlite", args.events)
    try:
        postgres: float | None = bench_tracker(args.postgres, args.events)
    except Exception as err:  # the figure is reported missing, with why
        print(f"  (PostgreSQL not measured: {err})")
        postgres = None
    print("Monitoring")
    print(f"  tap: events appended per second          {tap:12,.0f}   (target >= 20,000)")
    print(f"  ... end to end through memory://          {through:12,.0f}")
    print(f"  events DataFrame from 100,000 records    {frame:12.3f} s (target < 1 s)")
    print(f"  tracker into SQLite, events per second    {sqlite:12,.0f}")
    if postgres is not None:
        print(f"  tracker into PostgreSQL, events per second{postgres:12,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
