"""The cluster submission service (DLS's ``cluster.submission``) and the watcher that follows
its jobs.

For each recipe message the service reads the step's ``parameters.cluster``
(:class:`~zocalo_nb.cluster.jobs.JobSpec`), writes the recipe-wrapper file (and
``$RECIPEFILE``/``$RECIPEENV`` when the commands name them) into the working directory,
submits, and sends ``{"jobid", "scheduler"}`` on the step's ``job_submitted`` channel in the
transaction that acks the message. A bad ``parameters.cluster`` is dead-lettered with the
reason; a scheduler that refuses is retried like any failing step.

The **watcher** (a thread of the service) asks each scheduler once per ``interval`` for all our
jobs (one ``squeue`` for all) and broadcasts a ``job`` event for every state change. When a
job ended without reporting (no ``<recipewrap>.done``, which ``zocalo-nb wrap`` writes once
it sent its outcome) and not with success — time limit, out of memory, lost node,
``scancel``, a wrapper killed -9 — it sends a ``failure`` on the step's failure channel on
the job's behalf: the scheduler's state and reason, the exit code, and the tail of the job's
stdout and stderr. ``<recipewrap>.reported`` (created exclusively, so two watchers never
both send) records that the job's end was dealt with; nothing else is kept in memory, so a
restarted watcher carries on from the scheduler's word and these files.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from zocalo_nb.cluster.jobs import JOB_NAME, JobInfo, JobSpec, JobStatus, Scheduler
from zocalo_nb.dispatch import RecipeMessage, StepContext
from zocalo_nb.dispatch.context import deliver
from zocalo_nb.dispatch.envelope import run_file_name
from zocalo_nb.dispatch.events import EVENTS_TOPIC, State, event
from zocalo_nb.dispatch.recipe_files import recipe_file, with_recipe_files
from zocalo_nb.errors import InvalidArgument
from zocalo_nb.service import Reject, Service
from zocalo_nb.service.status import host_id
from zocalo_nb.transport import Transport
from zocalo_nb.transport.message import RawBody
from zocalo_nb.wire.headers import MESSAGE_ID
from zocalo_nb.wrapper.environment import job_environment

log = logging.getLogger(__name__)
#: DLS's queue for cluster submissions.
CLUSTER_QUEUE = "cluster.submission"
#: Bytes of a job's stdout and stderr quoted in a failure sent on its behalf.
TAIL_BYTES = 2000
DONE_SUFFIX = ".done"
#: How a job's ``zocalo-nb wrap`` finds the broker (the service's own, by default).
BROKER_VARIABLE = "ZOCALO_NB_BROKER"
REPORTED_SUFFIX = ".reported"


class ClusterSubmission:
    """The service's state: its schedulers (by name, the first the default) and watcher."""

    def __init__(
        self,
        schedulers: Scheduler | Mapping[str, Scheduler],
        *,
        job_environment: Mapping[str, str] | None = None,
        interval: float = 0.5,
    ) -> None:
        if isinstance(schedulers, Scheduler):
            schedulers = {schedulers.name: schedulers}
        if not schedulers:
            raise InvalidArgument("no scheduler given", hint="e.g. SlurmCli() or LocalScheduler()")
        self.schedulers = dict(schedulers)
        self.default = next(iter(self.schedulers))
        self.job_environment = dict(job_environment or {})
        self.watcher: JobWatcher | None = None
        self.interval = interval
        #: The name of our jobs (``zocalo-nb.<namespace>`` once attached to a transport).
        self.job_name = JOB_NAME

    def scheduler(self, name: str | None) -> Scheduler:
        chosen = name or self.default
        if chosen not in self.schedulers:
            raise Reject(
                f"this cluster service has no scheduler {chosen!r}",
                hint=f"use one of {', '.join(self.schedulers)} in parameters.cluster.scheduler",
            )
        return self.schedulers[chosen]

    def handle(self, ctx: StepContext, payload: Any) -> None:
        try:
            spec = JobSpec.from_parameters(ctx.parameters.get("cluster"))
        except InvalidArgument as err:
            raise Reject(err.message, hint=err.hint) from err
        scheduler = self.scheduler(spec.scheduler)
        spec.workingdir.mkdir(parents=True, exist_ok=True)
        message_id = str(ctx.headers.get(MESSAGE_ID) or os.urandom(4).hex())[-8:]
        stem = spec.workingdir / (
            f"zocalo-nb-{run_file_name(ctx.run_id or 'run')}-{ctx.step_id}-{message_id}"
        )
        body = ctx.message.to_body()
        commands = with_recipe_files(list(spec.commands), body, stem, shell=True, always=True)
        recipewrap = str(recipe_file(stem, "$RECIPEWRAP"))
        environment = {**job_environment(), **self.job_environment, **spec.environment}
        job = replace(spec, commands=tuple(commands), environment=environment, name=self.job_name)
        stdout, stderr = stem.with_suffix(".out"), stem.with_suffix(".err")
        job_id = scheduler.submit(job, recipewrap=recipewrap, stdout=stdout, stderr=stderr)
        ctx.send_to("job_submitted", {"jobid": job_id, "scheduler": scheduler.name}, optional=True)
        # in the same transaction: the run is not finished while its job is queued
        queued = JobInfo(job_id, JobStatus.QUEUED, recipewrap=recipewrap,
                         stdout=str(stdout), stderr=str(stderr))  # fmt: skip
        ctx.broadcast(EVENTS_TOPIC, [job_event(scheduler.name, queued, body, host_id())])

    def attach(self, transport: Transport) -> None:
        # the jobs report over the broker this service uses, unless told otherwise
        settings = transport.settings
        if settings.scheme != "memory":
            self.job_environment.setdefault(BROKER_VARIABLE, settings.secret_url())
        namespace = settings.prefix or settings.vhost.strip("/") or "default"
        self.job_name = f"{JOB_NAME}.{namespace}"
        self.watcher = JobWatcher(
            self.schedulers, transport, interval=self.interval, job_name=self.job_name
        )
        self.watcher.start()

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()

    def service(self, queue: str = CLUSTER_QUEUE) -> Service:
        return Service(
            "cluster",
            self.handle,
            queues=(queue,),
            batch=1,
            max_attempts=3,
            attach=self.attach,
            close=self.close,
            description="submits cluster jobs and follows them",
        )


def cluster_service(
    schedulers: Scheduler | Mapping[str, Scheduler],
    *,
    queue: str = CLUSTER_QUEUE,
    job_environment: Mapping[str, str] | None = None,
    interval: float = 0.5,
) -> Service:
    """The cluster submission service on ``queue`` (see module docstring)."""
    state = ClusterSubmission(schedulers, job_environment=job_environment, interval=interval)
    return state.service(queue)


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - TAIL_BYTES))
            return handle.read(TAIL_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""


class JobWatcher:
    """Follows the jobs of our schedulers (see module docstring)."""

    def __init__(
        self,
        schedulers: Mapping[str, Scheduler],
        transport: Transport,
        *,
        interval: float = 0.5,
        job_name: str = JOB_NAME,
    ) -> None:
        self.schedulers, self.transport, self.interval = dict(schedulers), transport, interval
        self.job_name = job_name
        #: Jobs whose folder is gone (nothing to report them to), said once each.
        self._gone: set[tuple[str, str]] = set()
        self.host = host_id()
        self._seen: dict[tuple[str, str], JobStatus] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="zocalo-nb-jobs")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def poll(self) -> None:
        """One look at every scheduler: events for changes, failures for silent ends."""
        for name, scheduler in self.schedulers.items():
            try:
                jobs = scheduler.jobs(self.job_name)
            except Exception as err:  # the scheduler is down: ask again next time
                log.warning("cannot list the jobs of %s: %s", name, err)
                continue
            for job in jobs:
                if not job.recipewrap or Path(job.recipewrap + REPORTED_SUFFIX).exists():
                    continue
                if not Path(job.recipewrap).parent.is_dir():
                    if (name, job.job_id) not in self._gone:
                        self._gone.add((name, job.job_id))
                        log.warning("job %s: its folder is gone (%s); not followed",
                                    job.job_id, Path(job.recipewrap).parent)  # fmt: skip
                    continue
                try:
                    self._follow(name, job)
                except Exception:  # one bad job never stops the others
                    log.exception("following job %s of %s failed", job.job_id, name)

    def _follow(self, scheduler: str, job: JobInfo) -> None:
        key = (scheduler, job.job_id)
        body = _read(job.recipewrap)
        changed = self._seen.get(key) != job.status
        self._seen[key] = job.status
        if not job.status.ended:
            if changed:
                self._event(scheduler, job, body)
            return
        self._seen.pop(key, None)  # its end is dealt with below, once: forget it here
        reported = Path(job.recipewrap + REPORTED_SUFFIX)
        try:  # exclusively: one watcher deals with each end, and says it once
            reported.touch(exist_ok=False)
        except FileExistsError:
            return
        sent_to = _sent_by_job(job.recipewrap)
        if sent_to is None and job.status is not JobStatus.COMPLETED:
            if body is None:
                log.error("job %s ended (%s) but %s is unreadable", job.job_id, job.status,
                          job.recipewrap)  # fmt: skip
            else:
                try:
                    sent_to = self._fail(scheduler, job, body)
                except BaseException:
                    reported.unlink(missing_ok=True)  # not sent: the next look tries again
                    raise
        self._event(scheduler, job, body, sent_to or [])

    def _fail(self, scheduler: str, job: JobInfo, body: dict[str, Any]) -> list[int]:
        """Send the failure on the job's behalf; returns the steps it went to."""
        ctx = StepContext(RecipeMessage.from_body(body, None))
        why = f"{job.status.value}" + (f" ({job.reason})" if job.reason else "")
        text = (
            f"cluster job {job.job_id} ({scheduler}) ended {why}, exit code {job.exit_code}, "
            f"without reporting\n--- end of stdout ({job.stdout}) ---\n{_tail(job.stdout)}"
            f"\n--- end of stderr ({job.stderr}) ---\n{_tail(job.stderr)}"
        )
        ctx.send_to("failure", text)
        for out in ctx.outbox:
            deliver(self.transport, out)
        log.warning("job %s ended %s without reporting: failure sent for it", job.job_id, why)
        return sent_steps(ctx)

    def _event(
        self,
        scheduler: str,
        job: JobInfo,
        body: dict[str, Any] | None,
        sent_to: list[int] | None = None,
    ) -> None:
        record = job_event(scheduler, job, body, self.host)
        if sent_to is not None:  # the job's end: the steps its outcome went to
            record["sent_to"] = sent_to
        try:
            self.transport.broadcast(EVENTS_TOPIC, RawBody(f"[{json.dumps(record)}]"))
        except Exception as err:  # events are best effort
            log.debug("job event not sent: %s", err)


def job_event(
    scheduler: str, job: JobInfo, body: dict[str, Any] | None, host: str
) -> dict[str, Any]:
    """The ``job`` event for ``job`` of the step whose recipe message is ``body``."""
    environment = (body or {}).get("environment") or {}
    step = (body or {}).get("recipe-pointer")
    return event(
        State.JOB,
        service="cluster",
        host=host,
        run=str(environment.get("ID")) if environment.get("ID") is not None else None,
        step=step if isinstance(step, int) else None,
        attempt=1,
        message_id=job.job_id,
        queue="",
        jobid=job.job_id,
        scheduler=scheduler,
        job_state=job.status.value,
        exit_code=job.exit_code,
        reason=job.reason,
        node=job.node,
        job_start=job.start,
        job_end=job.end,
        stdout=job.stdout,
        stderr=job.stderr,
    )


def sent_steps(ctx: StepContext) -> list[int]:
    """The recipe steps the messages in ``ctx``'s outbox go to."""
    return sorted(
        {
            out.body["recipe-pointer"]
            for out in ctx.outbox
            if isinstance(out.body, dict) and isinstance(out.body.get("recipe-pointer"), int)
        }
    )


def _sent_by_job(recipewrap: str) -> list[int] | None:
    """What ``zocalo-nb wrap`` wrote into ``<recipewrap>.done``: the steps the job's messages
    went to; None when the job did not report."""
    try:
        text = Path(recipewrap + DONE_SUFFIX).read_text()
    except OSError:
        return None
    try:
        sent = json.loads(text).get("sent_to", []) if text.strip() else []
    except (ValueError, AttributeError):
        sent = []
    return [s for s in sent if isinstance(s, int)]


def _read(path: str) -> dict[str, Any] | None:
    try:
        body = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None
