"""Declaring a service: the queues and topics it consumes and the handler that does its step.

Example::

    def find_spots(ctx: StepContext, payload):
        ctx.send({"spots": count_spots(ctx.parameters["image"])})

    spotfinder = Service("spotfinder", queues=("per_image_analysis",), handler=find_spots)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zocalo_nb.errors import InvalidArgument, ZocaloNbError

if TYPE_CHECKING:
    from zocalo_nb.transport import Transport

Handler = Callable[[Any, Any], None]


class Reject(ZocaloNbError):
    """Raise in a handler to send the message straight to the DLQ (no retries), with a reason."""


class HandlerTimeout(ZocaloNbError, TimeoutError):
    """A handler ran past its service's ``handler_timeout``: a failure like any other (retried,
    then dead-lettered); the handler's thread is abandoned and its sends never happen."""


@dataclass(frozen=True)
class Service:
    """A long-running consumer doing one step.

    ``handler(ctx, payload)`` gets a :class:`~zocalo_nb.dispatch.StepContext` (recipe
    messages) or, with ``recipe=False``, a :class:`~zocalo_nb.dispatch.MessageContext` and the
    raw body. A handler that raises is retried ``max_attempts - 1`` times with exponential
    ``backoff`` (seconds), then dead-lettered; a recipe step can override the limit with a
    ``"max-attempts"`` field.
    """

    name: str
    handler: Handler
    queues: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    recipe: bool = True
    max_attempts: int = 3
    #: Crashes/disconnects a message may survive before it is dead-lettered.
    max_redeliveries: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    description: str = ""
    #: At most this many messages per transaction (None: the runner's batch). Jobs use 1, so
    #: each result is delivered as soon as it is ready.
    batch: int | None = None
    #: Called when the runner hosting the service starts (start pools...), and when it stops
    #: (release pools, files...).
    open: Callable[[], object] | None = None
    close: Callable[[], None] | None = None
    #: Called with the runner's transport once it is connected: background work of the
    #: service (a job watcher) sends through it; ``close`` stops that work.
    attach: Callable[[Transport], object] | None = None
    #: Emit lifecycle events for its messages (off for monitors such as the tracker, whose
    #: input is the events topic itself).
    events: bool = True
    #: Seconds a handler may run (None: no limit). Past it the message counts as failed
    #: (HandlerTimeout) and the worker goes on; the stuck handler is abandoned (a Python loop
    #: is interrupted, a blocking call left to finish) and nothing it sends is delivered.
    #: Long jobs (wrappers) run without one: their own ``timeout`` parameter applies.
    handler_timeout: float | None = None

    def __post_init__(self) -> None:
        if not self.queues and not self.topics:
            raise InvalidArgument(
                f"service {self.name!r} consumes nothing",
                name="queues",
                hint="give it queues=(...) and/or topics=(...)",
            )
        if self.handler_timeout is not None and not self.handler_timeout > 0:
            raise InvalidArgument(
                f"service {self.name!r}: handler_timeout must be a positive number of seconds",
                name="handler_timeout",
                value=self.handler_timeout,
                hint="e.g. handler_timeout=300, or None for no limit",
            )
        if self.max_attempts < 1:
            raise InvalidArgument(
                f"service {self.name!r}: max_attempts must be at least 1",
                name="max_attempts",
                value=self.max_attempts,
                hint="1 means no retries",
            )

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        doublings = min(max(attempt - 1, 0), 64)  # 2**64 s is past any max_backoff
        return float(min(self.max_backoff, self.backoff * 2.0**doublings))
