"""The wrapper lifecycle, in one function, so the CLI, a service and a notebook behave the same.

Upstream's channels, on the step's named outputs:

``starting``   before the job runs: ``"Starting processing"`` (upstream's text)
``updates``    progress while it runs (whatever the wrapper reports)
``success``    the job succeeded: the wrapper's result, or upstream's ``"Finished processing"``
               when it returns None (our notebook and command jobs hand their outputs on)
``failure``    the job failed: a string saying why, as upstream's wrappers send
``completed``  always, at the very end: ``"Finished processing"`` (upstream's text)
``result-individual-file`` / ``result-all-files``  result files, one by one and all together

Status messages (``host``, ``task``, ``status``, ``statustext``) go out on
``transient.status`` with upstream's wrapper codes: ``(1, starting)`` first, ``(4,
processing)`` every 3 s while the job runs, then ``(6, shutdown)`` when it ended (succeeded or
failed, as upstream's ``zocalo.wrap`` reports a job whose ``run()`` returned False) or ``(7,
error)`` when the wrapper crashed.
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
from zocalo_nb.service.status import TEXT, ServiceStatus

log = logging.getLogger(__name__)

#: Seconds between a running job's status reports (a service runner reports every 6 s).
JOB_STATUS_INTERVAL = 3.0
#: Channels reported while the job runs, sent at once rather than with the outcome.
PROGRESS_CHANNELS = ("starting", "updates")
#: Upstream's lifecycle payloads (``zocalo.wrap``), word for word.
STARTING_TEXT = "Starting processing"
FINISHED_TEXT = "Finished processing"
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
    #: The wrapper raised something other than :class:`JobFailed` (upstream: status "error").
    crashed: bool = False


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
    send("starting", STARTING_TEXT)
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
            crashed=True,
        )
    finally:
        if ticker:
            ticker.stop()
    if outcome.success:
        send("success", FINISHED_TEXT if outcome.result is None else outcome.result)
    else:
        send("failure", outcome.error)
    if job.files:
        send("result-all-files", {"files": list(job.files)})
    send("completed", FINISHED_TEXT)
    if ticker:
        ticker.final(ServiceStatus.ERROR if outcome.crashed else ServiceStatus.END)
    return outcome


class _StatusTicker:
    """Broadcasts the job's status every few seconds while it runs."""

    def __init__(
        self, status: Callable[[dict[str, Any]], None], host: str, task: str, interval: float
    ) -> None:
        self.status, self.host, self.task, self.interval = status, host, task, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="zocalo-nb-wrap")
        self._send(ServiceStatus.STARTING)

    def start(self) -> None:
        self._send(ServiceStatus.PROCESSING)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._send(ServiceStatus.PROCESSING)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def final(self, status: ServiceStatus) -> None:
        self._send(status)

    def _send(self, code: ServiceStatus) -> None:
        body = {"host": self.host, "task": self.task, "status": int(code), "statustext": TEXT[code]}
        try:
            self.status(body)
        except Exception:  # status is best effort
            log.debug("status broadcast failed", exc_info=True)
