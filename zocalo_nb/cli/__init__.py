"""The ``zocalo-nb`` command: one argparse parser, thin subcommands, named exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from zocalo_nb._version import __version__
from zocalo_nb.cli import broker, demo, dlq, monitor, rabbitmq, recipes, services, wrap
from zocalo_nb.cli.exitcodes import ExitCode
from zocalo_nb.errors import ZocaloNbError


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, for ``main`` and for docs/tests."""
    parser = argparse.ArgumentParser(
        prog="zocalo-nb",
        description="Zocalo recipes, services and runs, for people who work in Jupyter.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    recipes.add_commands(commands)
    demo.add_commands(commands)
    services.add_commands(commands)
    monitor.add_commands(commands)
    dlq.add_commands(commands)
    wrap.add_commands(commands)
    broker.add_commands(commands)
    rabbitmq.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``zocalo-nb``; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except ZocaloNbError as err:
        print(f"zocalo-nb: error: {err}", file=sys.stderr)
        return ExitCode.FAILED
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
