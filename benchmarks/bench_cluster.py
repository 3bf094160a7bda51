"""Benchmark: cluster jobs through our cluster service vs raw ``sbatch`` + polling, in one run.

A private single-node Slurm (``zocalo_nb.servers.slurm``, 8 advertised CPUs) and a private
ActiveMQ are started; the cluster service runs in this process with the Slurm CLI scheduler.

- submit -> ``job_submitted``: from sending the recipe message to the ``job_submitted``
  message arriving (the service consumed it, ran ``sbatch`` and committed), median of N;
- submit -> result for a trivial job: to the ``success`` message, which the job itself sends
  (``zocalo-nb wrap --wrap command`` running ``true``), vs raw ``sbatch --wrap true`` polled
  with ``squeue`` every 50 ms until COMPLETED;
- 50 such jobs at once, end to end, ours vs raw sbatch + polling the same 50.

Ratios are ours / raw (1.0 = no overhead). Target: overhead <= 20 %, submit -> result
<= 1.2 s. Our figure includes starting a Python interpreter for ``zocalo-nb wrap`` in every
job (about 0.3-0.5 s of CPU here), which raw ``true`` does not pay: the figure says so.

Run: python benchmarks/bench_cluster.py [--jobs 50] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.brokers import free_port, private_activemq  # noqa: E402
from zocalo_nb.cluster import SlurmCli, cluster_service  # noqa: E402
from zocalo_nb.config import Settings  # noqa: E402
from zocalo_nb.dispatch import submit  # noqa: E402
from zocalo_nb.recipe import Recipe  # noqa: E402
from zocalo_nb.servers.slurm import Slurm  # noqa: E402
from zocalo_nb.service import ServiceRunner  # noqa: E402
from zocalo_nb.transport import Message, connect  # noqa: E402

WRAP = f"{sys.executable} -m zocalo_nb.cli wrap --wrap command --recipewrapper $RECIPEWRAP"


def recipe(workdir: Path) -> Recipe:
    return Recipe.from_dict(
        {
            "1": {"queue": "cluster.submission",
                  "parameters": {"cluster": {"commands": [WRAP], "workingdir": str(workdir)},
                                 "command": ["true"]},
                  "output": {"job_submitted": 2, "success": 3, "failure": 3}},
            "2": {"queue": "b.submitted"},
            "3": {"queue": "b.done"},
            "start": [[1, {}]],
        }
    )  # fmt: skip


class Arrivals:
    def __init__(self) -> None:
        self.times: dict[tuple[str, str], float] = {}
        self.changed = threading.Condition()

    def take(self, kind: str) -> object:
        def record(message: Message) -> None:
            with self.changed:
                self.times[(kind, message.body["environment"]["ID"])] = time.perf_counter()
                self.changed.notify_all()

        return record

    def wait(self, keys: list[tuple[str, str]], timeout: float = 300) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: all(k in self.times for k in keys), timeout):
                raise RuntimeError(f"{sum(k in self.times for k in keys)} of {len(keys)} arrived")


def raw_jobs(conf: Path, count: int, workdir: Path, command: str, env: dict[str, str]) -> float:
    """Seconds from the first sbatch of ``command`` to squeue saying all are COMPLETED
    (polled every 50 ms)."""
    env = {**os.environ, **env, "SLURM_CONF": str(conf)}
    started = time.perf_counter()
    ids = [
        subprocess.run(
            ["sbatch", "--parsable", "-J", "raw-bench", f"--chdir={workdir}",
             f"--output={workdir}/raw-%j.out", "--wrap", command.replace("{n}", str(n))],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()
        for n in range(count)
    ]  # fmt: skip
    while True:
        out = subprocess.run(
            ["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%T"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        if len(out) == count and all(s == "COMPLETED" for s in out):
            return time.perf_counter() - started
        time.sleep(0.05)


def wrapped_jobs(workdir: Path, count: int) -> str:
    """The same job as ours, submitted raw: ``zocalo-nb wrap`` on a recipe-wrapper file of
    its own (written here, as our service writes one), reporting over the broker."""
    template = json.dumps(
        {"environment": {"ID": "raw-{n}"}, "payload": {}, "recipe-path": [], "recipe-pointer": 1,
         "recipe": {"1": {"queue": "x", "parameters": {"command": ["true"]},
                          "output": {"success": 2}}, "2": {"queue": "b.raw"}, "start": [[1, {}]]}}
    )  # fmt: skip
    workdir.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        (workdir / f"raw-{n}.json").write_text(template.replace("{n}", str(n)))
    return WRAP.replace("$RECIPEWRAP", f"{workdir}/raw-{{n}}.json")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    base.chmod(0o755)
    cluster = Slurm(base / "slurm")
    broker = private_activemq(base / "activemq", stomp_port=free_port())
    cluster.start()
    broker.start()
    try:
        settings = Settings.build(broker.url, prefix=f"bc{uuid.uuid4().hex[:6]}")
        workdir = base / "jobs"
        arrivals = Arrivals()
        service = cluster_service(SlurmCli(cluster.conf), interval=0.5)
        with ServiceRunner([service], settings), connect(settings) as transport:
            transport.subscribe("b.submitted", arrivals.take("submitted"), ack="auto")
            transport.subscribe("b.done", arrivals.take("done"), ack="auto")
            submitted, results, raw_one, raw_same = [], [], [], []
            job_env = {"ZOCALO_NB_BROKER": settings.secret_url()}
            same = wrapped_jobs(base / "raw", args.jobs)
            for _ in range(args.repeats):
                started = time.perf_counter()
                run = submit(recipe(workdir), transport=transport).id
                arrivals.wait([("submitted", run), ("done", run)])
                submitted.append(arrivals.times[("submitted", run)] - started)
                results.append(arrivals.times[("done", run)] - started)
                raw_one.append(raw_jobs(cluster.conf, 1, workdir, "true", {}))
                raw_same.append(raw_jobs(cluster.conf, 1, workdir, same, job_env))
            started = time.perf_counter()
            runs = [submit(recipe(workdir), transport=transport).id for _ in range(args.jobs)]
            arrivals.wait([("done", r) for r in runs])
            ours_many = time.perf_counter() - started
            raw_many = raw_jobs(cluster.conf, args.jobs, workdir, "true", {})
            raw_many_same = raw_jobs(cluster.conf, args.jobs, workdir, same, job_env)
    finally:
        broker.stop()
        cluster.stop()
    load = os.getloadavg()[0]
    median = statistics.median
    print(
        f"cluster jobs on a private single-node Slurm 22.05 (8 advertised CPUs), ActiveMQ; "
        f"{args.repeats} single jobs, then {args.jobs} at once; load average {load:.1f} on "
        f"{os.cpu_count()} cores"
    )
    one, many = median(results), ours_many
    print(f"  submit -> job_submitted (median)              {median(submitted):6.2f} s")
    print(
        f"  submit -> success, one trivial job (median)    {one:6.2f} s   (target <= 1.2 s)\n"
        f"    raw sbatch of the same job + squeue polling  {median(raw_same):6.2f} s   "
        f"ratio {one / median(raw_same):.2f}  (target <= 1.2)\n"
        f"    raw sbatch --wrap true + squeue polling      {median(raw_one):6.2f} s   "
        f"ratio {one / median(raw_one):.2f}"
    )
    print(
        f"  {args.jobs} trivial jobs end to end                 {many:6.2f} s\n"
        f"    raw sbatch of the same jobs + polling        {raw_many_same:6.2f} s   "
        f"ratio {many / raw_many_same:.2f}  (target <= 1.2)\n"
        f"    raw sbatch --wrap true + polling             {raw_many:6.2f} s   "
        f"ratio {many / raw_many:.2f}"
    )
    print(
        "  the same job: 'zocalo-nb wrap --wrap command' running 'true' and reporting over the "
        "broker (a Python interpreter, ~0.2 s of CPU); 'true' alone shows what that costs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
