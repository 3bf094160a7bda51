"""Pictures of runs and services (matplotlib: the ``plots`` extra).

- :func:`timeline`: one bar per attempt of each step of a run, from when its handler started to
  when it ended, coloured by outcome; a retry's wait shows as the gap before the next bar.
- :func:`throughput`: steps finished per interval, one line per service, from any events (a
  tap's, or the history's over days).

Both take an events DataFrame (``run.events()``, ``tap.events()``, ``history.events()``) and
return the matplotlib Figure (a notebook shows it; ``fig.savefig(path)`` writes it).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from zocalo_nb.errors import MissingExtra
from zocalo_nb.render.display import in_notebook
from zocalo_nb.states import STATE_COLOURS, StepState
from zocalo_nb.wire.events import EventState

#: Outcomes a bar can have: the event that ended an attempt.
OUTCOMES = (
    EventState.SUCCEEDED,
    EventState.RETRYING,
    EventState.FAILED,
    EventState.DEAD_LETTERED,
)


def _pyplot() -> Any:
    try:
        import matplotlib

        if not in_notebook():
            matplotlib.use("Agg")  # files, not windows, outside a notebook
        import matplotlib.pyplot as plt
    except ImportError as error:  # an optional part: say which pip install brings it
        raise MissingExtra("plots", error.name) from error
    return plt


def attempts(events: pd.DataFrame) -> pd.DataFrame:
    """The attempts in ``events``: step, outcome, start and end (UTC), service."""
    ended = events[events["state"].isin([o.value for o in OUTCOMES])].copy()
    # an attempt that failed for the last time says "failed" and "dead-lettered": one bar,
    # with the later word (OUTCOMES is in that order)
    ended["rank"] = ended["state"].astype(str).map({o.value: n for n, o in enumerate(OUTCOMES)})
    ended = ended.sort_values("rank").drop_duplicates(
        ["run", "step", "attempt", "message_id"], keep="last"
    )
    ended = ended.sort_values("time")
    seconds = pd.to_timedelta(ended["duration"].fillna(0.0), unit="s")
    ended["end"] = ended["time"]
    ended["start"] = ended["time"] - seconds
    ended["outcome"] = ended["state"].astype(str)
    return ended[["step", "outcome", "start", "end", "service", "attempt"]].reset_index(drop=True)


def timeline(events: pd.DataFrame, *, title: str = "") -> Any:
    """One bar per step attempt (see module docstring); returns the Figure."""
    plt = _pyplot()
    bars = attempts(events)
    steps = sorted(int(s) for s in bars["step"].dropna().unique())
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * max(len(steps), 1)))
    if bars.empty:
        ax.text(0.5, 0.5, "no finished attempts yet", ha="center", va="center")
        ax.set_axis_off()
        return fig
    origin = bars["start"].min()
    span = max((bars["end"].max() - origin).total_seconds(), 0.001)
    for row in bars.itertuples():
        left = (row.start - origin).total_seconds()
        width = max((row.end - row.start).total_seconds(), span / 120)  # a quick one shows
        colour = STATE_COLOURS[StepState.parse(row.outcome)]
        ax.barh(steps.index(int(row.step)), width, left=left, height=0.6, color=colour,
                edgecolor="#333333", linewidth=0.6)  # fmt: skip
    ax.set_yticks(range(len(steps)), [f"step {s}" for s in steps])
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first attempt started")
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=STATE_COLOURS[StepState.parse(o.value)])
        for o in OUTCOMES
        if o.value in set(bars["outcome"])
    ]
    labels = [o.value for o in OUTCOMES if o.value in set(bars["outcome"])]
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8,
              frameon=False)  # fmt: skip
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def throughput(events: pd.DataFrame, *, every: str = "1s", title: str = "") -> Any:
    """Steps finished (succeeded) per ``every`` (a pandas frequency), one line per service;
    returns the Figure."""
    plt = _pyplot()
    done = events[events["state"] == EventState.SUCCEEDED.value]
    fig, ax = plt.subplots(figsize=(8, 3))
    if done.empty:
        ax.text(0.5, 0.5, "no finished steps yet", ha="center", va="center")
        ax.set_axis_off()
        return fig
    counts = (
        done.assign(service=done["service"].astype(str))
        .set_index("time")
        .groupby("service")
        .resample(every)
        .size()
        .unstack(0, fill_value=0)
    )
    import matplotlib.dates as mdates

    width = pd.Timedelta(every) / pd.Timedelta(days=1) * 0.9  # bar width in matplotlib days
    bottom = pd.Series(0, index=counts.index)
    for service in counts.columns:  # stacked: the height of a bar is all steps finished
        ax.bar(counts.index, counts[service], width=width, bottom=bottom, label=service,
               align="edge")  # fmt: skip
        bottom = bottom + counts[service]
    if len(counts) <= 12:  # a tick per bar, at its start
        ax.set_xticks(list(counts.index))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]
    ax.set_ylabel(f"steps finished per {every}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
