"""The wrapper lifecycle, in one function, so the CLI, a service and a notebook behave the same.

Upstream's channels, on the step's named outputs:

``starting``   before the job runs (payload: the step's parameters summary)
``updates``    progress while it runs (whatever the wrapper reports)
``success``    the job succeeded (payload: the wrapper's result)
``failure``    the job failed (payload: a string saying why, as upstream's wrappers send)
``completed``  always, at the very end
``result-individual-file`` / ``result-all-files``  result files, one by one and all together

While the job runs, a status message (``host``, ``task``, ``status``, ``statustext``) goes out
on ``transient.status`` every 3 s, as upstream's wrappers do.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from zocalo_nb.dispatch import StepContext
from zocalo_nb.errors import ZocaloNbError

log = logging.getLogger(__name__)

#: Seconds between a running job's status reports (a service runner reports every 6 s).
JOB_STATUS_INTERVAL = 3.0
#: Channels reported while the job runs, sent at once rather than with the outcome.
PROGRESS_CHANNELS = ("starting", "updates")
#: Lifecycle channels a recipe may leave unwired without it being worth a warning.
OPTIONAL_CHANNELS = frozenset(
    {"starting", "updates", "completed", "result-individual-file", "result-all-files"}
)
Emit = Callable[[str, Any], None]


class JobFailed(ZocaloNbError):
    """Raise in a wrapper to fail the job with a message (sent on ``failure``)."""


class Wrapper(Protocol):
    """A job: ``run(job)`` does the work, reports through ``job``, returns the result."""

    name: str

    def run(self, job: Job) -> Any: ...


@dataclass
class Job:
    """What a wrapper gets: the step context, and how to report."""

    ctx: StepContext
    emit: Emit
    task: str
    files: list[str] = field(default_factory=list)

    @property
    def parameters(self) -> Any:
        return self.ctx.parameters

    @property
    def payload(self) -> Any:
        return self.ctx.payload

    def update(self, payload: Any) -> None:
        """Report progress on ``updates``."""
        self.emit("updates", payload)

    def result_file(self, path: str) -> None:
        """Announce one result file (``result-individual-file``; all of them at the end)."""
        self.files.append(path)
        self.emit("result-individual-file", {"file": path})


@dataclass(frozen=True)
class Outcome:
    """How a job ended."""

    success: bool
    result: Any = None
    error: str | None = None


def run_job(
    wrapper: Wrapper,
    ctx: StepContext,
    *,
    emit: Emit | None = None,
    status: Callable[[dict[str, Any]], None] | None = None,
    host: str = "",
    status_interval: float = JOB_STATUS_INTERVAL,
) -> Outcome:
    """Run ``wrapper`` for the step in ``ctx`` through the whole lifecycle (module docstring).

    ``emit(channel, payload)`` sends on a channel. By default progress (``starting``,
    ``updates``) goes out at once (:meth:`StepContext.send_now`) and the outcome is collected,
    to be committed with the incoming message in a service. ``status(body)`` broadcasts status.
    """

    def to_recipe(channel: str, payload: Any) -> None:
        optional = channel in OPTIONAL_CHANNELS
        if channel in PROGRESS_CHANNELS:
            ctx.send_now(channel, payload, optional=optional)
        else:
            ctx.send_to(channel, payload, optional=optional)

    send: Emit = emit or to_recipe
    task = f"{wrapper.name} (run {ctx.run_id}, step {ctx.step_id})"
    job = Job(ctx, send, task)
    ticker = _StatusTicker(status, host, task, status_interval) if status else None
    send("starting", {"wrapper": wrapper.name, "parameters": dict(ctx.parameters)})
    try:
        if ticker:
            ticker.start()
        result = wrapper.run(job)
        outcome = Outcome(True, result)
    except JobFailed as err:
        outcome = Outcome(False, error=err.message)
    except Exception as err:  # a crashing wrapper is a failed job, with its traceback logged
        log.exception("wrapper %s crashed", wrapper.name)
        outcome = Outcome(
            False,
            error=f"{type(err).__name__}: {err}\n"
            + "".join(traceback.format_exception(err))[-2000:],
        )
    finally:
        if ticker:
            ticker.stop(success=None)
    if outcome.success:
        send("success", outcome.result)
    else:
        send("failure", outcome.error)
    if job.files:
        send("result-all-files", {"files": list(job.files)})
    send("completed", {"success": outcome.success})
    if ticker:
        ticker.final(outcome.success)
    return outcome


class _StatusTicker:
    """Broadcasts the job's status every few seconds while it runs."""

    def __init__(
        self, status: Callable[[dict[str, Any]], None], host: str, task: str, interval: float
    ) -> None:
        self.status, self.host, self.task, self.interval = status, host, task, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="zocalo-nb-wrap")

    def start(self) -> None:
        self._send(1, "running")
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._send(1, "running")

    def stop(self, success: bool | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def final(self, success: bool) -> None:
        self._send(2 if success else 3, "finished" if success else "failed")

    def _send(self, code: int, text: str) -> None:
        try:
            self.status({"host": self.host, "task": self.task, "status": code, "statustext": text})
        except Exception:  # status is best effort
            log.debug("status broadcast failed", exc_info=True)
