"""A run, as the notebook sees it: events, step states, the coloured graph, waiting, and why
nothing happened.

``zocalo_nb.submit(...)`` returns a :class:`Run`; ``Run.load(run_id, ...)`` opens one for a
run submitted elsewhere (from a live tap, or from the history database), as
``Recipe.load(path)`` opens a recipe.

Example::

    run = z.submit(recipe, {"dcid": 1234}, transport=t)
    run.wait(60)          # progress bar; returns the states
    run.summary()         # one row per step
    run.graph()           # coloured by state, with a legend
    run.explain()         # what is stuck, and why
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from zocalo_nb.dispatch import Submission
from zocalo_nb.errors import RunError, WaitTimeout
from zocalo_nb.monitor import frames
from zocalo_nb.monitor.explain import Explanation, explain
from zocalo_nb.monitor.records import Record
from zocalo_nb.monitor.runstate import RunState, run_state
from zocalo_nb.recipe import Recipe
from zocalo_nb.states import StepState
from zocalo_nb.transport import Transport

if TYPE_CHECKING:
    from zocalo_nb.monitor.history import History


class EventSource(Protocol):
    """Where a run's events come from: a live :class:`Tap` or the history database."""

    def event_records(self, run: str | None = None) -> list[Record]: ...


class Run:
    """One run (see module docstring). Cheap: every method reads the events afresh."""

    def __init__(
        self,
        run_id: str,
        source: EventSource,
        *,
        recipe: Recipe | None = None,
        transport: Transport | None = None,
        handle: Submission | None = None,
    ) -> None:
        self.id = run_id
        self.source = source
        self.transport = transport
        self.handle = handle
        self._recipe = recipe

    @classmethod
    def load(
        cls,
        run_id: str,
        *,
        transport: Transport | None = None,
        history: History | str | None = None,
    ) -> Run:
        """A run submitted elsewhere: from the history database when ``history`` (a
        :class:`History` or its URL) is given or no transport is, else from the transport's
        live tap (events from now on)."""
        from zocalo_nb.monitor.history import History as Store
        from zocalo_nb.monitor.tap import Tap

        source: EventSource
        if history is not None or transport is None:
            source = history if isinstance(history, Store) else Store(history)
        else:
            source = Tap.for_transport(transport)
        return cls(run_id, source, transport=transport)

    def __repr__(self) -> str:
        state = self._state()
        counts: dict[str, int] = {}
        for value in state.states().values():
            counts[value.value] = counts.get(value.value, 0) + 1
        text = ", ".join(f"{n} {name}" for name, n in counts.items()) or "no events yet"
        return f"<Run {self.id}: {'finished' if state.finished else 'in progress'}; {text}>"

    # -- reading ---------------------------------------------------------------------------
    def event_records(self) -> list[Record]:
        return self.source.event_records(self.id)

    def _state(self, events: list[Record] | None = None) -> RunState:
        state = run_state(self.event_records() if events is None else events, self._recipe)
        if self._recipe is None and state.recipe is not None:
            self._recipe = state.recipe
        return state

    @property
    def recipe(self) -> Recipe | None:
        """The run's recipe: as submitted here, or from its ``submitted`` event."""
        if self._recipe is None:
            self._state()
        return self._recipe

    @property
    def finished(self) -> bool:
        """True once every step that was sent work has finished it."""
        return self._state().finished

    def events(self) -> pd.DataFrame:
        """The run's lifecycle events, oldest first."""
        return frames.events_frame(self.event_records())

    def state(self) -> dict[int, StepState]:
        """The state of every step (pending, queued, running, succeeded, ...)."""
        return self._state().states()

    def summary(self) -> pd.DataFrame:
        """One row per step: queue, state, deliveries sent and finished, attempts, the total
        time its handlers took, last service and host, last error."""
        events = self.event_records()
        state = self._state(events)
        rows = []
        for step, value in state.states().items():
            mine = [e for e in events if e.get("step") == step]
            step_def = state.recipe.steps.get(step) if state.recipe is not None else None
            last = mine[-1] if mine else {}
            errors = [e["error"] for e in mine if isinstance(e.get("error"), dict)]
            rows.append(
                {
                    "step": step,
                    "queue": (step_def.queue or step_def.topic if step_def else None)
                    or last.get("queue"),
                    "state": value.value,
                    "sent": state.sends[step],
                    "finished": state.done[step],
                    "attempts": max((int(e.get("attempt") or 1) for e in mine), default=0),
                    "seconds": round(sum(float(e.get("duration") or 0.0) for e in mine), 3),
                    "service": last.get("service"),
                    "host": last.get("host"),
                    "error": errors[-1].get("message") if errors else None,
                }
            )
        frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
        frame["state"] = pd.Categorical(frame["state"], categories=[s.value for s in StepState])
        return frame

    def graph(self) -> RunGraph:
        """The recipe graph coloured by step state, with a legend (displays in Jupyter)."""
        recipe = self.recipe
        if recipe is None:
            raise RunError(
                f"the recipe of run {self.id} is not known here",
                run_id=self.id,
                hint="runs show their graph once their 'submitted' event was seen (tap or history)",
            )
        return RunGraph(recipe, self.state(), self.id)

    def explain(self) -> Explanation:
        """Why nothing (more) happened: unwired channels, queues nobody consumes, dead
        letters, services that stopped reporting, parameters left unresolved."""
        events = self.event_records()
        return explain(self, self._state(events), events)

    # -- waiting ---------------------------------------------------------------------------
    def wait(
        self, timeout: float = 60.0, *, progress: bool = True, poll: float = 0.1
    ) -> dict[int, StepState]:
        """Block until the run finished (or ``timeout``); returns the step states. A progress
        bar (tqdm) counts finished deliveries; raises TimeoutError with the explanation."""
        bar = _progress_bar(self.id) if progress else None
        deadline = time.monotonic() + timeout
        try:
            while True:
                state = self._state()
                if bar is not None:
                    _show_progress(bar, state)
                if state.finished:
                    return state.states()
                if time.monotonic() > deadline:
                    raise WaitTimeout(
                        f"run {self.id} did not finish within {timeout:g} s\n{self.explain()}",
                        hint="run.explain() says what it waits for",
                        what=f"run {self.id}",
                        seconds=timeout,
                    )
                time.sleep(poll)
        finally:
            if bar is not None:
                bar.close()

    def rerun(
        self,
        step: int,
        *,
        parameters: Mapping[str, Any] | None = None,
        payload: Any = None,
        send: bool = True,
        allow_namespace: bool = False,
        history: Any = None,
    ) -> Any:
        """Run step ``step`` again, from its dead letter or its recorded input, with edited
        ``parameters``/``payload``; the steps that succeeded are not repeated. Prints the
        preview; with ``send=False`` returns it (a RerunPlan) without sending, else returns
        the new attempt's Run (its ``environment`` says ``rerun-of`` this run)."""
        from zocalo_nb.dlq.rerun import plan_rerun, send_rerun
        from zocalo_nb.monitor.history import History

        if history is None and isinstance(self.source, History):
            history = self.source
        plan = plan_rerun(
            self.id,
            step,
            transport=self.transport,
            history=history,
            parameters=parameters,
            payload=payload,
        )
        print(plan)
        if not send:
            return plan
        if self.transport is None:
            raise RunError(
                "a rerun needs a transport to send with",
                run_id=self.id,
                hint="open the run with zocalo_nb.run(run_id, transport=t, history=...)",
            )
        new_id = send_rerun(plan, self.transport, allow_namespace=allow_namespace)
        source = self.source if not isinstance(self.source, History) else None
        if source is None:
            from zocalo_nb.monitor.tap import Tap

            source = Tap.for_transport(self.transport)
        return Run(new_id, source, recipe=plan.message.recipe, transport=self.transport)

    def timeline(self) -> Any:
        """One bar per attempt of each step, coloured by outcome (matplotlib Figure; the
        ``plots`` extra)."""
        from zocalo_nb.monitor.plots import timeline

        return timeline(self.events(), title=f"run {self.id[:8]}")

    def jobs(self) -> pd.DataFrame:
        """The run's cluster jobs, one row each (id, scheduler, step, state, exit code,
        node, times, log paths), as the cluster service's watcher last reported them."""
        return frames.jobs_frame(self.event_records())

    def cancel(self, scheduler: Any) -> list[str]:
        """Cancel the run's jobs that are still queued or running on ``scheduler`` (a
        :class:`zocalo_nb.cluster.Scheduler`); returns their ids. The watcher then reports
        each as cancelled, with a failure on the step's failure channel."""
        jobs = self.jobs()
        live = jobs[
            jobs["job_state"].isin(["queued", "running"]) & (jobs["scheduler"] == scheduler.name)
        ]
        ids = [str(j) for j in live["jobid"]]
        if ids:
            scheduler.cancel(ids)
        return ids

    def live(self, interval: float = 0.5) -> Any:
        """Show the run in the notebook (graph + table), refreshed until it finishes."""
        from zocalo_nb.monitor.live import LiveRun

        return LiveRun(self, interval=interval).start()


SUMMARY_COLUMNS = (
    "step",
    "queue",
    "state",
    "sent",
    "finished",
    "attempts",
    "seconds",
    "service",
    "host",
    "error",
)


class RunGraph:
    """A recipe graph coloured by the states of a run; SVG in Jupyter, ``.render(path)``."""

    def __init__(self, recipe: Recipe, states: Mapping[int, StepState], run_id: str) -> None:
        self.recipe, self.states, self.run_id = recipe, dict(states), run_id

    def __repr__(self) -> str:
        return f"<RunGraph {self.run_id}: {len(self.states)} steps>"

    def to_dot(self) -> str:
        return self.recipe.to_dot(self.states, title=f"run {self.run_id}")

    def render(self, path: Any) -> Any:
        """Write the graph to ``path`` (.svg, .png, .pdf or .dot)."""
        return self.recipe.render(path, self.states)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from zocalo_nb.render.display import mimebundle

        return mimebundle(self.recipe, states=self.states, include=include, exclude=exclude)


def _progress_bar(run_id: str) -> Any:
    """A bar of the run's steps (a total that does not grow as work is found), no rate (steps
    per second mean nothing here); off when the output is a log, not a terminal or notebook
    (no carriage-return garbage)."""
    import sys

    from tqdm.auto import tqdm

    from zocalo_nb.render.display import in_notebook

    shown = in_notebook() or sys.stderr.isatty()
    return tqdm(
        total=1,
        desc=f"run {run_id[:8]}",
        unit="step",
        leave=True,
        disable=not shown,
        bar_format="{desc}: {n}/{total} steps |{bar}| {elapsed}",
    )


def _show_progress(bar: Any, state: RunState) -> None:
    """Steps of the recipe that are over (finished, or never to run once the run is)."""
    states = state.states()
    over = {StepState.SUCCEEDED, StepState.DEAD_LETTERED, StepState.SKIPPED, StepState.NOT_RERUN}
    bar.total = max(len(states), 1)
    bar.n = min(sum(1 for s in states.values() if s in over), bar.total)
    bar.refresh()
