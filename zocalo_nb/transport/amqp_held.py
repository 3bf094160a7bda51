"""The deliveries an AMQP connection has handed out and not yet settled, by subscription:
which delivery tags an ack settles, and when one ``multiple`` ack can settle them all.
Used only on the transport's I/O thread."""

from __future__ import annotations

from zocalo_nb.transport.base import TransportError
from zocalo_nb.transport.message import Message


class HeldDeliveries:
    """Delivery tags held per subscription on the current connection (see module docstring)."""

    def __init__(self) -> None:
        self._held: dict[str, list[int]] = {}
        #: Which connection the tags belong to (a tag means nothing on another).
        self.generation = 0

    def new_connection(self) -> None:
        """A new connection: nothing is held on it, earlier tags are void."""
        self._held.clear()
        self.generation += 1

    def watch(self, subscription: str) -> None:
        self._held[subscription] = []

    def hold(self, subscription: str, tag: int) -> None:
        self._held[subscription].append(tag)

    def release(self, subscription: str) -> list[int]:
        """Every tag the subscription holds (it is cancelled: they go back to the queue)."""
        return self._held.pop(subscription, [])

    def take(self, message: Message, cumulative: bool) -> tuple[list[int], bool]:
        """The delivery tags an ack of ``message`` settles (taken out of the held list; none
        when already settled), and whether one ``multiple`` ack of the last settles them all:
        no other subscription on the channel holds an earlier tag. TransportError for a
        message from an earlier connection."""
        generation, _, tag_text = message.ack_id.partition(":")
        if tag_text and int(generation) != self.generation:
            raise TransportError(
                f"message {message.message_id} came on a connection that was lost since: "
                "RabbitMQ hands it out again",
                hint="nothing to do: this transaction is dropped and the message redelivered",
            )
        held = self._held.get(message.subscription)
        if held is None or not tag_text:
            return [], False
        tag = int(tag_text)
        if tag not in held:
            return [], False
        taken = [t for t in held if t <= tag] if cumulative else [tag]
        self._held[message.subscription] = [t for t in held if t not in taken]
        others = (t for s, tags in self._held.items() if s != message.subscription for t in tags)
        return taken, len(taken) > 1 and all(t > tag for t in others)
