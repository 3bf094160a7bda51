"""Every message header name on the wire (see ../../shared/WIRE.md for upstream's)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# -- upstream Zocalo's -------------------------------------------------------------------
#: Marks a recipe message (True, "True", "true" or 1).
RECIPE = "workflows-recipe"
#: Where a dead letter was going (ActiveMQ sets it on DLQ.<queue> messages; so do we).
ORIGINAL_DESTINATION = "original-destination"
#: Set on messages reinjected from a DLQ.
DLQ_REINJECTED = "dlq-reinjected"
#: Who sent a zocalo.go request.
GO_USER = "zocalo.go.user"
GO_HOST = "zocalo.go.host"

# -- ours --------------------------------------------------------------------------------
#: Our stable message id (broker message ids are not stable everywhere).
MESSAGE_ID = "zocalo-nb-id"
#: Handler failures so far (1 on the first delivery).
ATTEMPT = "zocalo-nb-attempt"
#: Crashes counted in quarantine.
REDELIVERIES = "zocalo-nb-redeliveries"
#: Why a message was dead-lettered, and by whom.
REASON = "zocalo-nb-reason"
ERROR_TYPE = "zocalo-nb-error-type"
ERROR = "zocalo-nb-error"
TRACEBACK = "zocalo-nb-traceback"
SERVICE = "zocalo-nb-service"
HOST = "zocalo-nb-host"
ATTEMPTS = "zocalo-nb-attempts"
#: When (epoch seconds) a message was dead-lettered.
DEAD_LETTERED_AT = "zocalo-nb-dead-lettered-at"
#: Marks the probe a Tap sends to learn which queues answer.
PROBE = "zocalo-nb-probe"
#: Headers describing why a message was dead-lettered (dropped when it is reinjected).
DLQ_HEADERS = (REASON, ERROR_TYPE, ERROR, TRACEBACK, SERVICE, HOST, ATTEMPTS, DEAD_LETTERED_AT)

# -- the brokers' ----------------------------------------------------------------------------
DESTINATION = "destination"
BROKER_MESSAGE_ID = "message-id"
SUBSCRIPTION = "subscription"
TIMESTAMP = "timestamp"
PERSISTENT = "persistent"
EXPIRES = "expires"
REDELIVERED = "redelivered"
#: ActiveMQ's scheduler: deliver after this many milliseconds.
SCHEDULED_DELAY = "AMQ_SCHEDULED_DELAY"
#: The delayed-message plugin's delay in milliseconds (upstream sets it on delayed sends).
X_DELAY = "x-delay"
#: RabbitMQ's record of a message's dead-letterings (newest first), on ``dlq.<queue>``.
X_DEATH = "x-death"
#: Headers the brokers own: never copied when a message is re-sent.
BROKER_HEADERS = frozenset(
    {
        "content-length",
        DESTINATION,
        EXPIRES,
        BROKER_MESSAGE_ID,
        ORIGINAL_DESTINATION,
        "originalExpiration",
        SUBSCRIPTION,
        TIMESTAMP,
        REDELIVERED,
        "ack",
        "priority",
        PERSISTENT,
        "content-type",
        "transformation",
        "type",
        # ActiveMQ's scheduler and redelivery plugin
        "scheduledJobId",
        "redeliveryDelay",
        SCHEDULED_DELAY,
        "AMQ_SCHEDULED_PERIOD",
        "AMQ_SCHEDULED_REPEAT",
        # RabbitMQ's dead-lettering and delivery counting, and pika's delivery fields
        X_DEATH,
        X_DELAY,
        "x-first-death-queue",
        "x-first-death-reason",
        "x-first-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-last-death-exchange",
        "x-delivery-count",
        "routing_key",
        "exchange",
        "consumer_tag",
        "delivery_mode",
    }
)


def last_death(value: Any) -> Mapping[str, Any]:
    """RabbitMQ's newest dead-lettering record from an ``x-death`` header (its list of
    tables, or that list as JSON text, as a dead-letter file holds it); {} when there is none.
    Its ``queue``, ``exchange``, ``reason`` and ``count`` say where and why it died."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    if isinstance(value, list) and value and isinstance(value[0], Mapping):
        return value[0]
    return {}
