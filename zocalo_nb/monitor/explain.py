"""``run.explain()``: why a run did not (yet) finish, in sentences with a hint each."""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from zocalo_nb.monitor.frames import latest_status
from zocalo_nb.monitor.records import Record
from zocalo_nb.monitor.runstate import RunState
from zocalo_nb.service.status import STATUS_EXPIRY, ServiceStatus
from zocalo_nb.states import StepState
from zocalo_nb.transport import TransportError
from zocalo_nb.wire.events import EventState
from zocalo_nb.wire.queues import home_queue

if TYPE_CHECKING:
    from zocalo_nb.monitor.run import Run


@dataclass(frozen=True)
class Reason:
    """One finding: what (``kind``), where (``step``), and what to do (``hint``)."""

    kind: str
    step: int | None
    message: str
    hint: str

    def __str__(self) -> str:
        where = f"step {self.step}: " if self.step is not None else ""
        return f"- {where}{self.message}\n  hint: {self.hint}"


class Explanation(list[Reason]):
    """The reasons found (a list); prints as text and shows as a table in Jupyter."""

    def __init__(self, run_id: str, finished: bool, reasons: list[Reason]) -> None:
        super().__init__(reasons)
        self.run_id, self.finished = run_id, finished

    def kinds(self) -> list[str]:
        return [r.kind for r in self]

    def __str__(self) -> str:
        head = f"run {self.run_id} {'finished' if self.finished else 'has not finished'}"
        if not self:
            return head + ("." if self.finished else ": nothing wrong found (yet); steps queued")
        return head + ":\n" + "\n".join(map(str, self))

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{r.kind}</td><td>{'' if r.step is None else r.step}</td>"
            f"<td>{escape(r.message)}</td><td>{escape(r.hint)}</td></tr>"
            for r in self
        )
        return (
            f"<p>{escape(str(self).splitlines()[0])}</p><table><thead><tr><th>what</th>"
            f"<th>step</th><th>why</th><th>hint</th></tr></thead><tbody>{rows}</tbody></table>"
        )


def explain(run: Run, state: RunState, events: list[Record]) -> Explanation:
    """The reasons (see module docstring), most telling first; ``events`` are the run's."""
    reasons: list[Reason] = []
    recipe = state.recipe
    for record in events:
        if record.get("state") != EventState.UNWIRED_SEND:
            continue
        step, channel = record.get("step"), str(record.get("channel") or "")
        known = recipe is not None and isinstance(step, int) and step in recipe.steps
        wired = sorted(recipe.steps[step].outputs()) if known else []  # type: ignore[union-attr,index]
        close = difflib.get_close_matches(channel, [w for w in wired if w], n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"wire it in the recipe (wired: {wired})"
        reasons.append(
            Reason(
                EventState.UNWIRED_SEND,
                step if isinstance(step, int) else None,
                f"sent on channel {channel!r}, which the recipe does not wire: it went nowhere",
                hint,
            )
        )
    reruns_of = getattr(run.source, "reruns_of", None)  # the history knows; a live tap not
    reruns: list[str] = reruns_of(run.id) if callable(reruns_of) else []
    for record in events:
        if record.get("state") == EventState.DEAD_LETTERED:
            error = record.get("error") or {}
            queue = home_queue(str(record.get("queue") or ""))
            if record.get("dlq"):  # where the service put it (each broker names DLQs its way)
                where = str(record["dlq"]).removeprefix("/queue/")
            elif run.transport is not None and queue.startswith("/queue/"):
                where = run.transport.dlq(queue).removeprefix("/queue/")
            else:
                where = f"DLQ.{queue.split('/')[-1]}"
            what = f"{error.get('type')}: {error.get('message')}" if error else record.get("reason")
            reasons.append(
                Reason(
                    EventState.DEAD_LETTERED,
                    record.get("step"),
                    f"dead-lettered by {record.get('service')}: {what}",
                    f"rerun since as {', '.join(reruns)} (zocalo-nb run {reruns[-1][:8]})"
                    if reruns
                    else f"its message waits in {where}; fix the cause, then rerun the step",
                )
            )
    states = state.states()
    transport = run.transport
    for step, value in states.items():
        if value != StepState.QUEUED or recipe is None or step not in recipe.steps:
            continue
        step_queue = recipe.steps[step].queue
        if not step_queue or transport is None:
            continue
        try:
            consumers = transport.statistics(step_queue).consumers
        except TransportError:
            continue
        if consumers == 0:
            reasons.append(
                Reason(
                    "no-consumer",
                    step,
                    f"waits in queue {step_queue!r}, which nothing consumes",
                    "start a service for it "
                    f"(zocalo-nb service NAME, ZOCALO_NB_QUEUES={step_queue})",
                )
            )
    if not state.finished:  # a finished run does not need its services any more
        reasons += _silent_services(run, state)
    if recipe is not None:
        for finding in recipe.lint({}):
            if finding.kind == "unresolved":
                reasons.append(
                    Reason(
                        "unresolved-parameter",
                        finding.step if isinstance(finding.step, int) else None,
                        finding.message,
                        "pass the parameter when submitting (parameters={...})",
                    )
                )
    return Explanation(run.id, state.finished, reasons)


def _silent_services(run: Run, state: RunState) -> list[Reason]:
    """Service processes that stopped reporting their status and that this run needs: those
    that handled its steps, and those that consumed the queues its waiting steps wait in
    (known from the events of any run the tap has seen)."""
    records = getattr(run.source, "status_records", None)
    if records is None:
        return []
    latest = latest_status(records())
    waiting = {
        step.queue
        for step_id, value in state.states().items()
        if value == StepState.QUEUED
        and state.recipe is not None
        and (step := state.recipe.steps.get(step_id)) is not None
        and step.queue
    }
    needed: dict[tuple[str, str], str] = {}  # (host, service): why this run needs it
    for event in run.source.event_records(None):
        key = (str(event.get("host") or ""), str(event.get("service") or ""))
        queue = home_queue(str(event.get("queue") or ""))
        if event.get("run") == run.id:
            needed.setdefault(key, "it handled this run")
        elif any(queue.endswith(f".{name}") or queue == f"/queue/{name}" for name in waiting):
            needed.setdefault(key, f"it consumed {queue.split('/')[-1]}, where a step waits")
    reasons = []
    now = time.time()
    for (host, service), why_needed in needed.items():
        # a runner's status names its services joined with "+" ("one+end")
        seen = next(
            (r for (h, names), r in latest.items() if h == host and service in names.split("+")),
            None,
        )
        if seen is None:
            continue
        age = now - float(seen.get("arrived") or now)
        ended = seen.get("status") in (ServiceStatus.END, ServiceStatus.SHUTDOWN)
        if ended or age > STATUS_EXPIRY:
            gone = "shut down" if ended else f"has not reported for {age:.0f} s"
            reasons.append(
                Reason(
                    "service-gone",
                    None,
                    f"service {seen.get('service')} on {host} {gone} ({why_needed})",
                    "start it again; its unfinished messages wait in its queue",
                )
            )
    return reasons
