"""What only RabbitMQ's transport does: after its connection was lost and re-opened, a
transaction acking a message delivered on the lost one fails as a whole (its outputs are
not sent; the message comes again), instead of sending outputs for a message RabbitMQ hands
out again."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest

from tests.brokers import eventually
from zocalo_nb.config import Settings
from zocalo_nb.transport import Message, TransportError, connect
from zocalo_nb.transport.amqp import AmqpTransport


def test_a_transaction_acking_a_message_from_a_lost_connection_fails_whole(
    rabbitmq_url: str,
) -> None:
    settings = Settings.build(rabbitmq_url, prefix=f"lost{uuid.uuid4().hex[:6]}")
    with connect(settings) as sender, connect(settings) as worker:
        assert isinstance(worker, AmqpTransport)
        held: list[Message] = []
        outputs: list[Message] = []
        sender.subscribe("lost.out", outputs.append, ack="auto")
        worker.subscribe("lost.in", held.append, ack="client")
        sender.send("lost.in", {"n": 1})
        assert eventually(lambda: len(held) == 1)

        def ours() -> list[str]:  # the API lists a connection once its stats are in
            return [
                c["name"] for c in worker.api.get("connections")
                if (c.get("client_properties") or {}).get("connection_name")
                == worker.connection_name
            ]  # fmt: skip

        assert eventually(lambda: len(ours()) == 1)
        worker.api.delete(f"connections/{quote(ours()[0], safe='')}")
        assert eventually(lambda: len(held) == 2, timeout=20)  # reconnected; handed out again
        assert held[1].redelivered and held[1].body == {"n": 1}
        with pytest.raises(TransportError, match="lost"), worker.transaction() as tx:
            worker.send("lost.out", {"from": 1}, transaction=tx)
            worker.ack(held[0], transaction=tx)
        with worker.transaction() as tx:  # the delivery of the new connection goes through
            worker.send("lost.out", {"from": 2}, transaction=tx)
            worker.ack(held[1], transaction=tx)
        assert eventually(lambda: [m.body for m in outputs] == [{"from": 2}])
        assert eventually(lambda: sender.statistics("lost.in").depth == 0)
