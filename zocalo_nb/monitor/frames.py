"""Typed DataFrames from buffered records: events, services, messages, queues.

Timestamps are UTC datetimes, ids nullable integers, repeated labels categoricals, so frames
group, filter and plot as expected and stay small.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from zocalo_nb.dispatch.envelope import peek
from zocalo_nb.dispatch.events import SUMMARY_CHARS
from zocalo_nb.monitor.records import Record
from zocalo_nb.service.status import STATUS_EXPIRY, ServiceStatus
from zocalo_nb.transport import Message, QueueStats
from zocalo_nb.wire.events import EventState

#: Event states in lifecycle order (an ordered categorical).
EVENT_STATES = tuple(state.value for state in EventState)
EVENT_COLUMNS = (
    "time",
    "run",
    "step",
    "state",
    "service",
    "host",
    "attempt",
    "duration",
    "queue",
    "error_type",
    "error",
    "reason",
    "channel",
    "sent_to",
    "message_id",
    "payload",
)
SERVICE_COLUMNS = (
    "host",
    "service",
    "status",
    "statustext",
    "alive",
    "last_seen",
    "age",
    "busy",
    "utilization",
    "workflows",
)
MESSAGE_COLUMNS = (
    "time",
    "destination",
    "kind",
    "run",
    "step",
    "size",
    "summary",
    "message_id",
    "redelivered",
    "headers",
    "body",
)
QUEUE_COLUMNS = ("queue", "depth", "consumers", "enqueued", "dequeued", "dlq", "dlq_depth")


def _times(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, unit="s", utc=True)


def _category(values: pd.Series, categories: Sequence[str] | None = None) -> pd.Series:
    if categories is None:
        return values.astype("category")
    known = values.where(values.isin(list(categories)))  # an unknown value becomes NaN
    return pd.Series(
        pd.Categorical(known, categories=list(categories), ordered=True), index=values.index
    )


def events_frame(records: Iterable[Record]) -> pd.DataFrame:
    """One row per lifecycle event, oldest first."""
    raw = [c for c in EVENT_COLUMNS if c not in ("error_type", "error")] + ["error"]
    frame = pd.DataFrame(list(records), columns=raw)  # missing keys become NaN (in C)
    errors = frame.pop("error")
    present = errors.map(lambda e: isinstance(e, dict))
    frame["error_type"] = errors.where(present).map(lambda e: e.get("type"), na_action="ignore")
    frame["error"] = errors.where(present).map(lambda e: e.get("message"), na_action="ignore")
    frame = frame[list(EVENT_COLUMNS)]
    frame["time"] = _times(pd.to_numeric(frame["time"], errors="coerce").astype("float64"))
    frame["step"] = pd.to_numeric(frame["step"], errors="coerce").astype("Int64")
    frame["attempt"] = pd.to_numeric(frame["attempt"], errors="coerce").astype("Int64")
    frame["duration"] = pd.to_numeric(frame["duration"], errors="coerce").astype("float64")
    frame["state"] = _category(frame["state"], EVENT_STATES)
    for column in ("service", "host", "queue", "error_type"):
        frame[column] = _category(frame[column])
    return frame.sort_values("time", kind="stable", ignore_index=True)


def latest_status(records: Iterable[Record]) -> dict[tuple[str, str], Record]:
    """The latest status record of each service runner: by host id *and* service name, as
    one process (a notebook kernel) may host several runners under one host id."""
    latest: dict[tuple[str, str], Record] = {}
    for record in records:
        host = record.get("host")
        if isinstance(host, str):
            latest[(host, str(record.get("service")))] = record
    return latest


def services_frame(records: Iterable[Record], now: float | None = None) -> pd.DataFrame:
    """The latest status of each service runner (``host`` and ``service``), departed ones
    included: ``alive`` is False once it said it shut down or stopped reporting for 15 s."""
    now = time.time() if now is None else now
    rows = []
    for (host, _), r in latest_status(records).items():
        status = r.get("status")
        age = now - float(r.get("arrived", now))
        ended = status in (ServiceStatus.END, ServiceStatus.SHUTDOWN)
        reported = r.get("utilization")
        utilization: dict[str, Any] = reported if isinstance(reported, dict) else {}
        rows.append(
            (
                host,
                r.get("service"),
                status,
                r.get("statustext"),
                not ended and age < STATUS_EXPIRY,
                r.get("arrived"),
                age,
                float(utilization.get(str(int(ServiceStatus.PROCESSING)), 0.0)),
                utilization,
                r.get("workflows"),
            )
        )
    frame = pd.DataFrame.from_records(rows, columns=list(SERVICE_COLUMNS))
    frame["status"] = frame["status"].astype("Int64")
    frame["last_seen"] = _times(frame["last_seen"].astype("float64"))
    frame["alive"] = frame["alive"].astype(bool)
    frame["statustext"] = _category(frame["statustext"])
    return frame.sort_values(["service", "host"], ignore_index=True)


def message_record(message: Message, received: float | None = None) -> Record:
    """What a tap keeps of a message (the rest is worked out when a frame is built)."""
    return {"time": time.time() if received is None else received, "message": message}


def messages_frame(records: Iterable[Record]) -> pd.DataFrame:
    """One row per message: where it went, its run and step, size and a payload summary."""
    rows = []
    for record in records:
        message: Message = record["message"]
        body = message.body
        envelope = peek(body)
        run, step, summary_of = envelope.run, envelope.step, envelope.payload
        text = json.dumps(body, default=str) if message.is_json else str(body)
        summary = json.dumps(summary_of, default=str) if message.is_json else text
        kind, _, _ = message.destination.lstrip("/").partition("/")
        rows.append(
            (
                record["time"],
                message.destination,
                kind,
                run,
                step,
                len(text.encode()),
                summary[:SUMMARY_CHARS],
                message.message_id,
                message.redelivered,
                dict(message.headers),
                body,
            )
        )
    frame = pd.DataFrame.from_records(rows, columns=list(MESSAGE_COLUMNS))
    frame["time"] = _times(frame["time"].astype("float64"))
    frame["step"] = frame["step"].astype("Int64")
    frame["size"] = frame["size"].astype("int64")
    frame["destination"] = _category(frame["destination"])
    frame["kind"] = _category(frame["kind"])
    return frame


def queues_frame(stats: Sequence[QueueStats], dlqs: Mapping[str, QueueStats]) -> pd.DataFrame:
    """Queue counters, each queue's DLQ depth beside it."""
    rows = []
    for s in stats:
        dead = dlqs.get(s.queue)
        rows.append(
            (
                s.queue,
                s.depth,
                s.consumers,
                s.enqueued,
                s.dequeued,
                dead.queue if dead else None,
                dead.depth if dead else 0,
            )
        )
    frame = pd.DataFrame.from_records(rows, columns=list(QUEUE_COLUMNS))
    for column in ("depth", "consumers", "enqueued", "dequeued", "dlq_depth"):
        frame[column] = frame[column].astype("int64")
    return frame


JOB_COLUMNS = (
    "jobid",
    "scheduler",
    "run",
    "step",
    "job_state",
    "exit_code",
    "reason",
    "node",
    "start",
    "end",
    "updated",
    "stdout",
    "stderr",
)


def jobs_frame(records: Iterable[Record]) -> pd.DataFrame:
    """One row per cluster job (its latest ``job`` event), oldest submission first."""
    latest: dict[tuple[str, str], Record] = {}
    for record in records:
        if record.get("state") == EventState.JOB:
            latest[(str(record.get("scheduler")), str(record.get("jobid")))] = record
    rows = [
        {**r, "start": r.get("job_start"), "end": r.get("job_end"), "updated": r.get("time")}
        for r in latest.values()
    ]
    frame = pd.DataFrame(rows, columns=list(JOB_COLUMNS))
    for column in ("start", "end", "updated"):
        frame[column] = _times(pd.to_numeric(frame[column], errors="coerce").astype("float64"))
    frame["step"] = pd.to_numeric(frame["step"], errors="coerce").astype("Int64")
    frame["exit_code"] = pd.to_numeric(frame["exit_code"], errors="coerce").astype("Int64")
    return frame.sort_values(["start", "updated"], kind="stable", ignore_index=True)
