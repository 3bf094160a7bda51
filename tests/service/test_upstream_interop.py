"""Interop with upstream python-workflows on one ActiveMQ: its go-style requests reach our
dispatcher, a recipe passes from our services through an upstream CommonService and back,
and upstream's status monitor sees our services."""

from __future__ import annotations

import contextlib
import json
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import eventually, upstream_service
from tests.service.helpers import Collector, pipeline
from tests.upstream.forward_service import MARK_ENV
from zocalo_nb.config import Settings
from zocalo_nb.dispatch import StepContext, submit
from zocalo_nb.recipe import RecipeBuilder
from zocalo_nb.service import Service, ServiceRunner
from zocalo_nb.service.dispatcher import Dispatcher
from zocalo_nb.transport import Transport, connect

pytestmark = [pytest.mark.activemq, pytest.mark.upstream]


@pytest.fixture
def settings(activemq_url: str) -> Settings:
    return Settings.build(activemq_url, prefix=f"i{uuid.uuid4().hex[:8]}")


@pytest.fixture
def upstream(settings: Settings) -> Iterator[Any]:
    """An upstream StompTransport class configured for our broker and namespace."""
    from workflows.transport.stomp_transport import StompTransport

    saved = dict(StompTransport.defaults)
    StompTransport.defaults.update(
        {
            "--stomp-host": settings.host,
            "--stomp-port": settings.port,
            "--stomp-user": settings.username,
            "--stomp-pass": settings.password,
            "--stomp-prfx": settings.prefix,
        }
    )
    yield StompTransport
    StompTransport.defaults.clear()
    StompTransport.defaults.update(saved)


@pytest.fixture
def ours(settings: Settings) -> Iterator[Transport]:
    transport = connect(settings)
    yield transport
    transport.close()


def test_an_upstream_go_style_request_is_dispatched_by_our_dispatcher(
    upstream: Any, ours: Transport, settings: Settings, tmp_path: Path
) -> None:
    pipeline().replace_step(1, parameters={"dcid": "{ispyb_dcid}"}).save(tmp_path / "pipe.json")
    first = Collector(ours, "pipe.a")
    sender = upstream()
    sender.connect()
    with ServiceRunner([Dispatcher(tmp_path).service()], settings):
        time.sleep(0.3)
        sender.send(
            "processing_recipe",
            {"recipes": ["pipe"], "parameters": {"ispyb_dcid": 5, "guid": "go-1"}},
            headers={"zocalo.go.user": "upstream-user", "zocalo.go.host": "upstream-host"},
        )
        assert eventually(lambda: len(first.messages) == 1, timeout=15)
    sender.disconnect()
    body = first.messages[0].body
    assert (
        body["environment"]["ID"] == "go-1"
        and body["environment"]["zocalo.go.user"] == "upstream-user"
    )
    assert body["recipe"]["1"]["parameters"] == {"dcid": "5"}


def test_a_recipe_passes_from_our_service_through_an_upstream_one_and_back(
    ours: Transport, settings: Settings, tmp_path: Path
) -> None:
    b = RecipeBuilder()
    mine, theirs, mine_again, end = (
        b.step("mix.a"),
        b.step("mix.upstream"),
        b.step("mix.c"),
        b.step("mix.end"),
    )
    mine.then(theirs).then(mine_again).then(end)
    b.start(mine, {"hops": []})
    statuses: list[dict[str, Any]] = []
    ours.subscribe_topic("transient.status", lambda m: statuses.append(m.body))

    def hop(ctx: StepContext, payload: Any) -> None:
        ctx.send({"hops": [*payload["hops"], ctx.step.queue]})

    options = ("--stomp-host", settings.host, "--stomp-port", str(settings.port))
    login = ("--stomp-user", str(settings.username), "--stomp-pass", str(settings.password))
    mark = tmp_path / "mark"  # the upstream service notes each commit (bench_pipeline.py)
    mark.write_bytes(bytes(8))
    with upstream_service(
        "mix.upstream", *options, *login, "--stomp-prfx", settings.prefix,
        env={MARK_ENV: str(mark)},
    ):  # fmt: skip
        assert eventually(
            lambda: any(
                s.get("serviceclass") == "UpstreamForward" and s.get("status") == 2
                for s in statuses
            ),
            timeout=60,
        )
        end_collector = Collector(ours, "mix.end")
        with ServiceRunner([Service("ours", hop, queues=("mix.a", "mix.c"))], settings):
            submitted = time.perf_counter()
            run = submit(b.build(), transport=ours)
            assert eventually(lambda: len(end_collector.messages) == 1, timeout=30)
            arrived = time.perf_counter()
        (committed,) = struct.unpack("d", mark.read_bytes())
        assert submitted < committed < arrived  # the same clock in every process
        body = end_collector.messages[0].body
        assert body["environment"]["ID"] == run.id
        assert body["payload"] == {"hops": ["mix.a", "mix.c"]}  # upstream forwarded it untouched
        assert body["recipe-path"] == [1, 2, 3]


def test_upstreams_status_monitor_sees_our_services(upstream: Any, settings: Settings) -> None:
    from workflows.contrib.status_monitor import Monitor

    monitor = Monitor(transport=upstream)
    try:
        with ServiceRunner(
            [Service("spotfinder", lambda c, p: None, queues=("spots",))],
            settings,
            status_interval=0.5,
        ) as runner:
            assert eventually(
                lambda: monitor._node_status.get(runner.host, {}).get("status") == 2, timeout=15
            )
            status = monitor._node_status[runner.host]
            assert (status["service"], status["statustext"], status["status"]) == (
                "spotfinder",
                "idle",
                2,
            )
            assert status["workflows"].startswith("zocalo_nb") and isinstance(
                status["utilization"], dict
            )
            json.dumps(status)
    finally:
        monitor._transport.disconnect()


def test_an_upstream_service_stops_with_the_process_it_started(
    ours: Transport, settings: Settings
) -> None:
    # Upstream's starter runs the service in a child process: stopping the starter alone left
    # that child consuming, an orphan, after the tests (seen with ps after a test run).
    statuses: list[dict[str, Any]] = []
    ours.subscribe_topic("transient.status", lambda m: statuses.append(m.body))
    options = ("--stomp-host", settings.host, "--stomp-port", str(settings.port))
    login = ("--stomp-user", str(settings.username), "--stomp-pass", str(settings.password))
    with upstream_service("stop.me", *options, *login, "--stomp-prfx", settings.prefix) as p:
        assert eventually(
            lambda: any(s.get("serviceclass") == "UpstreamForward" for s in statuses), timeout=60
        )
        group = p.pid
        assert len(_members(group)) >= 2  # the starter and the service it runs
    assert eventually(lambda: _members(group) == [], timeout=10), _members(group)


def _members(group: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == group and fields[0] != "Z":
                found.append(int(stat.parent.name))
    return found
