"""The end-to-end demo (``zocalo-nb demo``): a realistic pipeline on the embedded broker.

A run is submitted by name through the dispatcher: spot finding (a Python service), a
command-line job, a notebook job, then indexing, which fails because the run was submitted
without its ``threshold`` parameter. The demo shows the progress, the run summary and the
dead-letter table, reruns only the failed step with the parameter fixed, and writes the
graphs (SVG), the run's DataFrames (CSV), the history (SQLite) and the executed notebook to
the output folder it names. ``--broker stomp://...`` runs the same against ActiveMQ.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zocalo_nb import dlq
from zocalo_nb.cluster import cluster_service, make_scheduler
from zocalo_nb.config import Settings
from zocalo_nb.dispatch import StepContext
from zocalo_nb.errors import InvalidArgument, MissingExtra
from zocalo_nb.monitor import History, Run, Tracker, submit
from zocalo_nb.notebook.wrapper import notebook_service
from zocalo_nb.service import Service, ServiceRunner
from zocalo_nb.service.dispatcher import Dispatcher
from zocalo_nb.states import StepState
from zocalo_nb.transport import MemoryBroker, Transport, connect
from zocalo_nb.wrapper import wrapper_service

RECIPE = "demo-pipeline"
#: The example recipes and job notebook, installed with the package (so that ``zocalo-nb
#: demo`` works in any folder after ``pip install``; the repository links them as
#: ``recipes/`` and ``notebooks/jobs/``).
EXAMPLES = Path(__file__).resolve().parent / "examples"
EXAMPLE_RECIPES = EXAMPLES / "recipes"
EXAMPLE_NOTEBOOKS = EXAMPLES / "notebooks"
JOB_COLUMNS = ["jobid", "scheduler", "step", "job_state", "exit_code", "node"]
DEAD_COLUMNS = ["run", "step", "service", "error", "attempts"]  # the error names its type


def spotfinding(ctx: StepContext, payload: Any) -> None:
    image = str(ctx.parameters["image"])
    ctx.send({"image": image, "spots": 100 + len(image)})


def indexing(ctx: StepContext, payload: Any) -> None:
    threshold = ctx.parameters.get("threshold")
    try:
        value = float(threshold)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"threshold {threshold!r} is not a number") from None
    ctx.send({"indexed": True, "threshold": value, "ring_radius_px": payload.get("ring_radius_px")})


def report_failure(ctx: StepContext, payload: Any) -> None:
    """Where the job steps' ``failure`` channel leads: say it (a site would mail someone)."""
    print(f"a job of run {ctx.run_id} failed: {str(payload)[:300]}")


def services(
    recipes: Path, notebooks: Path, output: Path, results: list[Any], cluster: str | None = None
) -> list[Service]:
    def store(ctx: StepContext, payload: Any) -> None:
        results.append(payload)

    extra = [cluster_service(make_scheduler(cluster), interval=0.3)] if cluster else []
    return [
        *extra,
        Dispatcher(recipes).service(),
        Service("spotfinding", spotfinding, queues=("demo.spotfinding",)),
        wrapper_service("command", ("demo.jobs",)),
        notebook_service(
            queues=("demo.notebooks",),
            directories=(notebooks,),
            output_dir=output / "notebooks",
            kernels=1,
        ),
        Service("indexing", indexing, queues=("demo.indexing",), max_attempts=2, backoff=0.2),
        Service("results", store, queues=("demo.results",)),
        Service("failures", report_failure, queues=("demo.failures",)),
    ]


def run(
    output: Path,
    *,
    recipes: Path = EXAMPLE_RECIPES,
    notebooks: Path = EXAMPLE_NOTEBOOKS,
    broker: str | None = None,
    cluster: str | None = None,
    say: Callable[[str], None] = print,
) -> bool:
    """Run the demo; returns True when the rerun completed the pipeline. With ``cluster``
    (a scheduler name: slurm, local, ...) its command job runs as a cluster job, which
    reports over ``broker`` (a real one: a job cannot reach the in-process broker)."""
    if cluster and broker is None:
        raise InvalidArgument(
            "cluster jobs report over the broker, and memory:// lives inside this process",
            hint="give --broker stomp://... (./dev demo --cluster slurm starts ActiveMQ and "
            "Slurm for you)",
        )
    recipe_name = f"{RECIPE}-cluster" if cluster else RECIPE
    output = output.resolve()  # cluster jobs run elsewhere: absolute working directories
    output.mkdir(parents=True, exist_ok=True)
    memory = MemoryBroker(redelivery_delay=0.2) if broker is None else None
    settings = (
        Settings(prefix="test", source="demo")
        if broker is None
        else Settings.build(broker, prefix=f"test-demo-{uuid.uuid4().hex[:6]}")
    )
    say(f"broker: {settings.redacted_url()}   output: {output.resolve()}")
    transport = connect(settings, broker=memory)
    for old in ("history.sqlite", "notebooks", "jobs"):  # this run's only, not every run's
        stale = output / old
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink(missing_ok=True)
    history = History(str(output / "history.sqlite"))
    tracker = Tracker(history)
    results: list[Any] = []
    workers = services(recipes, notebooks, output, results, cluster)
    say("starting services: dispatcher, spotfinding, command jobs, notebook runner, ...")
    with (
        ServiceRunner([tracker.service()], settings, broker=memory),
        ServiceRunner(workers, settings, broker=memory, workers=2),
    ):
        parameters = {
            "image": "/dls/i04/data/2026/cm12345-1/lysozyme_0001.cbf",
            "ispyb_dcid": 1234,
            "python": sys.executable,
            "workdir": str(output / "jobs"),
        }
        run = submit(recipe_name, parameters, transport=transport)
        say(f"\nsubmitted {recipe_name} as run {run.id} (through the dispatcher)")
        if cluster:
            say(f"step 2 runs as a cluster job on {cluster}")
        run.wait(120)
        ok = _report(run, transport, output, "run", say)
        if cluster:
            jobs = run.jobs()
            say("\ncluster jobs of the run:")
            say(jobs[JOB_COLUMNS].to_string(index=False) if not jobs.empty else "  (none seen)")
        dead = dlq.frame(transport)
        say("\ndead letters:")
        say(dead[DEAD_COLUMNS].to_string(index=False, na_rep="") if not dead.empty else "  (none)")
        dead.drop(columns=["headers", "body"]).to_csv(output / "dead-letters.csv", index=False)
        say("\nfixing the cause: rerunning only step 4 with threshold=3 ...")
        rerun = run.rerun(4, parameters={"threshold": 3})
        rerun.wait(60)
        ok = _report(rerun, transport, output, "rerun", say)
        done = rerun.state().get(5) == StepState.SUCCEEDED
    try:
        from zocalo_nb.monitor.plots import throughput

        throughput(history.events(), every="1s", title="steps finished, from the history").savefig(
            output / "throughput.png", dpi=110
        )
    except MissingExtra:
        pass  # said with the timeline
    tracker_note = (
        f"{len(history.events())} events in {history.redacted_url}\n"
        f"  look at them: zocalo-nb runs --history {history.redacted_url}"
    )
    notebook = _executed_notebook(output)
    say(f"\nresults stored: {results[-1] if results else 'none'}")
    say(f"history: {tracker_note}")
    if notebook:
        say(f"executed notebook: {notebook}")
    transport.close()
    if memory is not None:
        memory.close()
    say(f"\nall written to {output.resolve()}")
    return ok and done


def _report(run: Run, transport: Transport, output: Path, name: str, say: Any) -> bool:
    summary = run.summary()
    say(f"\n{run!r}")
    columns = ["step", "queue", "state", "attempts", "seconds", "error"]
    shown = summary[columns].assign(error=summary["error"].fillna(""))
    say(shown.to_string(index=False, float_format="{:.3f}".format))
    explanation = run.explain()
    if explanation:
        say(str(explanation))
    summary.to_csv(output / f"{name}-summary.csv", index=False)
    run.events().drop(columns=["payload"]).to_csv(output / f"{name}-events.csv", index=False)
    suffix = ".svg" if shutil.which("dot") else ".dot"
    path = run.graph().render(output / f"{name}-graph{suffix}")
    say(f"graph: {path}")
    try:
        figure = run.timeline()
    except MissingExtra as err:
        say(f"(no timeline picture: {err.hint})")
    else:
        figure.savefig(output / f"{name}-timeline.png", dpi=110)
        say(f"timeline: {output / f'{name}-timeline.png'}")
    return run.finished


def _executed_notebook(output: Path) -> Path | None:
    found = sorted((output / "notebooks").rglob("*.ipynb"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None  # this run's (an earlier demo may have left others)
