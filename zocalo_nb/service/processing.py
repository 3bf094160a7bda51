"""Handling received messages so that nothing is lost and nothing is done twice.

For a batch of messages, every handler runs first (its sends are collected, not sent), and
what they asked to send is encoded and checked there and then; then one transaction carries,
for each message, its ack plus either its outputs and events, or a retry copy, or its dead
letter. The broker commits all of it or none (the commit is confirmed by the broker): a crash
or a failed commit leaves every message of the batch unacked, and the broker hands it out
again. A failure of any kind while committing hands back the whole batch before anything
else is acked on its subscriptions.

Counting, so that a bad message ends in the DLQ instead of looping forever:

- ``zocalo-nb-attempt``: handler failures. A handler that raises (anything, ``SystemExit``
  included), or whose outputs cannot be encoded, is retried (ack + re-send with a delay, in
  one transaction) until ``max_attempts``; then the message is dead-lettered with the error
  type, message, a truncated traceback, service, host and attempts in its headers.
- ``zocalo-nb-redeliveries``: crashes and disconnects. The broker marks such messages
  ``redelivered`` but (ActiveMQ over STOMP) gives no count. A crash or a stop hands back
  every message the consumer *held*, most of them never started, so a message redelivered
  from its queue is not blamed: it is re-sent, uncounted, to the quarantine queue
  ``<queue>.suspects``, which each runner consumes one message at a time on a thread of its
  own (prefetch 1, handled at once). A message redelivered *from the quarantine queue* was
  in hand when its consumer died: that is counted, and past ``max_redeliveries`` it is
  dead-lettered. A message that kills its service every time therefore ends in the DLQ, and
  its innocent neighbours are not blamed.
- Messages that are not JSON, not recipe messages, or point at a missing step are
  dead-lettered at once with the reason; so is a handler that raises :class:`Reject`, and a
  message that cannot be processed for any reason of its own (it does not take the other
  messages of its batch with it).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
from typing import Any

from zocalo_nb.dispatch import MessageContext, NotARecipeMessage, RecipeMessage, StepContext
from zocalo_nb.dispatch.events import input_payload
from zocalo_nb.service.policies import (
    CrashPolicy,
    CrashQuarantine,
    DeadLetters,
    Delivery,
    MessageCommit,
    Retries,
    as_count,
    error_name,
    one_line,
)
from zocalo_nb.service.service import HandlerTimeout, Reject, Service
from zocalo_nb.service.watch import SlowWatch
from zocalo_nb.transport import Message, RawBody, Transport
from zocalo_nb.wire.events import EVENTS_TOPIC, EventState
from zocalo_nb.wire.headers import ATTEMPT, DEAD_LETTERED_AT, DLQ_HEADERS, REDELIVERIES
from zocalo_nb.wire.queues import SUSPECTS, home_queue, suspect_queue

log = logging.getLogger(__name__)
__all__ = [  # and the wire names services have always offered here
    "ATTEMPT",
    "DEAD_LETTERED_AT",
    "DLQ_HEADERS",
    "REDELIVERIES",
    "SUSPECTS",
    "MessageCommit",
    "Processor",
    "home_queue",
    "suspect_queue",
]


class Processor:
    """Runs handlers and commits their results (see module docstring). Thread-safe.

    ``confirm``: wait for the broker to confirm each commit (a STOMP receipt), so a commit
    the broker refuses is noticed and its messages handed back.
    """

    def __init__(
        self,
        transport: Transport,
        host: str,
        *,
        events: bool = True,
        announce_after: float = 0.5,
        cumulative_acks: bool = False,
        confirm: bool = True,
        crashes: CrashPolicy | None = None,
    ) -> None:
        self.transport = transport
        self.dead_letters = DeadLetters(transport, host)
        self.retries = Retries(transport, self.dead_letters)
        #: What a redelivery after a crash becomes (the broker's own counts, where it has them).
        self.crashes: CrashPolicy = crashes or CrashQuarantine(transport, self.dead_letters)
        self.cumulative_acks = cumulative_acks
        self.confirm = confirm
        self.host = host
        self.events = events
        self.announce_after = announce_after
        self.handled = 0
        self._watch = SlowWatch(announce_after, self._received) if announce_after > 0 else None

    def close(self) -> None:
        """Stop the thread that announces slow handlers."""
        if self._watch is not None:
            self._watch.close()

    def handle_batch(self, batch: list[tuple[Service, Message]]) -> None:
        """Handle messages and commit everything in one transaction. Never raises for an
        ordinary failure: what was not committed is handed back to the broker."""
        outcomes = [self.handle(service, message) for service, message in batch]
        queued = [o.message for o in outcomes if o.message.destination.startswith("/queue/")]
        acks = queued
        if self.cumulative_acks:  # the last message of each subscription acks the others
            acks = list({m.subscription: m for m in queued}.values())
        events = [
            text
            for outcome, (service, _) in zip(outcomes, batch, strict=True)
            if service.events
            for text in outcome.events
        ]
        acked: list[Message] = []
        written = False
        try:
            with self.transport.transaction(confirm=self.confirm) as tx:
                for outcome in outcomes:
                    for prepared, delay in outcome.sends:
                        self.transport.send_prepared(prepared, delay=delay, transaction=tx)
                for message in acks:
                    self.transport.ack(message, transaction=tx)
                    acked.append(message)
                if self.events and events:
                    frame = self.transport.prepare(
                        "topic", EVENTS_TOPIC, RawBody("[" + ",".join(events) + "]")
                    )
                    self.transport.send_prepared(frame, transaction=tx)
                written = True
        except BaseException as err:
            # Nothing is known to be committed. The abort (when the failure came before the
            # commit) nacked what the transaction acked; hand back the rest too, before any
            # later cumulative ack on their subscriptions could take them without outputs.
            handed_back = acked if not written else []
            for message in queued:
                if message not in handed_back:
                    with contextlib.suppress(Exception):
                        self.transport.nack(message)
            log.warning(
                "could not commit %d message(s), handed them back: %s",
                len(outcomes),
                one_line(err),
            )
            if not isinstance(err, Exception):
                raise
            return
        self.handled += len(outcomes)

    # -- one message -----------------------------------------------------------------------
    def handle(self, service: Service, message: Message) -> MessageCommit:
        """Run the handler for one message and decide what its transaction carries. Never
        raises: a message that cannot be processed is dead-lettered with the reason."""
        try:
            return self._handle(service, message)
        except Exception as err:
            log.exception("cannot process message %s", message.message_id)
            return self.dead_letters.last_resort(service, message, err)

    def _handle(self, service: Service, message: Message) -> MessageCommit:
        attempt = max(1, as_count(message.headers.get(ATTEMPT), 1))
        redeliveries = max(0, as_count(message.headers.get(REDELIVERIES), 0))
        info = Delivery(service, message, self.host, attempt)
        if not message.is_json:
            return self.dead_letters.dead(info, "the body is not JSON")
        ctx: MessageContext
        payload: Any = message.body
        if service.recipe:
            try:
                parsed = RecipeMessage.from_body(message.body, message.headers, text=message.text)
            except NotARecipeMessage as err:
                return self.dead_letters.dead(info, f"not a recipe message: {err.reason}")
            if parsed.pointer in parsed.path:  # a loop multiplies messages on every turn
                return self.dead_letters.dead(
                    info,
                    f"not a recipe message: step {parsed.pointer} is already on its path "
                    f"{list(parsed.path)[:20]} (recipes are acyclic; a step that must come "
                    "back to itself uses checkpoint)",
                )
            ctx = StepContext(parsed, message.headers, transport=self.transport)
            payload = parsed.payload
            info.run, info.step = parsed.run_id, parsed.pointer
            info.recorded = {
                "payload": input_payload(parsed.payload, decoded_from=len(message.text) or None),
                "path": list(parsed.path),
            }
            limit = as_count(
                parsed.recipe[parsed.pointer].fields.get("max-attempts"), service.max_attempts
            )
        else:
            ctx = MessageContext(message.headers)
            limit = service.max_attempts
        limit = max(1, limit)
        if message.redelivered:
            return self.crashes.redelivered(info, redeliveries)
        announce = self.events and service.events
        watch = self._watch if announce else None
        if announce and watch is None:
            self._received(info)
        elif watch is not None:
            watch.start(id(info), info)
        started = time.time()
        try:
            if service.handler_timeout is None:
                service.handler(ctx, payload)
            else:
                _within(service, ctx, payload)
            sends = [
                (self.transport.prepare(o.kind, o.destination, o.body, o.headers), o.delay)  # type: ignore[arg-type]
                for o in ctx.outbox
            ]
        except Reject as err:
            return self.dead_letters.dead(info, f"rejected: {err.message}", err, started=started)
        except BaseException as err:  # SystemExit from a handler must not end the worker
            if not isinstance(err, Exception):
                log.error(
                    "handler of %s raised %s: treated as a failure", service.name, error_name(err)
                )
            return self.retries.failed(info, err, started, limit)
        finally:
            if watch is not None:
                watch.done(id(info))
        outcome = MessageCommit(message, sends)
        for unwired in ctx.unwired:
            outcome.events.append(info.event(EventState.UNWIRED_SEND, channel=unwired.channel))
        sent_to = sorted(
            {
                out.body["recipe-pointer"]
                for out in ctx.outbox
                if isinstance(out.body, dict) and "recipe-pointer" in out.body
            }
        )
        outcome.events.append(info.event(EventState.SUCCEEDED, started=started, sent_to=sent_to))
        return outcome

    def _received(self, info: Any) -> None:
        # Best effort: the terminal event travels with the transaction anyway.
        with contextlib.suppress(Exception):
            self.transport.broadcast(EVENTS_TOPIC, RawBody(f"[{info.event(EventState.RECEIVED)}]"))


def _within(service: Service, ctx: Any, payload: Any) -> None:
    """Run the handler on a thread of its own and wait at most ``handler_timeout`` seconds;
    past that, interrupt it if it runs Python code, abandon it, raise HandlerTimeout."""
    limit = float(service.handler_timeout or 0)
    outcome: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            service.handler(ctx, payload)
        except BaseException as err:
            outcome.append(err)
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True, name=f"zocalo-nb-handler-{service.name}")
    thread.start()
    if not done.wait(limit):
        if thread.ident is not None:  # stops a Python loop; a blocking call finishes first
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(thread.ident), ctypes.py_object(HandlerTimeout)
            )
        log.error("handler of %s ran past %g s: abandoned", service.name, limit)
        raise HandlerTimeout(
            f"the handler of {service.name} ran longer than {limit:g} s",
            hint="raise the service's handler_timeout, or make the step faster",
        )
    if outcome:
        raise outcome[0]
