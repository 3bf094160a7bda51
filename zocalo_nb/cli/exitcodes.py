"""Exit codes of the ``zocalo-nb`` command."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a ``zocalo-nb`` command tells the shell."""

    OK = 0
    FAILED = 1  # the work was done and found problems, or an error stopped it
    USAGE = 2  # bad command line (argparse uses 2 as well)
    INTERRUPTED = 130
