"""Rerun only the failed step of a run.

The message step N received is rebuilt from its dead letter (preferred: the DLQ copy is
consumed in the same transaction) or from the history database (the recorded input payload
and the run's recipe), with edited step ``parameters`` or ``payload`` if given. It starts a
new run (``environment.ID``) whose ``rerun-of`` names the original, at step N only: the
steps that succeeded are not repeated. Rerunning outside a test namespace (a prefix that
starts with ``test``) needs ``allow_namespace=True`` (``--allow-namespace`` on the command
line).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zocalo_nb.dispatch import RecipeMessage
from zocalo_nb.dispatch.context import deliver, outgoing_for
from zocalo_nb.dispatch.events import EVENTS_TOPIC, submitted
from zocalo_nb.dlq import guard
from zocalo_nb.dlq.actions import Edit, dead_letters, edited_body, take
from zocalo_nb.dlq.guard import NamespaceError
from zocalo_nb.dlq.letters import DeadLetter
from zocalo_nb.errors import RunError
from zocalo_nb.transport import Transport

SAFE_NAMESPACE = "test"


@dataclass(frozen=True)
class RerunPlan:
    """What a rerun will send (print it, or show it in a notebook, before sending)."""

    original: str
    step: int
    message: RecipeMessage
    source: str  # "dead letter" or "history"
    dead_letter: DeadLetter | None
    parameters: Mapping[str, Any]

    @property
    def run_id(self) -> str:
        return str(self.message.run_id)

    def __str__(self) -> str:
        step = self.message.recipe[self.step]
        lines = [
            f"rerun of step {self.step} of run {self.original} (from its {self.source})",
            f"  new run id  {self.run_id}",
            f"  queue       {step.queue or step.topic}",
            f"  parameters  {json.dumps(dict(step.parameters), default=str)[:300]}",
            f"  payload     {json.dumps(self.message.payload, default=str)[:300]}",
        ]
        if self.parameters:
            lines.append(f"  changed     {json.dumps(dict(self.parameters), default=str)}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def plan_rerun(
    run_id: str,
    step: int,
    *,
    transport: Transport | None = None,
    history: Any = None,
    parameters: Mapping[str, Any] | None = None,
    payload: Edit = None,
) -> RerunPlan:
    """Rebuild step ``step``'s input for a new attempt (see module docstring)."""
    letter = _dead_letter(transport, run_id, step) if transport is not None else None
    if letter is not None and letter.run:
        run_id = str(letter.run)  # the whole id, when a prefix was given
    source = "dead letter"
    if letter is None and history is not None:
        recorded = history.input_message(run_id, step).to_body()
        letter, source = DeadLetter("", {}, recorded, "history"), "history"
    if letter is None:
        raise RunError(
            f"step {step} of run {run_id} has no dead letter here and no history was given",
            run_id=run_id,
            step=step,
            hint="pass history=History(url) (the tracker records every step's input)",
        )
    # the same edit as a reinjection: payload replaced, step parameters merged
    original = RecipeMessage.from_body(edited_body(letter, payload, parameters))
    environment = {**original.environment, "ID": str(uuid.uuid4()), "rerun-of": run_id}
    message = RecipeMessage(original.recipe, step, original.payload, original.path, environment)
    dead = letter if source == "dead letter" else None
    return RerunPlan(run_id, step, message, source, dead, dict(parameters or {}))


def send_rerun(plan: RerunPlan, transport: Transport, *, allow_namespace: bool = False) -> str:
    """Send the rerun; returns the new run id."""
    prefix = transport.settings.prefix
    if not prefix.startswith(SAFE_NAMESPACE) and not allow_namespace:
        raise NamespaceError(
            f"this would rerun step {plan.step} in the namespace {prefix!r}, "
            f"not a {SAFE_NAMESPACE!r} one",
            hint="pass allow_namespace=True (--allow-namespace) if that is what you mean",
        )
    outgoing = outgoing_for(plan.message)
    guard.check(
        transport,
        guard.destinations("", plan.message.to_body()),
        allow=allow_namespace,
        action=f"rerunning step {plan.step}",
    )
    event = submitted(
        plan.run_id,
        plan.message.recipe.to_dict(),
        environment=plan.message.environment,
        parameters=plan.parameters,
        source="rerun",
    )
    event["start"] = [plan.step]
    event["rerun_of"] = plan.original

    def send(sender: Transport, letters: list[Any], tx: str) -> None:
        for out in outgoing:
            deliver(sender, out, tx)
        sender.broadcast(EVENTS_TOPIC, [event], transaction=tx)

    if plan.dead_letter is not None:
        moved = take(transport, [plan.dead_letter], lambda _t, letter: letter, send, verb="rerun")
        if not moved:
            raise RunError(
                f"the dead letter of step {plan.step} of run {plan.original} is gone",
                run_id=plan.original,
                step=plan.step,
                hint="someone reinjected or purged it meanwhile; plan the rerun again",
            )
    else:
        with transport.transaction(confirm=True) as tx:
            send(transport, [], tx)
    return plan.run_id


def _dead_letter(transport: Transport, run_id: str, step: int) -> DeadLetter | None:
    """The step's dead letter of the run ``run_id`` names (itself, or a unique prefix of it,
    as the demo prints run ids)."""
    found = [
        d for d in dead_letters(transport) if d.step == step and str(d.run or "").startswith(run_id)
    ]
    exact = [d for d in found if d.run == run_id]
    if exact:
        return exact[-1]
    runs = sorted({str(d.run) for d in found})
    if len(runs) > 1:
        raise RunError(
            f"{len(runs)} runs with a dead letter of step {step} start with {run_id!r}: "
            + ", ".join(runs[:5]),
            run_id=run_id,
            step=step,
            hint="give more of the id",
        )
    return found[-1] if found else None
