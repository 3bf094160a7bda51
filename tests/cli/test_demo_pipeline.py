"""The README's first command: the whole demo, on memory:// and on ActiveMQ."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from zocalo_nb.cli import main


def run_demo(tmp_path: Path, *extra: str) -> None:
    args = ["demo", "--recipes", str(ROOT / "recipes"), "-o", str(tmp_path)]
    assert main([*args, "--notebooks", str(ROOT / "notebooks" / "jobs"), *extra]) == 0


def check_outputs(folder: Path, out: str) -> None:
    assert "finished; 4 succeeded, 1 dead-lettered, 2 skipped" in out
    assert "threshold '{threshold}' is not a number" in out  # the dead-letter table
    assert "rerun of step 4" in out and "finished; 5 not in this rerun, 2 succeeded" in out
    for name in ("run-graph.svg", "rerun-graph.svg", "run-events.csv", "rerun-summary.csv",
                 "dead-letters.csv", "history.sqlite"):  # fmt: skip
        assert (folder / name).exists(), name
    with (folder / "rerun-summary.csv").open() as handle:
        states = {row["step"]: row["state"] for row in csv.DictReader(handle)}
    assert states["4"] == states["5"] == "succeeded" and states["1"] == "not in this rerun"
    (notebook,) = folder.glob("notebooks/*/step3-radial_profile.ipynb")
    cells = json.loads(notebook.read_text())["cells"]
    assert any(c.get("outputs") for c in cells if c["cell_type"] == "code")
    assert f"all written to {folder.resolve()}" in out


def test_the_demo_runs_the_pipeline_on_the_embedded_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_demo(tmp_path)
    check_outputs(tmp_path / "pipeline", capsys.readouterr().out)


@pytest.mark.activemq
def test_the_demo_runs_the_same_on_activemq(
    activemq_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_demo(tmp_path, "--broker", activemq_url)
    out = capsys.readouterr().out
    assert "stomp://zocalo:***@127.0.0.1" in out
    check_outputs(tmp_path / "pipeline", out)


def test_the_demo_runs_in_an_empty_folder_from_what_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After ``pip install``, ``zocalo-nb demo`` in an empty folder: the recipes and the job
    notebook come with the package (before, it failed outside the repository root); run
    twice, it names this run's executed notebook (before, the alphabetically last one)."""
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    first = capsys.readouterr().out
    check_outputs(tmp_path / "out" / "demo" / "pipeline", first)
    assert main(["demo"]) == 0
    second = capsys.readouterr().out
    run_id = second.split("submitted demo-pipeline as run ")[1].split()[0]
    shown = second.split("executed notebook: ")[1].split()[0]
    assert f"/notebooks/{run_id}/" in shown


def test_the_wheel_carries_the_example_recipes_and_notebook(tmp_path: Path) -> None:
    import subprocess
    import sys
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("zocalo_nb-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"zocalo_nb/examples/recipes/{p.name}" for p in (ROOT / "recipes").glob("*.json")}
    assert expected and expected <= names
    assert "zocalo_nb/examples/notebooks/radial_profile.ipynb" in names


def test_the_demo_recipes_have_no_lint_notes_but_being_templates() -> None:
    from zocalo_nb.recipe import Recipe
    from zocalo_nb.recipe.lint import TEMPLATE_NOTE

    for name in ("demo-pipeline.json", "demo-pipeline-cluster.json"):
        notes = Recipe.load(ROOT / "recipes" / name).lint()
        assert [n.message.split(":")[0] for n in notes] == [TEMPLATE_NOTE], (name, notes)
