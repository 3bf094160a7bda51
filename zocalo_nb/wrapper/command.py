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

``$RECIPEWRAP``, ``$RECIPEFILE`` and ``$RECIPEENV`` in the command become the paths of files
written into the working directory, as upstream's cluster submission writes them: the whole
recipe message of this step (what ``zocalo.wrap --recipewrapper`` and ``zocalo-nb wrap``
read), the recipe alone, and the run's environment.

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
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from zocalo_nb.config import workdir_roots
from zocalo_nb.dispatch.envelope import run_file_name
from zocalo_nb.dispatch.recipe_files import RECIPE_FILES, with_recipe_files
from zocalo_nb.recipe.parameters import format_string
from zocalo_nb.wrapper.environment import job_environment
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


#: Set in each job's environment: processes still carrying it when the job ends are killed.
JOB_MARKER = "ZOCALO_NB_JOB"


class CommandWrapper:
    """Runs a command line for a recipe step (see module docstring). Working directories and
    output files must lie inside ``roots`` (default: :func:`zocalo_nb.config.workdir_roots`)."""

    name = "command"

    def __init__(self, roots: Sequence[str | os.PathLike[str]] | None = None) -> None:
        self.roots = [Path(r).resolve() for r in (roots if roots is not None else workdir_roots())]

    def run(self, job: Job) -> dict[str, Any]:
        params = dict(job.parameters)
        values = {**params, **(job.payload if isinstance(job.payload, Mapping) else {})}
        shell = params.get("shell") is True
        argv = self._argv(params.get("command"), values, shell)
        workdir = self._inside(
            format_string(str(params.get("workingdir", ".")), values), "workingdir"
        )
        stem = f"{self.name}-{run_file_name(job.ctx.run_id or 'run')}-{job.ctx.step_id}"
        out = self._inside(params.get("stdout") or workdir / f"{stem}.out", "stdout")
        err = self._inside(params.get("stderr") or workdir / f"{stem}.err", "stderr")
        workdir.mkdir(parents=True, exist_ok=True)
        if any(name in arg for name in RECIPE_FILES for arg in argv):
            argv = with_recipe_files(argv, job.ctx.message.to_body(), workdir / stem, shell)
        marker = uuid.uuid4().hex
        env = job_environment(params.get("environment") or {})
        env[JOB_MARKER] = marker
        timeout = _seconds(params.get("timeout"), "timeout")
        every = _seconds(params.get("updates_every", 10), "updates_every") or 10.0
        started = time.monotonic()
        try:
            code = self._start_and_wait(argv, workdir, env, out, err, job, timeout, every, started)
        finally:
            _kill_marked(marker)  # what the job left behind: its group, daemons it started
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
                if path.resolve().is_relative_to(workdir):  # no ../ out of the job's folder
                    job.result_file(str(path))
        return {
            "exit_code": 0,
            "stdout": str(out),
            "stderr": str(err),
            "duration": round(duration, 3),
            "workingdir": str(workdir),
        }

    def _inside(self, path: Any, what: str) -> Path:
        """``path`` resolved, if it lies inside one of the roots; else the job fails."""
        resolved = Path(str(path)).resolve()
        if not any(resolved.is_relative_to(root) for root in self.roots):
            raise JobFailed(
                f"{what} {str(path)[:300]!r} is outside the folders jobs may use "
                f"({', '.join(str(r) for r in self.roots)})",
                hint="use a folder inside them, or list more in ZOCALO_NB_WORKDIR_ROOTS "
                "(':'-separated) where the service runs",
            )
        return resolved

    def _start_and_wait(
        self,
        argv: list[str],
        workdir: Path,
        env: dict[str, str],
        out: Path,
        err: Path,
        job: Job,
        timeout: float | None,
        every: float,
        started: float,
    ) -> int | None:
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
            return self._wait(process, job, timeout, every, started)

    @staticmethod
    def _argv(command: Any, values: Mapping[str, Any], shell: bool) -> list[str]:
        """The argument list. Every value substituted into a string command is quoted (here,
        and by the dispatcher when it applied the request's parameters), so a value is
        always one word: never shell syntax, never extra arguments."""
        if isinstance(command, str):
            line = format_string(command, values, quote=shlex.quote)
            try:
                return ["/bin/sh", "-c", line] if shell else shlex.split(line)
            except ValueError as err:  # unbalanced quotes in the recipe's own text
                raise JobFailed(
                    f"the step's command cannot be split into arguments: {err}",
                    hint='write it as a list: "command": ["prog", "{image}"]',
                ) from err
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
    """The last STDERR_TAIL bytes of a file, read from its end (it may be huge)."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - STDERR_TAIL))
            data = handle.read(STDERR_TAIL).decode("utf-8", "replace")
    except OSError:
        return ""
    return f"--- last {STDERR_TAIL} bytes of stderr ---\n{data}" if data else "(no stderr)"


def _kill_marked(marker: str) -> int:
    """SIGKILL every process whose environment carries this job's marker (the job's group
    and any daemon that left it with setsid); returns how many."""
    needle = f"{JOB_MARKER}={marker}".encode() + b"\0"
    killed = 0
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except OSError:  # gone already, or not ours to read
            continue
    return killed
