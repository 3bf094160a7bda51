"""The dlq command line on ActiveMQ, and killing it mid-way through 500 messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.brokers import eventually
from tests.conftest import ROOT
from tests.service.helpers import Collector
from zocalo_nb import dlq
from zocalo_nb.config import Settings
from zocalo_nb.transport import MemoryBroker, Transport, connect

pytestmark = pytest.mark.activemq
COUNT = 500


def fill(transport: Transport, prefix: str, count: int = COUNT) -> None:
    """``count`` dead letters of queue ``back`` waiting in ``DLQ.<prefix>.back``."""
    with transport.transaction(confirm=True) as tx:
        for n in range(count):
            transport.send(
                f"/queue/DLQ.{prefix}.back",
                {"n": n},
                headers={
                    "original-destination": f"/queue/{prefix}.back",
                    "zocalo-nb-reason": "test",
                },
                transaction=tx,
            )


def cli(url: str, prefix: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "zocalo_nb.cli", "dlq", *args, "--broker", url, "--prefix", prefix],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killing_a_reinjection_of_500_midway_loses_and_duplicates_none(activemq_url: str) -> None:
    prefix = f"test{uuid.uuid4().hex[:8]}"
    with connect(Settings.build(activemq_url, prefix=prefix)) as transport:
        fill(transport, prefix)
        arrived = Collector(transport, "back")
        first = cli(activemq_url, prefix, "reinject", "--live", "--rate", "150")
        assert eventually(lambda: len(arrived.messages) >= 60, timeout=60)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert len(arrived.messages) < COUNT  # killed mid-way
        second = cli(activemq_url, prefix, "reinject", "--live")
        _out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        assert eventually(lambda: len(arrived.messages) == COUNT, timeout=30)
        ids = Counter(m.body["n"] for m in arrived.messages)
        assert sorted(ids) == list(range(COUNT)) and set(ids.values()) == {1}
        assert all(m.headers["dlq-reinjected"] == "True" for m in arrived.messages)
        assert eventually(lambda: dlq.counts(transport) == {f"/queue/DLQ.{prefix}.back": 0})


def test_killing_a_purge_of_500_midway_loses_and_duplicates_none(
    activemq_url: str, tmp_path: Path
) -> None:
    prefix = f"test{uuid.uuid4().hex[:8]}"
    location = tmp_path / "DLQ"

    def files() -> list[Path]:
        return [p for p in location.rglob("msg-*") if not p.name.endswith(".part")]

    with connect(Settings.build(activemq_url, prefix=prefix)) as transport:
        fill(transport, prefix)
        first = cli(activemq_url, prefix, "purge", "--location", str(location), "--rate", "150")
        assert eventually(lambda: location.exists() and len(files()) >= 60, timeout=60)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert len(files()) < COUNT
        second = cli(activemq_url, prefix, "purge", "--location", str(location))
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        numbers = Counter(json.loads(p.read_text())["message"]["n"] for p in files())
        assert sorted(numbers) == list(range(COUNT)) and set(numbers.values()) == {1}
        assert dlq.counts(transport) == {f"/queue/DLQ.{prefix}.back": 0}
        # our reinject reads our purge output from stdin (the second purge's files), and
        # folders (what the killed purge wrote)
        listed = out.splitlines()
        assert 0 < len(listed) < COUNT and all(Path(line).is_file() for line in listed)
        arrived = Collector(transport, "back")
        third = cli(activemq_url, prefix, "reinject", "--remove")
        out, err = third.communicate(input=out, timeout=120)
        assert third.returncode == 0, err
        assert eventually(lambda: len(arrived.messages) == len(listed), timeout=30)
        assert len(files()) == COUNT - len(listed)
        fourth = cli(activemq_url, prefix, "reinject", "--remove", str(location))
        _, err = fourth.communicate(timeout=120)
        assert fourth.returncode == 0, err
        assert eventually(lambda: len(arrived.messages) == COUNT, timeout=30)
        assert sorted(m.body["n"] for m in arrived.messages) == list(range(COUNT))
        assert files() == []


def test_check_list_and_rerun_from_the_command_line(activemq_url: str) -> None:
    import zocalo_nb as z
    from tests.dlq.test_dlq import Pipeline, recipe
    from zocalo_nb.cli import main
    from zocalo_nb.service import ServiceRunner

    prefix = f"test{uuid.uuid4().hex[:8]}"
    settings = Settings.build(activemq_url, prefix=prefix)
    pipeline = Pipeline()
    with connect(settings) as transport, ServiceRunner(pipeline.services(), settings):
        run = z.submit(recipe(3), transport=transport)
        run.wait(30, progress=False)
        broker = ["--broker", activemq_url, "--prefix", prefix]
        assert main(["dlq", "check", *broker]) == 1
        assert main(["dlq", "list", *broker, "--run", run.id]) == 0
        assert (
            main(["rerun", run.id, "--step", "2", "-s", "threshold=2", "--dry-run", *broker]) == 0
        )
        short = run.id[:8]  # as the demo prints run ids: a unique prefix will do
        assert main(["rerun", short, "--step", "2", "--dry-run", *broker]) == 0
        assert dlq.counts(transport)[f"/queue/DLQ.{prefix}.dq.two"] == 1
        assert main(["rerun", run.id, "--step", "2", "-s", "threshold=2", *broker]) == 0
        assert eventually(lambda: len(pipeline.arrived) == 1, timeout=30)
        assert pipeline.arrived[0].environment["rerun-of"] == run.id
        assert main(["dlq", "check", *broker]) == 0


def test_an_interrupted_purge_on_memory_is_finished_by_running_it_again(tmp_path: Path) -> None:
    broker = MemoryBroker()
    transport = broker.connect("test")
    fill(transport, "test", 200)
    original = dlq.files.export
    calls = 0

    def failing(letter: dlq.DeadLetter, location: object, sync: bool = True) -> Path:
        nonlocal calls
        calls += 1
        if calls == 120:
            raise OSError("disk full")
        return original(letter, location, sync=sync)  # type: ignore[arg-type]

    dlq.files.export = failing  # type: ignore[assignment]
    try:
        with pytest.raises(OSError, match="disk full"):
            dlq.purge(transport, location=tmp_path, batch=25)
    finally:
        dlq.files.export = original  # type: ignore[assignment]
    assert dlq.counts(transport)["/queue/DLQ.test.back"] == 100  # 4 batches of 25 committed
    dlq.purge(transport, location=tmp_path)
    numbers = Counter(json.loads(p.read_text())["message"]["n"] for p in tmp_path.rglob("msg-*"))
    assert sorted(numbers) == list(range(200)) and set(numbers.values()) == {1}
    assert dlq.counts(transport)["/queue/DLQ.test.back"] == 0
    broker.close()
