"""Structural difference between two recipes that is not fooled by renumbering.

Steps are matched by where they sit in the graph (the first path from a start or error entry,
as channel names and positions), then by identical content; only what is left is reported as
added or removed. Links are compared through that matching, so a recipe and its renumbered
copy (for example the right half of a merge) have no difference.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from zocalo_nb.recipe._frozen import FrozenMap, thaw
from zocalo_nb.recipe._normalise import Entries
from zocalo_nb.recipe.links import channels, is_step_id

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class Change:
    """One difference: a step added or removed, or a field (or start/error entry) changed."""

    kind: ChangeKind
    step_a: int | str | None
    step_b: int | str | None
    field: str | None
    a: Any = None
    b: Any = None

    def __str__(self) -> str:
        if self.kind == "added":
            return f"+ step {self.step_b} added: {_short(self.b)}"
        if self.kind == "removed":
            return f"- step {self.step_a} removed: {_short(self.a)}"
        where = self.step_a if self.step_a == self.step_b else f"{self.step_a} -> {self.step_b}"
        label = f"step {where}" if isinstance(self.step_a, int) else str(where)
        return f"~ {label} {self.field}: {_short(self.a)} -> {_short(self.b)}"


@dataclass(frozen=True)
class RecipeDiff:
    """The changes turning recipe ``a`` into ``b``; falsy when they are the same graph.

    ``matched`` maps each step of ``a`` to its counterpart in ``b``.
    """

    changes: tuple[Change, ...]
    matched: Mapping[int, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def __str__(self) -> str:
        if not self.changes:
            return "no differences"
        return "\n".join(str(change) for change in self.changes)


def diff_entries(a: Entries, b: Entries) -> RecipeDiff:
    """Compare two normalised recipes (valid or not)."""
    steps_a = {k: v for k, v in a.items() if is_step_id(k)}
    steps_b = {k: v for k, v in b.items() if is_step_id(k)}
    matched = _match(a, b, steps_a, steps_b)
    changes: list[Change] = []
    for key_a, key_b in matched.items():
        changes += _compare_step(key_a, key_b, steps_a[key_a], steps_b[key_b], matched)
    changes += [
        Change("removed", k, None, None, a=thaw(v)) for k, v in steps_a.items() if k not in matched
    ]
    reverse = set(matched.values())
    changes += [
        Change("added", None, k, None, b=thaw(v)) for k, v in steps_b.items() if k not in reverse
    ]
    for top in ("start", "error"):
        mapped = _map_top(a.get(top), matched, top, "removed")
        other = _map_top(b.get(top), {v: v for v in reverse}, top, "added")
        if mapped != other:
            changes.append(
                Change("changed", top, top, None, a=thaw(a.get(top)), b=thaw(b.get(top)))
            )
    return RecipeDiff(tuple(changes), matched)


def _match(
    a: Entries, b: Entries, steps_a: Mapping[int, Any], steps_b: Mapping[int, Any]
) -> dict[int, int]:
    names: dict[tuple[Any, ...], int] = {}  # shared: the same path gets the same number
    paths_b = {path: key for key, path in _paths(b, steps_b, names).items()}
    matched: dict[int, int] = {}
    for key, path in _paths(a, steps_a, names).items():
        if path in paths_b:
            matched[key] = paths_b[path]
    taken = set(matched.values())
    by_content: dict[str, list[int]] = {}
    for key, step in steps_b.items():
        if key not in taken:
            by_content.setdefault(_content(step), []).append(key)
    for key, step in steps_a.items():
        if key not in matched:
            candidates = by_content.get(_content(step))
            if candidates:
                matched[key] = candidates.pop(0)
    return matched


def _paths(
    entries: Entries, steps: Mapping[int, Any], names: dict[tuple[Any, ...], int]
) -> dict[int, int]:
    """The first breadth-first path to each step from the start and error entries, as a
    number: a path is (the number of its parent path, field, channel, index), numbered in
    ``names``, so comparing two paths costs the same however deep they are (a chain of
    20,000 steps stays linear)."""

    def number(parent: int, *link: Any) -> int:
        return names.setdefault((parent, *link), len(names))

    found: dict[int, int] = {}
    queue: deque[tuple[Any, int]] = deque()
    start = entries.get("start")
    if isinstance(start, tuple):
        for index, entry in enumerate(start):
            if isinstance(entry, tuple) and entry:
                queue.append((entry[0], number(-1, "start", index)))
    error = entries.get("error")
    if isinstance(error, tuple):
        for index, target in enumerate(error):
            queue.append((target, number(-1, "error", index)))
    while queue:
        key, path = queue.popleft()
        if not is_step_id(key) or key not in steps or key in found:
            continue
        found[key] = path
        step = steps[key]
        if not isinstance(step, FrozenMap):
            continue
        for link_field in ("output", "error"):
            for channel, targets in sorted(channels(step.get(link_field)).items()):
                for index, target in enumerate(targets):
                    queue.append((target, number(path, link_field, channel, index)))
    return found


def _content(step: Any) -> str:
    if isinstance(step, FrozenMap):
        step = {k: v for k, v in step.items() if k not in ("output", "error")}
    return json.dumps(thaw(step), sort_keys=True, default=repr)


def _compare_step(
    key_a: int, key_b: int, step_a: Any, step_b: Any, matched: Mapping[int, int]
) -> list[Change]:
    if not (isinstance(step_a, FrozenMap) and isinstance(step_b, FrozenMap)):
        if step_a != step_b:
            return [Change("changed", key_a, key_b, None, a=thaw(step_a), b=thaw(step_b))]
        return []
    changes = []
    for name in dict.fromkeys([*step_a, *step_b]):
        va, vb = step_a.get(name), step_b.get(name)
        if name in ("output", "error"):
            same = _map_links(va, matched) == _map_links(vb, None)
        else:
            same = name in step_a and name in step_b and va == vb
        if not same:
            changes.append(Change("changed", key_a, key_b, name, a=thaw(va), b=thaw(vb)))
    return changes


def _map_links(links: Any, matched: Mapping[int, int] | None) -> Any:
    if links is None:
        return None
    mapped = {}
    for channel, targets in channels(links).items():
        mapped[channel] = sorted(
            _through(t, matched, "unmatched") if matched is not None else _through(t, None, "")
            for t in targets
        )
    return mapped


def _through(target: Any, matched: Mapping[int, int] | None, unmatched: str) -> str:
    """A link target as a comparable string, seen through the step matching."""
    if is_step_id(target):
        if matched is None:
            return str(target)
        if target in matched:
            return str(matched[target])
    return f"{unmatched}:{json.dumps(thaw(target), default=repr)}"


def _map_top(value: Any, matched: Mapping[int, int], top: str, unmatched: str) -> Any:
    if not isinstance(value, tuple):
        return value
    if top == "start":
        return [
            (_through(e[0], matched, unmatched), json.dumps(thaw(e[1]), sort_keys=True))
            if isinstance(e, tuple) and len(e) == 2
            else repr(e)
            for e in value
        ]
    return sorted(_through(t, matched, unmatched) for t in value)


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."
