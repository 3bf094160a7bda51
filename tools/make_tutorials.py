"""Write the tutorial notebooks in notebooks/ and execute them, so their committed outputs are
what a reader gets (deterministic: no ids, times or addresses are printed; graph cells are
tagged for nbval to skip their SVG).

Run from the repository root: .venv/bin/python tools/make_tutorials.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
IGNORE = ["nbval-ignore-output"]

SETUP = """import logging
import zocalo_nb as z

logging.getLogger("zocalo_nb").addHandler(logging.NullHandler())  # events tell us instead
sb = z.sandbox()   # memory:// here; the broker in ZOCALO_NB_BROKER when it is set
t = sb.transport"""

TUTORIALS: dict[str, list[tuple[str, str, list[str]]]] = {
    "01-build-a-recipe": [
        ("markdown", """# 1. Build and visualise a recipe

A **recipe** is a JSON graph of numbered steps; each step names the queue of the service
that does it and where its results go next. Build one in Python, check it, and look at it.""", []),
        ("code", """import zocalo_nb as z

b = z.RecipeBuilder()
find = b.step("per_image_analysis", service="Spot finding", parameters={"image": "{image}"})
index = b.step("indexing", service="Indexing", parameters={"threshold": "{threshold}"})
store = b.step("results", service="Results")
mail = b.step("mailnotification", parameters={"subject": "indexing failed for {image}"})
find.then(index).then(store)
index.on_error(mail)
b.start(find, {"reason": "new image"})
recipe = b.build()     # validated: a broken graph raises, naming every problem
len(recipe), [step.queue for step in recipe.steps.values()]""", []),
        ("markdown", "The graph (SVG with graphviz installed, a table without):", []),
        ("code", "recipe", IGNORE),
        ("markdown", """`lint()` reads the recipe as a template and lists what it still needs;
`apply_parameters` fills the placeholders.""", []),
        ("code", """for note in recipe.lint():
    print(note.message)""", []),
        ("code", """ready = recipe.apply_parameters({"image": "x_0001.cbf", "threshold": 3})
ready.lint(), ready[2].parameters""", []),
        ("markdown", "Mistakes are reported with a hint, never a traceback from deep inside:", []),
        ("code", """try:
    z.Recipe.from_dict({"1": {"queue": "a", "output": [7]}, "start": [[1, {}]]}).validate()
except z.RecipeError as err:
    print(err)""", []),
        ("markdown", """The same recipe as upstream's JSON, and back (a round trip is exact):""", []),
        ("code", """text = ready.to_json()
z.Recipe.from_json(text) == ready""", []),
        ("markdown", """## With widgets

`RecipeEditor` edits steps, links and parameters, validates as you type, draws the graph
and can save, load and submit.""", []),
        ("code", """from zocalo_nb.widgets import RecipeEditor

editor = RecipeEditor(recipe)
editor""", IGNORE),
        ("code", """editor.queue.value = "per_image_analysis_gpu"
editor.apply.click()
editor.data["1"]["queue"]""", []),
    ],
    "02-submit-and-watch": [
        ("markdown", """# 2. Submit a run and watch it

Services are Python functions bound to queues; a runner hosts them in the background.
`z.submit` returns a run view: events, states, a coloured graph, a summary.""", []),
        ("code", SETUP, []),
        ("code", """from zocalo_nb.service import Service

def find_spots(ctx, payload):
    ctx.send({"spots": 42, "image": ctx.parameters["image"]})

def index(ctx, payload):
    ctx.send({"indexed": payload["spots"] > 10})

def store(ctx, payload):
    print("stored:", payload)

runner = sb.runner([
    Service("spotfinder", find_spots, queues=("per_image_analysis",)),
    Service("indexer", index, queues=("indexing",)),
    Service("results", store, queues=("results",)),
]).start()""", []),
        ("code", """b = z.RecipeBuilder()
a, i, r = b.step("per_image_analysis", parameters={"image": "{image}"}), b.step("indexing"), b.step("results")
a.then(i).then(r)
b.start(a, {})
run = z.submit(b.build(), {"image": "x_0001.cbf"}, transport=t)
states = run.wait(30, progress=False)
{step: state.value for step, state in states.items()}""", []),
        ("code", """run.summary()[["step", "queue", "state", "sent", "finished", "attempts", "service"]]""", []),
        ("code", """events = run.events()
events[["step", "state", "service"]]""", []),
        ("code", "run.graph()", IGNORE),
        ("markdown", """`RunMonitor` shows the same live (graph, progress, events) while the run goes on;
`run.live()` does it without widgets.""", []),
        ("code", """from zocalo_nb.widgets import RunMonitor

again = z.submit(b.build(), {"image": "x_0002.cbf"}, transport=t)
RunMonitor(again)""", IGNORE),
        ("code", """again.wait(30, progress=False)
again.finished""", []),
        ("markdown", """The recipe editor submits too: press **Submit** and the run appears below it,
followed until it finishes (the services above are still running). When you are done,
stop them with `runner.stop()`.""", []),
        ("code", """from zocalo_nb.widgets import RecipeEditor

editor = RecipeEditor(b.build(), transport=t)
editor.submit_parameters.value = '{"image": "x_0003.cbf"}'
editor""", IGNORE),
    ],
    "03-failed-jobs": [
        ("markdown", """# 3. Failed jobs: find them, fix the cause, rerun only the failed step

A step that keeps failing is retried, then **dead-lettered** with the error. The DLQ is a
DataFrame; the fix is a parameter; the rerun repeats only that step.""", []),
        ("code", SETUP, []),
        ("code", """from collections import Counter
from zocalo_nb.service import Service

spot_runs = Counter()

def find_spots(ctx, payload):
    spot_runs[ctx.run_id] += 1
    ctx.send({"image": payload["image"], "spots": 10 * payload["image"]})

def index(ctx, payload):
    if payload["image"] % 2 and "threshold" not in ctx.parameters:
        raise KeyError("threshold")
    ctx.send({"indexed": True})

runner = sb.runner([
    Service("spotfinder", find_spots, queues=("spots",)),
    Service("indexer", index, queues=("index",), max_attempts=2, backoff=0.1),
    Service("results", lambda ctx, payload: None, queues=("results",)),
]).start()""", []),
        ("code", """def recipe(image):
    b = z.RecipeBuilder()
    s, i, r = b.step("spots"), b.step("index"), b.step("results")
    s.then(i).then(r)
    b.start(s, {"image": image})
    return b.build()

runs = [z.submit(recipe(n), transport=t) for n in range(6)]
for run in runs:
    run.wait(30, progress=False)
[run.state()[2].value for run in runs]""", []),
        ("code", """from zocalo_nb import dlq

dead = dlq.frame(t)
dead.groupby(["service", "error_type"], observed=True).size()""", []),
        ("code", """dead[["step", "service", "error_type", "error", "attempts"]]""", []),
        ("code", """print(runs[1].explain())""", IGNORE),
        ("markdown", """`DeadLetterBrowser` shows the same as a table, groups it, and has reinject/purge
buttons that ask for a second click (here before the rerun below empties the DLQ):""", []),
        ("code", """from zocalo_nb.widgets import DeadLetterBrowser

DeadLetterBrowser(t)""", IGNORE),
        ("markdown", """Each attempt of a failed run as a bar (the `plots` extra): step 2 retried after a
short wait, then was dead-lettered.""", []),
        ("code", """runs[1].timeline()""", IGNORE),
        ("markdown", "Fix the cause (the missing parameter) and rerun step 2 of each failed run:", []),
        ("code", """failed = [r for r in runs if r.state()[2].value == "dead-lettered"]
reruns = [r.rerun(2, parameters={"threshold": 5}) for r in failed]""", IGNORE),
        ("code", """[sorted(s.value for s in r.wait(30, progress=False).values()) for r in reruns]""", []),
        ("code", """# step 1 ran once per run: it was not repeated
sorted(spot_runs.values()), len(dlq.frame(t))""", []),
        ("code", "runner.stop()", []),
    ],
    "04-notebook-as-a-step": [
        ("markdown", """# 4. A notebook as a processing step

`notebooks/jobs/radial_profile.ipynb` has a cell tagged `parameters`; a recipe step fills it
(step parameters, then the payload), and `zocalo_nb.emit` sends values on to the next step.
The runner keeps kernels started ahead of time, so a job costs milliseconds, not a second.""", []),
        ("code", SETUP, []),
        ("code", """from pathlib import Path
import tempfile
from zocalo_nb.notebook.wrapper import notebook_service
from zocalo_nb.service import Service

received = []
output = Path(tempfile.mkdtemp())
notebooks = notebook_service(queues=("notebook.runner",), directories=["jobs"],
                             output_dir=output, kernels=1)
runner = sb.runner([
    notebooks,
    Service("collect", lambda ctx, payload: received.append(payload), queues=("after",)),
]).start()
profiles = []   # what the notebook sends on its "profile" channel (a topic: anyone listens)
listening = t.subscribe_topic("transient.profiles", lambda m: profiles.append(m.body["payload"]))""", []),
        ("code", """recipe = z.Recipe.from_dict({
    "1": {"queue": "notebook.runner",
          "parameters": {"notebook": "radial_profile.ipynb", "bins": 100},
          "output": {"success": 2, "profile": 3}},
    "2": {"queue": "after"},
    "3": {"topic": "transient.profiles"},
    "start": [[1, {"image": "lysozyme_0042.cbf"}]],
})
run = z.submit(recipe, transport=t)
run.wait(60, progress=False)[2].value""", []),
        ("code", """values = dict(received[0])
values.pop("notebook")     # where the executed notebook was saved
values""", []),
        ("markdown", "The radial profile the notebook computed, as it arrived on the topic:", []),
        ("code", """import matplotlib.pyplot as plt

profile = profiles[0]["profile"]
fig, ax = plt.subplots(figsize=(6, 2.5))
radii = [100 * i for i in range(len(profile))]   # every 10th of the notebook's 10-px bins
ax.plot(radii, profile, marker="o")
ax.axvline(values["ring_radius_px"], color="red", linestyle="--", label="ring radius")
ax.set_xlabel("radius (px)"); ax.set_ylabel("intensity"); ax.legend()
len(profile)""", []),
        ("code", "runner.stop()", []),
    ],
    "05-operating-services": [
        ("markdown", """# 5. Operating services

Services report their status on `transient.status` (upstream's format, so upstream's
monitors see them too); a tap turns that, the queues and the lifecycle events into
DataFrames. From a shell: `zocalo-nb service NAME`, `zocalo-nb status`, `zocalo-nb shutdown`.""", []),
        ("code", SETUP, []),
        ("code", """from zocalo_nb.service import Service

runner = sb.runner([Service("store", lambda ctx, payload: None, queues=("store",))],
                   status_interval=0.5).start()
tap = z.Tap(t)
import time; time.sleep(1.2)
tap.services()[["service", "statustext", "alive"]]""", []),
        ("code", """for n in range(3):
    t.send("waiting", {"n": n})
time.sleep(0.2)
tap.queues(["waiting", "store"])[["queue", "depth", "consumers", "dlq_depth"]]""", []),
        ("code", """tap.browse("waiting")[["summary"]]   # browsing leaves them in the queue""", []),
        ("markdown", """**History**: the tracker service writes every event to SQLite (or PostgreSQL),
so runs can be looked up after a restart.""", []),
        ("code", """import tempfile
from zocalo_nb.monitor import History, Tracker

history = History(f"sqlite:///{tempfile.mkdtemp()}/history.sqlite")
tracker = sb.runner([Tracker(history).service()]).start()
b = z.RecipeBuilder(); e = b.step("store"); b.start(e, {"hello": "world"})
run = z.submit(b.build(), {"dcid": 1234}, transport=t)
run.wait(30, progress=False)
tracker.stop()
history.events(dcid=1234)[["step", "state", "service"]]""", []),
        ("markdown", "Steps finished per second and service, from the history (the `plots` extra):", []),
        ("code", """from zocalo_nb.monitor.plots import throughput

throughput(history.events(), every="1s")""", IGNORE),
        ("code", """from zocalo_nb.widgets import ServicesPanel

ServicesPanel(t, queues=["store", "waiting"])""", IGNORE),
        ("markdown", "Stopping: graceful (finishes what it holds), as upstream's shutdown command does.", []),
        ("code", """runner.stop()
time.sleep(0.3)
tap.services()[["service", "statustext", "alive"]]""", []),
    ],
}


def build(name: str, cells: list[tuple[str, str, list[str]]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for index, (kind, source, tags) in enumerate(cells):
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        cell = make(source)
        cell.id = f"{name[:2]}-{index:02d}"
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    return nb


def main() -> int:
    only = set(sys.argv[1:])
    for name, cells in TUTORIALS.items():
        if only and name not in only:
            continue
        nb = build(name, cells)
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        for cell in nb.cells:
            cell.metadata.pop("execution", None)
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, NOTEBOOKS / f"{name}.ipynb")
        print(f"wrote notebooks/{name}.ipynb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
