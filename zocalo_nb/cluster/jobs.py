"""Cluster jobs: what a step asks for (``parameters.cluster``), what a scheduler says of a job,
and the seam every scheduler backend implements.

A step's ``parameters.cluster`` (DLS's cluster submission format)::

    {"commands": ["zocalo-nb wrap --wrap command --recipewrapper $RECIPEWRAP"],
     "workingdir": "/dls/tmp/run-17",      # absolute; created if missing
     "cpus": 1, "memory": "4G", "gpus": 0, "time_limit": "00:30:00",
     "partition": "cs05r", "environment": {"OMP_NUM_THREADS": "4"},
     "scheduler": "slurm"}                 # optional: the service's default otherwise

``memory`` is megabytes (a number) or a number with a unit (``500M``, ``4G``);
``time_limit`` is minutes (a number) or ``[D-]HH:MM:SS``.
"""

from __future__ import annotations

import abc
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from zocalo_nb.errors import InvalidArgument

#: How the name of every job we submit starts; a cluster service names its jobs
#: ``zocalo-nb.<namespace>`` (how its watcher, restarted too, finds its own jobs and no
#: other namespace's).
JOB_NAME = "zocalo-nb"


def is_ours(name: str, wanted: str | None) -> bool:
    """A job name is ``wanted`` (exactly), or any of ours when ``wanted`` is None."""
    return name == wanted if wanted is not None else name.split(".")[0] == JOB_NAME


class JobStatus(StrEnum):
    """A job's state, one vocabulary for every scheduler."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    NODE_FAILURE = "node-failure"
    OUT_OF_MEMORY = "out-of-memory"

    @property
    def ended(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True)
class JobInfo:
    """What a scheduler says of one job."""

    job_id: str
    status: JobStatus
    exit_code: int | None = None
    reason: str = ""
    node: str = ""
    start: float | None = None
    end: float | None = None
    #: The job's recipe-wrapper file (stored with the job: how a restarted watcher knows
    #: which step it belongs to).
    recipewrap: str = ""
    stdout: str = ""
    stderr: str = ""


def _memory_mb(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*", str(value), re.IGNORECASE)
    if not match:
        raise InvalidArgument(
            f"cluster memory {value!r} is not a size", hint='megabytes, or e.g. "500M", "4G"'
        )
    scale = {"": 1, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}[match[2].upper()]
    return max(1, int(float(match[1]) * scale))


def _minutes(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return max(1, int(value))
    match = re.fullmatch(r"(?:(\d+)-)?(\d+):(\d\d):(\d\d)", str(value).strip())
    if not match:
        raise InvalidArgument(
            f"cluster time_limit {value!r} is not a duration",
            hint='minutes, or "HH:MM:SS" / "D-HH:MM:SS", e.g. "00:30:00"',
        )
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return max(1, days * 1440 + hours * 60 + minutes + (1 if seconds else 0))


@dataclass(frozen=True)
class JobSpec:
    """One job to submit (see module docstring); :meth:`from_parameters` checks a step's."""

    commands: tuple[str, ...]
    workingdir: Path
    cpus: int = 1
    memory_mb: int | None = None
    gpus: int = 0
    minutes: int | None = None
    partition: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    scheduler: str | None = None
    name: str = JOB_NAME

    @classmethod
    def from_parameters(cls, cluster: Any) -> JobSpec:
        if not isinstance(cluster, Mapping):
            raise InvalidArgument(
                "the step has no parameters.cluster object",
                hint='e.g. "parameters": {"cluster": {"commands": [...], "workingdir": "/..."}}',
            )
        commands = cluster.get("commands")
        if isinstance(commands, str):
            commands = [commands]
        if not commands or not all(isinstance(c, str) and c.strip() for c in commands):
            raise InvalidArgument(
                f"cluster commands {commands!r} must be a non-empty list of command lines",
                hint='e.g. "commands": ["zocalo-nb wrap --wrap command --recipewrapper '
                '$RECIPEWRAP"]',
            )
        workingdir = cluster.get("workingdir")
        if not isinstance(workingdir, str) or not Path(workingdir).is_absolute():
            raise InvalidArgument(
                f"cluster workingdir {workingdir!r} must be an absolute path",
                hint="jobs run on other machines: give the shared folder in full",
            )
        environment = cluster.get("environment") or {}
        if not isinstance(environment, Mapping):
            raise InvalidArgument(
                "cluster environment must be an object", hint='e.g. {"OMP_NUM_THREADS": "4"}'
            )
        return cls(
            commands=tuple(commands),
            workingdir=Path(workingdir),
            cpus=_count(cluster.get("cpus"), "cpus", 1),
            memory_mb=_memory_mb(cluster.get("memory")),
            gpus=_count(cluster.get("gpus"), "gpus", 0),
            minutes=_minutes(cluster.get("time_limit")),
            partition=str(cluster["partition"]) if cluster.get("partition") else None,
            environment={str(k): str(v) for k, v in environment.items()},
            scheduler=str(cluster["scheduler"]) if cluster.get("scheduler") else None,
        )

    def script(self) -> str:
        """The job's shell script: into its working directory, then each command; the first
        that fails ends the job with its exit code."""
        lines = ["#!/bin/bash", "set -e", f"cd {shlex.quote(str(self.workingdir))}"]
        return "\n".join([*lines, *self.commands, ""])


def _count(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"cluster {name} {value!r} must be a whole number", hint="e.g. 1")
    return value


class Scheduler(abc.ABC):
    """A batch scheduler backend. Third-party ones register under the entry-point group
    ``zocalo_nb.schedulers`` (name = a Scheduler subclass taking keyword options)."""

    name: str = ""

    @abc.abstractmethod
    def submit(self, spec: JobSpec, *, recipewrap: str, stdout: Path, stderr: Path) -> str:
        """Submit the job; returns its id. ``recipewrap`` is stored with the job."""

    @abc.abstractmethod
    def jobs(self, name: str | None = None) -> list[JobInfo]:
        """Every job named ``name`` (None: any of ours) the scheduler still knows (live and
        recently ended), in one call: how the watcher polls, and how it finds its jobs
        after a restart."""

    def states(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """What the scheduler says of these jobs of ours (those it knows)."""
        wanted = set(job_ids)
        return {job.job_id: job for job in self.jobs() if job.job_id in wanted}

    @abc.abstractmethod
    def cancel(self, job_ids: Sequence[str]) -> None:
        """Cancel these jobs (no error for ended ones)."""
