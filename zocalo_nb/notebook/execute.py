"""Running a prepared notebook: on a pooled kernel with nbclient, or with papermill."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import nbformat

from zocalo_nb.notebook.pool import Kernel
from zocalo_nb.wrapper.lifecycle import JobFailed

#: How often the kernel process is checked while a notebook runs (seconds).
WATCH_INTERVAL = 0.5


def run_on_kernel(nb: nbformat.NotebookNode, kernel: Kernel, *, cwd: Path, timeout: float) -> None:
    """Execute ``nb`` in place on ``kernel``. nbclient runs in a helper thread while this one
    watches the kernel process: a kernel that dies, or a job past ``timeout`` seconds, ends the
    job at once with a clear failure instead of a hang."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(
        nb, km=kernel.manager, timeout=timeout, resources={"metadata": {"path": str(cwd)}}
    )
    client.kc = kernel.client
    failure: list[BaseException] = []
    done = threading.Event()

    def execute() -> None:
        try:
            client.execute(cleanup_kc=False)
        except BaseException as err:  # reported below, on the job's thread
            failure.append(err)
        finally:
            done.set()

    threading.Thread(target=execute, daemon=True, name="zocalo-nb-nbclient").start()
    deadline = time.monotonic() + timeout
    while not done.wait(WATCH_INTERVAL):
        if not kernel.manager.is_alive():
            _stop(kernel)
            raise JobFailed(
                "the kernel died while running the notebook",
                hint="the notebook may use too much memory or crash Python",
            )
        if time.monotonic() > deadline:
            _stop(kernel)
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


def _stop(kernel: Kernel) -> None:
    try:
        kernel.manager.shutdown_kernel(now=True)
    finally:
        kernel.client.stop_channels()


def run_with_papermill(
    source: Path, parameters: dict[str, Any], output: Path, *, timeout: float, kernel_name: str
) -> nbformat.NotebookNode:
    """One-off runs (``zocalo-nb wrap --wrap notebook``): papermill, a kernel of its own."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=parameters,
            kernel_name=kernel_name,
            execution_timeout=timeout,
            progress_bar=False,
            cwd=str(source.parent),
        )
    except PapermillExecutionError:
        pass  # saved with the failing cell; the caller reports it
    except Exception as err:
        raise JobFailed(
            f"papermill could not run {source.name}: {err}",
            hint="check the kernel and the notebook",
        ) from err
    return nbformat.read(str(output), as_version=4)
