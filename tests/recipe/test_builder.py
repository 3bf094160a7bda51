"""The fluent builder produces exactly the hand-written upstream form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from zocalo_nb import Recipe, RecipeBuilder
from zocalo_nb.errors import BuilderError, RecipeValidationError


def test_builder_reproduces_the_xia2_example_exactly() -> None:
    b = RecipeBuilder()
    xia2 = b.step(
        "cluster.submission",
        service="DLS cluster submission",
        parameters={
            "wrapper": "xia2",
            "cluster_queue": "medium.q",
            "workingdir": "{ispyb_working_directory}/xia2",
            "results_directory": "{ispyb_results_directory}/xia2",
            "xia2": {
                "pipeline": "dials",
                "images": "{ispyb_image}",
                "space_group": "{ispyb_space_group}",
            },
        },
    )
    running = b.step(
        "ispyb_connector",
        service="DLS ISPyB connector",
        parameters={
            "ispyb_command": "update_processing_status",
            "program_id": "{ispyb_autoprocprogram_id}",
            "status": "running",
        },
    )
    success = b.step(
        "ispyb_connector",
        service="DLS ISPyB connector",
        parameters={
            "ispyb_command": "update_processing_status",
            "program_id": "{ispyb_autoprocprogram_id}",
            "status": "success",
        },
    )
    dimple = b.step(
        "trigger",
        service="DLS Trigger",
        parameters={"target": "dimple", "dcid": "{ispyb_dcid}", "pdb": "{ispyb_pdb}"},
    )
    mail = b.step(
        "mailnotification",
        service="DLS Mail notification",
        parameters={
            "recipients": "{ispyb_beamline}-processing@example.org",
            "subject": "xia2 failed for DCID {ispyb_dcid}",
            "content": "xia2 in {ispyb_working_directory}/xia2 reported a failure.",
        },
    )
    archive = b.step(
        "archive",
        service="DLS File archiver",
        parameters={"destination": "{ispyb_results_directory}/xia2/archive"},
    )
    xia2.on("starting", running).on("success", success).on("failure", mail).on(
        "result-all-files", archive
    )
    success.then(dimple)
    b.start(xia2).on_error(mail)
    built = b.build()

    hand_written = Recipe.load(ROOT / "recipes" / "xia2-processing.json")
    assert built == hand_written
    assert Recipe.from_json(built.to_json()) == hand_written
    assert json.loads(built.to_json()) == json.loads(
        (ROOT / "recipes" / "xia2-processing.json").read_text()
    ) | {
        "3": built.to_dict()["3"]  # the file writes "output": 4, normalised to [4] on load
    }


def test_several_targets_topics_delays_and_extra_fields(tmp_path: Path) -> None:
    b = RecipeBuilder()
    a = b.step("a", transport_delay=10, custom={"x": 1})
    c = b.step(topic="results")
    d = b.step("d")
    a.to(c, d).on_error(d, c)
    b.start(a, {"n": 1}).start(a, {"n": 2})
    data = b.build().to_dict()
    assert data["1"] == {
        "queue": "a",
        "transport-delay": 10,
        "custom": {"x": 1},
        "output": [2, 3],
        "error": [3, 2],
    }
    assert data["start"] == [[1, {"n": 1}], [1, {"n": 2}]]


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda b: b.step(), "needs a queue or a topic"),
        (lambda b: (b.step("a", id=1), b.step("b", id=1)), "taken"),
        (lambda b: b.step("a").on("success", b.step("b")).to(2), "named outputs"),
        (lambda b: b.step("a").to(b.step("b")).on("x", 2), "plain outputs"),
        (lambda b: b.step("a").to(7), "not part of this builder"),
        (lambda b: b.step("a").on("", 1), "channel names"),
        (lambda b: b.step("a").to(), "nothing to link"),
    ],
)
def test_builder_errors_carry_hints(build, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BuilderError, match=message) as caught:
        build(RecipeBuilder())
    assert caught.value.hint


def test_build_validates_unless_asked_not_to() -> None:
    b = RecipeBuilder()
    b.step("a")
    with pytest.raises(RecipeValidationError, match="start"):
        b.build()
    assert not b.build(validate=False).is_valid()
