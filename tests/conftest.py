"""Shared fixtures: the repository layout and example recipes."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted((ROOT / "recipes").glob("*.json"))


@pytest.fixture
def linear() -> dict[str, object]:
    """A three-step linear recipe in its hand-written upstream form."""
    return {
        "1": {"queue": "first", "parameters": {"dcid": "{dcid}"}, "output": 2},
        "2": {"queue": "second", "output": [3]},
        "3": {"topic": "results", "custom-field": {"kept": True}},
        "start": [[1, {"file": "{file}"}]],
    }


pytest_plugins = ["tests.brokers", "tests.sites"]
