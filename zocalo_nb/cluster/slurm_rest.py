"""Slurm through its REST API (slurmrestd), the API version a setting: ``v0.0.38`` is what
Debian 12's Slurm 22.05 serves (the default here); newer sites serve ``v0.0.40`` and later
(upstream zocalo's client targets those). The calls used keep their shape across these
versions: ``POST /slurm/VERSION/job/submit``, ``GET /slurm/VERSION/jobs`` (all jobs in one
answer: ours are picked by name), ``DELETE /slurm/VERSION/job/ID``.

``url`` is ``unix:///path/to/socket`` (slurmrestd's local authentication: the caller's uid)
or ``http://host:6820`` with a JWT (``user``, ``token``: ``scontrol token``), sent in
``X-SLURM-USER-NAME`` / ``X-SLURM-USER-TOKEN``.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from zocalo_nb.cluster.jobs import JobInfo, JobSpec, JobStatus, Scheduler, is_ours
from zocalo_nb.cluster.slurm import STATES, SchedulerError

DEFAULT_API = "v0.0.38"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def _state(value: Any) -> str:
    """v0.0.38 gives a string; v0.0.40+ a list of flags (``["FAILED"]``)."""
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value or "")


def _number(value: Any) -> int | None:
    """v0.0.38 gives numbers; v0.0.40+ ``{"set": true, "number": N}``."""
    if isinstance(value, dict):
        return int(value["number"]) if value.get("set") else None
    return int(value) if isinstance(value, (int, float)) else None


def _exit_code(value: Any) -> int | None:
    if isinstance(value, dict):  # v0.0.40+: {"status": [...], "return_code": {...}, "signal"}
        signal = _number((value.get("signal") or {}).get("id"))
        return 128 + signal if signal else _number(value.get("return_code"))
    status = _number(value)
    if status is None:
        return None
    return 128 + (status & 0x7F) if status & 0x7F else status >> 8


class SlurmRest(Scheduler):
    """Slurm through slurmrestd (see module docstring)."""

    name = "slurm-rest"

    def __init__(
        self,
        url: str,
        *,
        api_version: str = DEFAULT_API,
        user: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url, self.api_version, self.timeout = url, api_version, timeout
        self.user, self.token = user, token

    def __repr__(self) -> str:
        return f"<SlurmRest {self.url} {self.api_version}>"

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        parts = urlsplit(self.url)
        connection: http.client.HTTPConnection
        if parts.scheme == "unix":
            connection = _UnixConnection(parts.path, self.timeout)
        else:
            connection = http.client.HTTPConnection(
                parts.hostname or "127.0.0.1", parts.port or 6820, timeout=self.timeout
            )
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers.update({"X-SLURM-USER-NAME": self.user or "", "X-SLURM-USER-TOKEN": self.token})
        where = f"/slurm/{self.api_version}/{path}"
        # the body as bytes: http.client then sends it in one write with the headers
        data = json.dumps(body).encode() if body is not None else None
        try:
            connection.request(method, where, data, headers)
            answer = connection.getresponse()
            text = answer.read().decode("utf-8", "replace")
        except OSError as err:
            raise SchedulerError(
                f"slurmrestd at {self.url} did not answer {method} {where}: {err}",
                hint="is slurmrestd running, and the URL (unix:///socket or "
                "http://host:6820) right?",
            ) from err
        finally:
            connection.close()
        try:
            answered = json.loads(text) if text else {}
        except ValueError:
            answered = {}
        errors = [e for e in (answered.get("errors") or []) if isinstance(e, dict)]
        if answer.status >= 400 or errors:
            said = "; ".join(str(e.get("error") or e.get("description") or e) for e in errors)
            raise SchedulerError(
                f"slurmrestd {method} {where}: HTTP {answer.status} {said or text[:300]}",
                hint=f"check the API version ({self.api_version}) and the token"
                if answer.status in (401, 404)
                else "see slurmrestd's message",
            )
        return answered

    def submit(self, spec: JobSpec, *, recipewrap: str, stdout: Path, stderr: Path) -> str:
        job: dict[str, Any] = {
            "name": spec.name,
            "comment": recipewrap,
            "current_working_directory": str(spec.workingdir),
            "standard_output": str(stdout),
            "standard_error": str(stderr),
            "environment": dict(spec.environment) or {"PATH": "/usr/bin:/bin"},
            "cpus_per_task": spec.cpus,
        }
        if spec.memory_mb:
            job["memory_per_node"] = spec.memory_mb
        if spec.gpus:
            job["gpus"] = spec.gpus
        if spec.minutes:
            job["time_limit"] = spec.minutes
        if spec.partition:
            job["partition"] = spec.partition
        if self.api_version != DEFAULT_API:  # v0.0.40+: an environment is a list of NAME=VALUE
            job["environment"] = [f"{k}={v}" for k, v in job["environment"].items()]
        answer = self._request("POST", "job/submit", {"script": spec.script(), "job": job})
        return str(answer["job_id"])

    def jobs(self, name: str | None = None) -> list[JobInfo]:
        found = []
        for job in self._request("GET", "jobs").get("jobs") or []:
            if not is_ours(str(job.get("name") or ""), name):
                continue
            status = STATES.get(_state(job.get("job_state")), JobStatus.QUEUED)
            start, end = _number(job.get("start_time")), _number(job.get("end_time"))
            found.append(
                JobInfo(
                    job_id=str(job.get("job_id")),
                    status=status,
                    exit_code=_exit_code(job.get("exit_code")) if status.ended else None,
                    reason=""
                    if job.get("state_reason") in (None, "None")
                    else str(job["state_reason"]),
                    node=str(job.get("nodes") or ""),
                    start=float(start) if start else None,
                    end=float(end) if end and status.ended else None,
                    recipewrap=str(job.get("comment") or ""),
                    stdout=str(job.get("standard_output") or ""),
                    stderr=str(job.get("standard_error") or job.get("standard_output") or ""),
                )
            )
        return found

    def cancel(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            self._request("DELETE", f"job/{job_id}")
