"""Recipe -> Graphviz DOT text (standard library only).

Render sits below the recipe layer and knows recipes by shape only (``steps``, ``start``,
``error``, each step's ``outputs()``/``error_links()``): the recipe's display methods are
one-line delegations down to it, so neither imports the other in a circle.

Each step shows its id, service, queue or topic and a few parameters. Queues are rounded
boxes, topics are hexagons (fan-out), steps with both have a double border. Named channels
label their edges, error links are dashed red, the start node lists its payloads. With
``states`` the steps are filled by state and a legend is added.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from html import escape
from typing import TYPE_CHECKING, Any

from zocalo_nb.states import STATE_COLOURS, StepState, StepStateLike

#: The channel of plain (unnamed) outputs, as recipes spell it.
PLAIN = ""

if TYPE_CHECKING:
    from zocalo_nb.recipe.model import Recipe

#: How many parameters a step box shows.
MAX_PARAMETERS = 3
_TEXT_LIMIT = 40
#: Between a step's id and its name, in one bold run: had the name a text node of its own
#: (Graphviz's way with a font change), browsers would drop its leading space
#: ("1Spot finding").
_GAP = "&#160;"


def recipe_to_dot(
    recipe: Recipe, *, states: StepStateLike | None = None, title: str | None = None
) -> str:
    """The DOT source for ``recipe``; ``states`` maps step id to a StepState (or its name)."""
    parsed = {k: StepState.parse(v) for k, v in (states or {}).items()}
    lines = [
        "digraph recipe {",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, nodesep=0.3, ranksep=0.4];',
        '  node [fontname="Helvetica", fontsize=10, style="rounded,filled", fillcolor="white"];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    if title:
        lines.append(f'  label="{_quote(title)}"; labelloc=t;')
    lines.append(_start_node(recipe))
    for step in recipe.steps.values():
        lines.append(_step_node(step.id, step.fields, parsed.get(step.id)))
    lines += _edges(recipe)
    lines += _missing(recipe)
    if parsed:
        lines += _legend(parsed.values())
    lines.append("}")
    return "\n".join(lines) + "\n"


def _start_node(recipe: Recipe) -> str:
    rows = ["<b>start</b>"]
    for step, payload in recipe.start[:4]:
        shown = f": {escape(_short(payload))}" if payload not in ({}, None) else ""
        rows.append(f"&#8594;{_GAP}{step}{shown}")
    if len(recipe.start) > 4:
        rows.append(f"... {len(recipe.start) - 4} more")
    label = "<br/>".join(rows)
    return f'  start [shape=oval, fillcolor="#f7f7f7", label=<{label}>];'


def _step_node(step_id: int, fields: Any, state: StepState | None) -> str:
    queue, topic = fields.get("queue"), fields.get("topic")
    rows = [
        f"<b>{step_id}"
        + (f"{_GAP}{escape(str(fields['service']))}" if "service" in fields else "")
        + "</b>"
    ]
    if isinstance(queue, str):
        rows.append(f"queue: <i>{escape(queue)}</i>")
    if isinstance(topic, str):
        rows.append(f"topic: <i>{escape(topic)}</i>")
    delay = fields.get("transport-delay")
    if delay is not None:
        rows.append(f"delay: {escape(str(delay))} s")
    parameters = fields.get("parameters")
    if hasattr(parameters, "items"):
        items = list(parameters.items())
        for name, value in items[:MAX_PARAMETERS]:
            rows.append(f"{escape(str(name))} = {escape(_short(value))}")
        if len(items) > MAX_PARAMETERS:
            rows.append(f"<font point-size='8'>+{len(items) - MAX_PARAMETERS} parameters</font>")
    if state is not None:
        rows.append(f"<font point-size='8'>[{state.value}]</font>")
    attrs = [f"label=<{'<br/>'.join(rows)}>"]
    if isinstance(topic, str) and isinstance(queue, str):
        attrs.append("shape=box, peripheries=2")
    elif isinstance(topic, str):
        attrs.append("shape=hexagon")
    else:
        attrs.append("shape=box")
    if state is not None:
        attrs.append(f'fillcolor="{STATE_COLOURS[state]}"')
        if state in (StepState.FAILED, StepState.DEAD_LETTERED):
            attrs.append("penwidth=2")
    return f"  s{step_id} [{', '.join(attrs)}];"


def _edges(recipe: Recipe) -> list[str]:
    lines = []
    steps = recipe.steps
    for first, _payload in recipe.start:
        if first in steps:
            lines.append(f"  start -> s{first};")
    if any(target in steps for target in recipe.error):
        lines.append('  recipe_error [label="on error", shape=octagon, fillcolor="#fee0d2"];')
    for error_target in recipe.error:
        if error_target in steps:
            lines.append(f'  recipe_error -> s{error_target} [style=dashed, color="#cb181d"];')
    for step in steps.values():
        for channel, targets in step.outputs().items():
            for target in targets:
                if target not in steps:
                    continue
                label = f' [label="{_quote(channel)}"]' if channel != PLAIN else ""
                lines.append(f"  s{step.id} -> s{target}{label};")
        for target in step.error_links():
            if target in steps:
                lines.append(
                    f'  s{step.id} -> s{target} [style=dashed, color="#cb181d", label="error"];'
                )
    return lines


def _legend(used: Iterable[StepState]) -> list[str]:
    """One compact node: a table of the states shown, each in its colour."""
    shown = set(used)
    cells = "".join(
        f'<tr><td bgcolor="{STATE_COLOURS[state]}" border="1" cellpadding="2">'
        f"{state.value}</td></tr>"
        for state in StepState
        if state in shown
    )
    table = f'<table border="0" cellspacing="3"><tr><td><b>states</b></td></tr>{cells}</table>'
    return [f'  legend [shape=plaintext, fontsize=8, fillcolor="none", label=<{table}>];']


def _missing(recipe: Recipe) -> list[str]:
    """A red dashed node for every step an output names that the recipe does not have."""
    steps = recipe.steps
    lines, drawn = [], set()
    for step in steps.values():
        links = [*(t for ts in step.outputs().values() for t in ts), *step.error_links()]
        for target in links:
            if target in steps:
                continue
            if target not in drawn:
                drawn.add(target)
                lines.append(
                    f'  missing{target} [label="step {target}\n(missing)", shape=box, '
                    f'style="dashed,filled", color="#cb181d", fillcolor="#fee0d2"];'
                )
            lines.append(f'  s{step.id} -> missing{target} [style=dashed, color="#cb181d"];')
    return lines


def _short(value: Any) -> str:
    """The value in at most _TEXT_LIMIT characters, its middle elided: the end of a path or
    a command is what tells them apart."""
    text = value if isinstance(value, str) else json.dumps(value, default=_plain)
    if len(text) <= _TEXT_LIMIT:
        return text
    head = _TEXT_LIMIT // 3
    return text[:head] + "\u2026" + text[-(_TEXT_LIMIT - head - 1) :]


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _plain(value: Any) -> Any:
    """JSON for the read-only mappings recipes hold (render knows recipes by shape only)."""
    if isinstance(value, Mapping):
        return dict(value)
    return repr(value)
