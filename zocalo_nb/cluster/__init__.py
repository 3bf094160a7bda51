"""Cluster jobs: steps whose work runs on a batch scheduler (Slurm), followed like any step.

:func:`cluster_service` consumes ``cluster.submission``; schedulers (:class:`Scheduler`) are
``local`` (processes here), ``slurm`` (its command-line tools), ``slurm-rest``
(slurmrestd) and any registered under the
entry-point group ``zocalo_nb.schedulers``; :func:`make_scheduler` finds one by name.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from zocalo_nb.cluster.frame import jobs_frame
from zocalo_nb.cluster.jobs import JOB_NAME, JobInfo, JobSpec, JobStatus, Scheduler
from zocalo_nb.cluster.local import LocalScheduler
from zocalo_nb.cluster.service import CLUSTER_QUEUE, JobWatcher, cluster_service
from zocalo_nb.cluster.slurm import SchedulerError, SlurmCli
from zocalo_nb.cluster.slurm_rest import SlurmRest
from zocalo_nb.errors import InvalidArgument

__all__ = [
    "CLUSTER_QUEUE",
    "JOB_NAME",
    "JobInfo",
    "JobSpec",
    "JobStatus",
    "JobWatcher",
    "LocalScheduler",
    "Scheduler",
    "SchedulerError",
    "SlurmCli",
    "SlurmRest",
    "cluster_service",
    "jobs_frame",
    "make_scheduler",
]
GROUP = "zocalo_nb.schedulers"
BUILTIN: dict[str, type[Scheduler]] = {
    "local": LocalScheduler,
    "slurm": SlurmCli,
    "slurm-rest": SlurmRest,
}


def make_scheduler(name: str, **options: Any) -> Scheduler:
    """The scheduler called ``name`` (built in, or from the ``zocalo_nb.schedulers`` entry
    points), made with ``options``."""
    found: dict[str, Any] = dict(BUILTIN)
    found.update({ep.name: ep for ep in entry_points(group=GROUP)})
    if name not in found:
        raise InvalidArgument(
            f"no scheduler {name!r}",
            hint=f"known: {', '.join(sorted(found))}; others register under the entry-point "
            f"group {GROUP}",
        )
    target = found[name]
    kind = target if isinstance(target, type) else target.load()
    scheduler = kind(**options)
    if not isinstance(scheduler, Scheduler):
        raise InvalidArgument(
            f"scheduler {name!r} is a {type(scheduler).__name__}, not a Scheduler",
            hint="subclass zocalo_nb.cluster.Scheduler",
        )
    return scheduler
