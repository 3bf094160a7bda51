"""Where tests find a real ActiveMQ: the one ./dev test started, or a private one.

``./dev test`` starts our ActiveMQ and exports ``ZOCALO_NB_TEST_STOMP``. Run on its own,
pytest starts a private instance (ActiveMQ must be installed: ``zocalo-nb broker install``).
Nothing is skipped: without a broker these tests fail and say how to get one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from zocalo_nb.servers.activemq import ActiveMQ
from zocalo_nb.servers.rabbitmq import RabbitMQ
from zocalo_nb.servers.slurm import Slurm

TEST_REDELIVERIES = 2
TEST_PASSWORD = "amq-test-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """Distinct free ports (two free_port() calls can return the same one)."""
    from zocalo_nb.servers.system import free_ports as distinct

    return distinct(count)


def private_activemq(base: Path, **options: object) -> ActiveMQ:
    if not ActiveMQ.installed():
        pytest.fail(
            "ActiveMQ is not installed, so the broker tests cannot run. "
            "Run ./dev test (it installs and starts it) or 'zocalo-nb broker install'."
        )
    defaults: dict[str, object] = {
        "stomp_port": free_port(),
        "redeliveries": TEST_REDELIVERIES,
        "journal_sync": "never",
        "password": TEST_PASSWORD,
    }
    return ActiveMQ(base, **{**defaults, **options})  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def activemq_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A stomp:// URL of a running ActiveMQ with our configuration."""
    if os.environ.get("ZOCALO_NB_TEST_STOMP"):
        yield os.environ["ZOCALO_NB_TEST_STOMP"]
        return
    instance = private_activemq(tmp_path_factory.mktemp("activemq"))
    instance.start()
    try:
        yield instance.url
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def rabbitmq_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An amqp:// URL of a running RabbitMQ node of ours (``./dev test`` starts one and
    exports ``ZOCALO_NB_TEST_AMQP``; else a private node for this session). Tests declare
    the queues they use (``declare=1``) with a delivery limit of TEST_REDELIVERIES."""
    options = f"declare=1&delivery_limit={TEST_REDELIVERIES}"
    if os.environ.get("ZOCALO_NB_TEST_AMQP"):
        url = os.environ["ZOCALO_NB_TEST_AMQP"]
        yield url + ("&" if "?" in url else "?") + options
        return
    if not RabbitMQ.installed():
        pytest.fail(
            "RabbitMQ is not installed, so the RabbitMQ tests cannot run. "
            "Run ./dev test (it installs and starts it) or "
            "'zocalo-nb broker install --kind rabbitmq'."
        )
    port, management = free_ports(2)
    node = RabbitMQ(
        tmp_path_factory.mktemp("rabbitmq"),
        port=port,
        management_port=management,
        password=TEST_PASSWORD,
    )
    node.start()
    try:
        yield node.url + "&" + options
    finally:
        node.stop()


@contextlib.contextmanager
def upstream_service(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """tests/upstream/forward_service.py with ``args``, stopped with everything it started.
    Upstream's service starter runs the service in a child process, which outlived a
    terminate() of the starter alone (found: orphans still consuming after the tests)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.upstream.forward_service", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        start_new_session=True,  # its own process group: the child is stopped with it
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # a child that ignored SIGTERM


class Counting(threading.Condition):
    """A Condition that counts how often waiters were woken."""

    def __init__(self, lock: Any = None) -> None:
        super().__init__(lock)
        self.notified = 0

    def notify(self, n: int = 1) -> None:
        self.notified += 1
        super().notify(n)

    def notify_all(self) -> None:
        self.notified += 1
        super().notify_all()

    @property
    def waiting(self) -> int:
        """Threads waiting on it now."""
        with self:
            return len(self._waiters)  # type: ignore[attr-defined]


def eventually(check: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``check`` until it holds or ``timeout`` passes (tests only)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


@pytest.fixture(scope="session")
def slurm_conf() -> Iterator[str]:
    """The ``SLURM_CONF`` of a running Slurm of ours (``./dev test`` starts one and exports
    ``ZOCALO_NB_TEST_SLURM``; else a private cluster for this session, as root)."""
    if os.environ.get("ZOCALO_NB_TEST_SLURM"):
        yield os.environ["ZOCALO_NB_TEST_SLURM"]
        return
    if not Slurm.installed():
        pytest.fail(
            "Slurm is not installed, so the cluster tests cannot run. Run ./dev test (it "
            "installs and starts it) or 'zocalo-nb broker install --kind slurm'."
        )
    cluster = Slurm(Path(tempfile.mkdtemp(prefix="zocalo-nb-slurm-")))
    cluster.start()
    try:
        yield str(cluster.conf)
    finally:
        cluster.stop()
