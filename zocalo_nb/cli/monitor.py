"""``zocalo-nb status``, ``zocalo-nb runs`` and ``zocalo-nb run ID``."""

from __future__ import annotations

import argparse
import time
from typing import Any

from zocalo_nb.cli.exitcodes import ExitCode
from zocalo_nb.cli.recipes import parse_parameters
from zocalo_nb.cli.services import add_broker_options, broker_settings
from zocalo_nb.errors import InvalidArgument, NotFound


def add_commands(commands: Any) -> None:
    """Register ``status``, ``runs`` and ``run``."""
    status = commands.add_parser("status", help="services and queues, as tables")
    status.add_argument(
        "--wait", type=float, default=7.0, help="seconds to listen for service status (7)"
    )
    status.add_argument(
        "--queue", action="append", default=[], help="a queue to show (repeat; default: all)"
    )
    add_broker_options(status)
    status.set_defaults(run=run_status)

    runs = commands.add_parser("runs", help="recent runs from the history database")
    runs.add_argument("--history", help="database URL (default: ZOCALO_NB_HISTORY or SQLite)")
    runs.add_argument("--limit", type=int, default=20, help="how many (20)")
    runs.add_argument("--since", help="only runs since (e.g. 2026-11-25 or 1d, 3h)")
    runs.add_argument(
        "-s", "--set", action="append", default=[], metavar="KEY=VALUE", help="recipe parameter"
    )
    runs.set_defaults(run=run_runs)

    run = commands.add_parser("run", help="one run's steps and states")
    run.add_argument("id", help="run id")
    run.add_argument("--history", help="database URL (default: ZOCALO_NB_HISTORY or SQLite)")
    run.add_argument("--graph", help="also write the coloured graph (.svg, .png, .pdf, .dot)")
    run.add_argument("--events", action="store_true", help="also list its events")
    run.set_defaults(run=run_run)


def run_status(args: argparse.Namespace) -> int:
    import pandas as pd

    from zocalo_nb.monitor import Tap
    from zocalo_nb.transport import connect

    with connect(broker_settings(args)) as transport:
        tap = Tap(transport)
        print(f"listening to transient.status for {args.wait:g} s ...", flush=True)
        time.sleep(args.wait)
        services = tap.services()
        queues = tap.queues(args.queue or None)  # default: every queue of the namespace
        tap.close()
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        if services.empty:
            print("no service reported its status")
        else:
            shown = services[["service", "host", "statustext", "alive", "age", "busy"]]
            print(shown.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
        print()
        print(queues.to_string(index=False) if len(queues) else "no queues in this namespace")
    return ExitCode.OK


def run_runs(args: argparse.Namespace) -> int:
    from zocalo_nb.monitor import History

    since = _since(args.since) if args.since else None
    # recipe parameters by name, even one called "since" or "limit"
    frame = History(args.history).runs(
        limit=args.limit, since=since, where=parse_parameters(args.set)
    )
    if frame.empty:
        print("no runs recorded (is a tracker running? zocalo-nb service tracker)")
        return ExitCode.OK
    frame["parameters"] = frame["parameters"].map(
        lambda p: ", ".join(f"{k}={v}" for k, v in p.items())
    )
    print(frame.to_string(index=False, max_colwidth=60))
    return ExitCode.OK


def run_run(args: argparse.Namespace) -> int:
    from zocalo_nb.monitor import History, Run

    history = History(args.history)
    view = Run(history.resolve_run(args.id), history)  # a unique prefix will do
    if not view.event_records():
        raise NotFound(
            f"no events recorded for run {args.id}",
            what="run",
            key=args.id,
            hint="check the id (zocalo-nb runs) and the --history database",
        )
    print(repr(view))
    print(view.summary().to_string(index=False, na_rep=""))
    if args.events:
        print()
        events = view.events()[["time", "step", "state", "service", "error"]]
        print(events.to_string(index=False, na_rep=""))
    explanation = view.explain()
    if explanation:
        print()
        print(explanation)
    if args.graph:
        print(f"graph written to {view.graph().render(args.graph)}")
    return ExitCode.OK


def _since(text: str) -> float:
    """``1d``, ``3h``, ``30m`` ago, or a date/time."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(text[:-1]) * units[text[-1]]
    import pandas as pd

    try:
        return float(pd.Timestamp(text, tz="UTC").timestamp())
    except ValueError as err:
        raise InvalidArgument(
            f"cannot read --since {text!r}",
            name="since",
            value=text,
            hint="use 1d, 3h, 30m or a date",
        ) from err
