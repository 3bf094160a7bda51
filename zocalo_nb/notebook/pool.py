"""A pool of kernels started ahead of time: one fresh kernel per job, refilled in the background.

About 95% of a papermill job is starting and stopping a kernel (JUPYTER.md); a kernel that is
already running when the job arrives takes that off the job's path while keeping every job
isolated. Kernels of this interpreter's ipykernel are forked from a template process that has
imported everything a kernel needs (:mod:`zocalo_nb.notebook.zygote`): a fresh kernel is ready
in about a tenth of the time a started one takes, so the pool keeps up with jobs back to
back. Other kernels (another environment's, another language's) are started as Jupyter does.
A replacement for a taken kernel waits while a job runs and another kernel is still ready:
starting a kernel takes CPU the running job's kernel wants (on 2 cores, measured: 5 ms of a
45 ms job). When the last ready kernel is taken, or the jobs end, it starts at once.
Each kernel is used once and shut down at once (``now=True``: no graceful-exit stall). The
pool never holds more kernels than the machine can: at most two per core and one per 150 MB
of available memory.

Example::

    with KernelPool(size=2) as pool:
        kernel = pool.take()
        ...
        pool.discard(kernel)
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from zocalo_nb.errors import WaitTimeout
from zocalo_nb.notebook.zygote import (
    ForkedKernelManager,
    KernelTemplate,
    TemplateError,
    forkable,
    template_environment,
    wait_bound,
    wait_ready,
    warm_up,
)
from zocalo_nb.wrapper.environment import job_environment

log = logging.getLogger(__name__)
MB_PER_KERNEL = 150
WARM_UP = "import zocalo_nb"


@dataclass
class Kernel:
    """A started kernel, its one client and the folder of its sockets."""

    manager: Any
    client: Any
    folder: str
    #: The kernel's kernel_info reply when it was asked for at start (forked kernels).
    info: dict[str, Any] | None = None


def machine_limit() -> int:
    """How many idle kernels this machine can hold."""
    available = 0
    try:
        for line in open("/proc/meminfo"):  # noqa: SIM115 - tiny read
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) // 1024
    except OSError:
        available = 4096
    return max(1, min((os.cpu_count() or 1) * 2, available // MB_PER_KERNEL))


class KernelPool:
    """Keeps ``size`` kernels of ``kernel_name`` ready (see module docstring)."""

    def __init__(
        self,
        size: int = 2,
        kernel_name: str = "python3",
        *,
        startup_timeout: float = 60,
        fork: bool | None = None,
    ):
        self.size = max(1, min(size, machine_limit()))
        if self.size < size:
            log.warning(
                "kernel pool capped at %d (asked for %d): this machine cannot hold more",
                self.size,
                size,
            )
        self.kernel_name = kernel_name
        self.startup_timeout = startup_timeout
        #: Fork kernels from a template (default: when the kernel is this interpreter's).
        self.fork = forkable(kernel_name) if fork is None else fork
        self._template: KernelTemplate | None = None
        self._fork_failures = 0
        self._root: str | None = None
        self._ready: queue.Queue[Kernel] = queue.Queue()
        self._wanted = threading.Semaphore(0)
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        #: The kernels taken and not yet released or discarded (ids), and the condition the
        #: refill waits on (see module docstring).
        self._in_use: set[int] = set()
        self._changed = threading.Condition()

    def start(self) -> KernelPool:
        """Start filling the pool in the background; returns self."""
        if self._thread is None:
            for _ in range(self.size):
                self._wanted.release()
            self._thread = threading.Thread(
                target=self._refill, daemon=True, name="zocalo-nb-kernel-pool"
            )
            self._thread.start()
        return self

    @property
    def started(self) -> bool:
        """True once :meth:`start` (or a first :meth:`take`) began filling the pool."""
        return self._thread is not None

    def take(self, timeout: float = 120.0) -> Kernel:
        """A ready kernel (waits for one). Its replacement starts once no job runs, or at
        once when no other kernel is ready (see module docstring)."""
        self.start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                kernel = self._ready.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise WaitTimeout(
                    f"no {self.kernel_name} kernel became ready within {timeout:g} s",
                    what="kernel",
                    seconds=timeout,
                    hint=f"check that the kernel starts: jupyter kernelspec list "
                    f"({self.kernel_name})",
                ) from None
            alive = kernel.manager.is_alive()
            if alive:  # before the refill hears of it: it must see the kernel taken
                self._taken(kernel, True)
            self._wanted.release()
            if alive:
                return kernel
            log.warning("a ready %s kernel had died; taking the next", self.kernel_name)
            self.discard(kernel)

    def discard(self, kernel: Kernel) -> None:
        """Shut a used kernel down at once and remove its socket folder."""
        self._taken(kernel, False)
        try:
            kernel.client.stop_channels()
            kernel.manager.shutdown_kernel(now=True)
        except Exception:  # a dead kernel is already gone
            log.debug("kernel shutdown", exc_info=True)
        shutil.rmtree(kernel.folder, ignore_errors=True)

    def release(self, kernel: Kernel) -> None:
        """Shut a used kernel down in the background, off the job's path."""
        self._taken(kernel, False)
        threading.Thread(
            target=self.discard, args=(kernel,), daemon=True, name="zocalo-nb-kernel-shutdown"
        ).start()

    def close(self) -> None:
        """Stop refilling and shut every idle kernel down."""
        self._closed.set()
        self._wanted.release()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=self.startup_timeout)
        while True:
            try:
                self.discard(self._ready.get_nowait())
            except queue.Empty:
                break
        if self._template is not None:
            self._template.close()
            self._template = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> KernelPool:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _taken(self, kernel: Kernel, taken: bool) -> None:
        """Note that a job took ``kernel`` (or is done with it), for the refill."""
        with self._changed:
            if taken:
                self._in_use.add(id(kernel))
            else:
                self._in_use.discard(id(kernel))
            self._changed.notify_all()

    def _may_start(self) -> bool:
        return not self._in_use or self._ready.empty() or self._closed.is_set()

    def _refill(self) -> None:
        while True:
            self._wanted.acquire()
            with self._changed:  # not beside a running job while a kernel is still ready
                self._changed.wait_for(self._may_start)
            if self._closed.is_set():
                return
            try:
                kernel = self._start_one()
            except Exception:
                log.exception("starting a %s kernel failed; retrying", self.kernel_name)
                self._closed.wait(2.0)
                self._wanted.release()
                continue
            if self._closed.is_set():
                self.discard(kernel)
                return
            self._ready.put(kernel)

    def _start_one(self) -> Kernel:
        # IPC sockets in a private folder: no TCP port, no "unencrypted TCP" warning. All of
        # a pool's folders are in one, removed by close(): a kernel that never started, or
        # one released just before the process ended, leaves nothing behind in /tmp.
        if self._root is None:
            self._root = tempfile.mkdtemp(prefix="zocalo-nb-kernels-")
        folder = tempfile.mkdtemp(prefix="kernel-", dir=self._root)
        try:
            if not self.fork:
                return self._launch_one(folder)
            try:
                kernel = self._fork_one(folder)
            except TemplateError as err:
                self._fork_failures += 1
                if self._fork_failures >= 3:  # it cannot work here: start kernels instead
                    log.warning("forking kernels failed 3 times (%s): starting them instead", err)
                    self.fork = False
                raise
            self._fork_failures = 0
            return kernel
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _fork_one(self, folder: str) -> Kernel:
        from jupyter_client.connect import write_connection_file

        if self._template is None or self._template.process.poll() is not None:
            self._template = KernelTemplate(template_environment())
        connection_file, connection = write_connection_file(
            os.path.join(folder, "kernel.json"), transport="ipc", ip=os.path.join(folder, "k")
        )
        pid = self._template.fork(connection_file, os.path.join(folder, "kernel.log"))
        manager = ForkedKernelManager(pid, self._template.pid, connection_file, self.kernel_name)
        try:
            wait_bound(connection, manager, self.startup_timeout)
        except TimeoutError:
            manager.shutdown_kernel(now=True)  # not left running beside the pool
            raise
        client = manager.client()
        client.start_channels()
        try:
            info = wait_ready(client, self.startup_timeout)
            warm_up(client, self.startup_timeout)
        except TimeoutError:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
            raise
        return Kernel(manager, client, folder, info)

    def _launch_one(self, folder: str) -> Kernel:
        from jupyter_client.manager import KernelManager

        manager = KernelManager(
            kernel_name=self.kernel_name, transport="ipc", ip=os.path.join(folder, "kernel")
        )
        manager.start_kernel(env=job_environment())  # no broker or database credentials
        client = manager.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=self.startup_timeout)
            # Off the job path: what every job notebook imports to emit its results.
            client.execute_interactive(
                WARM_UP,
                silent=True,
                store_history=False,
                timeout=self.startup_timeout,
                output_hook=lambda m: None,
            )
        except (RuntimeError, TimeoutError):
            client.stop_channels()
            manager.shutdown_kernel(now=True)
            raise
        return Kernel(manager, client, folder)
