"""Command-line jobs: run the command named in the step's parameters.

Step parameters (after the recipe's own parameter substitution; payload values then fill
``{name}`` placeholders in the command, and win over step parameters):

``command``        a list of arguments (or a string, split like a shell would, never run by one)
``shell``          true to run the string through ``/bin/sh -c``; substituted values are quoted
``workingdir``     folder to run in (created if missing; default: the current folder)
``environment``    extra environment variables
``timeout``        seconds; on expiry the whole process group is killed
``stdout``/``stderr``  files for the output (default: ``<workingdir>/<job>.out`` / ``.err``)
``results``        glob patterns (relative to workingdir) of result files to announce
``updates_every``  seconds between progress updates on ``updates`` (default 10)

The command dies with the thread that started it (Linux ``PR_SET_PDEATHSIG``): when a
runner is killed, its jobs stop too, and the job runs again, once, from its redelivered
message (see :mod:`zocalo_nb.wrapper.service`).

Example step::

    {"queue": "jobs", "parameters": {"command": ["dials.find_spots", "{image}"],
     "workingdir": "/dls/tmp/{dcid}", "timeout": 600},
     "output": {"success": 2, "failure": 3}}
"""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zocalo_nb.recipe.parameters import format_string
from zocalo_nb.wrapper.lifecycle import Job, JobFailed

STDERR_TAIL = 2000
_PR_SET_PDEATHSIG = 1
_LIBC: ctypes.CDLL | None = None
try:  # loaded before any fork: the child only calls it
    _LIBC = ctypes.CDLL(None, use_errno=True)
    _LIBC.prctl  # noqa: B018
except (OSError, AttributeError):  # not Linux
    _LIBC = None


def _die_with_parent() -> None:
    """In the child, before exec: be killed when the thread that started us ends."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class CommandWrapper:
    """Runs a command line for a recipe step (see module docstring)."""

    name = "command"

    def run(self, job: Job) -> dict[str, Any]:
        params = dict(job.parameters)
        values = {**params, **(job.payload if isinstance(job.payload, Mapping) else {})}
        shell = params.get("shell") is True
        argv = self._argv(params.get("command"), values, shell)
        workdir = Path(format_string(str(params.get("workingdir", ".")), values))
        workdir.mkdir(parents=True, exist_ok=True)
        stem = f"{self.name}-{job.ctx.run_id or 'run'}-{job.ctx.step_id}"
        out = Path(params.get("stdout") or workdir / f"{stem}.out")
        err = Path(params.get("stderr") or workdir / f"{stem}.err")
        env = {
            **os.environ,
            **{str(k): str(v) for k, v in (params.get("environment") or {}).items()},
        }
        timeout = _seconds(params.get("timeout"), "timeout")
        every = _seconds(params.get("updates_every", 10), "updates_every") or 10.0
        started = time.monotonic()
        with out.open("wb") as stdout, err.open("wb") as stderr:
            try:
                process = subprocess.Popen(
                    argv,
                    cwd=workdir,
                    env=env,
                    stdout=stdout,
                    stderr=stderr,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as error:
                raise JobFailed(
                    f"cannot start {argv[0]!r}: {error.strerror}",
                    hint="check the command and the PATH",
                ) from error
            job.update({"state": "running", "pid": process.pid, "command": argv})
            code = self._wait(process, job, timeout, every, started)
        duration = time.monotonic() - started
        if code is None:
            raise JobFailed(
                f"timed out after {timeout:g} s; the process group was killed\n" + _tail(err),
                hint="raise the step's timeout or make the job faster",
            )
        if code != 0:
            raise JobFailed(
                f"command exited with code {code}\n" + _tail(err),
                hint=f"see {err} for the whole error output",
            )
        for pattern in params.get("results") or []:
            for path in sorted(workdir.glob(str(pattern))):
                job.result_file(str(path))
        return {
            "exit_code": 0,
            "stdout": str(out),
            "stderr": str(err),
            "duration": round(duration, 3),
            "workingdir": str(workdir),
        }

    @staticmethod
    def _argv(command: Any, values: Mapping[str, Any], shell: bool) -> list[str]:
        if isinstance(command, str) and shell:
            quoted = {k: shlex.quote(str(v)) for k, v in values.items()}
            return ["/bin/sh", "-c", format_string(command, quoted)]
        if isinstance(command, str):
            command = shlex.split(command)
        if not isinstance(command, (list, tuple)) or not command:
            raise JobFailed(
                f"the step's 'command' parameter must be a list of arguments, not {command!r}",
                hint='e.g. "command": ["dials.find_spots", "{image}"]',
            )
        return [format_string(str(arg), values) for arg in command]

    @staticmethod
    def _wait(
        process: subprocess.Popen[bytes],
        job: Job,
        timeout: float | None,
        every: float,
        started: float,
    ) -> int | None:
        """The exit code, or None after killing the process group on timeout."""
        while True:
            left = None if timeout is None else timeout - (time.monotonic() - started)
            step = every if left is None else max(0.0, min(every, left))
            try:
                return process.wait(timeout=step)
            except subprocess.TimeoutExpired:
                if left is not None and left <= every:
                    _kill_group(process)
                    return None
                job.update(
                    {
                        "state": "running",
                        "pid": process.pid,
                        "elapsed": round(time.monotonic() - started, 1),
                    }
                )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=5)
            # children may outlive the leader: make sure the whole group is gone
            os.killpg(process.pid, signal.SIGKILL)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            continue
        break


def _seconds(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise JobFailed(
            f"parameter {name!r} must be a number of seconds, not {value!r}",
            hint=f'e.g. "{name}": 600',
        ) from None
    if number <= 0:
        raise JobFailed(f"parameter {name!r} must be positive", hint=f'e.g. "{name}": 600')
    return number


def _tail(path: Path) -> str:
    try:
        data = path.read_bytes()[-STDERR_TAIL:].decode("utf-8", "replace")
    except OSError:
        return ""
    return f"--- last {STDERR_TAIL} bytes of stderr ---\n{data}" if data else "(no stderr)"
