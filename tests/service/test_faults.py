"""Fault tests on real brokers (ActiveMQ and RabbitMQ) with real service processes: kill -9,
broker restarts, poison and a message that kills its process every time."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import TEST_REDELIVERIES, eventually, free_ports, private_activemq
from tests.conftest import ROOT
from tests.service.helpers import Collector, pipeline
from zocalo_nb.config import Settings
from zocalo_nb.dispatch import submit
from zocalo_nb.servers.activemq import ActiveMQ
from zocalo_nb.servers.rabbitmq import RabbitMQ
from zocalo_nb.transport import Transport, connect


@pytest.fixture(params=["activemq", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


class Workers:
    """Service processes for steps a and b, which tests kill and restart."""

    def __init__(self, url: str, prefix: str, **options: Any) -> None:
        self.url, self.prefix, self.options = url, prefix, options
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = defaultdict(int)

    def start(self, step: str) -> None:
        extra = [f"--{k.replace('_', '-')}={v}" for k, v in self.options.get(step, {}).items()]
        self.procs[step] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.service.pipeline_worker",
                step,
                "--broker",
                self.url,
                "--prefix",
                self.prefix,
                *extra,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.starts[step] += 1

    def kill(self, step: str) -> None:
        self.procs[step].send_signal(signal.SIGKILL)
        self.procs[step].wait()

    def revive_dead(self) -> None:
        for step, proc in list(self.procs.items()):
            if proc.poll() is not None:
                self.start(step)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def outputs_per_run(collector: Collector) -> dict[str, set[str]]:
    """Distinct outputs (our stable message ids) per run id: a redelivery of the same output
    has the same id; a second output for the same run would have a new one."""
    found: dict[str, set[str]] = defaultdict(set)
    with collector.lock:
        for message in collector.messages:
            found[message.body["environment"]["ID"]].add(message.message_id)
    return found


@pytest.fixture
def client(broker_url: str) -> Iterator[tuple[Transport, str]]:
    prefix = f"f{uuid.uuid4().hex[:8]}"
    transport = connect(Settings.build(broker_url, prefix=prefix))
    yield transport, prefix
    transport.close()


def test_kill_9_repeatedly_while_2000_runs_flow_loses_and_duplicates_nothing(
    broker_url: str, client: tuple[Transport, str]
) -> None:
    transport, prefix = client
    end = Collector(transport, "pipe.end")
    workers = Workers(broker_url, prefix)
    try:
        recipe = pipeline()
        # The last 500 runs are submitted only after the tenth kill, so every kill happens
        # while runs are in flight, however fast the machine (kills follow progress, not time).
        runs = [submit(recipe, transport=transport).id for _ in range(1500)]
        workers.start("a")
        workers.start("b")
        kills = 0
        deadline = time.monotonic() + 240
        while len(outputs_per_run(end)) < 2000 and time.monotonic() < deadline:
            time.sleep(0.05)
            if kills < 10 and len(outputs_per_run(end)) >= 130 * (kills + 1):
                step = "ab"[kills % 2]
                workers.kill(step)
                kills += 1
                workers.start(step)
                if kills == 10:
                    runs += [submit(recipe, transport=transport).id for _ in range(500)]
        found = outputs_per_run(end)
        assert kills == 10  # each service process was killed -9 mid-run five times
        if set(found) != set(runs):  # say where the missing ones are, for the next reader
            where = {
                q: transport.statistics(q).depth
                for q in ("pipe.a", "pipe.b", "pipe.a.suspects", "pipe.b.suspects")
            }
            where |= {s.queue: s.depth for s in transport.dead_letter_queues()}
            pytest.fail(f"{len(set(runs) - set(found))} runs lost; queue depths: {where}")
        duplicated = {run: ids for run, ids in found.items() if len(ids) > 1}
        assert not duplicated
        assert transport.browse(transport.dlq("pipe.a")) == []
        assert transport.browse(transport.dlq("pipe.b")) == []
    finally:
        workers.stop()


def test_poison_and_a_process_killer_end_in_the_dlq_while_good_runs_flow(
    broker_url: str, client: tuple[Transport, str]
) -> None:
    transport, prefix = client
    end = Collector(transport, "pipe.end")
    workers = Workers(broker_url, prefix, a={"max_attempts": 2, "max_redeliveries": 2})
    workers.start("a")
    workers.start("b")
    try:
        recipe = pipeline().to_dict()
        bad = {}
        for kind in ("poison", "bomb"):
            recipe["start"] = [[1, {kind: True}]]
            bad[kind] = submit(recipe, transport=transport).id
        recipe["start"] = [[1, {"n": 0}]]
        good = [submit(recipe, transport=transport).id for _ in range(50)]

        def settled() -> bool:
            workers.revive_dead()  # a supervisor restarting crashed services
            return (
                len(outputs_per_run(end)) == 50
                and len(transport.browse(transport.dlq("pipe.a"))) == 2
            )

        assert eventually(settled, timeout=120, interval=0.3)
        assert set(outputs_per_run(end)) == set(good)
        dead = {
            m.body["environment"]["ID"]: m.headers
            for m in transport.browse(transport.dlq("pipe.a"))
        }
        assert dead[bad["poison"]]["zocalo-nb-error-type"] == "ValueError"
        assert dead[bad["poison"]]["zocalo-nb-reason"] == "failed 2 time(s)"
        assert (
            "redelivered 3 time(s) after its consumer crashed"
            in dead[bad["bomb"]]["zocalo-nb-reason"]
        )
        # Started, then killed four times by the bomb: once in its queue among others (not
        # blamed, quarantined uncounted), then three times alone in quarantine (counted).
        assert workers.starts["a"] == 5
    finally:
        workers.stop()


@pytest.mark.parametrize("kind", ["activemq", "rabbitmq"])
def test_broker_restart_mid_run_services_reconnect_and_the_run_completes(
    kind: str, tmp_path: Path
) -> None:
    broker: ActiveMQ | RabbitMQ
    if kind == "activemq":
        broker = private_activemq(tmp_path / "amq", journal_sync="always")
        url = broker.url
    else:
        port, management = free_ports(2)
        broker = RabbitMQ(tmp_path / "rmq", port=port, management_port=management)
        url = broker.url + f"&declare=1&delivery_limit={TEST_REDELIVERIES}"
    broker.start()
    prefix = f"r{uuid.uuid4().hex[:8]}"
    transport = connect(Settings.build(url, prefix=prefix))
    workers = Workers(url, prefix)
    try:
        end = Collector(transport, "pipe.end")
        runs = [submit(pipeline(), transport=transport).id for _ in range(400)]  # all stored
        workers.start("a")
        workers.start("b")
        assert eventually(lambda: len(outputs_per_run(end)) >= 50, timeout=60)
        assert len(outputs_per_run(end)) < 400  # the restart comes mid-run
        broker.stop()
        broker.start()
        assert eventually(lambda: len(outputs_per_run(end)) == 400, timeout=120, interval=0.2), (
            f"{len(outputs_per_run(end))} of 400 arrived"
        )
        found = outputs_per_run(end)
        assert set(found) == set(runs)
        assert all(len(ids) == 1 for ids in found.values())
        assert all(proc.poll() is None for proc in workers.procs.values())  # they reconnected
    finally:
        workers.stop()
        transport.close()
        broker.stop()
