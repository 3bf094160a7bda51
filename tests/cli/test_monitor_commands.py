"""zocalo-nb status / runs / run."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import zocalo_nb as z
from tests.service.helpers import pipeline, step_one, step_two
from zocalo_nb.cli import main
from zocalo_nb.config import Settings
from zocalo_nb.monitor import History, Tracker
from zocalo_nb.service import Service, ServiceRunner
from zocalo_nb.transport import MemoryBroker, connect


def test_runs_and_run_read_the_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    broker = MemoryBroker()
    transport = broker.connect()
    tracker = Tracker(History(url))
    services = [
        Service("one", step_one, queues=("pipe.a",)),
        Service("two", step_two, queues=("pipe.b",)),
        Service("end", lambda ctx, p: None, queues=("pipe.end",)),
    ]
    with ServiceRunner([tracker.service()], broker=broker), ServiceRunner(services, broker=broker):
        run = z.submit(pipeline(), {"dcid": "77"}, transport=transport)
        run.wait(20, progress=False)
        broker.join(timeout=20)
    broker.close()
    assert main(["runs", "--history", url, "-s", "dcid=77", "--since", "1h"]) == 0
    out = capsys.readouterr().out
    assert run.id in out and "dcid=77" in out
    assert main(["runs", "--history", url, "-s", "dcid=78"]) == 0
    assert "no runs recorded" in capsys.readouterr().out
    graph = tmp_path / "run.dot"
    assert main(["run", run.id, "--history", url, "--events", "--graph", str(graph)]) == 0
    out = capsys.readouterr().out
    assert "finished; 3 succeeded" in out and "pipe.end" in out and "submitted" in out
    assert "digraph" in graph.read_text()
    assert main(["run", "no-such-run", "--history", url]) == 1
    assert "no run 'no-such-run' recorded" in capsys.readouterr().err
    # a short id, as the demo prints them: a unique prefix names the run
    assert main(["run", run.id[:8], "--history", url]) == 0
    assert "finished; 3 succeeded" in capsys.readouterr().out
    store = History(url)
    store.record([{"run": run.id[:8] + "-other", "step": 1, "state": "received", "time": 1.0}])
    assert main(["run", run.id[:8], "--history", url]) == 1
    assert "2 runs start with" in capsys.readouterr().err
    assert store.resolve_run(run.id) == run.id  # the whole id, even as another's prefix
    assert main(["runs", "--history", url, "--since", "yesterday-ish"]) == 1


@pytest.mark.activemq
def test_status_lists_services_and_queues(
    activemq_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = f"st{uuid.uuid4().hex[:8]}"  # status listens 7 s by default: use --wait below
    settings = Settings.build(activemq_url, prefix=prefix)
    with connect(settings) as transport:
        transport.send("waiting", {"n": 1})
        service = Service("lister", lambda ctx, p: None, queues=("elsewhere",))
        with ServiceRunner([service], settings, status_interval=0.5):
            queues = ["--queue", "waiting", "--queue", "elsewhere"]
            code = main(
                ["status", "--broker", activemq_url, "--prefix", prefix, "--wait", "1.5", *queues]
            )
    out = capsys.readouterr().out
    assert code == 0
    assert "lister" in out and "idle" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["waiting"][1:3] == ["1", "0"]  # depth 1, no consumers
    assert lines["elsewhere"][1:3] == ["0", "1"]
    # without --queue: every queue of the namespace
    assert main(["status", "--broker", activemq_url, "--prefix", prefix, "--wait", "0.2"]) == 0
    out = capsys.readouterr().out
    assert f"/queue/{prefix}.waiting" in out and f"/queue/{prefix}.elsewhere" in out
