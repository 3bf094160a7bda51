"""Every job of ours a scheduler knows, as a DataFrame: the cluster-wide view (a run's own
jobs: ``run.jobs()``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from zocalo_nb.cluster.jobs import JobInfo, Scheduler

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = (
    "jobid",
    "scheduler",
    "run",
    "step",
    "state",
    "exit_code",
    "reason",
    "node",
    "start",
    "end",
    "stdout",
    "stderr",
    "recipewrap",
)


def _run_and_step(job: JobInfo) -> tuple[str | None, int | None]:
    try:
        body = json.loads(Path(job.recipewrap).read_text())
    except (OSError, ValueError):
        return None, None
    if not isinstance(body, dict):
        return None, None
    run = (body.get("environment") or {}).get("ID")
    step = body.get("recipe-pointer")
    return (str(run) if run is not None else None), (step if isinstance(step, int) else None)


def jobs_frame(scheduler: Scheduler, name: str | None = None) -> pd.DataFrame:
    """One row per job of ours (named ``name``; None: every namespace) that ``scheduler``
    knows, with its run and step read from its recipe-wrapper file; oldest first."""
    rows = []
    for job in scheduler.jobs(name):
        run, step = _run_and_step(job)
        rows.append(
            {
                "jobid": job.job_id,
                "scheduler": scheduler.name,
                "run": run,
                "step": step,
                "state": job.status.value,
                "exit_code": job.exit_code,
                "reason": job.reason,
                "node": job.node,
                "start": job.start,
                "end": job.end,
                "stdout": job.stdout,
                "stderr": job.stderr,
                "recipewrap": job.recipewrap,
            }
        )
    import pandas as pd  # here: services and the command line start without it

    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in ("start", "end"):
        values = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        frame[column] = pd.to_datetime(values, unit="s", utc=True)
    frame["step"] = pd.to_numeric(frame["step"], errors="coerce").astype("Int64")
    frame["exit_code"] = pd.to_numeric(frame["exit_code"], errors="coerce").astype("Int64")
    return frame.sort_values("start", kind="stable", ignore_index=True)
