"""One executor seam for notebook jobs: the prepared notebook runs as prepared, on a pooled
kernel or on one of its own; failures carry their data; the pool starts with the service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from zocalo_nb.notebook.execute import OneOffExecutor, PooledExecutor
from zocalo_nb.notebook.pool import KernelPool
from zocalo_nb.notebook.prepare import declared_parameters, load
from zocalo_nb.notebook.wrapper import NotebookJobError, NotebookWrapper, notebook_service
from zocalo_nb.wrapper.lifecycle import Job


def notebook(folder: Path, body: str) -> Path:
    parameters = new_code_cell("threshold: float = 1.5\nlabel = 'x'")
    parameters.metadata["tags"] = ["parameters"]
    path = folder / "job.ipynb"
    nbformat.write(new_notebook(cells=[parameters, new_code_cell(body)]), str(path))
    return path


class Context:
    run_id, step_id = "run-1", 2

    def __init__(self, parameters: dict[str, Any]) -> None:
        self.parameters, self.payload = parameters, {}


def test_the_parameters_cell_is_read_without_papermills_private_api() -> None:
    assert declared_parameters("a = 1\nb: int = 2\nc, d = 1, 2\nprint(a)\ne: str\n") == [
        ("a", "", "1"),
        ("b", "int", "2"),
    ]
    assert declared_parameters("this is not python") == []


@pytest.mark.parametrize("where", ["pooled", "one-off"])
def test_both_executors_run_the_prepared_notebook_and_failures_carry_data(
    tmp_path: Path, where: str
) -> None:
    source = notebook(tmp_path, "assert threshold == 2.5 and label == 'y', 'prepared?'\n1 / 0")
    pool = KernelPool(1).start() if where == "pooled" else None
    executor = PooledExecutor(pool) if pool is not None else OneOffExecutor()
    wrapper = NotebookWrapper([tmp_path], tmp_path / "out", executor=executor)
    try:
        job = Job(Context({"notebook": source.name, "threshold": 2.5, "label": "y"}),  # type: ignore[arg-type]
                  lambda channel, payload: None, "notebook")  # fmt: skip
        with pytest.raises(NotebookJobError) as caught:
            wrapper.run(job)
    finally:
        if pool is not None:
            pool.close()
    error = caught.value
    assert (error.cell, error.ename) == (2, "ZeroDivisionError")  # after the injected cell
    assert error.path.exists() and error.path.parent.name == "run-1"
    saved = nbformat.read(str(error.path), as_version=4)
    assert any(c.metadata.get("zocalo_nb", {}).get("failed") for c in saved.cells)
    assert load(source, {"threshold": 2.5}).cells[1].source.count("threshold = 2.5") == 1


def test_the_kernel_pool_starts_when_the_service_runs_not_when_it_is_built(
    tmp_path: Path,
) -> None:
    from zocalo_nb.service import ServiceRunner
    from zocalo_nb.transport import MemoryBroker

    service = notebook_service(directories=[tmp_path], output_dir=tmp_path / "out", kernels=1)
    assert service.open is not None and service.close is not None
    pool = service.open.__self__  # type: ignore[attr-defined]
    assert not pool.started
    broker = MemoryBroker()
    with ServiceRunner([service], broker=broker):
        assert pool.started
    broker.close()
