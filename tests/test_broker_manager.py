"""Our ActiveMQ manager: refuses taken ports, stops only its own pid, CLI round trip."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.brokers import TEST_PASSWORD, eventually, free_port, private_activemq
from zocalo_nb.cli import main
from zocalo_nb.servers.activemq import ActiveMQ, BrokerError, stomp_ready

pytestmark = pytest.mark.activemq


def test_start_refuses_a_port_something_else_answers_on(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(BrokerError, match=f"already listens on 127.0.0.1:{port}") as caught:
            private_activemq(tmp_path, stomp_port=port).start()
        assert "--port" in caught.value.hint


def test_stop_only_touches_our_own_pid(tmp_path: Path) -> None:
    instance = ActiveMQ(tmp_path)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tmp_path.mkdir(exist_ok=True)
        instance.pid_file.write_text(f"{bystander.pid}\n")  # a pid file that lies
        assert instance.pid() is None
        assert instance.stop() is False
        assert bystander.poll() is None  # still alive
        assert not instance.pid_file.exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_cli_start_status_stop_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not ActiveMQ.installed():
        pytest.fail("ActiveMQ is not installed: run ./dev test or 'zocalo-nb broker install'")
    port = free_port()
    common = [
        "--dir",
        str(tmp_path / "amq"),
        "--port",
        str(port),
        "--password",
        TEST_PASSWORD,
        "--journal-sync",
        "never",
    ]
    assert main(["broker", "start", *common]) == 0
    try:
        out = capsys.readouterr().out
        assert f"127.0.0.1:{port}" in out and TEST_PASSWORD not in out
        assert stomp_ready(port, "zocalo", TEST_PASSWORD)
        assert not stomp_ready(port, "zocalo", "wrong-password")
        assert main(["broker", "status", *common]) == 0
        assert "answers" in capsys.readouterr().out
        # status with the folder alone: the port and password start was given (before, it
        # used the defaults and said the broker did "NOT answer")
        assert main(["broker", "status", "--dir", str(tmp_path / "amq")]) == 0
        said = capsys.readouterr().out
        assert "answers" in said and "NOT" not in said and f":{port}" in said
        assert oct((tmp_path / "amq" / "cli-options.json").stat().st_mode & 0o777) == "0o600"
        assert main(["broker", "start", *common]) == 0  # already running: fine
        pid = int((tmp_path / "amq" / "activemq.pid").read_text())
    finally:
        assert main(["broker", "stop", *common]) == 0
    assert "stopped" in capsys.readouterr().out
    assert eventually(lambda: not _running(pid), timeout=10)
    assert main(["broker", "status", *common]) == 1
    assert main(["broker", "stop", *common]) == 0
    assert "not running" in capsys.readouterr().out


def _running(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie has finished running)."""
    try:
        os.kill(pid, 0)
        return not Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (ProcessLookupError, FileNotFoundError):
        return False


def test_a_broker_that_dies_while_starting_is_reported_with_its_log(tmp_path: Path) -> None:
    broken = private_activemq(tmp_path, redelivery_delay_ms=10)  # ActiveMQ refuses < 1000 ms
    with pytest.raises(BrokerError) as caught:
        broken.start(timeout=60)
    assert "activemq.log" in caught.value.hint
    assert broken.pid() is None
