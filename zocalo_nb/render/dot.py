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
_TEXT_LIMIT = 32


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
    if parsed:
        lines += _legend(parsed.values())
    lines.append("}")
    return "\n".join(lines) + "\n"


def _start_node(recipe: Recipe) -> str:
    rows = ["<b>start</b>"]
    for step, payload in recipe.start[:4]:
        rows.append(f"&#8594; {step}: {escape(_short(payload))}")
    if len(recipe.start) > 4:
        rows.append(f"... {len(recipe.start) - 4} more")
    label = "<br/>".join(rows)
    return f'  start [shape=oval, fillcolor="#f7f7f7", label=<{label}>];'


def _step_node(step_id: int, fields: Any, state: StepState | None) -> str:
    queue, topic = fields.get("queue"), fields.get("topic")
    rows = [
        f"<b>{step_id}</b>" + (f" {escape(str(fields['service']))}" if "service" in fields else "")
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
    shown = set(used)
    lines = ["  subgraph cluster_legend {", '    label="states"; fontsize=9; color="#bbbbbb";']
    previous = None
    for state in StepState:
        if state not in shown:
            continue
        name = f"legend_{state.name.lower()}"
        lines.append(
            f'    {name} [label="{state.value}", shape=box, fontsize=8, height=0.2, '
            f'fillcolor="{STATE_COLOURS[state]}"];'
        )
        if previous:
            lines.append(f"    {previous} -> {name} [style=invis];")
        previous = name
    lines.append("  }")
    return lines


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=_plain)
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "\u2026"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _plain(value: Any) -> Any:
    """JSON for the read-only mappings recipes hold (render knows recipes by shape only)."""
    if isinstance(value, Mapping):
        return dict(value)
    return repr(value)
