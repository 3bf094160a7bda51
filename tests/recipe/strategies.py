"""Hypothesis strategies for recipes: arbitrary (often invalid) ones and valid DAGs."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

IDS = st.integers(min_value=1, max_value=9)


@st.composite
def valid_recipe(draw: st.DrawFn, max_steps: int = 6) -> dict[str, Any]:
    """A valid recipe: a DAG where every step is reached from an earlier one."""
    count = draw(st.integers(1, max_steps))
    steps: dict[int, dict[str, Any]] = {
        i: {draw(st.sampled_from(["queue", "topic"])): f"q{i}"} for i in range(1, count + 1)
    }
    edges = [(draw(st.integers(1, t - 1)), t) for t in range(2, count + 1)]
    edges += draw(
        st.lists(
            st.tuples(st.integers(1, count), st.integers(1, count)).filter(lambda e: e[0] < e[1]),
            max_size=3,
        )
    )  # extra forward edges: diamonds
    for source, target in edges:
        named = steps[source].setdefault("_named", draw(st.booleans()))
        if named:
            channel = draw(st.sampled_from(["success", "failure"]))
            steps[source].setdefault("output", {}).setdefault(channel, []).append(target)
        else:
            steps[source].setdefault("output", []).append(target)
    data: dict[str, Any] = {}
    for key, fields in steps.items():
        fields.pop("_named", None)
        data[str(key)] = fields
    data["start"] = [[1, {"n": draw(st.integers(0, 5))}]]
    if draw(st.booleans()):
        data["start"].append([draw(st.integers(1, count)), {"file": "{a}"}])
    if count > 1 and draw(st.booleans()):
        data["error"] = [draw(st.integers(2, count))]
    return data


MUTATIONS = (
    "dangling_output",
    "cycle",
    "self_loop",
    "no_start",
    "empty_start",
    "start_not_pair",
    "start_missing_step",
    "zero_key",
    "error_to_start",
    "string_link",
    "null_channel",
    "orphan",
    "step_error_link",
    "top_error_missing",
    "list_with_none",
)


@st.composite
def any_recipe(draw: st.DrawFn) -> dict[str, Any]:
    """A valid recipe with 0-2 random mutations: close calls on both sides of the rules."""
    data = draw(valid_recipe())
    steps = [k for k in data if k.isdigit()]
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), max_size=2)):
        key = draw(st.sampled_from(steps))
        step = data[key]
        output = step.get("output")
        if mutation == "dangling_output":
            step["output"] = [*output, 99] if isinstance(output, list) else [99]
        elif mutation in ("cycle", "self_loop"):
            target = int(key) if mutation == "self_loop" else 1
            if isinstance(output, dict):
                output.setdefault("failure", [])
                if isinstance(output["failure"], list):
                    output["failure"].append(target)
            else:
                step["output"] = [*(output or []), target]
        elif mutation == "no_start":
            data.pop("start", None)
        elif mutation == "empty_start":
            data["start"] = []
        elif mutation == "start_not_pair":
            data["start"] = [[1]]
        elif mutation == "start_missing_step":
            data["start"] = [*data.get("start", []), [42, {}]]
        elif mutation == "zero_key":
            data["0"] = {"queue": "zero"}
        elif mutation == "error_to_start":
            data["error"] = ["start"]
        elif mutation == "string_link":
            step["output"] = ["x"]
        elif mutation == "null_channel":
            step["output"] = {"success": None, **(output if isinstance(output, dict) else {})}
        elif mutation == "orphan":
            data[str(len(steps) + 10)] = {"queue": "orphan"}
        elif mutation == "step_error_link":
            step["error"] = draw(st.one_of(IDS, st.lists(IDS, max_size=2)))
        elif mutation == "top_error_missing":
            data["error"] = [77]
        elif mutation == "list_with_none":
            step["output"] = [None]
    return data


TOKENS = st.sampled_from(
    [
        "text",
        " ",
        "{a}",
        "{b}",
        "{missing}",
        "{d[k]}",
        "{l[0]}",
        "{{",
        "}}",
        "{a!r}",
        "{b:>4}",
        "{d[k]:03d}",
        "{missing[k]}",
        '{"json": 1}',
        "}",
        "{",
        "{0}",
        "{a.upper}",
        "{d[zz]}",
        "{missing:>3}",
    ]
)
PARAMETERS = {"a": "A", "b": 42, "d": {"k": 7}, "l": ["first", "second"], "obj": {"x": [1]}}
