"""Fresh kernels at fork speed: a template process that has imported what a kernel needs, and
forks one kernel per job.

Starting a Python kernel costs about half a second, nearly all of it importing IPython,
ipykernel, zmq and tornado. The template (``python -m zocalo_nb.notebook.zygote``) imports them
once and then only forks: each child sets up its own sockets, event loop and shell, so every
job still gets a process of its own (nothing a notebook defines, imports or patches reaches
the next job, and the template never runs notebook code). The template is single-threaded and
has created no zmq context when it forks, which is what makes the fork safe.

Protocol on the template's stdin/stdout, one JSON object per line: the parent sends
``{"connection_file": ..., "log": ...}``, the template answers ``{"pid": ...}``. When its stdin
closes (the service ended, even by kill -9) the template kills its kernels and exits.

Only kernels of this interpreter's ipykernel can be forked from here; :func:`forkable` says
whether a kernel name is one, and the pool starts other kernels the usual way.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from zocalo_nb.errors import WaitTimeout, ZocaloNbError

#: Imported by the template before it forks (what a kernel and a job notebook import).
PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.debugger",
    "IPython",
    "IPython.core.completerlib",
    "IPython.core.debugger",
    "IPython.core.oinspect",
    "IPython.extensions.storemagic",
    "sqlite3",
    "faulthandler",
    "zmq",
    "tornado.platform.asyncio",
    "zocalo_nb",
    "zocalo_nb.notebook.emit",
)


def template_environment() -> dict[str, str]:
    """The template's (so its kernels') environment: a job's, without broker or database
    credentials (:func:`zocalo_nb.wrapper.environment.job_environment`)."""
    from zocalo_nb.wrapper.environment import job_environment

    env = job_environment()
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # the debugger's start-up warning
    return env


def forkable(kernel_name: str) -> bool:
    """True when ``kernel_name`` is an ipykernel of this very interpreter (so a child of a
    template made here is the same kernel the kernelspec would start)."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        argv = KernelSpecManager().get_kernel_spec(kernel_name).argv
    except Exception:  # no such kernel: the usual start says so
        return False
    if len(argv) < 3 or argv[1:3] != ["-m", "ipykernel_launcher"]:
        return False
    executable = argv[0]
    if executable in ("python", "python3", f"python3.{sys.version_info[1]}"):
        return True  # jupyter_client runs these as sys.executable
    if not os.path.isabs(executable):
        from shutil import which

        executable = which(executable) or executable
    try:
        return os.path.samefile(executable, sys.executable)
    except OSError:
        return False


class TemplateError(ZocaloNbError):
    """The kernel template could not start or answer."""


class KernelTemplate:
    """The parent's handle on a template process (see module docstring)."""

    def __init__(self, env: dict[str, str], preload: Sequence[str] = PRELOAD) -> None:
        self._lock = threading.Lock()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "zocalo_nb.notebook.zygote", *preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        ready = self._answer()
        if not ready.get("ready"):
            raise TemplateError(
                f"the kernel template did not start: {ready.get('error', 'no answer')}",
                hint="check that ipykernel imports in this environment",
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def fork(self, connection_file: str, log: str) -> int:
        """A new kernel process serving ``connection_file``; returns its pid."""
        with self._lock:
            if self.process.poll() is not None or self.process.stdin is None:
                raise TemplateError("the kernel template has exited", hint="it is restarted")
            try:
                self.process.stdin.write(
                    json.dumps({"connection_file": connection_file, "log": log}) + "\n"
                )
                self.process.stdin.flush()
            except OSError as err:
                raise TemplateError(
                    f"the kernel template has exited: {err}", hint="it is restarted"
                ) from err
            answer = self._answer()
        if "pid" not in answer:
            raise TemplateError(f"the kernel template could not fork: {answer}", hint="see log")
        return int(answer["pid"])

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        try:
            value = json.loads(line) if line else {}
        except ValueError:
            value = {"error": line.strip()}
        return value if isinstance(value, dict) else {}

    def close(self) -> None:
        """End the template (it kills the kernels it forked that still run)."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class ForkedKernelManager:
    """What nbclient and the executor ask of a kernel manager, for a forked kernel: alive,
    shut down (its whole process group, at once), interrupted, and a client for it."""

    has_kernel = True
    ipykernel = True

    def __init__(self, pid: int, template: int, connection_file: str, kernel_name: str) -> None:
        self.pid = pid
        self.template = template
        self.connection_file = connection_file
        self.kernel_name = kernel_name

    def is_alive(self) -> bool:
        return alive(self.pid, self.template)

    def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        with contextlib.suppress(OSError):  # already gone (the template reaps it)
            os.killpg(self.pid, signal.SIGKILL)

    def interrupt_kernel(self) -> None:
        if self.is_alive():
            os.kill(self.pid, signal.SIGINT)

    def cleanup_resources(self, restart: bool = False) -> None:
        Path(self.connection_file).unlink(missing_ok=True)

    def client(self) -> Any:
        from jupyter_client.blocking.client import BlockingKernelClient

        client = BlockingKernelClient(connection_file=self.connection_file)
        client.load_connection_file()
        return client


CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def wait_bound(info: Mapping[str, Any], manager: ForkedKernelManager, timeout: float) -> None:
    """Wait until the kernel has bound its IPC sockets. A client that connects earlier finds
    no socket and retries only after zmq's reconnect interval (100 ms): measured, that was
    most of the time a forked kernel took to answer."""
    paths = [f"{info['ip']}-{info[name]}" for name in CHANNELS]
    deadline = time.monotonic() + timeout
    while not all(os.path.exists(path) for path in paths):
        if not manager.is_alive() or time.monotonic() > deadline:
            raise WaitTimeout(
                f"the forked kernel did not open its sockets within {timeout:g} s",
                what="kernel",
                seconds=timeout,
                hint=f"read kernel.log beside {paths[0]}",
            )
        time.sleep(0.002)


def wait_ready(client: Any, timeout: float) -> dict[str, Any]:
    """Wait until the kernel answers on its shell channel and its output channel reaches
    us (a kernel_info request, again until a status message of the kernel arrives: a
    subscription that is not yet connected misses what is published). jupyter_client's
    wait_for_ready also drains the output channel for 0.2 s every time; this does not.
    Returns the kernel_info reply's content (its ``language_info`` goes into the notebook)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = client.kernel_info()
        try:
            while True:
                reply = client.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
                if reply["parent_header"].get("msg_id") == request:
                    break
        except queue.Empty:
            break
        try:
            while True:
                message = client.get_iopub_msg(timeout=0.05)
                ours = message["parent_header"].get("msg_id") == request
                if ours and message["content"].get("execution_state") == "idle":
                    return dict(reply["content"])
        except queue.Empty:
            continue  # not subscribed yet: ask again
    raise WaitTimeout(
        f"the forked kernel did not answer within {timeout:g} s",
        what="kernel",
        seconds=timeout,
        hint="read kernel.log in the kernel's folder",
    )


def warm_up(client: Any, timeout: float) -> None:
    """Run an empty cell outside the history: a kernel's first execution costs twice the
    next one's (measured), paid here, off the job's path. Not ``silent``: a silent cell skips
    the steps a job's cell takes (its input published, the display hook), and the first job
    cell then paid for them (1.5 ms of 6, measured). Outside the history, the cell leaves
    nothing behind: no execution count, no ``In``/``_i`` entry, no ``_`` (it has no value)."""
    client.execute_interactive(
        "pass", silent=False, store_history=False, timeout=timeout, output_hook=lambda m: None
    )


def alive(pid: int, parent: int) -> bool:
    """True while ``pid`` is a running (not zombie) child of ``parent``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = text.rsplit(")", 1)[1].split()
    return fields[0] not in ("Z", "X") and int(fields[1]) == parent


# -- in the template process ----------------------------------------------------------------
_children: set[int] = set()


def _reap(signum: int, frame: Any) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _children.discard(pid)


def _die_with(template: int) -> None:
    """Linux: this process is killed when the template ends (however it ends), so no kernel
    outlives the pool that forked it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the template's end kills them instead
        return
    if os.getppid() != template:  # the template ended before the line above
        os._exit(1)


def _become_kernel(request: dict[str, Any]) -> None:
    """In a forked child: the kernel for ``request``'s connection file. Never returns."""
    code = 1
    try:
        os.setsid()  # its own process group: killing the kernel kills what it started
        _die_with(request["template"])
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(
            ["-f", request["connection_file"], "--HistoryManager.hist_file=:memory:", "--quiet"]
        )
        app.start()
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def serve(preload: Sequence[str]) -> None:
    """The template's loop (see module docstring)."""
    out = sys.stdout
    try:
        for name in preload:
            importlib.import_module(name)
    except Exception as err:
        print(json.dumps({"error": f"{name}: {err!r}"}), file=out, flush=True)
        return
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the service's terminal
    print(json.dumps({"ready": True}), file=out, flush=True)
    template = os.getpid()
    for line in sys.stdin:
        try:
            request = json.loads(line)
            pid = os.fork()
        except Exception as err:
            print(json.dumps({"error": repr(err)}), file=out, flush=True)
            continue
        if pid == 0:
            _become_kernel({**request, "template": template})
        _children.add(pid)
        print(json.dumps({"pid": pid}), file=out, flush=True)
    for pid in list(_children):  # the parent is gone: so are its kernels
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)


if __name__ == "__main__":
    serve(sys.argv[1:] or PRELOAD)
