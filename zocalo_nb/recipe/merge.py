"""Merging two recipes with upstream's numbering, without touching either operand.

The steps of the second recipe are renumbered from ``max(first) + 1`` in the order they appear,
their links rewritten, their start entries appended after the first recipe's, and the
top-level error lists joined. Upstream mutates the left operand (and shares the right one's
step dicts); here both inputs are immutable, so the result is always a new value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zocalo_nb.recipe._frozen import FrozenDict, FrozenMap
from zocalo_nb.recipe._normalise import Entries
from zocalo_nb.recipe.links import is_step_id


def merge_entries(first: Entries, second: Entries) -> Entries:
    """Merge two *valid*, normalised recipes (callers validate first, as upstream does)."""
    if not second:
        return first
    if not first:
        return second
    next_id = max([1, *(k for k in first if is_step_id(k))]) + 1
    translation: dict[int, int] = {}
    for key in second:
        if is_step_id(key):
            translation[key] = next_id
            next_id += 1

    merged: dict[int | str, Any] = dict(first)
    for old, new in translation.items():
        step = second[old]
        if isinstance(step, FrozenMap):
            step = FrozenDict(
                {
                    field: _translate(value, translation) if field in ("output", "error") else value
                    for field, value in step.items()
                }
            )
        merged[new] = step

    merged["start"] = tuple(first.get("start", ())) + tuple(
        (translation[entry[0]], entry[1]) for entry in second.get("start", ())
    )
    if "error" in second:
        merged["error"] = tuple(first.get("error", ())) + _translate(second["error"], translation)
    return FrozenDict(merged)


def _translate(links: Any, translation: Mapping[int, int]) -> Any:
    if isinstance(links, tuple):
        return tuple(_translate(link, translation) for link in links)
    if isinstance(links, FrozenMap):
        return FrozenDict({k: _translate(v, translation) for k, v in links.items()})
    if is_step_id(links):
        return translation[links]
    return links
