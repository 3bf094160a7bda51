"""How history records become database rows: events, runs and their indexed parameters
(values that do not fit a column are stored as None and kept under ``unfit``)."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from zocalo_nb.errors import InvalidArgument
from zocalo_nb.monitor.records import Record

#: Recipe parameter values longer than this are not indexed for filtering.
PARAMETER_CHARS = 200
#: The largest step number a SQL INTEGER column holds everywhere (PostgreSQL: 32 bits).
MAX_STEP = 2**31 - 1


def _key(value: Any, width: int = 100) -> str | None:
    """Text for a key column: strings and numbers only, cut to the column's width."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value)[:width] or None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _json(value: Any) -> str:
    try:
        return json.dumps(value, default=repr)
    except (TypeError, ValueError, RecursionError):
        return json.dumps(repr(value)[:10_000])


def _event_row(event: Record) -> dict[str, Any]:
    """The columns of an event; a value that does not fit its column is stored as None
    there and in the event, and kept as it came under ``unfit``, so readers see clean types."""
    step = event.get("step")
    row = {
        "run": _key(event.get("run")),
        "step": step if isinstance(step, int) and abs(step) <= MAX_STEP else None,
        "state": _key(event.get("state"), 20),
        "service": _key(event.get("service"), 200),
        "host": _key(event.get("host"), 300),
        "time": _number(event.get("time")),
    }
    unfit = {k: event[k] for k, v in row.items() if event.get(k) is not None and v != event[k]}
    if unfit:
        event = {**event, **{k: row[k] for k in unfit}, "unfit": unfit}
    row["data"] = _json(event)
    return row


def _run_row(event: Record) -> dict[str, Any]:
    return {
        "run": _key(event.get("run")),
        "time": _number(event.get("time")),
        "source": _key(event.get("source"), 50),
        "host": _key(event.get("host"), 300),
        "recipe": _json(event.get("recipe")),
        "parameters": _json(event.get("parameters") or {}),
        "environment": _json(event.get("environment") or {}),
    }


def _parameter_rows(event: Record, run: str) -> list[dict[str, Any]]:
    """Every scalar parameter of the run: the submission's, and each step's."""
    found: dict[str, str] = {}
    recipe = event.get("recipe")
    if isinstance(recipe, dict):
        for step in recipe.values():
            if isinstance(step, dict) and isinstance(step.get("parameters"), dict):
                for name, value in step["parameters"].items():
                    if _scalar(value):
                        found.setdefault(str(name), _text(value))
    given = event.get("parameters")
    for name, value in (given if isinstance(given, dict) else {}).items():
        if _scalar(value):
            found[str(name)] = _text(value)
    return [
        {"run": run, "name": name[:200], "value": value}
        for name, value in found.items()
        if len(value) <= PARAMETER_CHARS
    ]


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and value is not None


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise InvalidArgument(
            f"cannot read {value!r} as a time",
            name="time",
            value=value,
            hint="give epoch seconds, a datetime or text such as '2026-11-01' or "
            "'2026-11-01 12:00'",
        ) from err
    if stamp is pd.NaT:
        raise InvalidArgument(
            f"cannot read {value!r} as a time", hint="e.g. '2026-11-01'", name="time", value=value
        )
    return float(stamp.timestamp())
