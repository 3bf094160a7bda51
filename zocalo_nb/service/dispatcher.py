"""The dispatcher service: upstream's ``processing_recipe`` requests become running recipes.

A request is ``{"recipes": [names], "parameters": {...}, "custom_recipe": {...}}`` (as
upstream's ``zocalo.go`` sends it). Named recipes are read from a recipe directory, merged
with the custom recipe, validated, filled with the parameters, given a run id
(``parameters.guid`` if present, else a new uuid4) and started, all in the transaction of the
request. A bad request (no recipes, an unknown name, an invalid recipe, parameters that are
not an object) goes to the DLQ with the reason; the service keeps running. Each run gets a
logbook entry (one JSON file) when a logbook directory is configured.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zocalo_nb.dispatch import MessageContext
from zocalo_nb.dispatch.envelope import is_safe_run_id
from zocalo_nb.errors import RecipeError
from zocalo_nb.recipe import Recipe
from zocalo_nb.service.service import Reject, Service
from zocalo_nb.wire.headers import GO_HOST, GO_USER

QUEUE = "processing_recipe"
_NAME = re.compile(r"[A-Za-z0-9_.+-]+")


class Dispatcher:
    """The handler behind the dispatcher service (see module docstring)."""

    def __init__(
        self, recipe_dir: str | os.PathLike[str], logbook: str | os.PathLike[str] | None = None
    ):
        self.recipe_dir = Path(recipe_dir)
        self.logbook = Path(logbook) if logbook else None

    def service(self) -> Service:
        """This dispatcher as a Service consuming ``processing_recipe``."""
        return Service(
            "dispatcher",
            self,
            queues=(QUEUE,),
            recipe=False,
            max_attempts=3,
            description="starts recipes requested on processing_recipe",
        )

    def recipe(self, names: list[str], custom: Any, parameters: Mapping[str, Any]) -> Recipe:
        """The merged, validated, parameterised recipe for a request; Reject when impossible."""
        merged = Recipe()
        for name in names:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise Reject(
                    f"recipe name {name!r} is not a plain name",
                    hint="names are file names in the recipe directory, without .json",
                )
            path = self.recipe_dir / f"{name}.json"
            if not path.is_file():
                known = sorted(p.stem for p in self.recipe_dir.glob("*.json"))
                raise Reject(
                    f"unknown recipe {name!r} (not in {self.recipe_dir})",
                    hint=f"known recipes: {', '.join(known) or 'none'}",
                )
            merged = self._merge(merged, lambda p=path: Recipe.load(p), name)
        if custom:
            merged = self._merge(merged, lambda: Recipe.from_dict(custom), "custom_recipe")
        if not len(merged):
            raise Reject("the request names no recipe", hint='send {"recipes": ["name"]}')
        return merged.apply_parameters(parameters)

    @staticmethod
    def _merge(merged: Recipe, load: Any, label: str) -> Recipe:
        try:
            result: Recipe = merged.merge(load().validate())
        except RecipeError as err:
            raise Reject(f"{label}: {err.message}", hint=err.hint) from err
        return result

    def __call__(self, ctx: MessageContext, request: Any) -> None:
        if not isinstance(request, Mapping):
            raise Reject(
                "the request is not a JSON object",
                hint='send {"recipes": [...], "parameters": {...}}',
            )
        names = request.get("recipes") or []
        parameters = request.get("parameters") or {}
        if not isinstance(names, list):
            raise Reject("'recipes' must be a list of names", hint='e.g. "recipes": ["xia2"]')
        if not isinstance(parameters, Mapping):
            raise Reject("'parameters' must be an object", hint='e.g. "parameters": {"dcid": 1}')
        recipe = self.recipe(names, request.get("custom_recipe"), parameters)
        run_id = str(parameters.get("guid") or uuid.uuid4())
        if not is_safe_run_id(run_id):
            raise Reject(
                f"guid {run_id[:100]!r} is not a run id",
                hint="a guid is a uuid (letters, digits, '-', '_', '.'), or leave it out",
            )
        environment = {"ID": run_id, "recipes": names, "timestamp": time.time()}
        for header in (GO_USER, GO_HOST):
            if header in ctx.headers:
                environment[header] = ctx.headers[header]
        ctx.start(recipe, environment=environment, parameters=parameters, source="dispatcher")
        if self.logbook is not None:
            self._log(run_id, request, recipe, environment)

    def _log(self, run_id: str, request: Any, recipe: Recipe, environment: Any) -> None:
        day = self.logbook / time.strftime("%Y-%m-%d")  # type: ignore[operator]
        day.mkdir(parents=True, exist_ok=True)
        entry = {
            "run": run_id,
            "environment": environment,
            "request": request,
            "recipe": recipe.to_dict(),
        }
        (day / f"{run_id}.json").write_text(json.dumps(entry, indent=2, default=str))
