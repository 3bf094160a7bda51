"""Every Python block of the README runs, in order, in one namespace, on memory:// (a new
user pastes them one after another): the README's own code must not end in a dead letter
it did not mean, or use a name it never defined."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 6


def test_every_python_block_of_the_readme_runs_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipes").symlink_to(ROOT / "recipes")
    namespace: dict[str, Any] = {}
    for number, block in enumerate(BLOCKS, 1):
        try:
            exec(compile(block, f"README.md python block {number}", "exec"), namespace)
        except Exception as err:
            raise AssertionError(f"README python block {number} failed: {err!r}\n{block}") from err
    from zocalo_nb.states import StepState

    # what the blocks say happens, happened: the first run dead-lettered step 1 (no
    # threshold), the rerun with the threshold succeeded and reached the topic step
    assert namespace["run"].state()[1] == StepState.DEAD_LETTERED
    assert namespace["fixed"].state()[1] == StepState.SUCCEEDED
    assert namespace["fixed"].state()[2] == StepState.SUCCEEDED
    assert "KeyError" in set(namespace["dead"]["error_type"].astype(str))
