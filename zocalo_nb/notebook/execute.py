"""Running a prepared notebook, behind one seam (:class:`Executor`): on a pooled kernel,
or on a kernel of its own for one-off runs."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from zocalo_nb.errors import MissingExtra

try:
    import nbformat
except ImportError as error:  # an optional part: say which pip install brings it
    raise MissingExtra("notebook", error.name) from error

from zocalo_nb.notebook.pool import Kernel, KernelPool
from zocalo_nb.wrapper.environment import job_environment
from zocalo_nb.wrapper.lifecycle import JobFailed

#: How often the kernel process is checked while a notebook runs (seconds).
WATCH_INTERVAL = 0.5
#: How long nbclient waits on a kernel channel at a time before it looks whether the job was
#: stopped (seconds); a message that arrives ends the wait at once.
SLICE = 0.1
#: How long a stopped job waits for its nbclient run to end before closing the channels.
STOP_WAIT = 5.0
#: Threads that run nbclient for the jobs, kept between jobs (starting a thread and an event
#: loop for every job showed in the job's time); a job that hangs holds one until its kernel
#: is stopped, which ends nbclient's wait.
_NBCLIENT_THREADS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="zocalo-nb-nbclient")


def run_on_kernel(nb: nbformat.NotebookNode, kernel: Kernel, *, cwd: Path, timeout: float) -> None:
    """Execute ``nb`` in place on ``kernel``. nbclient runs in a helper thread while this one
    watches the kernel process: a kernel that dies, or a job past ``timeout`` seconds, ends the
    job at once with a clear failure instead of a hang."""
    from nbclient.exceptions import CellExecutionError

    client = _client_class()(
        nb, km=kernel.manager, timeout=timeout, resources={"metadata": {"path": str(cwd)}}
    )
    stopped, done = threading.Event(), threading.Event()
    client.kc = _JobClient(kernel.client, stopped)
    client.known_info = kernel.info
    failure: list[BaseException] = []

    def execute() -> None:
        try:
            client.execute(cleanup_kc=False)
        except BaseException as err:  # reported below, on the job's thread
            failure.append(err)
        finally:
            done.set()

    _NBCLIENT_THREADS.submit(execute)
    deadline = time.monotonic() + timeout
    while not done.wait(WATCH_INTERVAL):
        if not kernel.manager.is_alive():
            _stop(kernel, stopped, done)
            raise JobFailed(
                "the kernel died while running the notebook",
                hint="the notebook may use too much memory or crash Python",
            )
        if time.monotonic() > deadline:
            _stop(kernel, stopped, done)
            raise JobFailed(
                f"the notebook ran longer than {timeout:g} s and was stopped",
                hint="raise the step's timeout",
            )
    if failure and not isinstance(failure[0], CellExecutionError):
        if not kernel.manager.is_alive():
            raise JobFailed(
                "the kernel died while running the notebook",
                hint="the notebook may use too much memory or crash Python",
            )
        raise JobFailed(
            f"running the notebook failed: {failure[0]!r}", hint="see the service log for details"
        ) from failure[0]
    # a CellExecutionError leaves the error output in the failing cell: the caller reports it


_CLIENT: type | None = None


def _client_class() -> Any:
    """nbclient's NotebookClient, told the kernel's language when the pool already asked
    (a forked kernel answered kernel_info when it became ready): one round trip less per job,
    which measured a tenth of a small notebook's time. Otherwise it asks, as nbclient does.

    ``execute`` is bound again below: nbclient's is ``run_sync(NotebookClient.async_execute)``,
    made from the base class's function, so it would never call this override."""
    global _CLIENT
    if _CLIENT is None:
        from jupyter_core.utils import run_sync
        from nbclient import NotebookClient

        class KnownKernelClient(NotebookClient):
            known_info: dict[str, Any] | None = None

            async def async_execute(self, reset_kc: bool = False, **kwargs: Any) -> Any:
                info = self.known_info
                if info is None or "language_info" not in info:
                    return await super().async_execute(reset_kc=reset_kc, **kwargs)
                self.reset_execution_trackers()
                async with self.async_setup_kernel(**kwargs):
                    self.nb.metadata["language_info"] = info["language_info"]
                    for index, cell in enumerate(self.nb.cells):
                        await self.async_execute_cell(
                            cell, index, execution_count=self.code_cells_executed + 1
                        )
                    self.set_widgets_metadata()
                return self.nb

            execute = run_sync(async_execute)

        _CLIENT = KnownKernelClient
    return _CLIENT


def _stop(kernel: Kernel, stopped: threading.Event, done: threading.Event) -> None:
    """End a job: its nbclient run first (see _Channel), then the kernel, then the channels
    (closed only once nbclient no longer waits on them: closing a zmq socket another thread
    polls is not safe, and such a wait could last forever)."""
    stopped.set()
    try:
        kernel.manager.shutdown_kernel(now=True)
    finally:
        done.wait(STOP_WAIT)
        kernel.client.stop_channels()


class _Channel:
    """A kernel channel as nbclient sees it during one job: it waits in slices and, once the
    job is stopped, ends the wait with nbclient's DeadKernelError. nbclient waits for output
    with no timeout; on a blocking client, for a kernel that was killed, that wait never
    ended."""

    def __init__(self, channel: Any, stopped: threading.Event) -> None:
        self._channel = channel
        self._stopped = stopped

    def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stopped.is_set():
            left = SLICE if deadline is None else deadline - time.monotonic()
            try:
                message: dict[str, Any] = self._channel.get_msg(timeout=max(0.0, min(SLICE, left)))
                return message
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
        from nbclient.exceptions import DeadKernelError

        raise DeadKernelError("the job was stopped")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)


class _JobClient:
    """A kernel's client as nbclient sees it during one job: its shell and output channels
    are :class:`_Channel`; everything else is the client's own."""

    def __init__(self, client: Any, stopped: threading.Event) -> None:
        self._client = client
        self.shell_channel = _Channel(client.shell_channel, stopped)
        self.iopub_channel = _Channel(client.iopub_channel, stopped)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class Executor(Protocol):
    """Runs a prepared notebook (parameters already injected) in place: a failing cell
    leaves its error output in that cell for the caller to report."""

    def execute(self, nb: nbformat.NotebookNode, *, cwd: Path, timeout: float) -> None: ...


class PooledExecutor:
    """On a fresh kernel from a :class:`KernelPool` (started ahead of time)."""

    def __init__(self, pool: KernelPool) -> None:
        self.pool = pool

    def execute(self, nb: nbformat.NotebookNode, *, cwd: Path, timeout: float) -> None:
        kernel = self.pool.take()
        try:
            run_on_kernel(nb, kernel, cwd=cwd, timeout=timeout)
        finally:
            self.pool.release(kernel)


class OneOffExecutor:
    """On a kernel of its own, started for this notebook and shut down after it (one-off
    ``zocalo-nb wrap --wrap notebook`` runs), without the service's credentials."""

    def __init__(self, kernel_name: str = "python3") -> None:
        self.kernel_name = kernel_name

    def execute(self, nb: nbformat.NotebookNode, *, cwd: Path, timeout: float) -> None:
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, DeadKernelError

        client = NotebookClient(
            nb,
            kernel_name=self.kernel_name,
            timeout=timeout,
            resources={"metadata": {"path": str(cwd)}},
        )
        try:
            client.execute(env=job_environment())
        except CellExecutionError:
            return  # the failing cell holds its error output; the caller reports it
        except DeadKernelError as err:
            raise JobFailed(
                "the kernel died while running the notebook",
                hint="the notebook may use too much memory or crash Python",
            ) from err
        except TimeoutError as err:
            raise JobFailed(
                f"the notebook ran longer than {timeout:g} s and was stopped",
                hint="raise the step's timeout",
            ) from err
