"""The wrapper lifecycle: upstream's channels in upstream's order, whatever happens."""

from __future__ import annotations

from typing import Any

import pytest

from zocalo_nb.dispatch import RecipeMessage, StepContext
from zocalo_nb.recipe import Recipe
from zocalo_nb.wrapper import Job, JobFailed, find_wrapper, run_job
from zocalo_nb.wrapper.registry import UnknownWrapper

CHANNELS = [
    "starting",
    "updates",
    "success",
    "failure",
    "completed",
    "result-individual-file",
    "result-all-files",
]
RECIPE = Recipe.from_dict(
    {
        "1": {
            "queue": "jobs",
            "parameters": {"x": 1},
            "output": {c: i + 2 for i, c in enumerate(CHANNELS)},
        },
        **{str(i + 2): {"queue": f"out.{c}"} for i, c in enumerate(CHANNELS)},
        "start": [[1, {}]],
    }
)


def context() -> StepContext:
    return StepContext(RecipeMessage(RECIPE, 1, {"in": True}, (), {"ID": "r1"}))


class Fake:
    name = "fake"

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour

    def run(self, job: Job) -> Any:
        job.update({"progress": 50})
        job.result_file("/data/result.mtz")
        if self.behaviour == "fail":
            raise JobFailed("indexing failed", hint="check the lattice")
        if self.behaviour == "crash":
            raise KeyError("boom")
        return {"resolution": 1.8}


def sent(behaviour: str) -> tuple[list[tuple[str, Any]], Any, list[dict[str, Any]]]:
    emitted: list[tuple[str, Any]] = []
    statuses: list[dict[str, Any]] = []
    outcome = run_job(
        Fake(behaviour),
        context(),
        emit=lambda c, p: emitted.append((c, p)),
        status=statuses.append,
        host="host.1",
        status_interval=0.01,
    )
    return emitted, outcome, statuses


def test_a_successful_job_reports_every_channel_in_order() -> None:
    emitted, outcome, statuses = sent("ok")
    assert [c for c, _ in emitted] == [
        "starting",
        "updates",
        "result-individual-file",
        "success",
        "result-all-files",
        "completed",
    ]
    assert emitted[0][1] == "Starting processing"  # upstream's zocalo.wrap, word for word
    assert dict(emitted)["success"] == {"resolution": 1.8}
    assert dict(emitted)["result-all-files"] == {"files": ["/data/result.mtz"]}
    assert dict(emitted)["completed"] == "Finished processing" and outcome.success
    assert statuses[0]["host"] == "host.1" and statuses[0]["task"] == "fake (run r1, step 1)"


def codes(statuses: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """The (status, statustext) pairs in order, repeats of one pair collapsed."""
    pairs = [(s["status"], s["statustext"]) for s in statuses]
    return [p for i, p in enumerate(pairs) if i == 0 or pairs[i - 1] != p]


@pytest.mark.parametrize(
    "behaviour, last", [("ok", (6, "shutdown")), ("fail", (6, "shutdown")), ("crash", (7, "error"))]
)
def test_wrapper_status_uses_upstreams_codes_starting_processing_then_shutdown_or_error(
    behaviour: str, last: tuple[int, str]
) -> None:
    _, _, statuses = sent(behaviour)
    assert codes(statuses) == [(1, "starting"), (4, "processing"), last]


def test_a_job_returning_nothing_reports_upstreams_finished_processing_on_success() -> None:
    class Quiet:
        name = "quiet"

        def run(self, job: Any) -> None:
            return None

    emitted: list[tuple[str, Any]] = []
    run_job(Quiet(), context(), emit=lambda c, p: emitted.append((c, p)))
    assert dict(emitted)["success"] == "Finished processing"


@pytest.mark.parametrize(
    "behaviour, message", [("fail", "indexing failed"), ("crash", "KeyError: 'boom'")]
)
def test_failures_send_a_string_on_failure_and_completed_always(
    behaviour: str, message: str
) -> None:
    emitted, outcome, _statuses = sent(behaviour)
    channels = [c for c, _ in emitted]
    assert "success" not in channels and channels[-1] == "completed"
    failure = dict(emitted)["failure"]
    assert isinstance(failure, str) and failure.startswith(message)
    assert not outcome.success and dict(emitted)["completed"] == "Finished processing"


def test_by_default_channels_go_to_the_recipe_outbox() -> None:
    ctx = context()
    run_job(Fake("ok"), ctx)
    queues = [o.destination for o in ctx.outbox]
    assert queues == [
        "out.starting",
        "out.updates",
        "out.result-individual-file",
        "out.success",
        "out.result-all-files",
        "out.completed",
    ]
    assert ctx.outbox[3].body["recipe-path"] == [1] and ctx.outbox[3].body["environment"] == {
        "ID": "r1"
    }


def test_wrappers_are_found_by_name_with_suggestions() -> None:
    assert find_wrapper("command").name == "command"
    with pytest.raises(UnknownWrapper) as caught:
        find_wrapper("comand")
    assert "did you mean 'command'" in caught.value.hint
