"""Benchmark: per-job time of a small parameterised notebook, papermill vs our runner's pool.

- papermill: ``papermill.execute_notebook`` per job (a kernel started and stopped each time);
- zocalo_nb: the ``runner`` service on memory:// with a pool of pre-started kernels, timed end
  to end from sending the recipe message to receiving the forwarded result (the job's
  ``success`` message), with the pool refilled between jobs (the latency a job sees when
  kernels are ready), and, for honesty, back to back (where kernel start-up is the limit).

Run: python benchmarks/bench_notebook.py [--jobs N]
Target (issue 5): at least 10x faster than papermill per job. JUPYTER.md measured papermill
about 670 ms per job and a pre-started kernel about 27 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from zocalo_nb.dispatch import submit  # noqa: E402
from zocalo_nb.notebook.wrapper import notebook_service  # noqa: E402
from zocalo_nb.recipe import Recipe  # noqa: E402
from zocalo_nb.service import ServiceRunner  # noqa: E402
from zocalo_nb.transport import MemoryBroker  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "jobs" / "radial_profile.ipynb"
PARAMETERS = {"image": "/data/lyso_0001.cbf", "bins": 50, "threshold": 4}
RECIPE = Recipe.from_dict(
    {
        "1": {
            "queue": "notebook.runner",
            "parameters": {"notebook": NOTEBOOK.name, **PARAMETERS},
            "output": {"success": 2},
        },
        "2": {"queue": "results"},
        "start": [[1, {}]],
    }
)


def papermill_jobs(count: int, out: Path) -> list[float]:
    import papermill

    times = []
    for n in range(count):
        started = time.perf_counter()
        papermill.execute_notebook(
            str(NOTEBOOK),
            str(out / f"pm-{n}.ipynb"),
            parameters=PARAMETERS,
            progress_bar=False,
            kernel_name="python3",
        )
        times.append((time.perf_counter() - started) * 1000)
    return times


def pool_jobs(count: int, out: Path, *, warm: bool) -> tuple[list[float], float]:
    broker = MemoryBroker()
    client = broker.connect()
    arrived = threading.Event()
    client.subscribe("results", lambda m: arrived.set(), ack="auto")
    service = notebook_service(directories=[NOTEBOOK.parent], output_dir=out, kernels=2)
    times: list[float] = []
    with ServiceRunner([service], broker=broker):
        time.sleep(3)  # the pool fills
        submit(RECIPE, transport=client)  # warm-up: first imports in this process
        arrived.wait(60)
        overall = time.perf_counter()
        for _ in range(count):
            if warm:
                time.sleep(1.5)  # let the pool refill: the latency a job sees with kernels ready
            arrived.clear()
            started = time.perf_counter()
            submit(RECIPE, transport=client)
            if not arrived.wait(60):
                raise RuntimeError("a notebook job did not come back")
            times.append((time.perf_counter() - started) * 1000)
        elapsed = time.perf_counter() - overall
    broker.close()
    return times, count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-nb-"))
    papermill_jobs(1, out)  # warm-up: imports
    paper = papermill_jobs(args.jobs, out)
    warm, _ = pool_jobs(args.jobs, out, warm=True)
    _, sustained = pool_jobs(args.jobs, out, warm=False)
    pm, ours = statistics.median(paper), statistics.median(warm)
    print(f"small parameterised notebook ({NOTEBOOK.name}), median of {args.jobs} jobs")
    print(f"  papermill.execute_notebook         {pm:7.0f} ms per job")
    print(
        f"  zocalo_nb runner, kernel ready     {ours:7.0f} ms per job, end to end "
        f"(recipe message -> forwarded result)   ratio {pm / ours:.1f}x  (target >= 10x)"
    )
    print(
        f"  zocalo_nb runner, back to back     {sustained:7.1f} jobs/s "
        f"(papermill: {1000 / pm:.1f} jobs/s; kernel start-up is the limit here)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
