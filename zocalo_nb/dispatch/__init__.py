"""Moving along recipes: the envelope, StepContext, and submitting runs."""

from __future__ import annotations

from zocalo_nb.dispatch.context import MessageContext, Outgoing, StepContext, start_messages
from zocalo_nb.dispatch.envelope import (
    RECIPE_HEADER,
    NotARecipeMessage,
    RecipeMessage,
    is_recipe_message,
)
from zocalo_nb.dispatch.submit import Submission, load_recipe, submit

__all__ = [
    "RECIPE_HEADER",
    "MessageContext",
    "NotARecipeMessage",
    "Outgoing",
    "RecipeMessage",
    "StepContext",
    "Submission",
    "is_recipe_message",
    "load_recipe",
    "start_messages",
    "submit",
]
