"""The upstream recipe message: header ``workflows-recipe`` and a five-key JSON body.

``environment`` (recipe-wide; ``ID`` is the run id), ``payload`` (for the target step),
``recipe`` (the whole recipe), ``recipe-path`` (steps already visited, oldest first),
``recipe-pointer`` (the target step).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zocalo_nb.errors import RecipeError, ZocaloNbError
from zocalo_nb.recipe import Recipe
from zocalo_nb.transport.message import SelfEncoding, dumps
from zocalo_nb.wire.headers import RECIPE

RECIPE_HEADER = RECIPE
#: Run ids we accept from requests and use in file names: uuid-like words (upstream's are
#: uuid4 strings), never a path.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def is_safe_run_id(value: object) -> bool:
    """True for a run id that is also a safe file name (letters, digits, ``_.-``, no ``..``)."""
    return isinstance(value, str) and bool(_RUN_ID.fullmatch(value)) and ".." not in value


def run_file_name(run_id: object) -> str:
    """A file or folder name for a run: its id when safe, else a digest of it (a message can
    carry any ``environment.ID``: it must never become a path such as ``../x``)."""
    if is_safe_run_id(run_id):
        return str(run_id)
    return "run-" + hashlib.sha256(repr(run_id).encode()).hexdigest()[:16]


_TRUE = (True, "True", "true", 1, "1")


class NotARecipeMessage(ZocaloNbError):
    """A message that cannot be read as a recipe message; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            reason,
            hint="recipe messages carry the header workflows-recipe: True and a body "
            "with environment, payload, recipe, recipe-path and recipe-pointer",
        )
        self.reason = reason


def is_recipe_message(headers: Mapping[str, Any]) -> bool:
    """True when the header marks a recipe message (True, "True", "true" or 1, as upstream)."""
    return headers.get(RECIPE_HEADER) in _TRUE


@dataclass(frozen=True)
class RecipeMessage:
    """A parsed recipe message: which step of which recipe, with what payload."""

    recipe: Recipe
    pointer: int
    payload: Any = None
    path: tuple[int, ...] = ()
    environment: Mapping[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str | None:
        """The run id (``environment.ID``)."""
        value = self.environment.get("ID")
        return str(value) if value is not None else None

    def to_body(self, *, to_send: bool = False) -> dict[str, Any]:
        """The JSON body upstream expects. ``to_send``: for a body encoded and sent as it is,
        the recipe is its read-only :meth:`Recipe.wire_form` (no copy) and the encoding
        reuses the recipe's JSON text (see :class:`SendBody`)."""
        if to_send:
            return SendBody(self)
        return {
            "environment": dict(self.environment),
            "payload": self.payload,
            "recipe": self.recipe.to_dict(),
            "recipe-path": list(self.path),
            "recipe-pointer": self.pointer,
        }

    @classmethod
    def from_body(
        cls, body: Any, headers: Mapping[str, Any] | None = None, *, text: str = ""
    ) -> RecipeMessage:
        """Parse a received body; raises NotARecipeMessage with the reason when it is not one.
        ``text``: the JSON text ``body`` was decoded from, when known (a received message's):
        a recipe read before is then found in it without encoding the decoded one again."""
        if headers is not None and not is_recipe_message(headers):
            raise NotARecipeMessage("the message has no workflows-recipe header")
        if type(body) is not dict and not isinstance(body, Mapping):  # dict: no ABC check
            raise NotARecipeMessage(f"the body is {type(body).__name__}, not a JSON object")
        missing = [k for k in ("recipe", "recipe-pointer") if k not in body]
        if missing:
            raise NotARecipeMessage(f"the body lacks {', '.join(missing)}")
        try:
            recipe = _recipe_of(body["recipe"], text)
        except RecipeError as err:
            raise NotARecipeMessage(f"the recipe cannot be read: {err.message}") from err
        pointer = body["recipe-pointer"]
        if isinstance(pointer, str) and pointer.isascii() and pointer.isdigit():
            pointer = int(pointer)
        if not isinstance(pointer, int) or isinstance(pointer, bool) or pointer not in recipe:
            raise NotARecipeMessage(f"recipe-pointer {pointer!r} is not a step of the recipe")
        path = body.get("recipe-path") or []
        environment = body.get("environment") or {}
        if not isinstance(path, list) or (
            type(environment) is not dict and not isinstance(environment, Mapping)
        ):
            raise NotARecipeMessage("recipe-path must be a list and environment an object")
        return cls(recipe, pointer, body.get("payload"), tuple(path), dict(environment))


_BODY_KEYS = ("environment", "payload", "recipe", "recipe-path", "recipe-pointer")


class SendBody(SelfEncoding):
    """A recipe message's body on its way out: a dict like :meth:`RecipeMessage.to_body`'s
    whose JSON text is made with its recipe's text (made once per recipe), not by encoding
    the whole recipe again for every message. The same text as ``json.dumps`` (tested)."""

    __slots__ = ("_recipe",)

    def __init__(self, message: RecipeMessage) -> None:
        recipe = message.recipe
        super().__init__(
            (
                ("environment", dict(message.environment)),
                ("payload", message.payload),
                ("recipe", recipe.wire_form()),
                ("recipe-path", list(message.path)),
                ("recipe-pointer", message.pointer),
            )
        )
        self._recipe = recipe

    def json_text(self) -> str:
        recipe = self._recipe
        if tuple(self) != _BODY_KEYS or self["recipe"] is not recipe.wire_form():
            return dumps(self)  # changed since: encode what it holds now
        head = dumps({"environment": self["environment"], "payload": self["payload"]})
        path, pointer = self["recipe-path"], self["recipe-pointer"]
        if type(pointer) is int and all(type(step) is int for step in path):  # as json.dumps
            steps = ", ".join(map(str, path))
            tail = f'"recipe-path": [{steps}], "recipe-pointer": {pointer}}}'
        else:
            tail = dumps({"recipe-path": path, "recipe-pointer": pointer})[1:]
        return f'{head[:-1]}, "recipe": {recipe.to_json()}, {tail}'


#: Recipes read from messages, by their JSON text: the messages of a run, and the runs of one
#: recipe, carry the same recipe, read once per process (Recipes are immutable values).
_READ: dict[str, Recipe] = {}
_READ_LIMIT = 256
#: The recipe read last, with its text: looked for in the next message's text first.
_LAST: tuple[str, Recipe] | None = None
_KEY = '"recipe"'
_COLON = re.compile(r"[ \t\n\r]*:[ \t\n\r]*")


def _recipe_of(value: Any, text: str = "") -> Recipe:
    """The Recipe of a decoded ``value``; ``text``: the message text it came from, if known."""
    global _LAST
    if isinstance(value, Recipe):
        return value
    if type(value) is not dict:
        return Recipe.from_dict(value)
    last = _LAST
    if text and last is not None and _holds(text, last[0]):
        return last[1]
    try:
        key = dumps(value)
    except (TypeError, ValueError, RecursionError):
        return Recipe.from_dict(value)  # not JSON: let the reading say what is wrong
    recipe = _READ.get(key)
    if recipe is None:
        recipe = Recipe.from_dict(value)
        if len(_READ) >= _READ_LIMIT:
            _READ.clear()
        _READ[key] = recipe
    _LAST = (key, recipe)
    return recipe


def _holds(text: str, recipe_text: str) -> bool:
    """True when the recipe of the message ``text`` is exactly ``recipe_text``: its one
    ``"recipe"`` key is followed by that text. Only one such token in the whole text, and no
    ``\\u006x``/``\\u007x`` escape (the only way to spell the key otherwise), make it the
    top-level key; an object's text that starts there is the whole value."""
    at = text.find(_KEY)
    if at < 0 or text.find(_KEY, at + len(_KEY)) >= 0 or "\\u006" in text or "\\u007" in text:
        return False
    after = _COLON.match(text, at + len(_KEY))
    return after is not None and text.startswith(recipe_text, after.end())


@dataclass(frozen=True)
class EnvelopeView:
    """What a recipe message says about itself, read leniently (never raises): for frames
    of dead letters and taps, which show broken messages too. ``is_recipe`` is False for a
    body that is not a recipe message at all; then only ``payload`` (the body) is set."""

    is_recipe: bool
    run: str | None = None
    step: int | None = None
    payload: Any = None
    parameters: Mapping[str, Any] = field(default_factory=dict)


def peek(body: Any) -> EnvelopeView:
    """The envelope of ``body`` as far as it can be read (see :class:`EnvelopeView`).
    :meth:`RecipeMessage.from_body` is the strict reading that services use."""
    if not isinstance(body, Mapping) or "recipe-pointer" not in body:
        return EnvelopeView(False, payload=body)
    environment = body.get("environment")
    run = environment.get("ID") if isinstance(environment, Mapping) else None
    pointer = body.get("recipe-pointer")
    step = pointer if isinstance(pointer, int) and not isinstance(pointer, bool) else None
    recipe = body.get("recipe")
    entry = recipe.get(str(step)) if isinstance(recipe, Mapping) else None
    found = entry.get("parameters") if isinstance(entry, Mapping) else None
    return EnvelopeView(
        True,
        str(run) if run is not None else None,
        step,
        body.get("payload"),
        dict(found) if isinstance(found, Mapping) else {},
    )
