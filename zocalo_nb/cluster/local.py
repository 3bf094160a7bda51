"""Jobs as processes on this machine: the default scheduler on ``memory://`` and in notebooks.

Each job is a session of its own (it outlives the service that started it, as a cluster job
would) and is described by files in ``state_dir``: ``<id>.json`` (pid, files, start),
``<id>.exit`` (its exit code, written when it ends) and ``<id>.cancelled``. So the watcher
finds its jobs again after a restart. A time limit runs the job under ``timeout`` (exit 124:
:attr:`JobStatus.TIMEOUT`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zocalo_nb.cluster.jobs import JOB_NAME, JobInfo, JobSpec, JobStatus, Scheduler, is_ours

TIMED_OUT = 124
SECONDS_PER_MINUTE = 60


class LocalScheduler(Scheduler):
    """Jobs as local processes (see module docstring)."""

    name = "local"

    def __init__(self, state_dir: str | os.PathLike[str] | None = None) -> None:
        self.state_dir = Path(state_dir or Path.home() / ".zocalo-nb" / "local-jobs")

    def __repr__(self) -> str:
        return f"<LocalScheduler {self.state_dir}>"

    def submit(self, spec: JobSpec, *, recipewrap: str, stdout: Path, stderr: Path) -> str:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        job_id = f"local-{uuid.uuid4().hex[:10]}"
        script = self.state_dir / f"{job_id}.sh"
        script.write_text(spec.script())
        limit = f"timeout -k 5 {spec.minutes * SECONDS_PER_MINUTE} " if spec.minutes else ""
        exit_file = self.state_dir / f"{job_id}.exit"
        line = (
            f"{limit}bash {shlex.quote(str(script))} >{shlex.quote(str(stdout))} "
            f"2>{shlex.quote(str(stderr))}; echo $? >{shlex.quote(str(exit_file))}"
        )
        spec.workingdir.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            ["/bin/sh", "-c", line],
            cwd=spec.workingdir,
            env=dict(spec.environment),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        record = {
            "pid": process.pid,
            "recipewrap": recipewrap,
            "stdout": str(stdout),
            "stderr": str(stderr),
            "start": time.time(),
            "name": spec.name,
        }
        (self.state_dir / f"{job_id}.json").write_text(json.dumps(record))
        return job_id

    def jobs(self, name: str | None = None) -> list[JobInfo]:
        found = []
        for path in sorted(self.state_dir.glob("local-*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                record = {}
            if is_ours(str(record.get("name", JOB_NAME)), name):
                found.append(self._info(path, record))
        return found

    def _info(self, path: Path, record: dict[str, Any]) -> JobInfo:
        job_id = path.stem
        common = {
            "job_id": job_id,
            "node": os.uname().nodename,
            "start": record.get("start"),
            "recipewrap": record.get("recipewrap", ""),
            "stdout": record.get("stdout", ""),
            "stderr": record.get("stderr", ""),
        }
        exit_file = path.with_suffix(".exit")
        cancelled = path.with_suffix(".cancelled").exists()
        if exit_file.exists():
            text = exit_file.read_text().strip()
            if text:
                code = int(text)
                status = (
                    JobStatus.CANCELLED if cancelled
                    else JobStatus.TIMEOUT if code == TIMED_OUT
                    else JobStatus.COMPLETED if code == 0
                    else JobStatus.FAILED
                )  # fmt: skip
                end = exit_file.stat().st_mtime
                return JobInfo(status=status, exit_code=code, end=end, **common)
        if _alive(int(record.get("pid", 0))):
            return JobInfo(status=JobStatus.RUNNING, **common)
        status = JobStatus.CANCELLED if cancelled else JobStatus.FAILED
        return JobInfo(
            status=status, reason="the job's process ended without an exit code", **common
        )

    def cancel(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            path = self.state_dir / f"{job_id}.json"
            try:
                pid = int(json.loads(path.read_text())["pid"])
            except (OSError, ValueError, KeyError):
                continue
            path.with_suffix(".cancelled").touch()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own child not reaped yet) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return True
