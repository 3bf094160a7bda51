"""The states a step of a run can be in, shared by graphs, run views and monitors."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeAlias

from zocalo_nb.errors import InvalidArgument
from zocalo_nb.wire.events import EventState


class StepState(StrEnum):
    """Where a step of a run stands. Order is roughly the lifecycle order."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = EventState.SUCCEEDED.value  # these four are named as the events say
    FAILED = EventState.FAILED.value
    RETRYING = EventState.RETRYING.value
    DEAD_LETTERED = EventState.DEAD_LETTERED.value
    SKIPPED = "skipped"
    #: In a rerun: a step the rerun did not start from and never reached (it ran, or was
    #: skipped, in the original run).
    NOT_RERUN = "not in this rerun"

    @classmethod
    def parse(cls, value: StepState | str) -> StepState:
        """Accept a StepState or its name/value in any case (``"dead_lettered"`` too)."""
        if isinstance(value, StepState):
            return value
        text = str(value).strip().lower().replace("_", "-")
        for state in cls:
            if state.value == text:
                return state
        names = ", ".join(s.value for s in cls)

        raise InvalidArgument(
            f"unknown step state {value!r}", hint=f"use one of: {names}", name="state", value=value
        )


#: Fill colour per state: colour-blind safe-ish, light enough for black text.
STATE_COLOURS: Mapping[StepState, str] = {
    StepState.PENDING: "#eeeeee",
    StepState.QUEUED: "#c6dbef",
    StepState.RUNNING: "#fdd49e",
    StepState.SUCCEEDED: "#a1d99b",
    StepState.FAILED: "#fb6a4a",
    StepState.RETRYING: "#fdae6b",
    StepState.DEAD_LETTERED: "#cb181d",
    StepState.SKIPPED: "#ffffff",
    StepState.NOT_RERUN: "#f7f7f7",
}

#: A mapping of step id to state, as accepted by graph functions.
StepStateLike: TypeAlias = Mapping[int, StepState | str]
