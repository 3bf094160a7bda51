"""The dispatcher service: upstream's ``processing_recipe`` requests become running recipes.

A request is ``{"recipes": [names], "parameters": {...}, "custom_recipe": {...}}`` (as
upstream's ``zocalo.go`` sends it). As upstream's dispatcher does, in this order:

1. the run id is ``parameters.guid`` if present, else a new uuid4, and ``parameters["guid"]``
   is set to it (so a recipe can use ``{guid}``);
2. the *ready-for-processing gates* (entry-point group
   ``zocalo.services.dispatcher.ready_for_processing``, ``gate(message, parameters) -> bool``)
   are asked; while one says no the request is sent back to ``processing_recipe`` with a 2 s
   delay until ``parameters.dispatcher_expiration`` (now + ``dispatcher_timeout``, default
   120 s), then to ``parameters.dispatcher_error_queue`` if given, else to the DLQ;
3. the site's *filters* (entry-point group ``zocalo.services.dispatcher.filters``,
   ``f(message, parameters) -> (message, parameters)``, ``message["recipe"]`` an empty
   :class:`Recipe`) run in order, on copies; then the custom recipe is merged, then the named
   recipes in request order, then the parameters are applied.

The run starts in the transaction of the request. A bad request (no recipes, an unknown name,
an invalid recipe, parameters that are not an object, a failing filter) goes to the DLQ with
the reason; the service keeps running. Each run gets a logbook entry (one JSON file) when a
logbook directory is configured.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
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
#: Upstream's plug-in groups: site filters and ready-for-processing gates.
FILTERS = "zocalo.services.dispatcher.filters"
GATES = "zocalo.services.dispatcher.ready_for_processing"
#: Seconds between asking the gates again, and how long by default (upstream's figures).
GATE_RETRY_DELAY = 2
GATE_TIMEOUT = 120

Filter = Callable[[dict[str, Any], dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]
Gate = Callable[[dict[str, Any], dict[str, Any]], bool]


def plugins(group: str) -> dict[str, Any]:
    """The entry points of ``group``, loaded, by name (in the order Python finds them)."""
    return {point.name: point.load() for point in entry_points(group=group)}


class Dispatcher:
    """The handler behind the dispatcher service (see module docstring)."""

    def __init__(
        self,
        recipe_dir: str | os.PathLike[str],
        logbook: str | os.PathLike[str] | None = None,
        *,
        filters: Mapping[str, Filter] | None = None,
        gates: Mapping[str, Gate] | None = None,
    ):
        """``filters`` and ``gates`` default to the installed plug-ins (module docstring)."""
        self.recipe_dir = Path(recipe_dir)
        self.logbook = Path(logbook) if logbook else None
        self.filters: dict[str, Filter] = dict(plugins(FILTERS) if filters is None else filters)
        self.gates: dict[str, Gate] = dict(plugins(GATES) if gates is None else gates)

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

    def recipe(
        self,
        names: list[str],
        custom: Any,
        parameters: Mapping[str, Any],
        start: Recipe | None = None,
    ) -> Recipe:
        """The merged, validated, parameterised recipe for a request (``start`` merged with
        the custom recipe, then the named ones in order, as upstream); Reject when impossible."""
        merged = Recipe() if start is None else start
        if custom:
            merged = self._merge(merged, lambda: Recipe.from_dict(custom), "custom_recipe")
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
        parameters = request.get("parameters") or {}
        if not isinstance(parameters, Mapping):
            raise Reject("'parameters' must be an object", hint='e.g. "parameters": {"dcid": 1}')
        run_id = str(parameters.get("guid") or uuid.uuid4())
        if not is_safe_run_id(run_id):
            raise Reject(
                f"guid {run_id[:100]!r} is not a run id",
                hint="a guid is a uuid (letters, digits, '-', '_', '.'), or leave it out",
            )
        parameters = {**parameters, "guid": run_id}
        message = {**request, "parameters": parameters}
        if not self._ready(ctx, message, parameters):
            return
        message, parameters = self._filter(message, parameters)
        names = message.get("recipes") or []
        if not isinstance(names, list):
            raise Reject("'recipes' must be a list of names", hint='e.g. "recipes": ["xia2"]')
        start = message.get("recipe")
        recipe = self.recipe(
            names,
            message.get("custom_recipe"),
            parameters,
            start if isinstance(start, Recipe) else Recipe(start or {}),
        )
        environment = {"ID": run_id, "recipes": names, "timestamp": time.time()}
        for header in (GO_USER, GO_HOST):
            if header in ctx.headers:
                environment[header] = ctx.headers[header]
        ctx.start(recipe, environment=environment, parameters=parameters, source="dispatcher")
        if self.logbook is not None:
            self._log(run_id, request, recipe, environment)

    def _ready(
        self, ctx: MessageContext, message: dict[str, Any], parameters: dict[str, Any]
    ) -> bool:
        """Ask the gates; when one says no, send the request on (module docstring)."""
        for name, gate in self.gates.items():
            if gate(message, parameters):
                continue
            if "dispatcher_expiration" not in parameters:
                parameters["dispatcher_expiration"] = time.time() + _seconds(
                    parameters.get("dispatcher_timeout", GATE_TIMEOUT)
                )
            if _seconds(parameters["dispatcher_expiration"]) > time.time():
                ctx.send_message(QUEUE, message, delay=GATE_RETRY_DELAY)
            elif parameters.get("dispatcher_error_queue"):
                ctx.send_message(str(parameters["dispatcher_error_queue"]), message)
            else:
                raise Reject(
                    f"still not ready for processing ({name}) at dispatcher_expiration",
                    hint="set parameters.dispatcher_timeout (seconds) or "
                    "dispatcher_error_queue, or check what the gate waits for",
                )
            return False
        return True

    def _filter(
        self, message: dict[str, Any], parameters: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The site's filters, in order, on copies (``message["recipe"]`` starts empty)."""
        message, parameters = copy.deepcopy(message), copy.deepcopy(parameters)
        message["recipe"] = Recipe()
        for name, site_filter in self.filters.items():
            try:
                message, parameters = site_filter(message, parameters)
            except Exception as err:
                raise Reject(
                    f"dispatcher filter {name!r} failed: {type(err).__name__}: {err}",
                    hint=f"the filter comes from the entry point group {FILTERS}",
                ) from err
        return message, parameters

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


def _seconds(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise Reject(
            f"{value!r} is not a number of seconds", hint="e.g. dispatcher_timeout: 300"
        ) from err
