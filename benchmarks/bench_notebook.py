"""Benchmark: a small parameterised notebook as a processing step, papermill vs our runner.

- papermill: ``papermill.execute_notebook`` per job (a kernel started and stopped each time),
  one job after another;
- zocalo_nb: the ``runner`` service on memory:// with its pool of fresh kernels (forked from a
  template process, zocalo_nb/notebook/zygote.py), timed end to end from sending the recipe
  message to receiving the forwarded result (the job's ``success`` message):
  - per job, with kernels ready (a pause between jobs lets the pool refill);
  - back to back, --back-to-back jobs sent one after the other (each as soon as the previous
    result arrived): jobs per second, against papermill's own jobs per second in this run.

Targets (issue 19): per job at least 20x papermill; back to back at least 5x papermill's
jobs/s. Exits 1 when a target is missed.

Run: python benchmarks/bench_notebook.py [--jobs N] [--back-to-back M]
"""

from __future__ import annotations

import argparse
import datetime
import os
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
            "output": {"success": 2, "profile": 3},
        },
        "2": {"queue": "results"},
        "3": {"queue": "profiles"},
        "start": [[1, {}]],
    }
)
PER_JOB_TARGET, BACK_TO_BACK_TARGET = 20.0, 5.0


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
    """Job times (ms) and jobs per second through the runner service."""
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
                time.sleep(0.3)  # the pool refills (a forked kernel is ready in ~50 ms)
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
    parser.add_argument("--jobs", type=int, default=20, help="jobs timed one by one")
    parser.add_argument("--back-to-back", type=int, default=100, help="jobs sent back to back")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-nb-"))
    papermill_jobs(1, out)  # warm-up: imports
    started = time.perf_counter()
    paper = papermill_jobs(args.jobs, out)
    paper_rate = args.jobs / (time.perf_counter() - started)
    warm, _ = pool_jobs(args.jobs, out, warm=True)
    _, sustained = pool_jobs(args.back_to_back, out, warm=False)
    pm, ours = statistics.median(paper), statistics.median(warm)
    per_job, back_to_back = pm / ours, sustained / paper_rate
    print(
        f"small parameterised notebook ({NOTEBOOK.name}, 4 code cells), "
        f"{datetime.date.today()}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
        f"cores"
    )
    print(f"  papermill.execute_notebook      {pm:7.0f} ms per job (median of {args.jobs}), "
          f"{paper_rate:.2f} jobs/s one after another")  # fmt: skip
    print(
        f"  zocalo_nb runner, kernels ready {ours:7.0f} ms per job (median of {args.jobs}), end "
        f"to end (recipe message -> forwarded result)   ratio {per_job:.1f}x  "
        f"(target >= {PER_JOB_TARGET:g}x)"
    )
    print(
        f"  zocalo_nb runner, back to back  {sustained:7.1f} jobs/s over {args.back_to_back} "
        f"jobs   ratio {back_to_back:.1f}x papermill's jobs/s  (target >= "
        f"{BACK_TO_BACK_TARGET:g}x)"
    )
    missed = per_job < PER_JOB_TARGET or back_to_back < BACK_TO_BACK_TARGET
    if missed:
        print("  TARGET MISSED")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
