"""Watching runs: taps into DataFrames, run views, the live graph, and history in SQL.

Example::

    import zocalo_nb as z
    run = z.submit(recipe, {"dcid": 1234}, transport=t)   # a Run
    run.wait(); run.summary(); run.graph(); run.explain()
    z.Run.load(run.id, history="sqlite:///runs.sqlite").events()
    z.history(dcid=1234)                                  # every stored event of those runs
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from zocalo_nb.dispatch import submit as _submit
from zocalo_nb.dispatch.submit import RecipeLike
from zocalo_nb.monitor.explain import Explanation, Reason
from zocalo_nb.monitor.history import History
from zocalo_nb.monitor.live import LiveRun
from zocalo_nb.monitor.records import RecordBuffer
from zocalo_nb.monitor.run import EventSource, Run, RunGraph
from zocalo_nb.monitor.tap import Tap
from zocalo_nb.monitor.tracker import Tracker
from zocalo_nb.transport import Transport

__all__ = [
    "EventSource",
    "Explanation",
    "History",
    "LiveRun",
    "Reason",
    "RecordBuffer",
    "Run",
    "RunGraph",
    "Tap",
    "Tracker",
    "history",
    "submit",
]


def submit(
    recipe_or_names: RecipeLike,
    parameters: Mapping[str, Any] | None = None,
    *,
    transport: Transport,
    run_id: str | None = None,
    custom_recipe: Mapping[str, Any] | None = None,
) -> Run:
    """Submit a run (as :func:`zocalo_nb.dispatch.submit`) and return its :class:`Run`.
    The transport's tap listens before anything is sent, so no event of the run is missed."""
    tap = Tap.for_transport(transport)
    handle = _submit(
        recipe_or_names,
        parameters,
        transport=transport,
        run_id=run_id,
        custom_recipe=custom_recipe,
    )
    return Run(handle.id, tap, recipe=handle.recipe, transport=transport, handle=handle)


def history(url: str | History | None = None, **filters: Any) -> pd.DataFrame:
    """Stored events as a DataFrame, filtered by ``run``, ``step``, ``service``, ``state``,
    ``since``/``until`` (epoch seconds or timestamps), ``limit``, or any recipe parameter."""
    store = url if isinstance(url, History) else History(url)
    return store.events(**filters)
