"""Command-line jobs: arguments, quoting, files, failures, timeouts that kill the group."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from tests.brokers import eventually
from zocalo_nb.dispatch import RecipeMessage, StepContext
from zocalo_nb.recipe import Recipe
from zocalo_nb.wrapper import CommandWrapper, run_job


def job(parameters: dict[str, Any], payload: Any = None) -> tuple[list[tuple[str, Any]], Any]:
    recipe = Recipe.from_dict(
        {"1": {"queue": "jobs", "parameters": parameters}, "start": [[1, {}]]}
    )
    ctx = StepContext(RecipeMessage(recipe, 1, payload or {}, (), {"ID": "run-7"}))
    emitted: list[tuple[str, Any]] = []
    outcome = run_job(CommandWrapper(), ctx, emit=lambda c, p: emitted.append((c, p)))
    return emitted, outcome


def test_runs_an_argument_list_with_payload_values_files_and_results(tmp_path: Path) -> None:
    script = "import os,sys; open('out.txt','w').write(sys.argv[1] + os.environ['BEAM']); print('spots: 42')"
    emitted, outcome = job(
        {
            "command": [sys.executable, "-c", script, "{image}"],
            "workingdir": str(tmp_path / "w"),
            "environment": {"BEAM": "-i03"},
            "results": ["*.txt"],
        },
        {"image": "lysozyme_0001.cbf"},
    )
    assert outcome.success, outcome.error
    result = outcome.result
    assert (tmp_path / "w" / "out.txt").read_text() == "lysozyme_0001.cbf-i03"
    assert Path(result["stdout"]).read_text() == "spots: 42\n" and result["exit_code"] == 0
    assert dict(emitted)["result-all-files"] == {"files": [str(tmp_path / "w" / "out.txt")]}
    updates = [p for c, p in emitted if c == "updates"]
    assert updates[0]["state"] == "running" and updates[0]["pid"] > 0


def test_a_failing_command_reports_exit_code_and_stderr_tail(tmp_path: Path) -> None:
    script = "import sys; sys.stderr.write('x' * 5000 + 'DIALS could not index'); sys.exit(3)"
    emitted, outcome = job({"command": [sys.executable, "-c", script], "workingdir": str(tmp_path)})
    assert not outcome.success
    assert outcome.error.startswith("command exited with code 3")
    assert outcome.error.endswith("DIALS could not index") and len(outcome.error) < 2200
    assert dict(emitted)["failure"] == outcome.error


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = (
        "import subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(pids)!r}, 'w').write(f'{{child.pid}}'); time.sleep(60)"
    )
    started = time.monotonic()
    _, outcome = job(
        {"command": [sys.executable, "-c", script], "timeout": 1.5, "workingdir": str(tmp_path)}
    )
    assert time.monotonic() - started < 15
    assert not outcome.success and outcome.error.startswith("timed out after 1.5 s")
    grandchild = int(pids.read_text())

    def gone() -> bool:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{grandchild}/stat").read_text().split(") ")[1].startswith("Z")

    assert eventually(gone, timeout=5)


def test_no_shell_unless_asked_and_then_values_are_quoted(tmp_path: Path) -> None:
    evil = f"x; touch {tmp_path / 'pwned'}"
    _, outcome = job({"command": ["echo", "{name}"], "workingdir": str(tmp_path)}, {"name": evil})
    assert outcome.success and not (tmp_path / "pwned").exists()
    assert Path(outcome.result["stdout"]).read_text().strip() == evil
    _, outcome = job(
        {"command": "echo {name} | tr a-z A-Z", "shell": True, "workingdir": str(tmp_path)},
        {"name": evil},
    )
    assert outcome.success and not (tmp_path / "pwned").exists()
    assert Path(outcome.result["stdout"]).read_text().strip() == evil.upper()


def test_bad_parameters_fail_clearly(tmp_path: Path) -> None:
    _, outcome = job({"workingdir": str(tmp_path)})
    assert "must be a list of arguments" in outcome.error
    _, outcome = job({"command": ["no-such-program-zz"], "workingdir": str(tmp_path)})
    assert outcome.error.startswith("cannot start 'no-such-program-zz'")
    _, outcome = job({"command": ["true"], "timeout": "soon", "workingdir": str(tmp_path)})
    assert "must be a number of seconds" in outcome.error
