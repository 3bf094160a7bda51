"""``zocalo-nb dlq check|list|purge|reinject`` and ``zocalo-nb rerun``, like upstream's
``zocalo.dlq_check``, ``zocalo.dlq_purge`` and ``zocalo.dlq_reinject``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from zocalo_nb.cli.exitcodes import ExitCode
from zocalo_nb.cli.recipes import add_parameter_option, parse_parameters
from zocalo_nb.cli.services import add_broker_options, broker_settings
from zocalo_nb.errors import InvalidArgument


def add_commands(commands: Any) -> None:
    """Register ``dlq`` (with its subcommands) and ``rerun``."""
    dlq = commands.add_parser("dlq", help="dead-letter queues: check, list, purge, reinject")
    verbs = dlq.add_subparsers(dest="verb", metavar="VERB", required=True)

    check = verbs.add_parser("check", help="messages per DLQ; exit 1 when any holds some")
    add_broker_options(check)
    check.set_defaults(run=run_check)

    listing = verbs.add_parser("list", help="the dead letters, one line each")
    _add_selection(listing)
    listing.add_argument("--files", nargs="*", default=[], help="read these files/folders too")
    add_broker_options(listing)
    listing.set_defaults(run=run_list)

    purge = verbs.add_parser("purge", help="export dead letters to files, then remove them")
    purge.add_argument("--location", default="DLQ", help="folder for the files (./DLQ)")
    purge.add_argument("--rate", type=float, help="messages per second")
    _add_selection(purge)
    add_broker_options(purge)
    purge.set_defaults(run=run_purge)

    reinject = verbs.add_parser(
        "reinject", help="send dead letters back: files (or purge output on stdin), or --live"
    )
    reinject.add_argument("files", nargs="*", help="files or folders; '-' reads stdin")
    reinject.add_argument("--live", action="store_true", help="move messages out of the DLQs")
    reinject.add_argument("-r", "--remove", action="store_true", help="delete files once sent")
    reinject.add_argument("--wait", type=float, help="seconds between files")
    reinject.add_argument("--rate", type=float, help="messages per second (--live)")
    reinject.add_argument(
        "--allow-namespace",
        action="store_true",
        help="allow destinations outside the --prefix namespace",
    )
    _add_selection(reinject)
    add_parameter_option(reinject)
    add_broker_options(reinject)
    reinject.set_defaults(run=run_reinject)

    rerun = commands.add_parser("rerun", help="run one step of a run again")
    rerun.add_argument("run_id", metavar="RUN", help="the run id")
    rerun.add_argument("--step", type=int, required=True, help="the step to run again")
    rerun.add_argument("--history", help="history database URL (for steps not in a DLQ)")
    rerun.add_argument("--dry-run", action="store_true", help="show what would be sent")
    rerun.add_argument(
        "--allow-namespace", action="store_true", help="allow a namespace other than test*"
    )
    add_parameter_option(rerun)
    add_broker_options(rerun)
    rerun.set_defaults(run=run_rerun)


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", action="append", help="only this DLQ (e.g. DLQ.zocalo.x)")
    parser.add_argument("--run", dest="run_id", help="only this run's dead letters")
    parser.add_argument("--error-type", help="only dead letters with this error type")


def _transport(args: argparse.Namespace) -> Any:
    from zocalo_nb.transport import connect

    return connect(broker_settings(args))


def _selected(args: argparse.Namespace, transport: Any) -> Any:
    from zocalo_nb import dlq

    queues = [q if q.startswith("/") else f"/queue/{q}" for q in args.queue or ()] or None
    frame = dlq.frame(transport, queues=queues)
    if args.run_id:
        frame = frame[frame["run"] == args.run_id]
    if args.error_type:
        frame = frame[frame["error_type"].astype(str) == args.error_type]
    return frame


def run_check(args: argparse.Namespace) -> int:
    from zocalo_nb import dlq

    with _transport(args) as transport:
        counts = dlq.counts(transport)
    waiting = {q: n for q, n in counts.items() if n}
    for queue, n in sorted(waiting.items()):
        print(f"{queue}: {n} message(s)")
    print(f"{sum(waiting.values())} dead letter(s) in {len(waiting)} queue(s)")
    return ExitCode.FAILED if waiting else ExitCode.OK


def run_list(args: argparse.Namespace) -> int:
    from zocalo_nb import dlq

    with _transport(args) as transport:
        frame = _selected(args, transport)
    if args.files:
        import pandas as pd

        frame = pd.concat([frame, dlq.frame(paths=args.files)], ignore_index=True)
    if frame.empty:
        print("no dead letters")
        return ExitCode.OK
    columns = ["time", "queue", "run", "step", "service", "error_type", "error", "message_id"]
    print(frame[columns].to_string(index=False, na_rep="", max_colwidth=50))
    return ExitCode.OK


def run_purge(args: argparse.Namespace) -> int:
    from zocalo_nb import dlq

    with _transport(args) as transport:
        rows = _selected(args, transport)
        written = dlq.purge(
            transport, rows, location=args.location, rate=args.rate, progress=sys.stderr.isatty()
        )
    for path in written:  # one per line: what 'zocalo-nb dlq reinject -' reads
        print(path)
    print(f"{len(written)} dead letter(s) exported to {args.location}", file=sys.stderr)
    return ExitCode.OK


def run_reinject(args: argparse.Namespace) -> int:
    from zocalo_nb import dlq

    parameters = parse_parameters(args.parameters) or None
    with _transport(args) as transport:
        if args.live:
            rows = _selected(args, transport)
            moved = dlq.reinject(
                transport,
                rows,
                parameters=parameters,
                rate=args.rate,
                allow_namespace=args.allow_namespace,
            )
            print(f"{len(moved)} dead letter(s) reinjected")
            return ExitCode.OK
        paths = [p for p in args.files if p != "-"]
        if "-" in args.files or (not args.files and not sys.stdin.isatty()):
            paths += [line for line in sys.stdin.read().splitlines() if line.strip()]
        if not paths:
            raise InvalidArgument(
                "no dead-letter files given",
                hint="name files or folders, pipe 'zocalo-nb dlq purge' output in, or use --live",
            )
        sent = dlq.reinject_files(
            transport,
            paths,
            remove=args.remove,
            wait=args.wait,
            parameters=parameters,
            allow_namespace=args.allow_namespace,
        )
    for path in sent:
        print(f"reinjected {path}")
    return ExitCode.OK


def run_rerun(args: argparse.Namespace) -> int:
    from zocalo_nb.dlq.rerun import plan_rerun, send_rerun
    from zocalo_nb.monitor import History

    history = History(args.history) if args.history else None
    if history is not None:
        args.run_id = history.resolve_run(args.run_id)  # a unique prefix will do
    parameters = parse_parameters(args.parameters)
    with _transport(args) as transport:
        plan = plan_rerun(
            args.run_id, args.step, transport=transport, history=history, parameters=parameters
        )
        print(plan)
        if args.dry_run:
            return ExitCode.OK
        new_id = send_rerun(plan, transport, allow_namespace=args.allow_namespace)
    print(f"sent: run {new_id} (rerun of {args.run_id})")
    return ExitCode.OK
