"""``zocalo-nb rabbitmq configure FILE``: a deployment's RabbitMQ topology from upstream's
``configure_rabbitmq`` YAML, through the management API (``--dry-run`` shows the plan)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from zocalo_nb.cli.exitcodes import ExitCode
from zocalo_nb.cli.services import add_broker_options, broker_settings
from zocalo_nb.errors import InvalidArgument
from zocalo_nb.transport.rabbitmq_api import ManagementAPI
from zocalo_nb.transport.topology import Topology


def add_commands(commands: Any) -> None:
    rabbitmq = commands.add_parser("rabbitmq", help="declare a RabbitMQ deployment's topology")
    actions = rabbitmq.add_subparsers(dest="action", metavar="ACTION", required=True)
    configure = actions.add_parser(
        "configure", help="create what the YAML lists (upstream's configure_rabbitmq format)"
    )
    configure.add_argument("file", type=Path, help="the topology YAML")
    configure.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    configure.add_argument(
        "--delete",
        action="store_true",
        help="also delete what the file does not list, and recreate what differs",
    )
    add_broker_options(configure)
    configure.set_defaults(run=run_configure)


def run_configure(args: argparse.Namespace) -> int:
    settings = broker_settings(args)
    if settings.scheme != "amqp":
        raise InvalidArgument(
            f"'rabbitmq configure' needs an amqp:// broker, not {settings.redacted_url()}",
            hint="pass --broker amqp://user:password@host:5672/vhost?management=15672",
        )
    try:
        text = args.file.read_text()
    except OSError as err:
        raise InvalidArgument(f"cannot read {args.file}: {err}", hint="check the path") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InvalidArgument(
            f"{args.file} is not YAML: {err}", hint="upstream's configure_rabbitmq format"
        ) from err
    if not isinstance(data, dict):
        raise InvalidArgument(
            f"{args.file} is not a mapping", hint="expected vhosts, policies, exchanges, groups"
        )
    plan = Topology.from_mapping(data, source=str(args.file)).plan(
        ManagementAPI.for_settings(settings), delete=args.delete
    )
    print(plan)
    if args.dry_run:
        print(f"dry run: {len(plan.pending)} change(s) not made")
        return ExitCode.OK
    done = plan.apply(ManagementAPI.for_settings(settings))
    print(f"{len(done)} change(s) made")
    return ExitCode.OK
