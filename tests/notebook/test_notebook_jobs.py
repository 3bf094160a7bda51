"""Notebooks as processing steps, on memory:// and ActiveMQ."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.brokers import eventually
from tests.conftest import ROOT
from tests.service.helpers import Collector
from zocalo_nb.config import Settings
from zocalo_nb.dispatch import RecipeMessage, StepContext, submit
from zocalo_nb.notebook.wrapper import NotebookWrapper, notebook_service
from zocalo_nb.recipe import Recipe
from zocalo_nb.service import Service, ServiceRunner
from zocalo_nb.transport import MemoryBroker, Transport, connect
from zocalo_nb.wrapper import run_job


def write(folder: Path, name: str, body: str, parameters: str | None = "x = 1") -> None:
    cells = []
    if parameters is not None:
        cell = new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    cells.append(new_code_cell(body))
    nbformat.write(new_notebook(cells=cells), str(folder / name))


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "jobs"
    folder.mkdir()
    shutil.copy(ROOT / "notebooks" / "jobs" / "radial_profile.ipynb", folder)
    write(folder, "failing.ipynb", "raise ValueError('no rings found')")
    write(folder, "noparams.ipynb", "print('hi')", parameters=None)
    write(folder, "dies.ipynb", "import os\nos._exit(1)")
    write(folder, "slow.ipynb", "import time\ntime.sleep(60)")
    (tmp_path / "outside.ipynb").write_text((folder / "failing.ipynb").read_text())
    return folder


def three_steps(notebook: str = "radial_profile.ipynb", **parameters: Any) -> Recipe:
    return Recipe.from_dict(
        {
            "1": {"queue": "nb.prepare", "output": [2]},
            "2": {
                "queue": "notebook.runner",
                "parameters": {"notebook": notebook, "image": "{image}", "bins": 50, **parameters},
                "output": {"success": 3, "failure": 4, "profile": 5},
            },
            "3": {"queue": "nb.success"},
            "4": {"queue": "nb.failure"},
            "5": {"queue": "nb.profile"},
            "start": [[1, {"threshold": 2}]],
        }
    )


def peaks(threshold: float, bins: int = 50) -> int:
    """What radial_profile.ipynb reports for a threshold (the notebook's own formula)."""
    import math

    profile = [1000 * math.exp(-(((i * 10.0 - 300) / 80) ** 2)) + 50 for i in range(bins)]
    return sum(p > threshold * 50 for p in profile)


def prepare(ctx: StepContext, payload: Any) -> None:
    ctx.send({**payload, "threshold": payload["threshold"] + 2})  # payload for the notebook


def run_pipeline(
    transport: Transport, runner: ServiceRunner, recipes: list[Recipe], wait: Any
) -> tuple[Collector, Collector, Collector]:
    collectors = tuple(Collector(transport, q) for q in ("nb.success", "nb.failure", "nb.profile"))
    with runner:
        for recipe in recipes:
            submit(recipe, {"image": "/data/lyso_0001.cbf"}, transport=transport)
        wait(collectors)
    return collectors  # type: ignore[return-value]


def services(notebooks: Path, tmp_path: Path) -> list[Service]:
    return [
        Service("prepare", prepare, queues=("nb.prepare",)),
        notebook_service(directories=[notebooks], output_dir=tmp_path / "runs", kernels=2),
    ]


def test_a_notebook_step_gets_recipe_parameters_and_payload_and_its_values_flow_on(
    notebooks: Path, tmp_path: Path
) -> None:
    broker = MemoryBroker()
    runner = ServiceRunner(services(notebooks, tmp_path), broker=broker)
    ok, failed, profile = run_pipeline(
        broker.connect(),
        runner,
        [three_steps()],
        lambda c: eventually(lambda: len(c[0].messages) == 1, timeout=60),
    )
    payload = ok.messages[0].body["payload"]
    assert payload["image"] == "/data/lyso_0001.cbf"  # from the recipe's parameters
    assert payload["ring_radius_px"] == 300.0
    assert peaks(4) != peaks(3) != peaks(2)
    assert payload["peaks_above_threshold"] == peaks(4)  # threshold 4 came from the step before
    saved = nbformat.read(payload["notebook"], as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in saved.cells)
    assert len(profile.messages) == 1 and len(profile.messages[0].body["payload"]["profile"]) == 5
    assert failed.messages == []
    broker.close()


def test_failures_are_clear_and_the_runner_keeps_working(notebooks: Path, tmp_path: Path) -> None:
    broker = MemoryBroker()
    runner = ServiceRunner(services(notebooks, tmp_path), broker=broker)
    bad = [
        three_steps("failing.ipynb"),
        three_steps("missing.ipynb"),
        three_steps("noparams.ipynb"),
        three_steps(bins="many"),
        three_steps("../outside.ipynb"),
        three_steps("dies.ipynb"),
        three_steps("slow.ipynb", timeout=3),
    ]
    ok, failed, _ = run_pipeline(
        broker.connect(),
        runner,
        [*bad, three_steps()],
        lambda c: eventually(
            lambda: len(c[1].messages) == 7 and len(c[0].messages) == 1, timeout=120
        ),
    )
    reasons = sorted(m.body["payload"] for m in failed.messages)
    expected = [
        "cell 2 of failing.ipynb failed: ValueError: no rings found",
        "notebook 'missing.ipynb' not found in",
        "noparams.ipynb has no cell tagged 'parameters'",
        "parameter 'bins' of radial_profile.ipynb is int (default 100), not str 'many'",
        "notebook path '../outside.ipynb' escapes the notebook folder",
        "the kernel died",
        "the notebook ran longer than 3 s and was stopped",
    ]
    for start in expected:
        assert any(r.startswith(start) for r in reasons), (start, "\n".join(reasons))
    failing = next(r for r in reasons if r.startswith("cell 2"))
    saved = nbformat.read(failing.split("executed notebook: ")[1].rstrip(")"), as_version=4)
    assert saved.cells[2].metadata["zocalo_nb"] == {"marker": True}
    assert saved.cells[3].metadata["zocalo_nb"] == {"failed": True}
    assert ok.messages[0].body["payload"]["ring_radius_px"] == 300.0  # still working
    broker.close()


def test_one_off_runs_use_papermill_with_the_same_results(notebooks: Path, tmp_path: Path) -> None:
    recipe = three_steps().apply_parameters({"image": "/data/a.cbf"})
    ctx = StepContext(RecipeMessage(recipe, 2, {"threshold": 4}, (1,), {"ID": "one-off"}))
    sent: list[tuple[str, Any]] = []
    outcome = run_job(
        NotebookWrapper([notebooks], tmp_path / "runs"), ctx, emit=lambda c, p: sent.append((c, p))
    )
    assert outcome.success, outcome.error
    assert outcome.result["peaks_above_threshold"] == peaks(4)
    assert Path(outcome.result["notebook"]).exists()


@pytest.mark.activemq
def test_the_notebook_pipeline_on_activemq(
    activemq_url: str, notebooks: Path, tmp_path: Path
) -> None:
    settings = Settings.build(activemq_url, prefix=f"n{uuid.uuid4().hex[:8]}")
    with connect(settings) as transport:
        runner = ServiceRunner(services(notebooks, tmp_path), settings)
        ok, failed, _ = run_pipeline(
            transport,
            runner,
            [three_steps(), three_steps("failing.ipynb")],
            lambda c: eventually(
                lambda: len(c[0].messages) == 1 and len(c[1].messages) == 1, timeout=60
            ),
        )
    assert ok.messages[0].body["payload"]["peaks_above_threshold"] == peaks(4)
    assert failed.messages[0].body["payload"].startswith("cell 2 of failing.ipynb failed")


def test_a_step_parameter_holding_an_object_reaches_the_notebook(
    notebooks: Path, tmp_path: Path
) -> None:
    """Recipes hold step parameters frozen: a nested object (a cluster step's ``cluster``,
    say) once broke writing the executed notebook (``cannot pickle 'mappingproxy'``)."""
    recipe = three_steps(options={"mode": "fast", "levels": [1, 2]}).apply_parameters(
        {"image": "/data/a.cbf"}
    )
    ctx = StepContext(RecipeMessage(recipe, 2, {"threshold": 4}, (1,), {"ID": "nested"}))
    outcome = run_job(NotebookWrapper([notebooks], tmp_path / "runs"), ctx, emit=lambda c, p: None)
    assert outcome.success, outcome.error
    saved = nbformat.read(outcome.result["notebook"], as_version=4)
    assert saved.metadata["papermill"]["parameters"]["options"] == {
        "mode": "fast",
        "levels": [1, 2],
    }
