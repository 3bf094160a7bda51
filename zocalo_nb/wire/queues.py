"""Queue naming: the namespace prefix, dead-letter queues, the crash quarantine.

``<prefix>.<name>`` in a namespace; ``/queue/<name>`` or ``/topic/<name>`` is absolute;
``DLQ.<queue>`` holds a queue's dead letters (ActiveMQ's rule, upstream's deployments);
``<queue>.suspects`` holds messages redelivered after their consumer crashed.
"""

from __future__ import annotations

DLQ_PREFIX = "DLQ."
#: RabbitMQ's (upstream's topology): ``dlq.<queue>``.
RABBITMQ_DLQ_PREFIX = "dlq."
SUSPECTS = ".suspects"
#: Upstream's exchange for delayed queue sends on RabbitMQ (of the delayed-message plugin's
#: type ``x-delayed-message``; routing key the queue's name, delay in ``x-delay``).
DELAYED_EXCHANGE = "delayed"
DELAYED_EXCHANGE_TYPE = "x-delayed-message"


def suspect_queue(destination: str) -> str:
    """The quarantine queue for messages redelivered from ``destination``."""
    return destination if destination.endswith(SUSPECTS) else destination + SUSPECTS


def home_queue(destination: str) -> str:
    """The queue a (possibly quarantined) message belongs to."""
    return destination.removesuffix(SUSPECTS)


def is_suspect(destination: str) -> bool:
    """True for a quarantine queue."""
    return destination.endswith(SUSPECTS)
