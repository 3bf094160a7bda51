"""Turn recipe JSON into the normalised, frozen form upstream works with.

Step ids become ints, a bare ``output`` becomes a one-element list, ``start`` entries become
pairs. Nothing is rejected here unless it cannot be represented at all: validation reports
everything else, all at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from zocalo_nb.errors import RecipeParseError
from zocalo_nb.recipe._frozen import FrozenDict, freeze, thaw

_CANONICAL_ID = re.compile(r"-?[1-9][0-9]*|0")  # "0" too: {0: ...} survives to_dict()

Entries = Mapping[int | str, Any]


def step_key(key: Any) -> int | str:
    """Upstream turns numeric string keys into ints; we accept only canonical decimals."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and _CANONICAL_ID.fullmatch(key):
        return int(key)
    return key if isinstance(key, str) else repr(key)


def normalise(data: Any, *, source: str | None = None) -> Entries:
    """Normalise a recipe dictionary into frozen entries (see module docstring)."""
    if not isinstance(data, Mapping):
        raise RecipeParseError(
            f"a recipe is a JSON object, not {type(data).__name__}",
            hint='write the recipe as {"start": [[1, {}]], "1": {"queue": "..."}}',
            source=source,
        )
    entries: dict[int | str, Any] = {}
    for raw_key, value in data.items():
        key = step_key(raw_key)
        if key in entries:
            raise RecipeParseError(
                f"step {key} appears twice (as {raw_key!r} and an earlier key)",
                hint="give every step a distinct id",
                source=source,
            )
        entries[key] = freeze(_normalise_entry(key, value), path=f"recipe[{raw_key!r}]")
    return FrozenDict(entries)


def _normalise_entry(key: int | str, value: Any) -> Any:
    if key == "start":
        if isinstance(value, (list, tuple)):
            return [tuple(x) if isinstance(x, (list, tuple)) else x for x in value]
        return value
    if key == "error":
        # Upstream crashes on a bare int here; we read it as a one-element list.
        if isinstance(value, int) and not isinstance(value, bool):
            return [value]
        return value
    if isinstance(value, Mapping) and "output" in value:
        output = value["output"]
        if not isinstance(output, (list, tuple, Mapping)):
            value = {**value, "output": [output]}
    return value


def to_plain(entries: Entries) -> dict[str, Any]:
    """The JSON form of normalised entries: string keys, lists, dicts (a fresh copy)."""
    return {str(key): thaw(value) for key, value in entries.items()}
