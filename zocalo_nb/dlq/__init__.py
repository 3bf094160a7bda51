"""Dead letters: triage in DataFrames, reinjection, purging to upstream's files.

Example::

    from zocalo_nb import dlq
    dead = dlq.frame(t)                                 # every DLQ of the namespace
    dead.groupby(["service", "error_type"]).size()
    dlq.reinject(t, dead[dead.error_type == "KeyError"], parameters={"beam": 2})
    dlq.purge(t, dead[dead.step == 3], location="/dls/tmp/dlq")
    dlq.reinject_files(t, ["/dls/tmp/dlq"], remove=True)
"""

from __future__ import annotations

from zocalo_nb.dlq.actions import (
    counts,
    dead_letters,
    frame,
    purge,
    reinject,
    reinject_files,
)
from zocalo_nb.dlq.files import export, read
from zocalo_nb.dlq.letters import DeadLetter, letters_frame

__all__ = [
    "DeadLetter",
    "counts",
    "dead_letters",
    "export",
    "frame",
    "letters_frame",
    "purge",
    "read",
    "reinject",
    "reinject_files",
]
