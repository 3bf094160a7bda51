"""Upstream's validity rules, reporting every problem with its step, field and a hint.

Upstream (python-workflows ``Recipe.validate``) stops at the first problem, recurses once per
path (exponential on diamond-shaped recipes, RecursionError on long chains) and crashes on some
malformed input. Here every rule is checked in one linear pass over the graph and each problem
becomes a :class:`~zocalo_nb.errors.Finding`. On top of upstream's rules we check the types of
the fields that services rely on (queue, topic, parameters, ...), which upstream accepts and
then fails on at run time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from zocalo_nb.errors import Finding
from zocalo_nb.recipe._frozen import FrozenMap, thaw
from zocalo_nb.recipe._normalise import Entries
from zocalo_nb.recipe.links import is_step_id

_ID_HINT = "step ids are whole numbers written without leading zeros, starting at 1"
_JSON_KINDS = {
    Mapping: "an object",
    tuple: "a list",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


def _kind(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    return next((name for kind, name in _JSON_KINDS.items() if isinstance(value, kind)), "?")


def _show(value: Any) -> str:
    """A value as the user wrote it in JSON, for messages."""
    text = json.dumps(thaw(value), default=repr)
    return text if len(text) <= 60 else text[:57] + "..."


_LINK_HINT = "links are a step id, a list of step ids, or {channel: step id or list of step ids}"


def find_problems(entries: Entries) -> list[Finding]:
    """Every reason why ``entries`` is not a valid recipe; empty when it is valid."""
    if not entries:
        return [Finding(None, None, "the recipe is empty", 'add a "start" entry and steps')]
    problems: list[Finding] = []
    steps = {key: value for key, value in entries.items() if type(key) is int}
    problems += _check_start(entries, steps)
    problems += _check_error(entries, steps)
    graph: dict[int, list[int]] = {}
    for key, value in entries.items():
        if key in ("start", "error"):
            continue
        if not is_step_id(key):
            problems.append(Finding(key, None, f"step key {key!r} is not numeric", _ID_HINT))
            continue
        edges: list[int] = []
        graph[key] = edges
        if key <= 0:
            problems.append(Finding(key, None, f"step id {key} is not allowed", _ID_HINT))
        if type(value) is not FrozenMap:
            problems.append(
                Finding(
                    key,
                    None,
                    f"a step must be an object, not {_kind(value)}",
                    'write the step as {"queue": "...", "parameters": {...}}',
                )
            )
            continue
        if not _CHECKED_FIELDS.isdisjoint(value):
            problems += _check_fields(key, value)
        for field in ("output", "error"):
            if field in value and not _fast_links(value[field], steps, edges):
                problems += _check_links(key, field, value[field], steps)
                edges += [t for _, t in _link_targets(value[field]) if is_step_id(t) and t in steps]
    problems += _check_cycles(graph)
    problems += _check_reachable(entries, steps, graph)
    return problems


_CHECKED_FIELDS = frozenset(
    {"queue", "topic", "service", "exchange", "parameters", "transport-delay"}
)


def _fast_links(links: Any, steps: Mapping[int, Any], edges: list[int]) -> bool:
    """Add well-formed links to ``edges`` and return True; False sends them to the checks."""
    if type(links) is tuple:
        if all(type(t) is int and t in steps for t in links):
            edges += links
            return True
        return False
    if type(links) is FrozenMap:
        found: list[int] = []
        for targets in links.values():
            if type(targets) is int and targets in steps:
                found.append(targets)
            elif type(targets) is tuple and all(type(t) is int and t in steps for t in targets):
                found += targets
            elif targets is not None:
                return False
        edges += found
        return True
    if type(links) is int and links in steps:
        edges.append(links)
        return True
    return False


def _check_start(entries: Entries, steps: Mapping[int, Any]) -> Iterator[Finding]:
    hint = 'start is a list of [step, payload] pairs, e.g. "start": [[1, {}]]'
    if "start" not in entries:
        yield Finding("start", None, 'the "start" entry is missing', hint)
        return
    start = entries["start"]
    if not isinstance(start, tuple):
        yield Finding("start", None, f"start must be a list, not {_kind(start)}", hint)
        return
    if not start:
        yield Finding("start", None, "start is empty: nothing would ever run", hint)
    for index, entry in enumerate(start):
        if not isinstance(entry, tuple) or len(entry) != 2:
            yield Finding("start", f"[{index}]", f"entry {_show(entry)} is not a pair", hint)
        elif entry[0] == "start":
            yield Finding("start", f"[{index}]", "start points to itself", hint)
        elif not is_step_id(entry[0]):
            yield Finding(
                "start", f"[{index}]", f"entry points at {_show(entry[0])}, not a step id", hint
            )
        elif entry[0] not in steps:
            yield Finding(
                "start",
                f"[{index}]",
                f"entry points at step {entry[0]}, which is missing",
                "add the step or correct the id",
            )


def _check_error(entries: Entries, steps: Mapping[int, Any]) -> Iterator[Finding]:
    if "error" not in entries:
        return
    links = entries["error"]
    hint = 'the top-level "error" entry is a list of step ids, e.g. "error": [7]'
    if not isinstance(links, tuple):
        yield Finding("error", None, f"must be a list, not {_kind(links)}", hint)
        return
    for index, target in enumerate(links):
        if target == "start":
            yield Finding("error", f"[{index}]", 'points to the "start" entry', hint)
        elif target == "error":
            yield Finding("error", f"[{index}]", "points to itself", hint)
        elif not is_step_id(target):
            yield Finding("error", f"[{index}]", f"{_show(target)} is not a step id", hint)
        elif target not in steps:
            yield Finding(
                "error",
                f"[{index}]",
                f"points at step {target}, which is missing",
                "add the step or correct the id",
            )


def _check_fields(key: int, step: Mapping[str, Any]) -> Iterator[Finding]:
    for name in ("queue", "topic", "service", "exchange"):
        if name in step and not (isinstance(step[name], str) and step[name]):
            yield Finding(
                key,
                name,
                f"{name} must be a non-empty string, not {_show(step[name])}",
                f'write e.g. "{name}": "per_image_analysis"',
            )
    if "parameters" in step and not isinstance(step["parameters"], FrozenMap):
        yield Finding(
            key,
            "parameters",
            f"parameters must be an object, not {_kind(step['parameters'])}",
            'write e.g. "parameters": {"dcid": "{ispyb_dcid}"}',
        )
    if "transport-delay" in step:
        delay = step["transport-delay"]
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            yield Finding(
                key,
                "transport-delay",
                f"must be a number of seconds >= 0, not {_show(delay)}",
                'write e.g. "transport-delay": 30',
            )


def _check_links(key: int, field: str, links: Any, steps: Mapping[int, Any]) -> Iterator[Finding]:
    for where, target in _link_targets(links):
        label = f"{field}{where}"
        if target is _BAD:
            yield Finding(key, label, f"malformed link {_show(links)}", _LINK_HINT)
        elif not is_step_id(target):
            yield Finding(key, label, f"link {_show(target)} is not a step id", _LINK_HINT)
        elif target not in steps:
            yield Finding(
                key,
                label,
                f"links to step {target}, which is missing",
                "add the step or correct the id",
            )


_BAD = object()


def _link_targets(links: Any) -> Iterator[tuple[str, Any]]:
    """(where, target) for each link; ``_BAD`` marks a shape that is not a link at all."""
    if is_step_id(links):
        yield "", links
    elif isinstance(links, tuple):
        for target in links:
            yield "", target
    elif isinstance(links, FrozenMap):
        for channel, found in links.items():
            if found is None:
                continue
            if isinstance(found, tuple):
                for target in found:
                    yield f"[{channel!r}]", target
            elif isinstance(found, FrozenMap):
                yield f"[{channel!r}]", _BAD
            else:
                yield f"[{channel!r}]", found
    else:
        yield "", _BAD


def _check_cycles(graph: Mapping[int, list[int]]) -> Iterator[Finding]:
    state: dict[int, int] = {}  # 1: on the current path, 2: finished
    for root in graph:
        if root in state:
            continue
        path = [root]
        on_path = {root: 0}
        state[root] = 1
        stack = [iter(graph[root])]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                node = path.pop()
                del on_path[node]
                state[node] = 2
                stack.pop()
                continue
            if state.get(child) == 1:
                loop = [*path[on_path[child] :], child]
                yield Finding(
                    path[-1],
                    "output",
                    "links form a cycle: " + " -> ".join(map(str, loop)),
                    "recipes must be acyclic; to stay on a step, use checkpoint instead",
                )
            elif child not in state:
                state[child] = 1
                on_path[child] = len(path)
                path.append(child)
                stack.append(iter(graph[child]))


def _check_reachable(
    entries: Entries, steps: Mapping[int, Any], graph: Mapping[int, list[int]]
) -> Iterator[Finding]:
    roots: list[Any] = []
    start = entries.get("start")
    if isinstance(start, tuple):
        roots += [e[0] for e in start if isinstance(e, tuple) and len(e) == 2]
    error = entries.get("error")
    if isinstance(error, tuple):
        roots += list(error)
    seen: set[int] = set()
    todo = [r for r in roots if is_step_id(r) and r in steps]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += graph[node]
    for key in steps:
        if key not in seen:
            yield Finding(
                key,
                None,
                "no link, start or error entry leads to this step",
                "link it from another step or from start, or delete it",
            )
