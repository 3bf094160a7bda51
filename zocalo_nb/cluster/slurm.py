"""Slurm through its command-line tools (every Slurm version has them): ``sbatch --parsable``
to submit, one ``squeue`` for all our jobs to follow them (by name; finished
jobs stay visible for the cluster's ``MinJobAge``), ``sacct -c`` (the completion log, no
database) for jobs squeue no longer shows, ``scancel`` to cancel.

``conf`` is the ``SLURM_CONF`` the tools use (None: the machine's own configuration).
"""

from __future__ import annotations

import datetime
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from zocalo_nb.cluster.jobs import JobInfo, JobSpec, JobStatus, Scheduler, is_ours
from zocalo_nb.errors import ZocaloNbError
from zocalo_nb.wrapper.environment import job_environment

#: Slurm's job states in our vocabulary (anything else: still queued).
STATES = {
    "RUNNING": JobStatus.RUNNING,
    "COMPLETING": JobStatus.RUNNING,  # the end is not final until its epilog ran
    "COMPLETED": JobStatus.COMPLETED,
    "FAILED": JobStatus.FAILED,
    "BOOT_FAIL": JobStatus.NODE_FAILURE,
    "DEADLINE": JobStatus.TIMEOUT,
    "PREEMPTED": JobStatus.CANCELLED,
    "TIMEOUT": JobStatus.TIMEOUT,
    "CANCELLED": JobStatus.CANCELLED,
    "NODE_FAIL": JobStatus.NODE_FAILURE,
    "OUT_OF_MEMORY": JobStatus.OUT_OF_MEMORY,
}
SQUEUE_FIELDS = "JobID,State,Reason,NodeList,StartTime,EndTime,Exit_Code,STDOUT,STDERR,Comment"


class SchedulerError(ZocaloNbError):
    """The scheduler refused or did not answer (its own words in the message)."""


def _time(text: str) -> float | None:
    try:
        return datetime.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:  # "NONE", "Unknown", "N/A"
        return None


def _wait_status(text: str) -> int | None:
    """An exit code from a raw wait status (``768`` = exit 3; killed by a signal: 128 + it)."""
    try:
        status = int(text)
    except ValueError:
        return None
    return 128 + (status & 0x7F) if status & 0x7F else status >> 8


class SlurmCli(Scheduler):
    """Slurm through sbatch/squeue/sacct/scancel (see module docstring)."""

    name = "slurm"

    def __init__(self, conf: str | os.PathLike[str] | None = None, timeout: float = 30.0) -> None:
        self.conf = str(conf) if conf else None
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<SlurmCli {self.conf or 'the machine configuration'}>"

    def _run(
        self, argv: list[str], *, stdin: str | None = None, env: Mapping[str, str] | None = None
    ) -> str:
        environment = dict(job_environment() if env is None else env)
        if self.conf:
            environment["SLURM_CONF"] = self.conf
        try:
            done = subprocess.run(
                argv,
                input=stdin,
                env=environment,
                capture_output=True,
                text=True,
                timeout=self.timeout,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise SchedulerError(
                f"{argv[0]} failed: {err}", hint="is Slurm installed, and SLURM_CONF right?"
            ) from err
        if done.returncode != 0:
            raise SchedulerError(
                f"{' '.join(argv[:2])} exited with {done.returncode}: {done.stderr.strip()[:500]}",
                hint="see the scheduler's own message",
            )
        return done.stdout

    def submit(self, spec: JobSpec, *, recipewrap: str, stdout: Path, stderr: Path) -> str:
        argv = [
            "sbatch", "--parsable", f"--job-name={spec.name}", f"--comment={recipewrap}",
            f"--chdir={spec.workingdir}", f"--output={stdout}", f"--error={stderr}",
            f"--cpus-per-task={spec.cpus}", "--export=ALL",
        ]  # fmt: skip
        if spec.memory_mb:
            argv.append(f"--mem={spec.memory_mb}M")
        if spec.gpus:
            argv.append(f"--gres=gpu:{spec.gpus}")
        if spec.minutes:
            argv.append(f"--time={spec.minutes}")
        if spec.partition:
            argv.append(f"--partition={spec.partition}")
        answer = self._run(argv, stdin=spec.script(), env=spec.environment)
        return answer.strip().split(";")[0]

    def jobs(self, name: str | None = None) -> list[JobInfo]:
        fields = ",".join(f"{f}:|" for f in [*SQUEUE_FIELDS.split(","), "Name"])
        answer = self._run(
            ["squeue", "-h", "-t", "all", *(["-n", name] if name else []), "-O", fields]
        )
        found = []
        for line in answer.splitlines():
            parts = line.split("|")
            if len(parts) < 11:
                continue
            job, state, reason, node, start, end, code, out, err = parts[:9]
            comment, job_name = "|".join(parts[9:-2]), parts[-2]  # a comment may hold "|"
            if not is_ours(job_name.strip(), name):
                continue
            comment = comment.strip()
            status = STATES.get(state.strip(), JobStatus.QUEUED)
            found.append(
                JobInfo(
                    job_id=job.strip(),
                    status=status,
                    exit_code=_wait_status(code) if status.ended else None,
                    reason="" if reason.strip() == "None" else reason.strip(),
                    node=node.strip(),
                    start=_time(start),
                    end=_time(end),
                    recipewrap="" if comment == "(null)" else comment,
                    stdout=out.strip(),
                    stderr=err.strip(),
                )
            )
        return found

    def states(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        known = super().states(job_ids)
        missing = [j for j in job_ids if j not in known]
        if missing:  # gone from squeue (older than MinJobAge): the completion log
            known.update(self._accounted(missing))
        return known

    def _accounted(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        try:
            answer = self._run(
                ["sacct", "-c", "-P", "-n", "-j", ",".join(job_ids), "-o",
                 "JobID,State,ExitCode,Start,End,NodeList"],
            )  # fmt: skip
        except SchedulerError:
            return {}  # no completion log readable here: unknown, asked again later
        found = {}
        for line in answer.splitlines():
            job, state, code, start, end, node = (line.split("|") + [""] * 6)[:6]
            status = STATES.get(state.split()[0] if state else "", JobStatus.QUEUED)
            exit_code, _, signal = code.partition(":")
            found[job] = JobInfo(
                job_id=job,
                status=status,
                exit_code=128 + int(signal) if signal not in ("", "0") else int(exit_code or 0),
                node=node,
                start=_time(start),
                end=_time(end),
            )
        return found

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self._run(["scancel", *job_ids])
