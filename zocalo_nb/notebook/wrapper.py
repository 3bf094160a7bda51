"""Notebooks as processing steps: the ``notebook`` wrapper and the ``runner`` service.

Step parameters: ``notebook`` (a path inside the configured notebook folders), ``timeout``
(seconds, default 600), and everything else, then the payload's values, injected into the
cell tagged ``parameters`` as papermill does. Values the notebook records with
``zocalo_nb.emit(name, value, channel=...)`` are forwarded: those on ``success`` in the
success payload (with the saved notebook's path), others on their own channel. The executed
notebook is saved under the output folder and announced on the result channels. A failing
cell sends ``failure`` naming the cell, its error name and value, and the saved notebook
marks it.

The runner service executes on a pool of pre-started kernels (one fresh kernel per job);
one-off runs (``zocalo-nb wrap --wrap notebook``) start a kernel of their own. Both run the
notebook prepared by :func:`.prepare.load` (see :class:`.execute.Executor`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from zocalo_nb.config import notebook_directories, notebook_output
from zocalo_nb.errors import MissingExtra
from zocalo_nb.recipe import thaw

try:
    import nbformat
except ImportError as error:  # an optional part: say which pip install brings it
    raise MissingExtra("notebook", error.name) from error

from zocalo_nb.dispatch import StepContext
from zocalo_nb.dispatch.envelope import run_file_name
from zocalo_nb.notebook.execute import Executor, OneOffExecutor, PooledExecutor
from zocalo_nb.notebook.pool import KernelPool
from zocalo_nb.notebook.prepare import (
    bound_outputs,
    emitted,
    failed_cell,
    load,
    mark_failure,
    resolve,
)
from zocalo_nb.service import Service
from zocalo_nb.wrapper.lifecycle import Job, JobFailed, run_job

DEFAULT_TIMEOUT = 600.0


class NotebookJobError(JobFailed):
    """A cell of a notebook job failed: which cell, its error, and the saved notebook."""

    def __init__(self, cell: int, ename: str, evalue: str, path: Path, notebook: str) -> None:
        super().__init__(
            f"cell {cell} of {notebook} failed: {ename}: {evalue} (executed notebook: {path})",
            hint="open the saved notebook; the failing cell is marked",
        )
        self.cell, self.ename, self.evalue, self.path = cell, ename, evalue, path


class NotebookWrapper:
    """Runs the notebook named in the step's parameters (see module docstring)."""

    name = "notebook"

    def __init__(
        self,
        directories: Sequence[str | os.PathLike[str]] | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        *,
        pool: KernelPool | None = None,
        kernel_name: str = "python3",
        executor: Executor | None = None,
    ) -> None:
        # defaults from ZOCALO_NB_NOTEBOOKS / ZOCALO_NB_NOTEBOOK_OUTPUT: how a job started by
        # 'zocalo-nb wrap --wrap notebook' (on a cluster node, say) finds its notebooks
        self.directories = [Path(d) for d in (directories or notebook_directories())]
        self.output_dir = Path(output_dir or notebook_output())
        self.pool = pool
        self.kernel_name = kernel_name
        #: How prepared notebooks run: on the pool's kernels, else on one of their own.
        self.executor: Executor = executor or (
            PooledExecutor(pool) if pool is not None else OneOffExecutor(kernel_name)
        )

    def run(self, job: Job) -> dict[str, Any]:
        params = thaw(job.parameters)  # plain values: they are written into the notebook
        name = str(params.pop("notebook", ""))
        timeout = float(params.pop("timeout", DEFAULT_TIMEOUT))
        payload = job.payload if isinstance(job.payload, Mapping) else {}
        values = {**params, **payload}
        source = resolve(name, self.directories)
        target = (
            self.output_dir
            / run_file_name(job.ctx.run_id or "run")
            / f"step{job.ctx.step_id}-{source.name}"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        nb = load(source, values, self.kernel_name)
        self.executor.execute(nb, cwd=source.parent, timeout=timeout)
        bound_outputs(nb)
        failure = failed_cell(nb)
        if failure is not None:
            mark_failure(nb, *failure)
        # as nbformat.write, without validating again what was read validated (its outputs
        # are nbclient's, validated as they were made): measured, a tenth of a job's time
        target.write_text(nbformat.v4.writes(nb) + "\n", encoding="utf-8")
        job.result_file(str(target))
        if failure is not None:
            index, ename, evalue = failure
            raise NotebookJobError(index, ename, evalue, target, source.name)
        found = emitted(nb)
        for channel, record in found.items():
            if channel != "success":
                job.emit(channel, record)
        return {"notebook": str(target), **found.get("success", {})}


def notebook_service(
    *,
    queues: tuple[str, ...] = ("notebook.runner",),
    directories: Sequence[str | os.PathLike[str]] = ("notebooks/jobs",),
    output_dir: str | os.PathLike[str] = "notebook-runs",
    kernels: int = 2,
    kernel_name: str = "python3",
) -> Service:
    """A Service running notebook jobs on a kernel pool (closed when the runner stops)."""
    pool = KernelPool(kernels, kernel_name)  # started when the runner starts the service
    wrapper = NotebookWrapper(directories, output_dir, pool=pool, kernel_name=kernel_name)

    def handle(ctx: StepContext, payload: Any) -> None:
        run_job(wrapper, ctx)

    return Service(
        "runner",
        handle,
        queues=queues,
        batch=1,
        max_attempts=1,
        open=pool.start,
        close=pool.close,
        description="runs notebooks as processing steps",
    )
