"""Our RabbitMQ node manager: refuses taken ports, a CLI round trip that stops only what it
started (the node and its own epmd), and a transport that works on it."""

from __future__ import annotations

import http.server
import socket
import threading
from pathlib import Path

import pytest

from tests.brokers import TEST_PASSWORD, eventually, free_port, free_ports
from zocalo_nb.cli import main
from zocalo_nb.servers.rabbitmq import RabbitMQ
from zocalo_nb.servers.system import BrokerError, alive
from zocalo_nb.transport import connect


def test_start_refuses_a_port_something_else_answers_on(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        node = RabbitMQ(tmp_path, port=port, management_port=free_port())
        with pytest.raises(BrokerError, match=f"already listens on 127.0.0.1:{port}") as caught:
            node.start()
        assert "--port" in caught.value.hint
        assert node.pid() is None


def test_cli_start_status_stop_round_trip_stops_only_what_it_started(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = Path(".zocalo-nb/node")  # relative, as ./dev test gives it
    port, management = free_ports(2)
    args = ["--kind", "rabbitmq", "--dir", str(folder), "--port", str(port)]
    args += ["--management-port", str(management), "--password", TEST_PASSWORD]
    assert main(["broker", "start", *args]) == 0
    node = RabbitMQ(folder, port=port, management_port=management, password=TEST_PASSWORD)
    try:
        pid = node.pid()
        epmd = int((folder / "epmd.pid").read_text())
        assert pid is not None and alive(epmd)
        out = capsys.readouterr().out
        assert TEST_PASSWORD not in out and f"127.0.0.1:{port}" in out
        assert main(["broker", "status", *args]) == 0
        with connect(node.url + "&declare=1") as transport:
            got: list[object] = []
            transport.subscribe("hello", lambda m: got.append(m.body), ack="auto")
            transport.send("hello", {"n": 1})
            assert eventually(lambda: got == [{"n": 1}])
    finally:
        assert main(["broker", "stop", *args]) == 0
    assert not alive(pid) and not alive(epmd)
    assert main(["broker", "status", *args]) != 0


def test_ready_waits_for_the_amqp_listener_not_only_the_management_api(tmp_path: Path) -> None:
    # The management API answers before the AMQP listener is up while a node boots (a
    # connection refused right after start, seen in CI under load).
    class Overview(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    api = http.server.HTTPServer(("127.0.0.1", 0), Overview)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        node = RabbitMQ(tmp_path, port=free_port(), management_port=api.server_address[1])
        assert not node.ready()
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", node.port))
            listener.listen()
            assert node.ready()
    finally:
        api.shutdown()


def test_amqp_and_management_on_one_port_are_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    (port,) = free_ports(1)
    node = RabbitMQ(tmp_path, port=port, management_port=port)
    with pytest.raises(BrokerError, match=f"cannot share port {port}") as caught:
        node.start()
    assert "--management-port" in caught.value.hint and node.pid() is None


def test_free_ports_are_distinct_and_avoid_what_they_are_told_to() -> None:
    from zocalo_nb.servers.system import free_ports as distinct

    taken = distinct(3)
    ports = distinct(200, avoid=taken)
    assert len(set(ports)) == 200 and not set(ports) & set(taken)
