"""``zocalo_nb.emit``: return values from a notebook that runs as a processing step.

Inside a job notebook::

    from zocalo_nb import emit
    emit("resolution", 1.8)                       # forwarded on "success"
    emit("plot", "/data/plot.png", channel="files")

Each call displays a custom MIME output (``application/vnd.zocalo-nb.emit+json``) with a
``text/plain`` fallback, so the value is also visible in the saved notebook and in JupyterLab.
"""

from __future__ import annotations

import json
from typing import Any

MIME = "application/vnd.zocalo-nb.emit+json"


def emit(name: str, value: Any, channel: str = "success") -> None:
    """Record ``value`` under ``name`` to be sent downstream on ``channel``."""
    from IPython.display import display

    record = {"name": name, "value": value, "channel": channel}
    json.dumps(record)  # must be JSON: fail here, in the cell that emits it
    display({MIME: record, "text/plain": f"{name} = {value!r}  (-> {channel})"}, raw=True)
