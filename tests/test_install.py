"""What a new user meets on installing: no deprecation noise from our metadata, and the
files our tools write are ignored by git."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_licence_is_an_spdx_string_so_setuptools_prints_no_deprecation_boxes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "BSD-3-Clause"  # not the deprecated {text = ...}
    assert "setuptools>=77" in project["build-system"]["requires"]  # PEP 639 support


def test_what_jupyter_and_the_notebook_runner_write_is_ignored_by_git() -> None:
    ignored = (ROOT / ".gitignore").read_text().split()
    assert {"notebook-runs/", ".ipynb_checkpoints/", "out/", ".zocalo-nb/"} <= set(ignored)
