"""``zocalo-nb service``, ``go`` and ``shutdown``: running services and runs from a shell."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from zocalo_nb.cli.exitcodes import ExitCode
from zocalo_nb.cli.recipes import add_parameter_option, parse_parameters
from zocalo_nb.config import Settings
from zocalo_nb.dispatch import submit
from zocalo_nb.dispatch.submit import DISPATCHER_QUEUE
from zocalo_nb.errors import InvalidArgument
from zocalo_nb.recipe import Recipe
from zocalo_nb.service import COMMAND_TOPIC, ServiceRunner
from zocalo_nb.service.dispatcher import Dispatcher
from zocalo_nb.service.registry import available, find_service
from zocalo_nb.transport import Transport, connect


def add_broker_options(parser: argparse.ArgumentParser) -> None:
    """``--broker URL`` and ``--prefix NAME`` (see Settings for the order of sources)."""
    parser.add_argument("--broker", help="broker URL (default: ZOCALO_NB_BROKER, site config)")
    parser.add_argument("--prefix", help="namespace prefix (default: test; production: zocalo)")


def broker_settings(args: argparse.Namespace) -> Settings:
    """Settings for a command that talks to a real broker."""
    settings = Settings.build(args.broker, prefix=args.prefix)
    if settings.scheme == "memory":
        raise InvalidArgument(
            "this command needs a real broker, but the settings say memory://",
            hint="pass --broker stomp://user:password@host:61613 or set ZOCALO_NB_BROKER",
        )
    return settings


def add_commands(commands: Any) -> None:
    """Register ``service``, ``go`` and ``shutdown``."""
    service = commands.add_parser("service", help="run a service in the foreground")
    service.add_argument("name", nargs="?", help="service name (or unique prefix)")
    service.add_argument("--workers", type=int, default=1, help="worker threads (1)")
    service.add_argument("--batch", type=int, default=10, help="messages per transaction (10)")
    service.add_argument("--list", action="store_true", help="list the services available")
    service.add_argument(
        "--no-events",
        action="store_true",
        help="do not broadcast lifecycle events (run views need them)",
    )
    service.add_argument("-v", "--verbose", action="store_true")
    add_broker_options(service)
    service.set_defaults(run=run_service)

    go = commands.add_parser("go", help="start a run (through the dispatcher)")
    go.add_argument(
        "-r",
        "--recipe",
        action="append",
        default=[],
        metavar="NAME",
        help="recipe name (repeatable)",
    )
    go.add_argument("-f", "--file", help="a recipe file, sent as custom_recipe")
    add_parameter_option(go)
    go.add_argument(
        "--direct",
        action="store_true",
        help="start the recipe here instead of through the dispatcher",
    )
    go.add_argument(
        "--recipes",
        default=os.environ.get("ZOCALO_NB_RECIPES", "recipes"),
        help="recipe directory for --dry-run and --direct (recipes)",
    )
    go.add_argument(
        "--dry-run", action="store_true", help="print the expanded recipe, send nothing"
    )
    add_broker_options(go)
    go.set_defaults(run=run_go)

    shutdown = commands.add_parser("shutdown", help="ask services to shut down gracefully")
    target = shutdown.add_mutually_exclusive_group(required=True)
    target.add_argument("--host", help="the host id a service reports in its status")
    target.add_argument("--service", help="a service name")
    add_broker_options(shutdown)
    shutdown.set_defaults(run=run_shutdown)


def run_service(args: argparse.Namespace) -> int:
    if args.list or not args.name:
        for name, where in sorted(available().items()):
            print(f"{name:20} {where}")
        return ExitCode.OK if args.list else ExitCode.USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    service = find_service(args.name)
    settings = broker_settings(args)
    print(
        f"running {service.name} on {settings} with {args.workers} worker(s); "
        "stop with Ctrl-C or 'zocalo-nb shutdown'",
        file=sys.stderr,
    )
    runner = ServiceRunner(
        [service], settings, workers=args.workers, batch=args.batch, events=not args.no_events
    )
    return runner.run()


def run_go(args: argparse.Namespace) -> int:
    if not args.recipe and not args.file:
        raise InvalidArgument("nothing to start", hint="give -r NAME and/or -f FILE")
    parameters = parse_parameters(args.parameters)
    custom = Recipe.load(args.file).validate().to_dict() if args.file else None
    if args.dry_run or args.direct:
        recipe = Dispatcher(args.recipes).recipe(args.recipe, custom, parameters)
        if args.dry_run:
            print(recipe.to_json(indent=2))
            return ExitCode.OK
    settings = broker_settings(args)
    with connect(settings) as transport:
        if args.direct:
            run = submit(recipe, transport=transport)
        else:
            run = submit(args.recipe, parameters, transport=transport, custom_recipe=custom)
        target = DISPATCHER_QUEUE if not args.direct else None
        idle = _nobody_consumes(transport, target) if target else False
    print(f"submitted run {run.id} to {settings}")
    if idle:
        print(
            f"warning: nothing consumes {target!r} now: the run waits there until a dispatcher "
            "starts (zocalo-nb service dispatcher)",
            file=sys.stderr,
        )
    return ExitCode.OK


def _nobody_consumes(transport: Transport, queue: str) -> bool:
    """True when the broker says no consumer is on ``queue`` (False when it cannot say)."""
    try:
        return transport.statistics(queue, timeout=2.0).consumers == 0
    except Exception:  # statistics are a courtesy here
        return False


def run_shutdown(args: argparse.Namespace) -> int:
    settings = broker_settings(args)
    message = {"command": "shutdown"}
    message.update({"host": args.host} if args.host else {"service": args.service})
    with connect(settings) as transport:
        transport.broadcast(COMMAND_TOPIC, message)
    print(f"sent {json.dumps(message)} on {settings.prefix}.{COMMAND_TOPIC}")
    return ExitCode.OK
