"""Upstream's command-line tools (zocalo 1.5.0, as real processes) against our services on
ActiveMQ: zocalo.go, zocalo.shutdown, zocalo.wrap and zocalo.dlq_reinject."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import eventually
from tests.cli.test_service_process import start_service
from tests.service.helpers import Collector
from zocalo_nb import dlq
from zocalo_nb.config import Settings
from zocalo_nb.dispatch import StepContext, submit
from zocalo_nb.recipe import Recipe
from zocalo_nb.service import Service, ServiceRunner
from zocalo_nb.service.dispatcher import Dispatcher
from zocalo_nb.transport import Transport, connect
from zocalo_nb.wrapper.service import wrapper_service

pytestmark = [pytest.mark.activemq, pytest.mark.upstream]
TOOLS = Path(sys.executable).parent


@pytest.fixture
def settings(activemq_url: str) -> Settings:
    return Settings.build(activemq_url, prefix=f"u{uuid.uuid4().hex[:8]}")


@pytest.fixture
def ours(settings: Settings) -> Iterator[Transport]:
    with connect(settings) as transport:
        yield transport


def stomp_options(settings: Settings, prefix: str | None = None) -> list[str]:
    return [
        "-t", "StompTransport", "--stomp-host", settings.host,
        "--stomp-port", str(settings.port), "--stomp-user", str(settings.username),
        "--stomp-pass", str(settings.password),
        "--stomp-prfx", settings.prefix if prefix is None else prefix,
    ]  # fmt: skip


def tool(name: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(TOOLS / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_zocalo_go_with_named_and_custom_recipes_and_parameters_reaches_our_dispatcher(
    ours: Transport, settings: Settings, tmp_path: Path
) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    named = {
        "1": {"queue": "go.named", "parameters": {"dc": "{ispyb_dcid}", "bl": "{beamline}"}},
        "start": [[1, {"run": "{guid}"}]],
    }
    (recipes / "named.json").write_text(json.dumps(named))
    custom = tmp_path / "custom.json"
    custom.write_text(json.dumps({"1": {"queue": "go.custom"}, "start": [[1, {"c": 1}]]}))
    first, second = Collector(ours, "go.custom"), Collector(ours, "go.named")
    with ServiceRunner([Dispatcher(recipes, filters={}, gates={}).service()], settings):
        out = tool(
            "zocalo.go", "-r", "named", "-f", str(custom), "-s", "beamline=i04", "1234",
            *stomp_options(settings), cwd=tmp_path,
        )  # fmt: skip
        assert "Submitted." in out
        assert eventually(lambda: len(first.messages) == len(second.messages) == 1, timeout=30)
    custom_message, named_message = first.messages[0].body, second.messages[0].body
    run_id = named_message["environment"]["ID"]
    assert custom_message["recipe-pointer"] == 1 and named_message["recipe-pointer"] == 2
    assert named_message["recipe"]["2"]["parameters"] == {"dc": "1234", "bl": "i04"}
    assert named_message["payload"] == {"run": run_id}  # {guid} is the run id
    assert named_message["environment"]["zocalo.go.user"]


def test_zocalo_shutdown_stops_our_service_process(
    activemq_url: str, settings: Settings, tmp_path: Path
) -> None:
    statuses: list[dict[str, Any]] = []
    with connect(settings) as watcher:
        watcher.subscribe_topic("transient.status", lambda m: statuses.append(m.body))
        process = start_service(activemq_url, settings.prefix)
        try:
            assert eventually(lambda: any(s["statustext"] == "idle" for s in statuses), timeout=30)
            out = tool("zocalo.shutdown", "-s", "forward", *stomp_options(settings), cwd=tmp_path)
            assert "Stopping all instances of forward" in out
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
    assert process.stderr is not None and b"Traceback" not in process.stderr.read()


@pytest.fixture
def site_wrappers(tmp_path: Path) -> Path:
    """A site's upstream-style wrapper, installed (entry point group ``zocalo.wrappers``)."""
    site = tmp_path / "site"
    (site / "site_wrappers-1.0.dist-info").mkdir(parents=True)
    (site / "site_wrappers.py").write_text(
        textwrap.dedent(
            """
            import zocalo.wrapper

            class Quick(zocalo.wrapper.BaseWrapper):
                def run(self):
                    self.recwrap.send_to("upstream-result", {"seen": self.recwrap.payload})
                    return True
            """
        )
    )
    (site / "site_wrappers-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: site-wrappers\nVersion: 1.0\n"
    )
    (site / "site_wrappers-1.0.dist-info" / "entry_points.txt").write_text(
        "[zocalo.wrappers]\nquick = site_wrappers:Quick\n"
    )
    return site


def test_zocalo_wrap_runs_from_the_recipewrapper_file_our_command_job_writes(
    ours: Transport, settings: Settings, tmp_path: Path, site_wrappers: Path
) -> None:
    command = [
        str(TOOLS / "zocalo.wrap"), "--wrap", "quick", "--recipewrapper", "$RECIPEWRAP",
        *stomp_options(settings),
    ]  # fmt: skip
    recipe = Recipe.from_dict(
        {
            "1": {
                "queue": "wrap.jobs",
                "parameters": {
                    "command": command,
                    "workingdir": str(tmp_path / "work"),
                    "environment": {"PYTHONPATH": str(site_wrappers)},
                },
                "output": {"upstream-result": 2, "starting": 3},
            },
            "2": {"queue": "wrap.result"},
            "3": {"queue": "wrap.starting"},
            "start": [[1, {"image": "x.cbf"}]],
        }
    )
    result, starting = Collector(ours, "wrap.result"), Collector(ours, "wrap.starting")
    service = wrapper_service("command", ("wrap.jobs",))
    with ServiceRunner([service], settings):
        run = submit(recipe, transport=ours)
        assert eventually(lambda: len(result.messages) == 1, timeout=60)
    (message,) = result.messages
    assert message.body["payload"] == {"seen": {"image": "x.cbf"}}
    assert message.body["environment"]["ID"] == run.id and message.body["recipe-path"] == [1]
    written = json.loads(next((tmp_path / "work").glob("*.recipewrap.json")).read_text())
    assert written["recipe-pointer"] == 1 and written["environment"]["ID"] == run.id
    # both the wrapped upstream job and our wrapper say "Starting processing", as upstream
    assert eventually(lambda: len(starting.messages) == 2)
    assert {m.body["payload"] for m in starting.messages} == {"Starting processing"}


def test_zocalo_dlq_reinject_sends_back_what_our_purge_wrote(
    ours: Transport, settings: Settings, tmp_path: Path
) -> None:
    def refuse(ctx: StepContext, payload: Any) -> None:
        raise ValueError("not today")

    recipe = Recipe.from_dict(
        {"1": {"queue": "back.step", "max-attempts": 1}, "start": [[1, {"n": 7}]]}
    )
    with ServiceRunner([Service("refuse", refuse, queues=("back.step",))], settings):
        run = submit(recipe, transport=ours)
        assert eventually(lambda: len(dlq.frame(ours)) == 1, timeout=30)
    files = dlq.purge(ours, location=tmp_path / "DLQ")
    assert len(files) == 1 and len(dlq.frame(ours)) == 0
    arrived = Collector(ours, "back.step")
    out = tool("zocalo.dlq_reinject", str(files[0]), *stomp_options(settings), cwd=tmp_path)
    assert "Done." in out
    assert eventually(lambda: len(arrived.messages) == 1, timeout=30)
    body = arrived.messages[0].body
    assert body["payload"] == {"n": 7} and body["environment"]["ID"] == run.id
    assert arrived.messages[0].headers["dlq-reinjected"] == "True"
