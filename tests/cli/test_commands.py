"""The zocalo-nb command: validate, lint, graph and demo, with their exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES, ROOT
from zocalo_nb.cli import main

BAD = {"1": {"queue": "a", "output": [9]}, "start": []}


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(BAD))
    return path


def test_validate_passes_good_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", *map(str, RECIPES)]) == 0
    assert capsys.readouterr().out.count("ok ") == len(RECIPES)


def test_validate_reports_each_failing_file_and_exits_non_zero(
    bad_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main(["validate", str(RECIPES[0]), str(bad_file), str(broken)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "bad.json: invalid recipe: 3 problems" in out
    assert "start is empty" in out and "links to step 9, which is missing" in out
    assert "broken.json: not valid JSON" in out and "2 of 3 recipe file(s) invalid" in out


def test_lint_applies_parameters_and_strict_fails_on_warnings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    xia2 = str(ROOT / "recipes" / "xia2-processing.json")
    assert main(["lint", xia2]) == 0
    assert "template parameters to supply" in capsys.readouterr().out
    assert main(["lint", "--strict", xia2, "-s", "ispyb_dcid=1"]) == 1
    out = capsys.readouterr().out
    assert "{ispyb_dcid}" not in out and "{ispyb_pdb}" in out


def test_lint_fails_on_invalid_recipes(bad_file: Path) -> None:
    assert main(["lint", str(bad_file)]) == 1


def test_graph_writes_svg_with_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "g.svg"
    spots = str(ROOT / "recipes" / "per-image-spotfinding.json")
    assert main(["graph", spots, "-o", str(out), "-s", "ispyb_dcid=1234"]) == 0
    assert "1234" in out.read_text() and "wrote" in capsys.readouterr().out


def test_bad_parameter_syntax_is_an_error_with_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["graph", str(RECIPES[0]), "-o", str(tmp_path / "g.svg"), "-s", "novalue"]) == 1
    assert "hint: write e.g. -s ispyb_dcid=1234" in capsys.readouterr().err


def test_demo_validates_and_renders_every_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["demo", "--recipes", str(ROOT / "recipes"), "-o", str(tmp_path), "--recipes-only"]
    assert main(args) == 0
    assert sorted(p.stem for p in tmp_path.glob("*.svg")) == sorted(p.stem for p in RECIPES)
    assert f"{len(RECIPES)} of {len(RECIPES)} recipes valid" in capsys.readouterr().out


def test_demo_without_recipes_explains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--recipes", str(tmp_path)]) == 1
    assert "hint: run from the repository root" in capsys.readouterr().err


def test_console_script_runs_as_a_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "zocalo_nb.cli", "validate", str(RECIPES[0])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "ok" in done.stdout
