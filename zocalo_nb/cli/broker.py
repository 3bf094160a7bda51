"""``zocalo-nb broker install|start|stop|status``: our own ActiveMQ for development and CI."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from zocalo_nb.cli.exitcodes import ExitCode
from zocalo_nb.servers.activemq import ActiveMQ

DEFAULT_DIR = ".zocalo-nb/activemq"


def add_commands(commands: Any) -> None:
    """Register ``broker`` and its actions."""
    broker = commands.add_parser("broker", help="install, start, stop our own ActiveMQ")
    broker.add_argument("action", choices=["install", "start", "stop", "status"])
    broker.add_argument("--dir", default=DEFAULT_DIR, help=f"instance folder ({DEFAULT_DIR})")
    broker.add_argument("--port", type=int, default=61613, help="STOMP port (61613)")
    broker.add_argument("--user", default="zocalo")
    broker.add_argument("--password", default="zocalo")
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


def run_broker(args: argparse.Namespace) -> int:
    instance = ActiveMQ(
        Path(args.dir),
        stomp_port=args.port,
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
        print(f"ActiveMQ running, pid {pid}: stomp://{args.user}:***@127.0.0.1:{args.port}")
        print(f"log: {instance.log_file}")
    elif args.action == "stop":
        print("stopped" if instance.stop() else "not running")
    else:
        status = instance.status()
        print(status)
        return ExitCode.OK if status.startswith("running") else ExitCode.FAILED
    return ExitCode.OK
