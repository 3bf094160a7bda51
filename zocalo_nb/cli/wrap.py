"""``zocalo-nb wrap --wrap NAME --recipewrapper FILE``: run one job, as upstream's zocalo.wrap.

FILE is a recipe message body (environment, payload, recipe, recipe-path, recipe-pointer).
Channel messages are sent as they happen; status goes out on ``transient.status``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from zocalo_nb.cli.exitcodes import ExitCode
from zocalo_nb.cli.services import add_broker_options, broker_settings
from zocalo_nb.cluster.service import sent_steps
from zocalo_nb.dispatch import RecipeMessage, StepContext
from zocalo_nb.dispatch.context import deliver
from zocalo_nb.errors import InvalidArgument
from zocalo_nb.service.status import STATUS_EXPIRY, STATUS_TOPIC, host_id
from zocalo_nb.transport import connect
from zocalo_nb.wrapper import find_wrapper, run_job


def add_commands(commands: Any) -> None:
    """Register ``wrap``."""
    wrap = commands.add_parser("wrap", help="run one job for a recipe step (like zocalo.wrap)")
    wrap.add_argument("--wrap", required=True, metavar="NAME", help="wrapper name, e.g. command")
    wrap.add_argument(
        "--recipewrapper", required=True, metavar="FILE", help="a recipe message body as JSON"
    )
    add_broker_options(wrap)
    wrap.set_defaults(run=run_wrap)


def run_wrap(args: argparse.Namespace) -> int:
    try:
        body = json.loads(Path(args.recipewrapper).read_text())
    except (OSError, ValueError) as err:
        raise InvalidArgument(
            f"cannot read {args.recipewrapper}: {err}",
            hint="it must hold a recipe message body as JSON",
        ) from err
    ctx = StepContext(RecipeMessage.from_body(body, None))
    wrapper = find_wrapper(args.wrap)
    settings = broker_settings(args)
    with connect(settings) as transport:
        sent: set[int] = set()

        def emit(channel: str, payload: Any) -> None:
            ctx.send_to(channel, payload)
            sent.update(sent_steps(ctx))
            for out in ctx.outbox:
                deliver(transport, out)
            ctx.outbox.clear()

        def status(message: dict[str, Any]) -> None:
            transport.broadcast(STATUS_TOPIC, message, expiration=STATUS_EXPIRY)

        outcome = run_job(wrapper, ctx, emit=emit, status=status, host=host_id())
    # the outcome went out: a cluster watcher must not report this job's end for it, and
    # tells the run's monitors which steps the job sent work to
    Path(f"{args.recipewrapper}.done").write_text(json.dumps({"sent_to": sorted(sent)}))
    print(f"{wrapper.name}: {'success' if outcome.success else 'failure'}", file=sys.stderr)
    if outcome.error:
        print(outcome.error, file=sys.stderr)
    return ExitCode.OK if outcome.success else ExitCode.FAILED
