"""``zocalo-nb broker install|start|stop|status [--kind activemq|rabbitmq|slurm]``: our own
ActiveMQ, RabbitMQ node or single-node Slurm for development and CI (only ever our own pids
are stopped)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from zocalo_nb.cli.exitcodes import ExitCode
from zocalo_nb.servers.activemq import ActiveMQ
from zocalo_nb.servers.rabbitmq import RabbitMQ
from zocalo_nb.servers.slurm import Slurm

DEFAULT_DIR = ".zocalo-nb/{kind}"


def add_commands(commands: Any) -> None:
    """Register ``broker`` and its actions."""
    broker = commands.add_parser(
        "broker", help="install, start, stop our own ActiveMQ or RabbitMQ node"
    )
    broker.add_argument("action", choices=["install", "start", "stop", "status"])
    broker.add_argument("--kind", choices=["activemq", "rabbitmq", "slurm"], default="activemq")
    broker.add_argument("--dir", help=f"instance folder ({DEFAULT_DIR.format(kind='KIND')})")
    broker.add_argument(
        "--port", type=int, help="STOMP port (61613) or AMQP port (5672) of our instance"
    )
    broker.add_argument("--management-port", type=int, help="RabbitMQ's management API (15672)")
    broker.add_argument("--user", help="our broker's user (zocalo)")
    broker.add_argument(
        "--password",
        help="our broker's password (zocalo); status and stop use what start was given",
    )
    broker.add_argument(
        "--redeliveries",
        type=int,
        default=5,
        help="redeliveries after a NACK before DLQ.<queue> (5)",
    )
    broker.add_argument(
        "--redelivery-delay",
        type=int,
        default=1000,
        metavar="MS",
        help="milliseconds between redeliveries, at least 1000 (1000)",
    )
    broker.add_argument(
        "--journal-sync",
        choices=["always", "periodic", "never"],
        default="periodic",
        help="KahaDB sync; 'never' is fast, for tests",
    )
    broker.set_defaults(run=run_broker)


#: What ``start`` was given, kept in the instance folder (readable by us only), so that
#: ``status`` and ``stop`` talk to the instance with the same ports and credentials.
REMEMBERED = "cli-options.json"
DEFAULTS = {"user": "zocalo", "password": "zocalo", "port": None, "management_port": 15672}


def _options(args: argparse.Namespace, folder: Path) -> None:
    """Fill the options not given from what ``start`` used, else the defaults; ``start``
    remembers them."""
    saved: dict[str, object] = {}
    try:
        saved = json.loads((folder / REMEMBERED).read_text())
    except (OSError, ValueError):
        saved = {}
    for name, default in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, saved.get(name, default) if args.action != "start" else default)
    if args.action == "start":
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / REMEMBERED
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(json.dumps({name: getattr(args, name) for name in DEFAULTS}))


def run_broker(args: argparse.Namespace) -> int:
    folder = Path(args.dir or DEFAULT_DIR.format(kind=args.kind))
    if args.action != "install":
        _options(args, folder)
    if args.kind == "rabbitmq":
        return _rabbitmq(args, folder)
    if args.kind == "slurm":
        return _slurm(args, folder)
    instance = ActiveMQ(
        folder,
        stomp_port=args.port or 61613,
        user=args.user,
        password=args.password,
        redeliveries=args.redeliveries,
        redelivery_delay_ms=args.redelivery_delay,
        journal_sync=args.journal_sync,
    )
    if args.action == "install":
        ActiveMQ.install()
        print("ActiveMQ is installed")
    elif args.action == "start":
        pid = instance.start()
        print(
            f"ActiveMQ running, pid {pid}: stomp://{args.user}:***@127.0.0.1:{instance.stomp_port}"
        )
        print(f"log: {instance.log_file}")
    elif args.action == "stop":
        print("stopped" if instance.stop() else "not running")
    else:
        status = instance.status()
        print(status)
        return ExitCode.OK if status.startswith("running") else ExitCode.FAILED
    return ExitCode.OK


def _rabbitmq(args: argparse.Namespace, folder: Path) -> int:
    node = RabbitMQ(
        folder,
        port=args.port or 5672,
        management_port=args.management_port,
        user=args.user,
        password=args.password,
    )
    if args.action == "install":
        RabbitMQ.install()
        print("RabbitMQ is installed")
    elif args.action == "start":
        pid = node.start()
        print(f"RabbitMQ running, pid {pid}: {node.url.replace(args.password, '***', 1)}")
        print(f"log: {node.log_file}")
    elif args.action == "stop":
        print("stopped" if node.stop() else "not running")
    else:
        status = node.status()
        print(status)
        return ExitCode.OK if status.startswith("running") else ExitCode.FAILED
    return ExitCode.OK


def _slurm(args: argparse.Namespace, folder: Path) -> int:
    cluster = Slurm(folder)
    if args.action == "install":
        Slurm.install()
        print("Slurm is installed")
    elif args.action == "start":
        cluster.start()
        print(f"Slurm running, pids {cluster.pids()}: export SLURM_CONF={cluster.conf.resolve()}")
    elif args.action == "stop":
        running = cluster.pids()
        cluster.stop()
        print("stopped" if running else "not running")
    else:
        running = cluster.pids()
        print(f"running, pids {running}" if running else "not running")
        return ExitCode.OK if running else ExitCode.FAILED
    return ExitCode.OK
