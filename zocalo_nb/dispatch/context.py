"""StepContext: the one way services, wrappers and notebooks move along a recipe.

Everything a handler sends is collected in an outbox and sent by the service runner inside
the same broker transaction as the ack of the incoming message: all of it happens, or none.
Sending on a channel the recipe does not wire is recorded as a warning and logged with the
run id, never silently dropped.

Example (inside a service handler)::

    def handle(ctx: StepContext, payload):
        result = analyse(ctx.parameters["image"])
        ctx.send_to("success", {"spots": result})
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zocalo_nb.dispatch.envelope import RECIPE_HEADER, RecipeMessage
from zocalo_nb.dispatch.events import EVENTS_TOPIC, submitted
from zocalo_nb.recipe import Recipe, Step
from zocalo_nb.recipe.links import PLAIN
from zocalo_nb.transport import Transport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    """One message a handler asked to send: a queue or topic, a body, headers, a delay."""

    kind: str  # "queue" or "topic"
    destination: str
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float | None = None


def deliver(transport: Transport, out: Outgoing, transaction: str | None = None) -> None:
    """Send one collected message on ``transport`` (queue or topic), in ``transaction``."""
    send = transport.send if out.kind == "queue" else transport.broadcast
    send(out.destination, out.body, headers=out.headers, delay=out.delay, transaction=transaction)


@dataclass(frozen=True)
class UnwiredSend:
    """A send on a channel that leads nowhere in the recipe."""

    step: int
    channel: str
    run_id: str | None


class MessageContext:
    """What a handler of plain (non-recipe) messages gets: headers and an outbox."""

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        self.headers = dict(headers or {})
        self.outbox: list[Outgoing] = []
        self.unwired: list[UnwiredSend] = []

    @property
    def run_id(self) -> str | None:
        return None

    def send_message(
        self,
        queue: str,
        body: Any,
        *,
        headers: Mapping[str, str] | None = None,
        delay: float | None = None,
    ) -> None:
        """Send a plain message to ``queue`` when the incoming one is committed."""
        self.outbox.append(Outgoing("queue", queue, body, dict(headers or {}), delay))

    def broadcast(self, topic: str, body: Any, *, headers: Mapping[str, str] | None = None) -> None:
        """Broadcast a plain message on ``topic`` when the incoming one is committed."""
        self.outbox.append(Outgoing("topic", topic, body, dict(headers or {})))

    def start(
        self,
        recipe: Recipe,
        *,
        environment: Mapping[str, Any] | None = None,
        parameters: Mapping[str, Any] | None = None,
        source: str = "service",
    ) -> str:
        """Start a recipe (validated) when the incoming message is committed; returns its run
        id. A ``submitted`` event (with ``parameters``, the request's) goes with it."""
        run_id, messages = start_messages(recipe, environment=environment)
        self.outbox += messages
        self.outbox.append(submitted_outgoing(run_id, recipe, messages, parameters, source))
        return run_id


class StepContext(MessageContext):
    """The current step of a recipe message, and how to send along the recipe."""

    def __init__(
        self,
        message: RecipeMessage,
        headers: Mapping[str, str] | None = None,
        *,
        transport: Transport | None = None,
    ) -> None:
        super().__init__(headers)
        self.message = message
        #: Where :meth:`send_now` sends at once (set by the service runner); None: the outbox.
        self.transport = transport
        #: The named channel that :meth:`send` uses on a step with named outputs (upstream's
        #: ``set_default_channel``); None: such a send goes nowhere (reported as unwired).
        self.default_channel: str | None = None

    # -- what the step is ------------------------------------------------------------------
    @property
    def recipe(self) -> Recipe:
        return self.message.recipe

    @property
    def step_id(self) -> int:
        return self.message.pointer

    @property
    def step(self) -> Step:
        return self.message.recipe[self.message.pointer]

    @property
    def parameters(self) -> Mapping[str, Any]:
        """The step's parameters (read-only)."""
        return self.step.parameters

    @property
    def payload(self) -> Any:
        return self.message.payload

    @property
    def environment(self) -> Mapping[str, Any]:
        return self.message.environment

    @property
    def run_id(self) -> str | None:
        return self.message.run_id

    @property
    def path(self) -> tuple[int, ...]:
        return self.message.path

    def __repr__(self) -> str:
        return f"<StepContext run={self.run_id} step={self.step_id} queue={self.step.queue}>"

    # -- moving on -------------------------------------------------------------------------
    def set_default_channel(self, channel: str) -> None:
        """Make ``channel`` the same as the plain outputs, as upstream's RecipeWrapper does:
        on a step with named outputs :meth:`send` sends on ``channel``; on a step with plain
        outputs ``send_to(channel)`` sends on them."""
        self.default_channel = channel

    def send(self, payload: Any, *, delay: float | None = None) -> int:
        """Send ``payload`` on the plain outputs (on a step with named outputs: on the
        default channel, see :meth:`set_default_channel`); returns how many steps it went to."""
        if self.default_channel is not None and PLAIN not in self.step.outputs():
            return self.send_to(self.default_channel, payload, delay=delay)
        return self.send_to(PLAIN, payload, delay=delay)

    def send_to(
        self, channel: str, payload: Any, *, delay: float | None = None, optional: bool = False
    ) -> int:
        """Send ``payload`` to the steps wired to ``channel`` (``""`` for plain outputs).

        Upstream semantics: a step with plain outputs ignores named channels, a step with
        named outputs ignores plain sends. Either way the unwired send is recorded, unless
        ``optional`` (channels a recipe may leave unwired, such as a wrapper's ``starting``).
        """
        outputs = self.step.outputs()
        if channel and channel == self.default_channel and PLAIN in outputs:
            channel = PLAIN
        targets = outputs.get(channel, ())
        if not targets:
            if optional:
                log.debug(
                    "run %s step %s: optional channel %r not wired",
                    self.run_id,
                    self.step_id,
                    channel,
                )
            else:
                self._unwired(channel)
            return 0
        for target in targets:
            self._to_step(target, payload, path=(*self.message.path, self.step_id), delay=delay)
        return len(targets)

    def send_now(self, channel: str, payload: Any, *, optional: bool = False) -> int:
        """Send progress on ``channel`` at once, outside the transaction of this message.

        For reports a long job makes while it runs (``starting``, ``updates``): they reach
        the next steps now, not when the job ends. They are not taken back if the job later
        fails or its runner dies (a re-run reports again). Without a live transport (tests,
        ``zocalo-nb wrap``), this is :meth:`send_to`.
        """
        if self.transport is None:
            return self.send_to(channel, payload, optional=optional)
        before = len(self.outbox)
        sent = self.send_to(channel, payload, optional=optional)
        now, self.outbox[before:] = self.outbox[before:], []
        for out in now:
            deliver(self.transport, out)
        return sent

    def checkpoint(self, payload: Any, *, delay: float = 0) -> None:
        """Send ``payload`` back to this same step (the path is not extended), after
        ``delay`` seconds: as upstream, a checkpoint ignores the step's ``transport-delay``."""
        self._to_step(self.step_id, payload, path=self.message.path, delay=delay)

    def _to_step(
        self, target: int, payload: Any, *, path: tuple[int, ...], delay: float | None
    ) -> None:
        message = RecipeMessage(
            self.message.recipe, target, payload, path, self.message.environment
        )
        self.outbox += outgoing_for(message, delay=delay)

    def _unwired(self, channel: str) -> None:
        self.unwired.append(UnwiredSend(self.step_id, channel, self.run_id))
        log.warning(
            "run %s step %s: send on channel %r goes nowhere (not wired in the recipe)",
            self.run_id,
            self.step_id,
            channel or "(plain)",
        )


def outgoing_for(
    message: RecipeMessage, *, delay: float | None = None, to_send: bool = True
) -> list[Outgoing]:
    """The messages that deliver ``message`` to its step's queue and/or topic. ``to_send``
    (what services do): bodies made to be encoded at once (:meth:`RecipeMessage.to_body`);
    else plain dicts, for messages shown or changed before they are sent."""
    step = message.recipe[message.pointer]
    if delay is None:
        delay = step.transport_delay
    body = message.to_body(to_send=to_send)
    headers = {RECIPE_HEADER: "True"}
    sent = []
    if step.queue:
        sent.append(Outgoing("queue", step.queue, body, headers, delay))
    if step.topic:
        sent.append(Outgoing("topic", step.topic, body, headers, delay))
    return sent


def submitted_outgoing(
    run_id: str,
    recipe: Recipe,
    messages: list[Outgoing],
    parameters: Mapping[str, Any] | None,
    source: str,
) -> Outgoing:
    """The ``submitted`` event for a run started by ``messages``, ready to send with them."""
    environment = messages[0].body.get("environment", {}) if messages else {"ID": run_id}
    body = submitted(
        run_id, recipe.to_dict(), environment=environment, parameters=parameters, source=source
    )
    return Outgoing("topic", EVENTS_TOPIC, [body], {})


def start_messages(
    recipe: Recipe, *, environment: Mapping[str, Any] | None = None, run_id: str | None = None
) -> tuple[str, list[Outgoing]]:
    """Validate ``recipe`` and build the messages that start it; returns (run id, messages)."""
    recipe.validate()
    env = dict(environment or {})
    env.setdefault("ID", run_id or str(uuid.uuid4()))
    messages: list[Outgoing] = []
    for step, payload in recipe.start:
        messages += outgoing_for(RecipeMessage(recipe, step, payload, (), env), to_send=False)
    return str(env["ID"]), messages
