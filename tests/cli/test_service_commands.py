"""zocalo-nb go / service / shutdown."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from zocalo_nb.cli import main


def test_go_dry_run_prints_the_expanded_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "go",
            "-r",
            "xia2-processing",
            "-s",
            "ispyb_dcid=42",
            "--dry-run",
            "--recipes",
            str(ROOT / "recipes"),
        ]
    )
    assert code == 0
    recipe = json.loads(capsys.readouterr().out)
    assert recipe["4"]["parameters"]["dcid"] == "42"


def test_go_with_a_file_and_a_name_merges_them(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "go",
            "-r",
            "fast-dp-delayed",
            "-f",
            str(ROOT / "recipes" / "per-image-spotfinding.json"),
            "--dry-run",
            "--recipes",
            str(ROOT / "recipes"),
        ]
    )
    assert code == 0
    assert len([k for k in json.loads(capsys.readouterr().out) if k.isdigit()]) == 10


def test_go_needs_something_and_a_real_broker(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["go"]) == 1
    assert "give -r NAME" in capsys.readouterr().err
    assert main(["go", "-r", "xia2-processing", "--broker", "memory://"]) == 1
    assert "needs a real broker" in capsys.readouterr().err
    assert main(["go", "-r", "nope", "--dry-run", "--recipes", str(ROOT / "recipes")]) == 1
    assert "known recipes: " in (err := capsys.readouterr().err) and "fast-dp-delayed" in err


def test_service_list_and_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["service", "--list"]) == 0
    assert "dispatcher" in capsys.readouterr().out
    assert main(["service", "dispatchr"]) == 1
    assert "did you mean 'dispatcher'" in capsys.readouterr().err


def test_go_warns_when_no_dispatcher_consumes(
    activemq_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import uuid

    from zocalo_nb.config import Settings
    from zocalo_nb.service import ServiceRunner
    from zocalo_nb.service.dispatcher import Dispatcher

    prefix = f"go{uuid.uuid4().hex[:6]}"
    go = ["go", "-r", "xia2-processing", "-s", "ispyb_dcid=1", "--broker", activemq_url,
          "--prefix", prefix, "--recipes", str(ROOT / "recipes")]  # fmt: skip
    assert main(go) == 0
    said = capsys.readouterr()
    assert "submitted run" in said.out and "nothing consumes 'processing_recipe'" in said.err
    settings = Settings.build(activemq_url, prefix=prefix)
    with ServiceRunner([Dispatcher(ROOT / "recipes").service()], settings):
        assert main(go) == 0
        assert "nothing consumes" not in capsys.readouterr().err


def test_a_forwarding_service_starts_without_loading_notebook_or_dataframe_libraries() -> None:
    # nbformat's jsonschema compiled a grammar on import: every service start cost 2-3 s of
    # CPU, the forwarding services of the benchmark included; the command line loaded pandas.
    code = (
        "import sys\n"
        "from zocalo_nb.service.registry import find_service\n"
        "import zocalo_nb.cli\n"
        "find_service('forward')\n"
        "print(sorted(m for m in ('nbformat', 'jsonschema', 'pandas') if m in sys.modules))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert found.stdout.strip() == "[]"
