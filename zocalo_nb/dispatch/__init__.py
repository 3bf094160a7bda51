"""Moving along recipes: the envelope, StepContext, and submitting runs."""

from __future__ import annotations

from zocalo_nb.dispatch.context import MessageContext, Outgoing, StepContext, start_messages
from zocalo_nb.dispatch.envelope import (
    RECIPE_HEADER,
    NotARecipeMessage,
    RecipeMessage,
    is_recipe_message,
)

__all__ = [
    "RECIPE_HEADER",
    "MessageContext",
    "NotARecipeMessage",
    "Outgoing",
    "RecipeMessage",
    "StepContext",
    "is_recipe_message",
    "start_messages",
]
