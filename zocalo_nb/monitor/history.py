"""History: every lifecycle event, each step's input, each run, in a SQL database.

SQLite by default (``ZOCALO_NB_HISTORY`` or ``~/.zocalo-nb/history.sqlite``), PostgreSQL by URL
(``postgresql+psycopg://user@127.0.0.1:5432/db``). The :class:`Tracker` service writes, in
batches, from the events topic; :class:`History` reads DataFrames back, filtered by run, step,
service, state, time range or any recipe parameter (``history(dcid=1234)``).

The events topic is not durable: events broadcast while no tracker listens are not recorded.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from zocalo_nb.config import history_url
from zocalo_nb.dispatch import RecipeMessage
from zocalo_nb.errors import HistoryError, MissingExtra, NotFound, RunError
from zocalo_nb.monitor import frames
from zocalo_nb.monitor.history_rows import (
    PARAMETER_CHARS,
    _epoch,
    _event_row,
    _key,
    _parameter_rows,
    _run_row,
    _text,
)
from zocalo_nb.monitor.records import Record
from zocalo_nb.wire.events import EventState

log = logging.getLogger(__name__)
DEFAULT_PREFIX = "zocalo_nb_"


class History:
    """The history database (see module docstring); ``prefix`` names its tables."""

    def __init__(self, url: str | None = None, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.url = url or history_url()
        if "://" not in self.url:  # a plain path: SQLite
            self.url = f"sqlite:///{Path(self.url).expanduser()}"
        if self.url.startswith("sqlite:///") and self.url != "sqlite:///:memory:":
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = sa.create_engine(self.url, future=True)
        except ModuleNotFoundError as err:
            if (err.name or "").split(".")[0] in {"psycopg", "psycopg2"}:
                raise MissingExtra("sql", err.name) from err
            raise HistoryError(
                f"cannot use history database {self.redacted_url}: {err}",
                url=self.redacted_url,
                hint=f"install the database driver {err.name} or use sqlite:///path.sqlite",
            ) from err
        except sa.exc.ArgumentError as err:
            raise HistoryError(
                f"cannot use history database {self.redacted_url}: {err}",
                url=self.redacted_url,
                hint="use sqlite:///path.sqlite or postgresql+psycopg://user@host:port/db",
            ) from err
        meta = sa.MetaData()
        self.events_table = sa.Table(
            f"{prefix}events",
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("run", sa.String(100), index=True),
            sa.Column("step", sa.Integer),
            sa.Column("state", sa.String(20), index=True),
            sa.Column("service", sa.String(200), index=True),
            sa.Column("host", sa.String(300)),
            sa.Column("time", sa.Float, index=True),
            sa.Column("data", sa.Text),
        )
        self.runs_table = sa.Table(
            f"{prefix}runs",
            meta,
            sa.Column("run", sa.String(100), primary_key=True),
            sa.Column("time", sa.Float, index=True),
            sa.Column("source", sa.String(50)),
            sa.Column("host", sa.String(300)),
            sa.Column("recipe", sa.Text),
            sa.Column("parameters", sa.Text),
            sa.Column("environment", sa.Text),
        )
        self.parameters_table = sa.Table(
            f"{prefix}run_parameters",
            meta,
            sa.Column("run", sa.String(100), index=True),
            sa.Column("name", sa.String(200)),
            sa.Column("value", sa.String(PARAMETER_CHARS)),
            sa.Index(f"{prefix}run_parameters_nv", "name", "value"),
        )
        try:
            meta.create_all(self.engine)
        except sa.exc.OperationalError as err:
            raise HistoryError(
                f"cannot open history database {self.redacted_url}: {err.orig}",
                url=self.redacted_url,
                hint="check the URL, that the server runs and the user may create tables",
            ) from err

    @property
    def redacted_url(self) -> str:
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"<History {self.redacted_url}>"

    # -- writing ---------------------------------------------------------------------------
    def record(self, events: Iterable[Record]) -> int:
        """Store events (and the runs their ``submitted`` events open) in one transaction.

        Values that do not fit a column (a step past a SQL integer, a run id that is not
        text, a time that is not a number, an over-long name) are left out of that column
        and kept in the event's JSON; a run submitted twice is stored once."""
        rows: list[dict[str, Any]] = []
        runs: dict[str, dict[str, Any]] = {}
        parameters: list[dict[str, Any]] = []
        for event in events:
            if event.get("state") == EventState.SUBMITTED and _key(event.get("run")):
                row = _run_row(event)
                if row["run"] not in runs:
                    runs[row["run"]] = row
                    parameters += _parameter_rows(event, row["run"])
                continue
            rows.append(_event_row(event))
        return self._insert(rows, list(runs.values()), parameters)

    def _insert(
        self,
        rows: list[dict[str, Any]],
        runs: list[dict[str, Any]],
        parameters: list[dict[str, Any]],
    ) -> int:
        with self.engine.begin() as db:
            if runs:
                known = {
                    r[0]
                    for r in db.execute(
                        sa.select(self.runs_table.c.run).where(
                            self.runs_table.c.run.in_([r["run"] for r in runs])
                        )
                    )
                }
                runs = [r for r in runs if r["run"] not in known]
                parameters = [p for p in parameters if p["run"] not in known]
                if runs:
                    db.execute(sa.insert(self.runs_table), runs)
                if parameters:
                    db.execute(sa.insert(self.parameters_table), parameters)
            if rows:
                db.execute(sa.insert(self.events_table), rows)
        return len(rows) + len(runs)

    def forget(self, older_than_days: float) -> int:
        """Retention: delete events and runs older than this many days; returns rows deleted."""
        cutoff = time.time() - older_than_days * 86400
        with self.engine.begin() as db:
            old_runs = sa.select(self.runs_table.c.run).where(self.runs_table.c.time < cutoff)
            gone = db.execute(
                sa.delete(self.parameters_table).where(self.parameters_table.c.run.in_(old_runs))
            ).rowcount
            gone += db.execute(
                sa.delete(self.runs_table).where(self.runs_table.c.time < cutoff)
            ).rowcount
            gone += db.execute(
                sa.delete(self.events_table).where(self.events_table.c.time < cutoff)
            ).rowcount
        return int(gone)

    # -- reading ---------------------------------------------------------------------------
    def event_records(
        self,
        run: str | None = None,
        *,
        step: int | None = None,
        service: str | None = None,
        state: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        **parameters: Any,
    ) -> list[Record]:
        """Stored events matching every filter given, oldest first (runs opened included)."""
        e = self.events_table
        query = sa.select(e.c.data).order_by(e.c.time, e.c.id)
        query = self._filters(query, e, run, since, until, parameters)
        if step is not None:
            query = query.where(e.c.step == step)
        if service is not None:
            query = query.where(e.c.service == service)
        if state is not None:
            query = query.where(e.c.state == state)
        with self.engine.connect() as db:
            records = [json.loads(row[0]) for row in db.execute(query)]
            if step is None and service is None and state in (None, EventState.SUBMITTED):
                r = self.runs_table
                opened = self._filters(sa.select(r), r, run, since, until, parameters)
                records += [self._run_record(row) for row in db.execute(opened)]
                records.sort(key=lambda e: float(e.get("time") or 0.0))
                if state == EventState.SUBMITTED:
                    records = [e for e in records if e.get("state") == EventState.SUBMITTED]
        return records[:limit] if limit is not None else records

    def events(self, run: str | None = None, **filters: Any) -> pd.DataFrame:
        """Stored events as a DataFrame (the columns of ``Tap.events()``)."""
        return frames.events_frame(self.event_records(run, **filters))

    def runs(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        where: Mapping[str, Any] | None = None,
        **parameters: Any,
    ) -> pd.DataFrame:
        """Runs, newest first: id, submission time, source, recipe parameters, and a count of
        events per state. Filter by recipe parameters as keywords, or in ``where`` for names
        that are also keywords here (``where={"since": 3}``)."""
        parameters = {**(where or {}), **parameters}
        r = self.runs_table
        query = sa.select(r.c.run, r.c.time, r.c.source, r.c.parameters).order_by(r.c.time.desc())
        query = self._filters(query, r, None, since, until, parameters)
        if limit is not None:
            query = query.limit(limit)
        e = self.events_table
        with self.engine.connect() as db:
            rows = [dict(row._mapping) for row in db.execute(query)]
            ids = [row["run"] for row in rows]
            counts: dict[str, dict[str, int]] = {}
            if ids:
                tally = (
                    sa.select(e.c.run, e.c.state, sa.func.count())
                    .where(e.c.run.in_(ids))
                    .group_by(e.c.run, e.c.state)
                )
                for run_id, state, n in db.execute(tally):
                    counts.setdefault(run_id, {})[state] = n
        for row in rows:
            row["parameters"] = json.loads(row["parameters"] or "{}")
            tally_row = counts.get(row["run"], {})
            row["succeeded"] = tally_row.get(EventState.SUCCEEDED, 0)
            row["dead_lettered"] = tally_row.get(EventState.DEAD_LETTERED, 0)
            row["events"] = sum(tally_row.values())
        columns = ["run", "time", "source", "succeeded", "dead_lettered", "events", "parameters"]
        frame = pd.DataFrame(rows, columns=columns)
        frame["time"] = pd.to_datetime(frame["time"].astype("float64"), unit="s", utc=True)
        return frame

    def reruns_of(self, run: str) -> list[str]:
        """The runs started as reruns of ``run`` (their ``environment`` says ``rerun-of``),
        oldest first."""
        r = self.runs_table
        query = (
            sa.select(r.c.run, r.c.environment)
            .where(r.c.environment.like(f"%{run}%"))
            .order_by(r.c.time)
        )
        with self.engine.connect() as db:
            rows = list(db.execute(query))
        found = []
        for rerun, environment in rows:
            try:
                if json.loads(environment or "{}").get("rerun-of") == run:
                    found.append(str(rerun))
            except (ValueError, AttributeError):
                continue
        return found

    def resolve_run(self, run: str) -> str:
        """The full id of the run ``run`` names: itself, or the one recorded run whose id
        starts with it (as the demo prints them, ``5ad29d38``); NotFound otherwise, naming
        the candidates when the prefix is ambiguous."""
        r, e = self.runs_table, self.events_table
        escaped = run.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.engine.connect() as db:
            found: set[str] = {
                str(row[0])
                for table in (r, e)
                for row in db.execute(
                    sa.select(table.c.run).where(table.c.run.like(escaped + "%", escape="\\"))
                    .distinct().limit(20)
                )
            }  # fmt: skip
        if run in found:
            return run
        if len(found) == 1:
            return found.pop()
        if found:
            raise NotFound(
                f"{len(found)} runs start with {run!r}: {', '.join(sorted(found)[:5])}"
                + (" ..." if len(found) > 5 else ""),
                what="run",
                key=run,
                hint="give more of the id",
            )
        raise NotFound(
            f"no run {run!r} recorded in {self.redacted_url}",
            what="run",
            key=run,
            hint="check the id (zocalo-nb runs) and the --history database",
        )

    def input_message(self, run: str, step: int) -> RecipeMessage:
        """The message step ``step`` of ``run`` received (its latest recorded delivery),
        rebuilt from the run's recipe and the step's recorded payload and path."""
        records = self.event_records(run)  # the run's submitted record comes with them
        events = [e for e in records if e.get("step") == step and "payload" in e and "path" in e]
        opened = next((e for e in records if e.get("state") == EventState.SUBMITTED), None)
        if not events or opened is None:
            raise RunError(
                f"no recorded input for step {step} of run {run}",
                run_id=run,
                step=step,
                hint="the tracker records inputs from the run's events; was it running?",
            )
        from zocalo_nb.recipe import Recipe

        last = events[-1]
        return RecipeMessage(
            Recipe.from_dict(opened["recipe"]),
            step,
            last["payload"],
            tuple(last["path"]),
            opened.get("environment") or {"ID": run},
        )

    def _filters(
        self,
        query: Any,
        table: sa.Table,
        run: str | None,
        since: float | None,
        until: float | None,
        parameters: Mapping[str, Any],
    ) -> Any:
        if run is not None:
            query = query.where(table.c.run == run)
        if since is not None:
            query = query.where(table.c.time >= _epoch(since))
        if until is not None:
            query = query.where(table.c.time <= _epoch(until))
        p = self.parameters_table
        for name, value in parameters.items():
            matching = sa.select(p.c.run).where(p.c.name == name, p.c.value == _text(value))
            query = query.where(table.c.run.in_(matching))
        return query

    @staticmethod
    def _run_record(row: sa.Row[Any]) -> Record:
        m = row._mapping
        return {
            "run": m["run"],
            "step": None,
            "state": EventState.SUBMITTED,
            "time": m["time"],
            "source": m["source"],
            "host": m["host"],
            "recipe": json.loads(m["recipe"] or "null"),
            "parameters": json.loads(m["parameters"] or "{}"),
            "environment": json.loads(m["environment"] or "{}"),
        }
