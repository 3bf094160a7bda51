"""zocalo_nb: Zocalo recipes, services and runs for scientists who work in Jupyter.

Example::

    import zocalo_nb as z
    recipe = z.Recipe.load("recipes/spotfinding.json").validate()
    recipe            # shows the graph in a notebook
"""

from __future__ import annotations

from zocalo_nb._version import __version__
from zocalo_nb.errors import (
    RecipeError,
    RecipeParseError,
    RecipeValidationError,
    ZocaloNbError,
)
from zocalo_nb.notebook.emit import emit
from zocalo_nb.recipe import Recipe, RecipeBuilder, diff
from zocalo_nb.states import StepState

#: Loaded on first use (they bring pandas): ``z.submit``, ``z.Run``, ``z.history``, ``z.Tap``.
_LAZY = {
    "submit": "zocalo_nb.monitor",
    "history": "zocalo_nb.monitor",
    "Tap": "zocalo_nb.monitor",
    "History": "zocalo_nb.monitor",
    "connect": "zocalo_nb.transport",
    "MemoryBroker": "zocalo_nb.transport",
    "sandbox": "zocalo_nb.sandbox",
    "Sandbox": "zocalo_nb.sandbox",
    # what a notebook needs to write and run a service, and the run it watches
    "Run": "zocalo_nb.monitor",
    "Service": "zocalo_nb.service",
    "ServiceRunner": "zocalo_nb.service",
    "StepContext": "zocalo_nb.dispatch",
    "dlq": "zocalo_nb.dlq",
}
#: Names in _LAZY that are subpackages themselves (``z.dlq.frame(...)``).
_MODULES = frozenset({"dlq"})


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'zocalo_nb' has no attribute {name!r}")
    import importlib

    loaded = importlib.import_module(module)
    return loaded if name in _MODULES else getattr(loaded, name)


__all__ = [
    "History",
    "MemoryBroker",
    "Recipe",
    "RecipeBuilder",
    "RecipeError",
    "RecipeParseError",
    "RecipeValidationError",
    "Run",
    "Service",
    "ServiceRunner",
    "StepContext",
    "StepState",
    "Tap",
    "ZocaloNbError",
    "__version__",
    "connect",
    "diff",
    "dlq",
    "emit",
    "history",
    "sandbox",
    "submit",
]
