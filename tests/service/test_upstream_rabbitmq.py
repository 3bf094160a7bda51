"""Interop with upstream on one RabbitMQ, as real processes with the pinned packages
(workflows 3.3 PikaTransport, zocalo 1.5.0): an upstream service in the middle of our recipe,
zocalo.go to our dispatcher, upstream's dlq_purge files read by us and ours reinjected by
upstream's dlq_reinject, upstream's status monitor seeing our services. The deployment is
declared as upstream's is: topology first (our ``configure``), no namespace prefix."""

from __future__ import annotations

import contextlib
import json
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
from zocalo_nb.dispatch import StepContext, submit
from zocalo_nb.recipe import RecipeBuilder
from zocalo_nb.service import Service, ServiceRunner
from zocalo_nb.service.dispatcher import Dispatcher
from zocalo_nb.transport import Transport, TransportError, connect
from zocalo_nb.transport.rabbitmq_api import ManagementAPI
from zocalo_nb.transport.topology import Topology

pytestmark = pytest.mark.upstream
TOOLS = Path(sys.executable).parent
QUEUES = [
    "mix.a", "mix.upstream", "mix.c", "mix.end", "processing_recipe", "go.named",
    "refused", "refused.after",
]  # fmt: skip
BROADCASTS = ["transient.status", "transient.command", "zocalo-nb.events"]


@pytest.fixture
def deployment(rabbitmq_url: str) -> Iterator[Settings]:
    """A vhost of its own, declared from upstream's YAML format (delivery limit 2)."""
    base = Settings.build(rabbitmq_url)
    vhost = f"interop-{uuid.uuid4().hex[:8]}"
    topology = Topology.from_mapping(
        {
            "vhosts": [{"name": vhost}],
            "permissions": [
                {"user": base.username, "vhost": vhost, "configure": ".*", "write": ".*",
                 "read": ".*"}
            ],
            "policies": [
                {"vhost": vhost, "name": "redelivery", "pattern": "^(?!dlq\\.).*",
                 "definition": {"delivery-limit": 2}}
            ],
            "groups": [
                {"names": QUEUES, "vhost": vhost, "settings": {"queues": {
                    "type": "quorum", "dead-letter-routing-key-pattern": "dlq.{name}"}}},
                {"names": BROADCASTS, "vhost": vhost, "settings": {"broadcast": True}},
            ],
        }
    )  # fmt: skip
    api = ManagementAPI.for_settings(base)
    topology.plan(api).apply(api)
    url = (
        f"amqp://{base.username}:{base.password}@{base.host}:{base.port}/{vhost}"
        f"?management={base.management_port}"
    )
    yield Settings.build(url)
    with contextlib.suppress(TransportError):
        api.delete(f"vhosts/{vhost}")


@pytest.fixture
def ours(deployment: Settings) -> Iterator[Transport]:
    with connect(deployment) as transport:
        yield transport


def rabbit_options(settings: Settings) -> list[str]:
    return [
        "--rabbit-host", settings.host, "--rabbit-port", str(settings.port),
        "--rabbit-user", str(settings.username), "--rabbit-pass", str(settings.password),
        "--rabbit-vhost", settings.vhost,
    ]  # fmt: skip


def tool(name: str, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [str(TOOLS / name), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@contextlib.contextmanager
def upstream_pika_service(queue: str, settings: Settings) -> Iterator[object]:
    with upstream_service(queue, *rabbit_options(settings)) as process:
        yield process


def test_a_recipe_passes_from_our_service_through_an_upstream_pika_one_and_back(
    ours: Transport, deployment: Settings
) -> None:
    b = RecipeBuilder()
    mine, theirs, mine_again, end = (
        b.step("mix.a"), b.step("mix.upstream"), b.step("mix.c"), b.step("mix.end"),
    )  # fmt: skip
    mine.then(theirs).then(mine_again).then(end)
    b.start(mine, {"hops": []})
    statuses: list[dict[str, Any]] = []
    ours.subscribe_topic("transient.status", lambda m: statuses.append(m.body))

    def hop(ctx: StepContext, payload: Any) -> None:
        ctx.send({"hops": [*payload["hops"], ctx.step.queue]})

    end_collector = Collector(ours, "mix.end")
    with upstream_pika_service("mix.upstream", deployment):
        assert eventually(
            lambda: any(s.get("serviceclass") == "UpstreamForward" for s in statuses), timeout=60
        )
        with ServiceRunner([Service("ours", hop, queues=("mix.a", "mix.c"))], deployment):
            run = submit(b.build(), transport=ours)
            assert eventually(lambda: len(end_collector.messages) == 1, timeout=30)
    body = end_collector.messages[0].body
    assert body["environment"]["ID"] == run.id
    assert body["payload"] == {"hops": ["mix.a", "mix.c"]}
    assert body["recipe-path"] == [1, 2, 3]
    assert end_collector.messages[0].headers["workflows-recipe"] == "True"


def test_upstreams_status_monitor_sees_our_services(deployment: Settings) -> None:
    from workflows.contrib.status_monitor import Monitor
    from workflows.transport.pika_transport import PikaTransport

    saved = dict(PikaTransport.defaults)
    options = rabbit_options(deployment)
    PikaTransport.defaults.update(dict(zip(options[::2], options[1::2], strict=True)))
    monitor = Monitor(transport=PikaTransport)
    try:
        with ServiceRunner(
            [Service("watched", lambda ctx, p: None, queues=("mix.a",))],
            deployment,
            status_interval=0.5,
        ) as runner:
            assert eventually(
                lambda: monitor._node_status.get(runner.host, {}).get("status") == 2, timeout=30
            )
            status = monitor._node_status[runner.host]
            assert (status["service"], status["statustext"]) == ("watched", "idle")
    finally:
        monitor._transport.disconnect()
        PikaTransport.defaults.clear()
        PikaTransport.defaults.update(saved)


def test_zocalo_go_over_pika_reaches_our_dispatcher(
    ours: Transport, deployment: Settings, tmp_path: Path
) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    named = {"1": {"queue": "go.named", "parameters": {"dc": "{ispyb_dcid}"}}, "start": [[1, {}]]}
    (recipes / "named.json").write_text(json.dumps(named))
    arrived = Collector(ours, "go.named")
    with ServiceRunner([Dispatcher(recipes, filters={}, gates={}).service()], deployment):
        out = tool(
            "zocalo.go", "-r", "named", "1234", "-t", "PikaTransport",
            *rabbit_options(deployment), cwd=tmp_path,
        )  # fmt: skip
        assert "Submitted." in out
        assert eventually(lambda: len(arrived.messages) == 1, timeout=30)
    assert arrived.messages[0].body["recipe"]["1"]["parameters"] == {"dc": "1234"}


def test_upstream_dlq_purge_files_are_read_by_us_and_ours_reinjected_by_upstream(
    ours: Transport, deployment: Settings, tmp_path: Path
) -> None:
    def refuse(ctx: StepContext, payload: Any) -> None:
        raise ValueError("not today")

    b = RecipeBuilder()
    b.start(b.step("refused", **{"max-attempts": 1}), {"n": 7})
    service = Service("refuse", refuse, queues=("refused",))
    with ServiceRunner([service], deployment):
        run = submit(b.build(), transport=ours)
        assert eventually(lambda: len(dlq.frame(ours)) == 1, timeout=30)
    # upstream's purge writes RabbitMQ-shaped files (no destination; x-death): we read them
    out = tool(
        "zocalo.dlq_purge", "-t", "PikaTransport", *rabbit_options(deployment),
        "--location", str(tmp_path / "theirs"), "--wait", "3", "refused", cwd=tmp_path,
    )  # fmt: skip
    assert "Found 1 DLQ messages" in out
    frame = dlq.frame(paths=[tmp_path / "theirs"])
    assert list(frame["run"]) == [run.id] and list(frame["destination"]) == ["/queue/refused"]
    assert len(dlq.frame(ours)) == 0
    with ServiceRunner([service], deployment):  # back it goes, and fails again
        assert len(dlq.reinject_files(ours, [tmp_path / "theirs"])) == 1
        assert eventually(lambda: len(dlq.frame(ours)) == 1, timeout=30)
    # our purge file, reinjected by upstream's dlq_reinject
    (ours_file,) = dlq.purge(ours, location=tmp_path / "ours")
    refused = Collector(ours, "refused")
    tool(
        "zocalo.dlq_reinject", str(ours_file), "-t", "PikaTransport",
        *rabbit_options(deployment), cwd=tmp_path,
    )  # fmt: skip
    assert eventually(lambda: len(refused.messages) == 1, timeout=30)
    back = refused.messages[0]
    assert back.body["payload"] == {"n": 7} and back.body["environment"]["ID"] == run.id
    assert back.headers["dlq-reinjected"] == "True"
