"""The services ``zocalo-nb service NAME`` runs (entry-point group ``zocalo_nb.services``),
built from the environment: the edge where ``ZOCALO_NB_*`` variables are read.

Each factory imports what its service needs when called: a forwarding service does not
load nbformat (whose jsonschema compiles a grammar on import: 2-3 s of CPU per start).
"""

from __future__ import annotations

import os

from zocalo_nb.config import notebook_directories, notebook_output, scheduler_name
from zocalo_nb.service import Service
from zocalo_nb.service.builtin import forward


def _queues(default: str) -> tuple[str, ...]:
    return tuple(q for q in os.environ.get("ZOCALO_NB_QUEUES", default).split(",") if q)


def dispatcher_service() -> Service:
    """The dispatcher, reading ``ZOCALO_NB_RECIPES`` (default ``recipes``) and logging to
    ``ZOCALO_NB_LOGBOOK`` when set."""
    from zocalo_nb.service.dispatcher import Dispatcher

    return Dispatcher(
        os.environ.get("ZOCALO_NB_RECIPES", "recipes"), os.environ.get("ZOCALO_NB_LOGBOOK")
    ).service()


def forward_service() -> Service:
    """Forward messages from the queues in ``ZOCALO_NB_QUEUES`` (comma-separated, default
    ``forward``)."""
    return Service("forward", forward, queues=_queues("forward"), description="passes payloads on")


def command_service() -> Service:
    """Command-line jobs from the queues in ``ZOCALO_NB_QUEUES`` (default jobs); working
    directories inside ``ZOCALO_NB_WORKDIR_ROOTS``."""
    from zocalo_nb.wrapper.service import wrapper_service

    return wrapper_service("command", _queues("jobs"))


def cluster_submission_service() -> Service:
    """Cluster submission from ``ZOCALO_NB_QUEUES`` (default cluster.submission) with the
    scheduler ``ZOCALO_NB_SCHEDULER`` (default local; slurm uses the machine's Slurm, or
    ``SLURM_CONF``)."""
    from zocalo_nb.cluster import cluster_service, make_scheduler

    return cluster_service(make_scheduler(scheduler_name()), queue=_queues("cluster.submission")[0])


def runner_service() -> Service:
    """Notebooks from ``ZOCALO_NB_QUEUES`` (default notebook.runner) on a pool of
    ``ZOCALO_NB_KERNELS`` (default 2) ``ZOCALO_NB_KERNEL`` kernels; notebooks from
    ``ZOCALO_NB_NOTEBOOKS`` (default notebooks/jobs, ``:``-separated), saved under
    ``ZOCALO_NB_NOTEBOOK_OUTPUT`` (default notebook-runs)."""
    from zocalo_nb.notebook.wrapper import notebook_service

    env = os.environ
    return notebook_service(
        queues=_queues("notebook.runner"),
        directories=notebook_directories(),
        output_dir=notebook_output(),
        kernels=int(env.get("ZOCALO_NB_KERNELS", "2")),
        kernel_name=env.get("ZOCALO_NB_KERNEL", "python3"),
    )


def tracker_service() -> Service:
    """A tracker writing to ``ZOCALO_NB_HISTORY`` (default: SQLite in ``~/.zocalo-nb``),
    keeping ``ZOCALO_NB_RETENTION_DAYS`` days when set."""
    from zocalo_nb.monitor.history import History
    from zocalo_nb.monitor.tracker import Tracker

    days = os.environ.get("ZOCALO_NB_RETENTION_DAYS")
    return Tracker(History(), retention_days=float(days) if days else None).service()
