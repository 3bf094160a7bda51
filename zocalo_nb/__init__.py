"""zocalo_nb: Zocalo recipes, services and runs for scientists who work in Jupyter.

Example::

    import zocalo_nb as z
    recipe = z.Recipe.load("recipes/spotfinding.json").validate()
    recipe            # shows the graph in a notebook
"""

from __future__ import annotations

from zocalo_nb.errors import (
    RecipeError,
    RecipeParseError,
    RecipeValidationError,
    ZocaloNbError,
)
from zocalo_nb.notebook.emit import emit
from zocalo_nb.recipe import Recipe, RecipeBuilder, diff
from zocalo_nb.states import StepState

__version__ = "0.1.0"

__all__ = [
    "Recipe",
    "RecipeBuilder",
    "RecipeError",
    "RecipeParseError",
    "RecipeValidationError",
    "StepState",
    "ZocaloNbError",
    "__version__",
    "diff",
    "emit",
]
