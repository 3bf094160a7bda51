"""Dead letters and upstream Zocalo on one ActiveMQ: what an upstream service rejected shows
in our frame and goes back to it; upstream's zocalo.dlq_purge files are read by us."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import eventually, upstream_service
from tests.service.helpers import Collector
from zocalo_nb import dlq
from zocalo_nb.config import Settings
from zocalo_nb.dispatch import submit
from zocalo_nb.recipe import RecipeBuilder
from zocalo_nb.transport import Transport, connect

pytestmark = [pytest.mark.activemq, pytest.mark.upstream]


@pytest.fixture
def settings(activemq_url: str) -> Settings:
    return Settings.build(activemq_url, prefix=f"test{uuid.uuid4().hex[:8]}")


@pytest.fixture
def ours(settings: Settings) -> Iterator[Transport]:
    with connect(settings) as transport:
        yield transport


def upstream_options(settings: Settings) -> list[str]:
    return [
        "--stomp-host", settings.host, "--stomp-port", str(settings.port),
        "--stomp-user", str(settings.username), "--stomp-pass", str(settings.password),
    ]  # fmt: skip


def test_what_an_upstream_service_rejected_shows_in_the_frame_and_goes_back_to_it(
    ours: Transport, settings: Settings
) -> None:
    statuses: list[dict[str, Any]] = []
    ours.subscribe_topic("transient.status", lambda m: statuses.append(m.body))
    with upstream_service("up.step", *upstream_options(settings), "--stomp-prfx", settings.prefix):
        assert eventually(
            lambda: any(s.get("serviceclass") == "UpstreamForward" for s in statuses), timeout=60
        )
        b = RecipeBuilder()
        first, after = b.step("up.step"), b.step("up.after")
        first.then(after)
        b.start(first, {"reject": True, "image": 7})
        arrived = Collector(ours, "up.after")
        run = submit(b.build(), transport=ours)
        dead_queue = f"/queue/DLQ.{settings.prefix}.up.step"
        assert eventually(lambda: dlq.counts(ours).get(dead_queue) == 1, timeout=30)
        frame = dlq.frame(ours)
        assert list(frame["run"]) == [run.id] and list(frame["step"]) == [1]
        assert list(frame["destination"].astype(str)) == [f"/queue/{settings.prefix}.up.step"]
        assert frame.loc[0, "reason"] == dlq.letters.BROKER_REASON
        moved = dlq.reinject(ours, frame, payload={"reject": False, "image": 7})
        assert len(moved) == 1
        assert eventually(lambda: len(arrived.messages) == 1, timeout=30)
        assert arrived.messages[0].body["payload"] == {"reject": False, "image": 7}
        assert arrived.messages[0].body["environment"]["ID"] == run.id
        assert dlq.counts(ours)[dead_queue] == 0


def test_files_written_by_upstreams_dlq_purge_are_read_and_reinjected(
    ours: Transport, settings: Settings, tmp_path: Path
) -> None:
    for n in range(3):
        ours.send(
            f"/queue/DLQ.{settings.prefix}.up.files",
            {"n": n},
            headers={"original-destination": f"/queue/{settings.prefix}.up.files"},
        )
    assert eventually(lambda: dlq.counts(ours).get(f"/queue/DLQ.{settings.prefix}.up.files") == 3)
    purge = Path(sys.executable).parent / "zocalo.dlq_purge"
    done = subprocess.run(
        [str(purge), "-t", "StompTransport", *upstream_options(settings),
         "--stomp-prfx", "DLQ", "--location", str(tmp_path), "--wait", "2",
         f"{settings.prefix}.up.files"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Found 3 DLQ messages" in done.stdout
    frame = dlq.frame(paths=[tmp_path])
    assert sorted(b["n"] for b in frame["body"]) == [0, 1, 2]
    assert set(frame["destination"]) == {f"/queue/{settings.prefix}.up.files"}
    arrived = Collector(ours, "up.files")
    # upstream's own purge output, piped in, is read too (its indented file lines)
    paths = [line for line in done.stdout.splitlines() if line.startswith("        /")]
    assert len(paths) == 3
    sent = dlq.reinject_files(ours, paths)
    assert len(sent) == 3
    assert eventually(lambda: sorted(m.body["n"] for m in arrived.messages) == [0, 1, 2])
    assert all(m.headers["dlq-reinjected"] == "True" for m in arrived.messages)
