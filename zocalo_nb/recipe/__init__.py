"""Recipes as data: the model, validation, lint, parameters, merge, diff and a builder.

Standard library only (checked by tests/test_layers.py), so it can be used anywhere.
"""

from __future__ import annotations

from zocalo_nb.recipe._frozen import thaw
from zocalo_nb.recipe.builder import RecipeBuilder, StepRef
from zocalo_nb.recipe.diff import Change, RecipeDiff
from zocalo_nb.recipe.lint import WRAPPER_CHANNELS
from zocalo_nb.recipe.model import Recipe
from zocalo_nb.recipe.step import Step


def diff(a: Recipe, b: Recipe) -> RecipeDiff:
    """Structural difference between two recipes, not fooled by renumbering."""
    return a.diff(b)


__all__ = [
    "WRAPPER_CHANNELS",
    "Change",
    "Recipe",
    "RecipeBuilder",
    "RecipeDiff",
    "Step",
    "StepRef",
    "diff",
    "thaw",
]
