"""The tracker never jams: a bad event is set aside, the rest is stored (SQLite, PostgreSQL)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.monitor.test_history import database  # noqa: F401  (the fixture)
from zocalo_nb.monitor import History, Tracker


def submitted(run: str) -> dict[str, Any]:
    return {
        "state": "submitted",
        "run": run,
        "time": time.time(),
        "recipe": {"1": {"queue": "a"}, "start": [[1, {}]]},
        "parameters": {"ispyb_dcid": 7},
        "environment": {"ID": run},
    }


def succeeded(run: str, step: Any = 1, **extra: Any) -> dict[str, Any]:
    return {
        "state": "succeeded",
        "run": run,
        "step": step,
        "time": time.time(),
        "service": "s",
        "host": "h",
        **extra,
    }


def test_bad_events_are_set_aside_and_everything_else_is_stored(
    database: tuple[str, str],  # noqa: F811
) -> None:
    url, prefix = database
    history = History(url, prefix=prefix)
    tracker = Tracker(history, flush_every=60)  # flushed by hand below
    good = str(uuid.uuid4())
    odd = str(uuid.uuid4())
    tracker.add([submitted(good), submitted(good)])  # a request delivered twice
    tracker.add([succeeded(good)])
    tracker.add([succeeded(odd, step=2**70)])  # no SQL integer holds it
    tracker.add([succeeded({"an": "object"})])  # type: ignore[arg-type]
    tracker.add([succeeded(odd, time="yesterday")])
    tracker.add([succeeded(odd, state="x" * 500)])
    tracker.add([{"state": object()}])
    tracker.flush()
    later = str(uuid.uuid4())
    tracker.add([submitted(later), succeeded(later)])
    tracker.flush()  # the next batch is stored too: nothing jams
    tracker.close()  # and closing does not raise
    events = history.events()
    assert set(history.runs().run) == {good, later}
    # each: submitted once (though delivered twice), succeeded once
    assert list(events[events.run == good].state) == ["submitted", "succeeded"]
    assert list(events[events.run == later].state) == ["submitted", "succeeded"]
    stored_odd = events[events.run == odd]
    assert len(stored_odd) == 3  # stored with what could be kept: step and time dropped
    assert tracker.recorded >= 5
    assert len(tracker.rejected) <= 2 and tracker.rejected_count == len(tracker.rejected)
