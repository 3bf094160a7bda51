"""Upstream's validity rules, reporting every problem with its step, field and a hint.

Upstream (python-workflows ``Recipe.validate``) stops at the first problem, recurses once per
path (exponential on diamond-shaped recipes, RecursionError on long chains) and crashes on some
malformed input. Here every rule is checked in one linear pass over the graph and each problem
becomes a :class:`~zocalo_nb.errors.Finding`. On top of upstream's rules we check the types of
the fields that services rely on (queue, topic, parameters, ...), which upstream accepts and
then fails on at run time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from zocalo_nb.errors import Finding
from zocalo_nb.recipe._normalise import Entries
from zocalo_nb.recipe.links import is_step_id

_ID_HINT = "step ids are whole numbers written without leading zeros, starting at 1"
_LINK_HINT = (
    "links are a step id, a list of step ids, or {channel: step id or list of step ids}"
)


def find_problems(entries: Entries) -> list[Finding]:
    """Every reason why ``entries`` is not a valid recipe; empty when it is valid."""
    if not entries:
        return [Finding(None, None, "the recipe is empty", 'add a "start" entry and steps')]
    problems: list[Finding] = []
    steps = {key: value for key, value in entries.items() if is_step_id(key)}
    problems += _check_start(entries, steps)
    problems += _check_error(entries, steps)
    for key, value in entries.items():
        if key in ("start", "error"):
            continue
        if not is_step_id(key):
            problems.append(Finding(key, None, f"step key {key!r} is not numeric", _ID_HINT))
        elif key == 0:
            problems.append(Finding(key, None, "step id 0 is not allowed", _ID_HINT))
        elif not isinstance(value, Mapping):
            problems.append(
                Finding(
                    key,
                    None,
                    f"a step must be an object, not {type(value).__name__}",
                    'write the step as {"queue": "...", "parameters": {...}}',
                )
            )
        else:
            problems += _check_fields(key, value)
            problems += _check_links(key, value, steps)
    graph = _graph(entries, steps)
    problems += _check_cycles(graph)
    problems += _check_reachable(entries, steps, graph)
    return problems


def _check_start(entries: Entries, steps: Mapping[int, Any]) -> Iterator[Finding]:
    hint = 'start is a list of [step, payload] pairs, e.g. "start": [[1, {}]]'
    if "start" not in entries:
        yield Finding("start", None, 'the "start" entry is missing', hint)
        return
    start = entries["start"]
    if not isinstance(start, tuple):
        yield Finding("start", None, f"start must be a list, not {type(start).__name__}", hint)
        return
    if not start:
        yield Finding("start", None, "start is empty: nothing would ever run", hint)
    for index, entry in enumerate(start):
        if not isinstance(entry, tuple) or len(entry) != 2:
            yield Finding("start", f"[{index}]", f"entry {entry!r} is not a pair", hint)
        elif entry[0] == "start":
            yield Finding("start", f"[{index}]", "start points to itself", hint)
        elif not is_step_id(entry[0]):
            yield Finding(
                "start", f"[{index}]", f"entry points at {entry[0]!r}, not a step id", hint
            )
        elif entry[0] not in steps:
            yield Finding(
                "start", f"[{index}]", f"entry points at step {entry[0]}, which is missing",
                "add the step or correct the id",
            )


def _check_error(entries: Entries, steps: Mapping[int, Any]) -> Iterator[Finding]:
    if "error" not in entries:
        return
    links = entries["error"]
    hint = 'the top-level "error" entry is a list of step ids, e.g. "error": [7]'
    if not isinstance(links, tuple):
        yield Finding("error", None, f"must be a list, not {type(links).__name__}", hint)
        return
    for index, target in enumerate(links):
        if target == "start":
            yield Finding("error", f"[{index}]", 'points to the "start" entry', hint)
        elif target == "error":
            yield Finding("error", f"[{index}]", "points to itself", hint)
        elif not is_step_id(target):
            yield Finding("error", f"[{index}]", f"{target!r} is not a step id", hint)
        elif target not in steps:
            yield Finding(
                "error", f"[{index}]", f"points at step {target}, which is missing",
                "add the step or correct the id",
            )


def _check_fields(key: int, step: Mapping[str, Any]) -> Iterator[Finding]:
    for name in ("queue", "topic", "service", "exchange"):
        if name in step and not (isinstance(step[name], str) and step[name]):
            yield Finding(
                key, name, f"{name} must be a non-empty string, not {step[name]!r}",
                f'write e.g. "{name}": "per_image_analysis"',
            )
    if "parameters" in step and not isinstance(step["parameters"], Mapping):
        yield Finding(
            key, "parameters", f"parameters must be an object, not {type(step['parameters']).__name__}",
            'write e.g. "parameters": {"dcid": "{ispyb_dcid}"}',
        )
    if "transport-delay" in step:
        delay = step["transport-delay"]
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            yield Finding(
                key, "transport-delay", f"must be a number of seconds >= 0, not {delay!r}",
                'write e.g. "transport-delay": 30',
            )


def _check_links(key: int, step: Mapping[str, Any], steps: Mapping[int, Any]) -> Iterator[Finding]:
    for field in ("output", "error"):
        if field not in step:
            continue
        for where, target in _link_targets(step[field]):
            label = f"{field}{where}"
            if target is _BAD:
                yield Finding(key, label, f"malformed link {step[field]!r}", _LINK_HINT)
            elif not is_step_id(target):
                yield Finding(key, label, f"link {target!r} is not a step id", _LINK_HINT)
            elif target not in steps:
                yield Finding(
                    key, label, f"links to step {target}, which is missing",
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
    elif isinstance(links, Mapping):
        for channel, found in links.items():
            if found is None:
                continue
            if isinstance(found, tuple):
                for target in found:
                    yield f"[{channel!r}]", target
            elif isinstance(found, Mapping):
                yield f"[{channel!r}]", _BAD
            else:
                yield f"[{channel!r}]", found
    else:
        yield "", _BAD


def _graph(entries: Entries, steps: Mapping[int, Any]) -> dict[int, list[int]]:
    graph: dict[int, list[int]] = {}
    for key, step in steps.items():
        edges: list[int] = []
        if isinstance(step, Mapping):
            for field in ("output", "error"):
                if field in step:
                    edges += [
                        t for _, t in _link_targets(step[field]) if is_step_id(t) and t in steps
                    ]
        graph[key] = edges
    return graph


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
                loop = path[on_path[child] :] + [child]
                yield Finding(
                    path[-1], "output",
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
                key, None, "no link, start or error entry leads to this step",
                "link it from another step or from start, or delete it",
            )
