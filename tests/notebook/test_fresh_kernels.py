"""Kernels forked from a template: every job a fresh interpreter state, nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nbformat.v4 import new_code_cell, new_notebook

from tests.brokers import eventually
from zocalo_nb.notebook.execute import run_on_kernel
from zocalo_nb.notebook.pool import KernelPool
from zocalo_nb.notebook.zygote import ForkedKernelManager, alive, forkable

#: What a job sees of the interpreter it runs in, as one JSON line.
LOOK = """
import json as _json, os as _os, sys as _sys
print(_json.dumps({
    "names": sorted(n for n in globals() if not n.startswith("_") and n not in ("In", "Out", "exit", "quit", "get_ipython", "open")),
    "modules": sorted(_sys.modules),
    "patched": __import__("math").pi != 3.141592653589793,
    "environment": _os.environ.get("ZOCALO_NB_LEAK"),
    "attribute": hasattr(__import__("zocalo_nb"), "LEAK"),
    "pid": _os.getpid(),
}))
"""

SPOIL = """
import fractions, math, os, zocalo_nb
leak = 1
math.pi = 3
os.environ["ZOCALO_NB_LEAK"] = "1"
zocalo_nb.LEAK = True
"""


def run(pool: KernelPool, *cells: str) -> dict[str, Any]:
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    kernel = pool.take()
    try:
        assert isinstance(kernel.manager, ForkedKernelManager)
        run_on_kernel(nb, kernel, cwd=Path.cwd(), timeout=60)
    finally:
        pool.release(kernel)
    assert nb.metadata["language_info"]["name"] == "python"  # from the pool's kernel_info
    seen: dict[str, Any] = json.loads(nb.cells[0].outputs[0]["text"])
    return seen


def test_a_forked_kernel_is_not_asked_for_its_info_again() -> None:
    """The pool asked a forked kernel for its info when it became ready: a job uses that
    answer and saves nbclient's kernel_info round trip (a tenth of a small job's time)."""
    with KernelPool(1) as pool:
        kernel = pool.take()
        assert kernel.info is not None and "language_info" in kernel.info
        asked: list[str] = []
        real = kernel.client.kernel_info
        kernel.client.kernel_info = lambda: asked.append("kernel_info") or real()
        nb = new_notebook(cells=[new_code_cell("1")])
        try:
            run_on_kernel(nb, kernel, cwd=Path.cwd(), timeout=60)
        finally:
            pool.release(kernel)
    assert asked == []
    assert nb.metadata["language_info"] == kernel.info["language_info"]
    assert nb.cells[0].outputs[0]["data"]["text/plain"] == "1"


def test_the_warm_up_cell_leaves_no_trace_in_the_job() -> None:
    """The pool runs a cell on each forked kernel before a job gets it: the job's cells
    still count from 1, and its history and results hold its own cells only."""
    with KernelPool(1) as pool:
        kernel = pool.take()
        nb = new_notebook(cells=[new_code_cell("1"), new_code_cell("(len(In), In[1], Out, _)")])
        try:
            run_on_kernel(nb, kernel, cwd=Path.cwd(), timeout=60)
        finally:
            pool.release(kernel)
    assert [c.execution_count for c in nb.cells] == [1, 2]
    assert nb.cells[1].outputs[0]["data"]["text/plain"] == "(3, '1', {1: 1}, 1)"


def test_python_kernels_of_this_interpreter_are_forked_others_are_started() -> None:
    assert forkable("python3")
    assert not forkable("no-such-kernel")
    assert KernelPool(1).fork and not KernelPool(1, "no-such-kernel").fork


def test_nothing_a_job_defines_imports_or_patches_reaches_the_next_job() -> None:
    with KernelPool(2) as pool:
        first = run(pool, LOOK, SPOIL)
        second = run(pool, LOOK, SPOIL)
        third = run(pool, LOOK)
    assert first["names"] == [] and second["names"] == [] and third["names"] == []
    assert "fractions" not in first["modules"] + second["modules"] + third["modules"]
    assert first["modules"] == second["modules"] == third["modules"]
    assert not any(seen["patched"] or seen["environment"] or seen["attribute"]
                   for seen in (first, second, third))  # fmt: skip
    assert len({first["pid"], second["pid"], third["pid"]}) == 3


def test_a_killed_template_is_started_again_and_jobs_go_on() -> None:
    with KernelPool(1) as pool:
        run(pool, LOOK)
        assert pool._template is not None
        old = pool._template.pid
        os.kill(old, signal.SIGKILL)
        assert eventually(
            lambda: pool._template is not None and pool._template.process.poll() is not None
        )
        # the kernel that was ready died with its template (it never outlives it): the pool
        # takes the next, forked by a new template
        seen = run(pool, LOOK)
        assert seen["names"] == [] and pool.fork
        assert pool._template is not None and pool._template.pid != old


OWNER = """
import json, sys, time
from zocalo_nb.notebook.pool import KernelPool
pool = KernelPool(2).start()
kernels = [pool.take(), pool.take()]
print(json.dumps({"template": pool._template.pid, "kernels": [k.manager.pid for k in kernels]}),
      flush=True)
time.sleep(600)
"""


def test_when_the_service_dies_by_kill_9_its_template_and_kernels_go_with_it() -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    pids = json.loads(owner.stdout.readline())
    template, kernels = pids["template"], pids["kernels"]
    assert all(alive(pid, template) for pid in kernels)
    owner.kill()
    owner.wait()
    assert eventually(
        lambda: not any(Path(f"/proc/{pid}").exists() for pid in [template, *kernels])
    )


def test_kernels_die_with_their_template() -> None:
    with KernelPool(2) as pool:
        kernels = [pool.take(), pool.take()]
        assert pool._template is not None
        os.kill(pool._template.pid, signal.SIGKILL)
        assert eventually(lambda: not any(Path(f"/proc/{k.manager.pid}").exists() for k in kernels))
        for kernel in kernels:
            pool.discard(kernel)


def test_a_kernel_that_dies_is_reported_dead_and_reaped() -> None:
    with KernelPool(1) as pool:
        kernel = pool.take()
        assert kernel.manager.is_alive()
        os.kill(kernel.manager.pid, signal.SIGKILL)
        assert eventually(lambda: not kernel.manager.is_alive())
        # reaped, not left a zombie: the template's SIGCHLD handler runs when the template is
        # next scheduled, which on a loaded machine is not within a fixed 0.2 s
        assert eventually(lambda: not Path(f"/proc/{kernel.manager.pid}").exists())
        pool.discard(kernel)


def test_a_closed_pool_leaves_no_kernel_folders_behind() -> None:
    pool = KernelPool(2).start()
    used = pool.take()
    run_on_kernel(new_notebook(cells=[new_code_cell("1")]), used, cwd=Path.cwd(), timeout=60)
    pool.release(used)  # shut down on a thread of its own, perhaps after close()
    root = pool._root
    assert root is not None and Path(root).is_dir()
    pool.close()
    assert not Path(root).exists()


def test_a_replacement_waits_while_a_job_runs_and_another_kernel_is_ready() -> None:
    """Starting a kernel beside a running job slows the job: the replacement for a taken
    kernel starts when the job is done, or at once when the last ready kernel is taken."""
    with KernelPool(2) as pool:
        assert eventually(lambda: pool._ready.qsize() == 2)
        started: list[float] = []
        start_one = pool._start_one
        pool._start_one = lambda: started.append(time.monotonic()) or start_one()  # type: ignore[method-assign]
        first = pool.take()
        time.sleep(0.5)
        assert started == [] and pool._ready.qsize() == 1
        pool.release(first)
        assert eventually(lambda: pool._ready.qsize() == 2) and len(started) == 1
        # two jobs at once: the second takes the last ready kernel, so a replacement starts
        # at once; the next one waits again until the jobs are done
        a, b = pool.take(), pool.take()
        assert eventually(lambda: pool._ready.qsize() == 1) and len(started) == 2
        time.sleep(0.5)
        assert pool._ready.qsize() == 1 and len(started) == 2
        pool.discard(a)
        time.sleep(0.3)
        assert len(started) == 2  # b still runs
        pool.release(b)
        assert eventually(lambda: pool._ready.qsize() == 2) and len(started) == 3


def _in_nbclient() -> list[str]:
    """The helper threads that are inside nbclient (a job's run), with where they wait."""
    import threading
    import traceback

    frames = sys._current_frames()
    found = []
    for thread in threading.enumerate():
        if thread.name.startswith("zocalo-nb-nbclient") and thread.ident in frames:
            stack = traceback.extract_stack(frames[thread.ident])
            if any("nbclient" in frame.filename for frame in stack):
                found.append(f"{thread.name}: {stack[-1].name} ({stack[-1].filename})")
    return found


def test_a_stopped_job_leaves_no_helper_thread_waiting_on_its_kernel() -> None:
    """A job past its timeout, or whose kernel dies, ends its nbclient run before it fails:
    a helper thread left waiting on the dead kernel's channels waited forever (a blocking
    client's wait), and held the process at exit (found in CI: pytest did not exit)."""
    from zocalo_nb.wrapper.lifecycle import JobFailed

    cells = [("import time; time.sleep(60)", 1.0), ("import os; os.kill(os.getpid(), 9)", 60.0)]
    with KernelPool(1) as pool:
        for cell, timeout in cells:
            kernel = pool.take()
            try:
                nb = new_notebook(cells=[new_code_cell(cell)])
                try:
                    run_on_kernel(nb, kernel, cwd=Path.cwd(), timeout=timeout)
                except JobFailed:
                    pass
                else:
                    raise AssertionError("the job did not fail")
                assert _in_nbclient() == []
            finally:
                pool.release(kernel)
