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
from zocalo_nb.transport.rabbitmq_api import ManagementAPI


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


def test_a_message_returned_as_unroutable_fails_its_commit(rabbitmq_url: str) -> None:
    """A send to a queue this connection already checked and that was deleted since comes
    back from RabbitMQ (``mandatory``): the commit raises, naming the queue; it is never
    only logged. The rest of the transaction (here an output to a queue that exists) went."""
    settings = Settings.build(rabbitmq_url, prefix=f"ret{uuid.uuid4().hex[:6]}")
    with connect(settings) as transport:
        assert isinstance(transport, AmqpTransport)
        outputs: list[Message] = []
        transport.subscribe("ret.kept", outputs.append, ack="auto")
        transport.send("ret.gone", {"n": 0})  # declared (?declare=1) and remembered
        transport.api.delete(f"queues/{quote(settings.vhost, safe='')}/{settings.prefix}.ret.gone")
        failed = pytest.raises(TransportError, match=r"ret\.gone")
        with failed as raised, transport.transaction() as tx:
            transport.send("ret.gone", {"n": 1}, transaction=tx)
            transport.send("ret.kept", {"n": 2}, transaction=tx)
        assert "configure" in raised.value.hint
        assert eventually(lambda: [m.body for m in outputs] == [{"n": 2}])
        # the failure made the connection check again: here (?declare=1) it declares the
        # queue anew, so the next send goes through
        transport.send("ret.gone", {"n": 3})
        assert eventually(lambda: transport.statistics("ret.gone").depth == 1)


def test_delays_use_upstreams_delayed_exchange_where_the_plugin_is(
    rabbitmq_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the vhost has upstream's ``delayed`` exchange of the plugin's type, a delayed
    queue send goes there as upstream's does: routing key the queue's name, ``x-delay`` in ms.
    Debian ships no delayed-message plugin, so the exchange here is a direct one standing in
    for it, and the management API's answer names the plugin's type; the exchange routes the
    key to a probe queue, which proves exchange and key (the target queue itself is bound only
    to the default exchange)."""
    settings = Settings.build(rabbitmq_url, prefix=f"dly{uuid.uuid4().hex[:6]}")
    with connect(settings) as setup:
        assert isinstance(setup, AmqpTransport)
        assert setup.delays == "ttl" and "TTL queues" in repr(setup)  # a stock node
        vhost = quote(settings.vhost, safe="")
        setup.api.put(f"exchanges/{vhost}/delayed", {"type": "direct", "durable": False})
        try:
            setup.send("dly.probe", {"declared": True})  # the probe queue exists
            setup.send("dly.target", {"declared": True})
            setup.api.request(
                "POST",
                f"bindings/{vhost}/e/delayed/q/{settings.prefix}.dly.probe",
                {"routing_key": f"{settings.prefix}.dly.target"},
            )
            with connect(settings) as stock:  # a real direct exchange is not the plugin
                assert isinstance(stock, AmqpTransport) and stock.delays == "ttl"
            asked = setup.api.get

            def plugin_type(path: str) -> object:
                answer = asked(path)
                return (
                    {**answer, "type": "x-delayed-message"} if path.endswith("/delayed") else answer
                )

            monkeypatch.setattr(ManagementAPI, "get", lambda self, path: plugin_type(path))
            probe: list[Message] = []
            with connect(settings) as sender:
                assert isinstance(sender, AmqpTransport)
                assert sender.delays == "plugin" and "delayed-message plugin" in repr(sender)
                sender.subscribe("dly.probe", probe.append, ack="auto")
                sender.send("dly.target", {"n": 1}, delay=2.5)
                assert eventually(lambda: len(probe) == 2)
            assert probe[1].body == {"n": 1}
            assert probe[1].headers["x-delay"] == "2500"
        finally:
            monkeypatch.undo()
            setup.api.delete(f"exchanges/{vhost}/delayed")
