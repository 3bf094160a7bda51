"""Submitting runs from a notebook or the CLI.

``submit(recipe)`` starts a recipe directly (validated, parameters applied, a run id in
``environment.ID``); ``submit("name")`` or ``submit(["a", "b"])`` asks the dispatcher service
to do it, in upstream's ``processing_recipe`` format, with the run id chosen here (as
``parameters.guid``) so the handle knows it at once. The start messages go out in one
transaction: all or none.

Example::

    run = submit(Recipe.load("recipes/xia2-processing.json"), {"ispyb_dcid": 1234},
                 transport=transport)
    run.id
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zocalo_nb.dispatch.context import deliver, start_messages, submitted_outgoing
from zocalo_nb.dispatch.envelope import is_safe_run_id
from zocalo_nb.errors import InvalidArgument
from zocalo_nb.recipe import Recipe
from zocalo_nb.transport import Transport
from zocalo_nb.wire.headers import GO_HOST, GO_USER

DISPATCHER_QUEUE = "processing_recipe"
RecipeLike = Recipe | Mapping[str, Any] | str | os.PathLike[str] | Sequence[str]


@dataclass(frozen=True)
class Submission:
    """What submit() sent: the run id, the recipe when known here, how it was started. The
    Run you watch (``zocalo_nb.submit``) wraps it."""

    id: str
    recipe: Recipe | None
    via_dispatcher: bool
    recipes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        what = ", ".join(self.recipes) if self.recipes else f"{len(self.recipe or ())} steps"
        return f"<Submission {self.id} ({what}{', via dispatcher' if self.via_dispatcher else ''})>"


def submit(
    recipe_or_names: RecipeLike,
    parameters: Mapping[str, Any] | None = None,
    *,
    transport: Transport,
    run_id: str | None = None,
    custom_recipe: Mapping[str, Any] | None = None,
) -> Submission:
    """Start a run (see module docstring); returns its handle.

    ``custom_recipe`` goes to the dispatcher with the named recipes (upstream's ``-f``).
    """
    params = dict(parameters or {})
    names = _names(recipe_or_names)
    if names is None and custom_recipe is not None and not recipe_or_names:
        names = ()  # only a custom recipe: still the dispatcher's job
    if names is not None:
        run_id = _checked(str(params.get("guid") or run_id or uuid.uuid4()))
        params["guid"] = run_id
        request: dict[str, Any] = {"recipes": list(names), "parameters": params}
        if custom_recipe is not None:
            request["custom_recipe"] = dict(custom_recipe)
        transport.send(
            DISPATCHER_QUEUE,
            request,
            headers={GO_USER: getpass.getuser(), GO_HOST: socket.getfqdn()},
        )
        return Submission(run_id, None, True, tuple(names))
    recipe = load_recipe(recipe_or_names)
    if params:
        recipe = recipe.apply_parameters(params)
    run_id, messages = start_messages(
        recipe, run_id=_checked(run_id) if run_id is not None else None
    )
    event = submitted_outgoing(run_id, recipe, messages, params, "submit")
    with transport.transaction(confirm=True) as tx:  # returns once the run is stored
        for out in [*messages, event]:
            deliver(transport, out, tx)
    return Submission(run_id, recipe, False)


def load_recipe(value: Recipe | Mapping[str, Any] | str | os.PathLike[str] | Any) -> Recipe:
    """A Recipe from a Recipe, a dict, or a path to a JSON file."""
    if isinstance(value, Recipe):
        return value
    if isinstance(value, Mapping):
        return Recipe.from_dict(value)
    if isinstance(value, (str, os.PathLike)):
        return Recipe.load(value)
    raise InvalidArgument(
        f"cannot submit a {type(value).__name__}",
        name="recipe",
        value=type(value).__name__,
        hint="pass a Recipe, a recipe dict, a path to a .json file, or recipe names",
    )


def _names(value: Any) -> tuple[str, ...] | None:
    """Recipe names for the dispatcher, or None when ``value`` is a recipe itself."""
    if isinstance(value, str):
        looks_like_file = value.endswith(".json") or os.sep in value or Path(value).is_file()
        return None if looks_like_file else (value,)
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _checked(run_id: str) -> str:
    if not is_safe_run_id(run_id):
        raise InvalidArgument(
            f"run id {run_id[:100]!r} is not usable",
            name="run_id",
            value=run_id,
            hint="run ids are uuid-like: letters, digits, '-', '_', '.' (leave it out for a "
            "new uuid)",
        )
    return run_id
