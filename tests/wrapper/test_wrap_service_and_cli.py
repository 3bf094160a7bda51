"""The same lifecycle from a service (memory://) and from `zocalo-nb wrap` (ActiveMQ)."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import eventually
from tests.service.helpers import Collector
from zocalo_nb.cli import main
from zocalo_nb.config import Settings
from zocalo_nb.dispatch import RecipeMessage, submit
from zocalo_nb.recipe import Recipe
from zocalo_nb.service import ServiceRunner
from zocalo_nb.transport import MemoryBroker, connect
from zocalo_nb.wrapper import wrapper_service


def recipe(command: list[str], workdir: Path) -> Recipe:
    return Recipe.from_dict(
        {
            "1": {
                "queue": "jobs",
                "parameters": {"command": command, "workingdir": str(workdir)},
                "output": {"success": 2, "failure": 3, "completed": 4},
            },
            "2": {"queue": "job.success"},
            "3": {"queue": "job.failure"},
            "4": {"queue": "job.completed"},
            "start": [[1, {"n": 5}]],
        }
    )


def test_a_command_job_run_by_a_service_sends_on_its_channels(tmp_path: Path) -> None:
    broker = MemoryBroker()
    client = broker.connect()
    ok, bad, done = (Collector(client, q) for q in ("job.success", "job.failure", "job.completed"))
    with ServiceRunner([wrapper_service("command")], broker=broker):
        good = submit(recipe([sys.executable, "-c", "print({n} * 2)"], tmp_path), transport=client)
        failing = submit(
            recipe([sys.executable, "-c", "raise SystemExit(4)"], tmp_path), transport=client
        )
        broker.join(timeout=30)
    assert [m.body["environment"]["ID"] for m in ok.messages] == [good.id]
    assert Path(ok.messages[0].body["payload"]["stdout"]).read_text() == "10\n"
    assert [m.body["environment"]["ID"] for m in bad.messages] == [failing.id]
    assert bad.messages[0].body["payload"].startswith("command exited with code 4")
    assert [m.body["payload"] for m in done.messages] == ["Finished processing"] * 2
    broker.close()


@pytest.mark.activemq
def test_zocalo_nb_wrap_reads_upstreams_recipewrapper_file(
    activemq_url: str, tmp_path: Path
) -> None:
    prefix = f"w{uuid.uuid4().hex[:8]}"
    with connect(Settings.build(activemq_url, prefix=prefix)) as watcher:
        ok, bad, done = (
            Collector(watcher, q) for q in ("job.success", "job.failure", "job.completed")
        )
        statuses: list[dict[str, Any]] = []
        watcher.subscribe_topic("transient.status", lambda m: statuses.append(m.body))
        for command, expected in (([sys.executable, "-c", "print('fine')"], 0), (["false"], 1)):
            message = RecipeMessage(recipe(command, tmp_path), 1, {"n": 1}, (), {"ID": "wrap-run"})
            path = tmp_path / "rw.json"
            path.write_text(json.dumps(message.to_body()))
            code = main(
                [
                    "wrap",
                    "--wrap",
                    "command",
                    "--recipewrapper",
                    str(path),
                    "--broker",
                    activemq_url,
                    "--prefix",
                    prefix,
                ]
            )
            assert code == expected
        assert eventually(
            lambda: len(ok.messages) == 1 and len(bad.messages) == 1 and len(done.messages) == 2
        )
        assert ok.messages[0].body["recipe-path"] == [1]
        assert bad.messages[0].body["payload"].startswith("command exited with code 1")
        assert eventually(lambda: any(s.get("statustext") == "shutdown" for s in statuses))
    assert (
        main(["wrap", "--wrap", "nope", "--recipewrapper", str(path), "--broker", activemq_url])
        == 1
    )
