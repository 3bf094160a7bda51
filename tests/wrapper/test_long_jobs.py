"""Long jobs: no transaction held while they run, progress goes out at once, and a runner
that dies mid-job loses nothing and completes nothing twice (memory:// and ActiveMQ)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.brokers import eventually
from tests.conftest import ROOT
from tests.service.helpers import Collector
from zocalo_nb.config import Settings
from zocalo_nb.dispatch import submit
from zocalo_nb.recipe import Recipe
from zocalo_nb.service import ServiceRunner
from zocalo_nb.transport import MemoryBroker, connect
from zocalo_nb.wrapper import wrapper_service

COMMAND = (sys.executable, "-m", "zocalo_nb.cli", "service", "command")
#: A job that records each start and each finish, taking ``seconds``.
JOB = (
    "import pathlib, sys, time\n"
    "log = pathlib.Path(sys.argv[1])\n"
    "with log.open('a') as f: f.write('start\\n')\n"
    "time.sleep(float(sys.argv[2]))\n"
    "with log.open('a') as f: f.write('finish\\n')\n"
)


def long_recipe(log: Path, seconds: float, workdir: Path) -> Recipe:
    return Recipe.from_dict(
        {
            "1": {
                "queue": "long.jobs",
                "parameters": {
                    "command": [sys.executable, "-c", JOB, str(log), str(seconds)],
                    "workingdir": str(workdir),
                },
                "output": {"starting": 2, "success": 3, "completed": 4},
            },
            "2": {"queue": "long.starting"},
            "3": {"queue": "long.success"},
            "4": {"queue": "long.completed"},
            "start": [[1, {}]],
        }
    )


def test_progress_goes_out_while_the_job_runs_and_the_outcome_with_its_ack(
    tmp_path: Path,
) -> None:
    broker = MemoryBroker()
    client = broker.connect()
    starting, success = Collector(client, "long.starting"), Collector(client, "long.success")
    log = tmp_path / "log"
    service = wrapper_service("command", ("long.jobs",))
    with ServiceRunner([service], broker=broker):
        submit(long_recipe(log, 1.5, tmp_path), transport=client)
        assert eventually(lambda: len(starting.messages) == 1, timeout=10)
        assert success.messages == []  # still running: the outcome is not out yet
        assert client.statistics("long.jobs").depth == 1  # held (unacked), no transaction open
        assert eventually(lambda: len(success.messages) == 1, timeout=20)
    assert log.read_text() == "start\nfinish\n"
    broker.close()


def test_a_runner_killed_mid_job_hands_the_job_to_another_which_completes_it_once(
    tmp_path: Path,
) -> None:
    broker = MemoryBroker()
    client = broker.connect()
    starting, success, completed = (
        Collector(client, q) for q in ("long.starting", "long.success", "long.completed")
    )
    log = tmp_path / "log"
    first = ServiceRunner([wrapper_service("command", ("long.jobs",))], broker=broker).start()
    run = submit(long_recipe(log, 2, tmp_path), transport=client)
    assert eventually(lambda: len(starting.messages) == 1, timeout=10)
    assert eventually(lambda: log.exists() and "start" in log.read_text(), timeout=10)
    first.kill()  # as if the process died: nothing it does from now on commits
    with ServiceRunner([wrapper_service("command", ("long.jobs",))], broker=broker):
        assert eventually(lambda: len(success.messages) == 1, timeout=30)
        assert eventually(lambda: len(completed.messages) == 1, timeout=5)
        assert eventually(lambda: log.read_text().count("finish") == 2, timeout=10)
    # The killed runner's own job ran to its end in this process (threads cannot be killed)
    # but its outcome was never committed: one success, one completed, for the one run.
    assert [m.body["environment"]["ID"] for m in success.messages] == [run.id]
    assert len(starting.messages) == 2  # progress is reported again by the re-run
    assert client.browse(client.dlq("long.jobs")) == []
    assert client.statistics("long.jobs").depth == 0
    broker.close()


@pytest.mark.activemq
def test_kill_9_of_a_runner_process_mid_job_runs_it_again_once(
    activemq_url: str, tmp_path: Path
) -> None:
    prefix = f"long{uuid.uuid4().hex[:8]}"
    log = tmp_path / "log"

    def runner() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*COMMAND, "--broker", activemq_url, "--prefix", prefix],
            cwd=ROOT,
            env={**os.environ, "ZOCALO_NB_QUEUES": "long.jobs"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    with connect(Settings.build(activemq_url, prefix=prefix)) as client:
        starting, success, completed = (
            Collector(client, q) for q in ("long.starting", "long.success", "long.completed")
        )
        doomed = runner()
        try:
            submit(long_recipe(log, 4, tmp_path), transport=client)
            assert eventually(lambda: len(starting.messages) == 1, timeout=60)
            assert eventually(lambda: log.exists() and "start" in log.read_text(), timeout=30)
            os.kill(doomed.pid, signal.SIGKILL)
            doomed.wait(timeout=10)
            # The job died with its runner (PR_SET_PDEATHSIG): it never finishes.
            survivor = runner()
            try:
                assert eventually(lambda: len(success.messages) == 1, timeout=90)
                assert eventually(lambda: len(completed.messages) == 1, timeout=10)
            finally:
                survivor.terminate()
                survivor.wait(timeout=30)
        finally:
            if doomed.poll() is None:
                doomed.kill()
        assert log.read_text() == "start\nstart\nfinish\n"
        assert len(starting.messages) == 2
        assert eventually(lambda: client.statistics("long.jobs").depth == 0, timeout=10)
        assert client.browse(client.dlq("long.jobs")) == []
