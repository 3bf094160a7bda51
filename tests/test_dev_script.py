"""./dev test stops at the first failing stage: nbval never runs after pytest failed."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def fake_venv(folder: Path, pytest_exit: int) -> Path:
    """A venv whose tools only log their calls (pytest exits with ``pytest_exit``)."""
    bin_ = folder / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "python").symlink_to(sys.executable)
    log = folder / "calls.log"
    for tool, code in (("ruff", 0), ("mypy", 0), ("zocalo-nb", 0), ("pytest", pytest_exit)):
        script = bin_ / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\nexit {code}\n')
        script.chmod(0o755)
    checksum = subprocess.run(
        ["sh", "-c", f"cat {ROOT / 'pyproject.toml'} | cksum | cut -d' ' -f1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (folder / f".installed-[test]-{checksum}").touch()  # "already installed"
    return log


def run_dev_test(tmp_path: Path, pytest_exit: int) -> tuple[int, list[str]]:
    log = fake_venv(tmp_path / "venv", pytest_exit)
    env = {**os.environ, "ZOCALO_NB_VENV": str(tmp_path / "venv"), "PATH": os.environ["PATH"]}
    done = subprocess.run(
        [str(ROOT / "dev"), "test"], env=env, capture_output=True, text=True, timeout=300
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return done.returncode, [c for c in calls if c.startswith("pytest")]


def test_a_failing_pytest_run_ends_the_test_command_before_nbval(tmp_path: Path) -> None:
    code, pytest_calls = run_dev_test(tmp_path, pytest_exit=1)
    assert code == 1
    assert len(pytest_calls) == 1 and "--nbval" not in pytest_calls[0]


def test_a_passing_pytest_run_goes_on_to_the_notebooks(tmp_path: Path) -> None:
    code, pytest_calls = run_dev_test(tmp_path, pytest_exit=0)
    assert code == 0
    assert len(pytest_calls) == 4  # the suite, tutorials on two brokers, job notebooks
    assert all("nbval" in call for call in pytest_calls[1:])


def test_pytest_collecting_nothing_is_a_failure(tmp_path: Path) -> None:
    code, pytest_calls = run_dev_test(tmp_path, pytest_exit=5)
    assert code != 0 and len(pytest_calls) == 1


def test_the_test_command_leaves_the_checkouts_broker_folders_alone(tmp_path: Path) -> None:
    # A run of ./dev test inside the suite once deleted the live RabbitMQ node's folder
    # (rm -rf of a path in the checkout): the suite's own node then failed mid-run.
    sentinel = ROOT / ".zocalo-nb" / "test-rabbitmq" / "sentinel"
    sentinel.parent.mkdir(parents=True, exist_ok=True)
    existed = sentinel.exists()
    sentinel.touch()
    try:
        code, _ = run_dev_test(tmp_path, pytest_exit=0)
        assert code == 0
        assert sentinel.exists()
    finally:
        if not existed:
            sentinel.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                sentinel.parent.rmdir()
