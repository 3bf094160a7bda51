"""Where each step of a run stands, worked out from its lifecycle events (no pandas)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from zocalo_nb.monitor.records import Record
from zocalo_nb.recipe import Recipe
from zocalo_nb.states import StepState
from zocalo_nb.wire.events import EventState

#: Cluster job states whose outcome is still to come.
LIVE_JOB_STATES = frozenset({"queued", "running"})
#: Event states that end one delivery of a step.
DONE = frozenset({EventState.SUCCEEDED, EventState.DEAD_LETTERED})
_LIVE: dict[str, StepState] = {
    EventState.RECEIVED: StepState.RUNNING,
    EventState.RETRYING: StepState.RETRYING,
}


@dataclass
class RunState:
    """The steps of a run: how often each was sent work, how often it finished, and its state."""

    recipe: Recipe | None
    sends: Counter[int] = field(default_factory=Counter)
    done: Counter[int] = field(default_factory=Counter)
    last: dict[int, str] = field(default_factory=dict)
    dead: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    submitted: Record | None = None
    broadcast: set[int] = field(default_factory=set)  # topic-only steps: done once sent
    #: Cluster jobs by step: job id -> its latest state (from ``job`` events).
    jobs: dict[int, dict[str, str]] = field(default_factory=dict)

    def live_jobs(self, step: int) -> list[str]:
        """The step's cluster jobs still queued or running (their outcome is to come)."""
        return [s for s in self.jobs.get(step, {}).values() if s in LIVE_JOB_STATES]

    @property
    def rerun(self) -> bool:
        """True for a rerun (it starts at given steps: ``start`` is a list of step ids)."""
        return self.submitted is not None and isinstance(self.submitted.get("start"), list)

    @property
    def started(self) -> bool:
        return self.submitted is not None or bool(self.last)

    @property
    def finished(self) -> bool:
        """True once every step that was sent work has finished it (and something was)."""
        return (
            bool(self.sends)
            and all(self.done[s] >= n for s, n in self.sends.items())
            and not any(self.live_jobs(step) for step in self.jobs)
        )

    def states(self) -> dict[int, StepState]:
        """A state for every step of the recipe (and any step events name)."""
        steps = set(self.recipe.steps) if self.recipe is not None else set()
        steps |= set(self.sends) | set(self.last)
        result: dict[int, StepState] = {}
        for step in sorted(steps):
            result[step] = self._state(step)
        return result

    def _state(self, step: int) -> StepState:
        sent, done = self.sends[step], self.done[step]
        live = self.live_jobs(step)
        if live:  # a cluster step is running (or queued) while its job is
            return StepState.RUNNING if "running" in live else StepState.QUEUED
        if sent and done >= sent:
            return StepState.DEAD_LETTERED if step in self.dead else StepState.SUCCEEDED
        if sent:
            last = self.last.get(step)
            if last in _LIVE:
                return _LIVE[last]
            if last == EventState.FAILED:
                return StepState.FAILED
            return StepState.QUEUED
        if not self.finished:
            return StepState.PENDING
        # a rerun starts part way: the steps it never reached are not its own
        return StepState.NOT_RERUN if self.rerun else StepState.SKIPPED


def run_state(events: Sequence[Record], recipe: Recipe | None = None) -> RunState:
    """Fold a run's events (oldest first) into a :class:`RunState`."""
    state = RunState(recipe)
    for record in events:
        if record.get("state") == EventState.SUBMITTED:
            state.submitted = record
            if state.recipe is None and isinstance(record.get("recipe"), dict):
                state.recipe = _recipe(record["recipe"])
    started_at = state.submitted.get("start") if state.submitted else None
    if isinstance(started_at, list):  # a rerun starts part way through the recipe
        for step in started_at:
            if isinstance(step, int):
                state.sends[step] += 1
    elif state.recipe is not None:
        for step, _payload in state.recipe.start:
            state.sends[step] += 1
    if state.recipe is not None:  # topic-only steps: broadcast, nobody acknowledges them
        for step_id, step_def in state.recipe.steps.items():
            if step_def.topic and not step_def.queue:
                state.broadcast.add(step_id)
    job_sends: dict[str, list[int]] = {}
    for record in events:
        kind, step_value = record.get("state"), record.get("step")
        if not isinstance(step_value, int):
            continue
        step = step_value
        if kind == EventState.JOB:
            job = f"{record.get('scheduler')}:{record.get('jobid')}"
            state.jobs.setdefault(step, {})[job] = str(record.get("job_state"))
            if isinstance(record.get("sent_to"), list):  # the job's end, said once
                job_sends[job] = [t for t in record["sent_to"] if isinstance(t, int)]
            continue
        if kind == EventState.UNWIRED_SEND:
            continue
        state.last[step] = str(kind)
        if kind in DONE:
            state.done[step] += 1
            if kind == EventState.DEAD_LETTERED:
                state.dead.add(step)
            for target in record.get("sent_to") or ():
                if isinstance(target, int):
                    state.sends[target] += 1
                    if target in state.broadcast:
                        state.done[target] += 1
        elif kind == EventState.FAILED:
            state.failed.add(step)
        if state.recipe is None:  # not knowing the start: each step seen was sent work
            state.sends[step] = max(state.sends[step], state.done[step], 1)
    for targets in job_sends.values():  # what cluster jobs sent (once per job)
        for target in targets:
            state.sends[target] += 1
            if target in state.broadcast:
                state.done[target] += 1
    return state


def _recipe(data: dict[str, Any]) -> Recipe | None:
    try:
        return Recipe.from_dict(data)
    except Exception:  # a foreign or broken recipe: states from the events alone
        return None
