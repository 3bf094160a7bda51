"""Lint: valid but probably wrong."""

from __future__ import annotations

from typing import Any

from zocalo_nb import Recipe


def lint(
    data: dict[str, Any], parameters: dict[str, Any] | None = None
) -> list[tuple[Any, Any, str]]:
    recipe = Recipe.from_dict(data).validate()
    return [(f.step, f.field, f.message) for f in recipe.lint(parameters)]


def test_a_clean_recipe_has_no_warnings() -> None:
    data = {"1": {"queue": "a", "output": [2]}, "2": {"queue": "b"}, "start": [[1, {}]]}
    assert lint(data) == []


def test_templates_list_their_parameters_once_and_applied_ones_where_they_remain() -> None:
    data = {
        "1": {"queue": "a", "parameters": {"x": "{dcid}", "y": "{beamline}"}},
        "start": [[1, {"f": "{file}"}]],
    }
    (only,) = Recipe.from_dict(data).lint()
    assert only.step is None and "{file}, {dcid}, {beamline}" in only.message
    assert all(f.severity == "warning" for f in Recipe.from_dict(data).lint())
    remaining = lint(data, {"dcid": 5, "file": "x"})
    assert remaining == [(1, "parameters", "placeholders left unresolved: {beamline}")]


def test_wrapper_steps_must_wire_success_and_failure() -> None:
    data = {
        "1": {
            "queue": "cluster.submission",
            "parameters": {"wrapper": "xia2"},
            "output": {"success": 2, "sucess": 2},
        },
        "2": {"queue": "b"},
        "start": [[1, {}]],
    }
    found = Recipe.from_dict(data).lint()
    messages = [f.message for f in found]
    assert "job step does not wire its 'failure' channel" in messages
    assert any(f.hint == "did you mean 'success'?" for f in found)


def test_wrapper_steps_with_plain_outputs_are_flagged() -> None:
    data = {
        "1": {"queue": "q", "parameters": {"notebook": "a.ipynb"}, "output": [2]},
        "2": {"queue": "b"},
        "start": [[1, {}]],
    }
    assert any("plain outputs" in m for _, _, m in lint(data))


def test_json_braces_topic_delays_empty_channels_and_missing_destinations() -> None:
    data = {
        "1": {
            "queue": "a",
            "parameters": {"blob": '{"a": 1}'},
            "output": {"every": [2], "never": []},
        },
        "2": {"topic": "t", "transport-delay": 5, "output": [3]},
        "3": {"service": "nowhere"},
        "start": [[1, {}]],
    }
    found = lint(data)
    assert (
        1,
        "parameters",
        "a string holds JSON-like braces; parameter substitution leaves it as is",
    ) in found
    assert (1, "output['never']", "channel 'never' has no destination") in found
    assert any(step == 2 and field == "transport-delay" for step, field, _ in found)
    assert (3, None, "names neither a queue nor a topic: messages for it go nowhere") in found


def test_lint_findings_carry_a_kind_for_code_to_test() -> None:
    from zocalo_nb.recipe import Recipe

    recipe = Recipe.from_dict(
        {
            "1": {"parameters": {"command": ["x", "{image}"]}, "output": {"sucess": [2]}},
            "2": {"topic": "t", "transport-delay": 5, "parameters": {"j": '{"a": 1}'}},
            "start": [[1, {}]],
        }
    )
    kinds = sorted(f.kind for f in recipe.lint())
    assert kinds == sorted(
        [
            "no-destination",
            "delayed-topic",
            "unknown-channel",
            "unwired-job-channel",
            "unwired-job-channel",
            "json-like-text",
            "template-parameters",
        ]
    ), [(f.kind, f.message) for f in recipe.lint()]
    (template,) = [f for f in recipe.lint() if f.kind == "template-parameters"]
    assert template.names == ("{image}",)
