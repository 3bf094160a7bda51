"""The Recipe: an immutable value that reads and writes upstream Zocalo recipe JSON exactly.

Example::

    recipe = Recipe.load("recipes/spotfinding.json")
    recipe.validate()
    run = recipe.apply_parameters({"ispyb_dcid": 1234})
    run.to_json()
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zocalo_nb.errors import Finding, RecipeError, RecipeParseError, RecipeValidationError
from zocalo_nb.recipe import _normalise
from zocalo_nb.recipe._frozen import FrozenDict, FrozenMap, thaw
from zocalo_nb.recipe.diff import RecipeDiff, diff_entries
from zocalo_nb.recipe.links import is_step_id
from zocalo_nb.recipe.lint import lint_entries
from zocalo_nb.recipe.merge import merge_entries
from zocalo_nb.recipe.parameters import substitute
from zocalo_nb.recipe.step import Step
from zocalo_nb.recipe.validate import find_problems

if TYPE_CHECKING:
    from zocalo_nb.states import StepStateLike


class Recipe:
    """A Zocalo recipe: numbered steps, ``start`` entries and optional ``error`` entries.

    Recipes are immutable: every operation returns a new Recipe. Step ids are ints, a bare
    ``output`` is normalised to a list, and every other field survives a round trip.
    """

    __slots__ = ("_entries", "_hash", "_json", "_source", "_steps")

    def __init__(self, data: Mapping[Any, Any] | None = None, *, source: str | None = None) -> None:
        self._entries = _normalise.normalise({} if data is None else data, source=source)
        self._source = source
        self._hash: int | None = None
        self._json: str | None = None
        self._steps: dict[int, Step] = {}  # made on first use: a recipe does not change

    # -- reading and writing ---------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[Any, Any], *, source: str | None = None) -> Recipe:
        """Read a recipe from its dictionary form (string or int step keys)."""
        return cls(data, source=source)

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str | None = None) -> Recipe:
        """Read a recipe from JSON text; bad JSON raises RecipeParseError naming line and column."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise RecipeParseError(
                f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}",
                hint="check for a missing comma, quote or bracket near that position",
                source=source,
            ) from err
        except (RecursionError, UnicodeDecodeError) as err:
            raise RecipeParseError(
                f"cannot read as JSON: {type(err).__name__}",
                hint="a recipe is UTF-8 JSON of modest depth",
                source=source,
            ) from err
        return cls(data, source=source)

    @classmethod
    def load(cls, path: str | PathLike[str]) -> Recipe:
        """Read a recipe file."""
        try:
            text = Path(path).read_bytes()
        except OSError as err:
            raise RecipeParseError(
                f"cannot read {path}: {err.strerror}",
                hint="check the path (recipes usually live in recipes/*.json)",
            ) from err
        return cls.from_json(text, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """The upstream JSON form as a fresh, mutable dict (string step keys)."""
        return _normalise.to_plain(self._entries)

    def wire_form(self) -> Mapping[int | str, Any]:
        """The recipe as it is held: read-only, and JSON-encoded to exactly the text of
        :meth:`to_dict` (int step ids become string keys, tuples arrays) without a copy. For
        messages built to be sent at once; :meth:`to_dict` gives a copy to change."""
        return self._entries

    def to_json(self, *, indent: int | None = None) -> str:
        """The upstream JSON text (compact: made once, as recipes do not change)."""
        if indent is not None:
            return json.dumps(self.to_dict(), indent=indent)
        if self._json is None:
            self._json = json.dumps(self._entries)
        return self._json

    def save(self, path: str | PathLike[str]) -> Path:
        """Write the recipe as indented JSON; returns the path written."""
        target = Path(path)
        target.write_text(self.to_json(indent=2) + "\n", encoding="utf-8")
        return target

    # -- looking inside --------------------------------------------------------------------
    @property
    def source(self) -> str | None:
        """Where the recipe was read from, if anywhere (used in messages)."""
        return self._source

    @property
    def steps(self) -> Mapping[int, Step]:
        """Steps by id (only well-formed ones: int ids whose value is an object)."""
        return {
            key: Step(key, value)
            for key, value in self._entries.items()
            if is_step_id(key) and isinstance(value, FrozenMap)
        }

    @property
    def start(self) -> tuple[tuple[int, Any], ...]:
        """``(step, payload)`` start entries, payloads as plain copies (malformed ones left out)."""
        start = self._entries.get("start", ())
        if not isinstance(start, tuple):
            return ()
        return tuple(
            (entry[0], thaw(entry[1]))
            for entry in start
            if isinstance(entry, tuple) and len(entry) == 2 and is_step_id(entry[0])
        )

    @property
    def error(self) -> tuple[int, ...]:
        """Steps that the top-level ``error`` entry points at."""
        error = self._entries.get("error", ())
        return tuple(e for e in error if is_step_id(e)) if isinstance(error, tuple) else ()

    def __getitem__(self, step_id: int) -> Step:
        if not is_step_id(step_id):
            raise KeyError(step_id)
        step = self._steps.get(step_id)
        if step is None:
            value = self._entries.get(step_id)
            if not isinstance(value, FrozenMap):
                raise KeyError(step_id)
            step = self._steps[step_id] = Step(step_id, value)
        return step

    def __contains__(self, step_id: object) -> bool:
        return is_step_id(step_id) and step_id in self._entries

    def __iter__(self) -> Iterator[int]:
        return iter(self.steps)

    def __len__(self) -> int:
        return sum(1 for key in self._entries if is_step_id(key))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Recipe):
            return dict(self._entries) == dict(other._entries)
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(_canonical(self.to_dict()))
        return self._hash

    def __repr__(self) -> str:
        queues = [s.queue or s.topic or "?" for s in self.steps.values()][:4]
        more = ", ..." if len(self) > 4 else ""
        origin = f" from {self._source}" if self._source else ""
        return f"<Recipe {len(self)} steps{origin}: {', '.join(queues)}{more}>"

    # -- checking --------------------------------------------------------------------------
    def problems(self) -> list[Finding]:
        """Every reason the recipe is invalid (empty list when valid)."""
        return find_problems(self._entries)

    def is_valid(self) -> bool:
        """True when :meth:`validate` would pass."""
        return not self.problems()

    def validate(self) -> Recipe:
        """Raise RecipeValidationError listing every problem; returns the recipe when valid."""
        problems = self.problems()
        if problems:
            raise RecipeValidationError(problems, source=self._source)
        return self

    def lint(self, parameters: Mapping[str, Any] | None = None) -> list[Finding]:
        """Warnings about things that are valid but probably wrong.

        Without ``parameters`` the recipe is read as a template: its placeholders are listed
        once, as the parameters to supply. With ``parameters`` they are applied first and
        every placeholder left unresolved is reported where it is.
        """
        if parameters is None:
            return lint_entries(self._entries, template=True)
        return lint_entries(self.apply_parameters(parameters)._entries)

    # -- operations (each returns a new Recipe) --------------------------------------------
    def apply_parameters(self, parameters: Mapping[str, Any]) -> Recipe:
        """Fill ``{name}`` placeholders and ``{$REPLACE:name}`` values (see :mod:`.parameters`)."""
        if not isinstance(parameters, Mapping):
            raise RecipeParseError(
                f"parameters must be a mapping, not {type(parameters).__name__}",
                hint='pass a dict such as {"ispyb_dcid": 1234}',
            )
        entries = {
            key: substitute(value, parameters)
            if key != "start"
            else _start_params(value, parameters)
            for key, value in self._entries.items()
        }
        return self._derive(entries)

    def merge(self, other: Recipe | Mapping[Any, Any] | str) -> Recipe:
        """Combine two recipes the way upstream does; both must be valid (or empty)."""
        if not isinstance(other, Recipe):
            other = Recipe.from_json(other) if isinstance(other, str) else Recipe(other)
        if self._entries and other._entries:
            self.validate()
            other.validate()
        return self._derive(merge_entries(self._entries, other._entries))

    def diff(self, other: Recipe) -> RecipeDiff:
        """Structural difference to ``other`` that ignores renumbering of steps."""
        return diff_entries(self._entries, other._entries)

    def replace_step(self, step_id: int, **fields: Any) -> Recipe:
        """A copy with fields of one step replaced (``transport_delay`` means ``transport-delay``).

        Example: ``recipe.replace_step(2, parameters={"threshold": 5})``.
        """
        data = self.to_dict()
        if str(step_id) not in data or not isinstance(data[str(step_id)], dict):
            raise RecipeError(
                f"step {step_id!r} is not in the recipe",
                hint=f"steps are {', '.join(map(str, self.steps)) or 'none'}",
            )
        data[str(step_id)].update(
            {("transport-delay" if k == "transport_delay" else k): v for k, v in fields.items()}
        )
        return Recipe(data, source=self._source)

    def _derive(self, entries: Mapping[Any, Any]) -> Recipe:
        """A new Recipe around already normalised, frozen entries."""
        new = Recipe.__new__(Recipe)
        new._entries = FrozenDict(dict(entries))
        new._source = self._source
        new._hash = None
        new._json = None
        new._steps = {}
        return new

    # -- display (delegates to zocalo_nb.render, which is standard library only) ------------
    def to_dot(self, states: StepStateLike | None = None, *, title: str | None = None) -> str:
        """Graphviz DOT source of the recipe graph, optionally coloured by step state."""
        from zocalo_nb.render.dot import recipe_to_dot

        return recipe_to_dot(self, states=states, title=title)

    def render(self, path: str | PathLike[str], states: StepStateLike | None = None) -> Path:
        """Write the graph to ``path`` (.svg, .png, .pdf or .dot; images need graphviz)."""
        from zocalo_nb.render.files import write_graph

        return write_graph(self, path, states=states)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from zocalo_nb.render.display import mimebundle

        return mimebundle(self, include=include, exclude=exclude)


def _start_params(value: Any, parameters: Mapping[str, Any]) -> Any:
    """Start entries keep their step ids; only payloads are formatted."""
    if not isinstance(value, tuple):
        return substitute(value, parameters)
    return tuple(
        (entry[0], substitute(entry[1], parameters))
        if isinstance(entry, tuple) and len(entry) == 2
        else substitute(entry, parameters)
        for entry in value
    )


def _canonical(value: Any) -> Any:
    """A hashable form of a JSON-like value that ignores key order (keys of any type)."""
    if isinstance(value, Mapping):
        return frozenset((repr(k), _canonical(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
