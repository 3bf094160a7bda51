"""What only the STOMP transport does: connection errors, reconnection, TCP_NODELAY, interop."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import eventually, free_port, private_activemq
from zocalo_nb.config import Settings
from zocalo_nb.transport import Message, TransportError, connect, stomp_tx
from zocalo_nb.transport.stomp import StompTransport

pytestmark = pytest.mark.activemq


def test_bad_credentials_fail_fast_naming_host_port_and_source_but_not_the_password(
    activemq_url: str,
) -> None:
    settings = Settings.build(activemq_url, password="sw0rdfish-wrong")
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        connect(settings)
    text = str(caught.value)
    assert time.monotonic() - started < 5
    assert f"127.0.0.1:{settings.port}" in text and "settings from argument" in text
    assert "password is invalid" in text and "sw0rdfish" not in text
    assert "zocalo-nb broker status" in caught.value.hint


def test_a_refused_connection_fails_fast() -> None:
    started = time.monotonic()
    with pytest.raises(TransportError, match=r"cannot connect to STOMP broker 127\.0\.0\.1:\d+"):
        connect(f"stomp://u:secret@127.0.0.1:{free_port()}")
    assert time.monotonic() - started < 5


def test_passwords_never_show_in_reprs(activemq_url: str) -> None:
    transport = connect(activemq_url)
    try:
        password = Settings.from_url(activemq_url).password
        assert (
            password and password not in repr(transport) and password not in str(transport.settings)
        )
        assert password not in repr(transport.settings)
    finally:
        transport.close()


def test_tcp_nodelay_is_set_on_the_socket(activemq_url: str) -> None:
    transport = connect(activemq_url)
    assert isinstance(transport, StompTransport)
    try:
        sock = transport._conn.transport.socket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        transport.close()


def test_broker_restart_reconnects_resubscribes_and_loses_no_persistent_message(
    tmp_path: Path,
) -> None:
    broker = private_activemq(tmp_path / "amq")
    broker.start()
    try:
        prefix = f"r{uuid.uuid4().hex[:8]}"
        consumer = connect(Settings.build(broker.url, prefix=prefix))
        received: list[Any] = []

        def take(message: Message) -> None:
            received.append(message.body)
            consumer.ack(message)

        consumer.subscribe("survive", take)
        with connect(Settings.build(broker.url, prefix=prefix)) as sender:
            sender.send("survive", {"n": "before"})
            assert eventually(lambda: received == [{"n": "before"}])
            sender.send("parked", {"n": "kept over restart"})
        broker.stop()
        assert eventually(lambda: not consumer.is_connected, timeout=20)
        broker.start()
        assert isinstance(consumer, StompTransport) and consumer.wait_connected(30)
        sock = consumer._conn.transport.socket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        with connect(Settings.build(broker.url, prefix=prefix)) as sender:
            sender.send("survive", {"n": "after"})
            assert eventually(lambda: {"n": "after"} in received, timeout=20)
            assert [m.body for m in sender.browse("parked")] == [{"n": "kept over restart"}]
        consumer.close()
    finally:
        broker.stop()


@pytest.fixture
def upstream_transport(activemq_url: str) -> Any:
    from workflows.transport.stomp_transport import StompTransport as UpstreamStomp

    settings = Settings.from_url(activemq_url)
    saved = dict(UpstreamStomp.defaults)
    prefix = f"u{uuid.uuid4().hex[:8]}"
    UpstreamStomp.defaults.update(
        {
            "--stomp-host": settings.host,
            "--stomp-port": settings.port,
            "--stomp-user": settings.username,
            "--stomp-pass": settings.password,
            "--stomp-prfx": prefix,
        }
    )
    upstream = UpstreamStomp()
    upstream.connect()
    yield upstream, Settings.build(activemq_url, prefix=prefix)
    upstream.disconnect()
    UpstreamStomp.defaults.clear()
    UpstreamStomp.defaults.update(saved)


@pytest.mark.upstream
def test_upstream_workflows_receives_what_we_send_and_we_receive_what_it_sends(
    upstream_transport: Any,
) -> None:
    upstream, settings = upstream_transport
    got_upstream: list[tuple[dict[str, Any], Any]] = []
    arrived = threading.Event()

    def upstream_callback(header: dict[str, Any], message: Any) -> None:
        got_upstream.append((header, message))
        upstream.ack(header)
        arrived.set()

    upstream.subscribe("to.upstream", upstream_callback, acknowledgement=True)
    ours = connect(settings)
    try:
        time.sleep(0.3)
        ours.send("to.upstream", {"recipe": {"1": {}}, "n": 1}, headers={"workflows-recipe": True})
        assert arrived.wait(10)
        header, message = got_upstream[0]
        assert message == {"recipe": {"1": {}}, "n": 1}
        assert header["workflows-recipe"] == "True"

        received: list[Message] = []
        ours.subscribe("to.us", lambda m: (received.append(m), ours.ack(m)))
        time.sleep(0.3)
        upstream.send("to.us", {"from": "upstream", "list": [1, 2]}, headers={"x": "y"})
        upstream.broadcast("news", {"ignored": True})
        assert eventually(lambda: len(received) == 1)
        assert received[0].body == {"from": "upstream", "list": [1, 2]}
        assert received[0].headers["x"] == "y"
    finally:
        ours.close()


def test_tls_is_an_option_and_a_tls_handshake_with_a_plain_port_fails_fast(
    activemq_url: str,
) -> None:
    plain = Settings.from_url(activemq_url)
    settings = Settings.from_url(activemq_url.replace("stomp://", "stomp+ssl://"))
    assert settings.tls and (settings.host, settings.port) == (plain.host, plain.port)
    transport = StompTransport(settings, connect_timeout=3)
    started = time.monotonic()
    with pytest.raises(TransportError, match="cannot connect"):
        transport.connect()
    assert time.monotonic() - started < 10


def test_a_wrong_password_is_reported_as_such_even_when_the_error_frame_is_slow(
    activemq_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # stomp.py wakes the connecting thread before it hands the ERROR frame to listeners:
    # the reason must not be lost in that race (it was reported as "connection refused").
    from zocalo_nb.transport import stomp as ours

    original = ours.Listener.on_error

    def slow_on_error(self: Any, frame: Any) -> None:
        time.sleep(0.3)
        original(self, frame)

    monkeypatch.setattr(ours.Listener, "on_error", slow_on_error)
    with pytest.raises(TransportError, match="password is invalid"):
        connect(Settings.build(activemq_url, password="wrong-for-sure"))


def test_a_commit_the_broker_refuses_is_an_error_and_its_messages_come_back(
    activemq_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"refused{uuid.uuid4().hex[:8]}"
    sender = connect(Settings.build(activemq_url, prefix=prefix))
    worker = connect(Settings.build(activemq_url, prefix=prefix))
    assert isinstance(worker, StompTransport)
    held: list[Message] = []
    worker.subscribe("in", held.append, ack="cumulative", prefetch=5)
    try:
        sender.send("in", {"n": 1})
        assert eventually(lambda: len(held) == 1)
        # A transaction the broker never began (its BEGIN left out of the one write): its
        # COMMIT is answered with an ERROR frame.
        tx = "tx-never-begun"
        real = stomp_tx.frame

        def without_begin(command: str, headers: Mapping[str, str], body: str = "") -> bytes:
            begin = command == "BEGIN" and headers.get("transaction") == tx
            return b"" if begin else real(command, headers, body)

        monkeypatch.setattr(stomp_tx, "frame", without_begin)
        worker._transactions.begun(tx, worker._generation)
        worker.send("out", {"n": 1}, transaction=tx)
        worker.ack(held[0], transaction=tx)
        with pytest.raises(TransportError, match="did not confirm the commit"):
            worker.commit(tx, confirm=True)
        # Handed back (the connection starts afresh), never taken by a later ack.
        assert eventually(lambda: len(held) == 2, timeout=15)
        assert held[1].redelivered and held[1].message_id == held[0].message_id
        assert worker.wait_connected(15)
        with worker.transaction(confirm=True) as tx2:
            worker.ack(held[1], transaction=tx2)
        assert eventually(lambda: sender.statistics("in").depth == 0)
        assert sender.browse("out") == []
    finally:
        worker.close()
        sender.close()


def test_a_socket_closed_by_another_thread_mid_send_is_a_transport_error(
    activemq_url: str,
) -> None:
    # stomp.py sets its socket to None when a disconnect runs in another thread; a send in
    # flight then met AttributeError, which killed a runner's status thread at shutdown.
    transport = connect(Settings.build(activemq_url))
    assert isinstance(transport, StompTransport)
    try:
        real = transport._conn.transport.socket
        # what stomp.py holds when the socket went away between its check and its sendall
        transport._conn.transport.socket = object()
        with pytest.raises(TransportError, match="lost the connection"):
            transport.broadcast("status.probe", {"n": 1})
        transport._conn.transport.socket = real
    finally:
        transport.close()


def _client_acking(activemq_url: str, name: str) -> tuple[StompTransport, list[Message]]:
    """A STOMP transport in a namespace of its own, collecting queue ``in`` (client acks)."""
    transport = connect(Settings.build(activemq_url, prefix=f"{name}{uuid.uuid4().hex[:8]}"))
    assert isinstance(transport, StompTransport)
    held: list[Message] = []
    transport.subscribe("in", held.append, ack="client", prefetch=10)
    return transport, held


def test_a_transaction_is_written_in_one_write_at_commit_and_an_abort_writes_nothing(
    activemq_url: str,
) -> None:
    transport, held = _client_acking(activemq_url, "onewrite")
    writes: list[bytes] = []
    stomp_transport = transport._conn.transport
    real = stomp_transport.send
    try:
        for n in range(5):
            transport.send("in", {"n": n})
        assert eventually(lambda: len(held) == 5)
        stomp_transport.send = lambda data: writes.append(data) or real(data)
        tx = transport.begin()
        for message in held:
            transport.send("out", message.body, transaction=tx)
            transport.ack(message, transaction=tx)
        assert writes == []  # nothing before the commit
        transport.commit(tx, confirm=True)
        assert len(writes) == 1
        commands = [f.split(b"\n", 1)[0] for f in writes[0].split(b"\x00") if f.strip()]
        assert commands == [b"BEGIN"] + [b"SEND", b"ACK"] * 5 + [b"COMMIT"]
        # an abort writes nothing: the broker never heard of the transaction
        tx = transport.begin()
        transport.send("out", {"n": "never"}, transaction=tx)
        transport.abort(tx)
        assert len(writes) == 1
        stomp_transport.send = real
        assert [m.body for m in transport.browse("out")] == [{"n": n} for n in range(5)]
        assert transport.statistics("in").depth == 0
    finally:
        stomp_transport.send = real
        transport.close()


def test_a_plain_send_ack_and_nack_are_written_as_one_frame_each_past_stomp_py(
    activemq_url: str,
) -> None:
    # stomp.py's own send path (escaping with str.replace per header, sorting listeners,
    # copying the frame) made one hop slower than raw stomp.py's; ours writes the frame.
    transport, held = _client_acking(activemq_url, "plain")
    stomp_transport = transport._conn.transport
    real_send, real_transmit = stomp_transport.send, stomp_transport.transmit
    writes: list[bytes] = []
    transmitted: list[Any] = []
    try:
        stomp_transport.send = lambda data: writes.append(data) or real_send(data)
        stomp_transport.transmit = lambda f: transmitted.append(f) or real_transmit(f)
        transport.send("in", {"n": 1, "odd": "a:b\\c"}, headers={"note": "x:y\nz"})
        transport.send("in", {"n": 2})
        assert eventually(lambda: len(held) == 2)
        assert held[0].body == {"n": 1, "odd": "a:b\\c"}
        assert held[0].headers["note"] == "x:y\nz"
        transport.ack(held[0])
        transport.nack(held[1])
        assert transmitted == []  # nothing went through stomp.py's frame methods
        commands = [w.split(b"\n", 1)[0] for w in writes]
        assert commands == [b"SEND", b"SEND", b"ACK", b"NACK"]
        assert all(w.endswith(b"\x00") and w.count(b"\x00") == 1 for w in writes)
        assert eventually(lambda: len(held) == 3)  # the nacked one comes back
        assert held[2].message_id == held[1].message_id and held[2].redelivered
        transport.ack(held[2])
        assert eventually(lambda: transport.statistics("in").depth == 0)
    finally:
        stomp_transport.send, stomp_transport.transmit = real_send, real_transmit
        transport.close()


def test_a_frame_is_encoded_as_stomp_py_encodes_it() -> None:
    from stomp.protocol import Protocol12
    from stomp.utils import Frame, convert_frame, pack

    def parsed(data: bytes) -> tuple[bytes, set[bytes], bytes]:
        head, _, body = data.partition(b"\n\n")
        command, *lines = head.split(b"\n")
        return command, set(lines), body

    headers = {"destination": "/queue/a:b", "odd": "back\\slash\nnew:line\rcr", "n": "1"}
    for body in ("", '{"é": "ü"}', "x" * 3000):
        escaped = dict(headers)
        if body:
            escaped["content-length"] = str(len(body.encode()))
        Protocol12._escape_headers(None, escaped)  # type: ignore[arg-type]
        theirs = pack(convert_frame(Frame("SEND", escaped, body)))
        assert parsed(stomp_tx.frame("SEND", headers, body)) == parsed(theirs)


def _silent_broker(
    server: socket.socket, heartbeat_ms: int, connected: threading.Event, release: threading.Event
) -> None:
    """Answers one CONNECT, promising heartbeats it never sends, then stays silent (and the
    socket open) until ``release``."""
    with server:
        server.settimeout(10)
        client, _ = server.accept()
        with client:
            received = b""
            while b"\x00" not in received:
                received += client.recv(4096)
            client.sendall(
                f"CONNECTED\nversion:1.2\nheart-beat:{heartbeat_ms},{heartbeat_ms}\n\n\x00".encode()
            )
            connected.set()
            release.wait(10)  # a broker that hangs: no frame, no heartbeat


def test_a_broker_that_goes_silent_drops_the_connection_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # stomp.py calls on_heartbeat_timeout on every listener without asking whether it has
    # one: ours had not, and its heartbeat thread ended with an AttributeError.
    raised: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: raised.append(args.exc_value))
    listening = socket.create_server(("127.0.0.1", 0))  # listening before anyone connects
    port = listening.getsockname()[1]
    connected, release, lost = threading.Event(), threading.Event(), threading.Event()
    server = threading.Thread(
        target=_silent_broker, args=(listening, 200, connected, release), daemon=True
    )
    server.start()
    before = set(threading.enumerate())
    transport = StompTransport(
        Settings.build(f"stomp://guest:guest@127.0.0.1:{port}?heartbeat=200")
    )
    monkeypatch.setattr(transport, "_lost", lost.set)  # before the timeout can come
    transport.connect()
    try:
        assert connected.wait(5)
        beats: list[threading.Thread] = []

        def started() -> bool:  # on CONNECTED, by stomp.py's own listener
            new = set(threading.enumerate()) - before
            beats[:] = [t for t in new if t.name.startswith("StompHeartbeat")]
            return bool(beats)

        assert eventually(started, timeout=5), "stomp.py started no heartbeat thread"
        assert lost.wait(5), "the silent connection was not dropped"
        for thread in beats:  # it calls the listeners after the drop, then ends
            thread.join(5)
            assert not thread.is_alive()
        assert raised == []
    finally:
        release.set()
        transport.close()
    server.join(5)
