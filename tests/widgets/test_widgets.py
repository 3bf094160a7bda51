"""Widgets in pytest: values, clicks, and what the browser would receive (widget state)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import eventually
from tests.dlq.test_dlq import Pipeline, recipe
from tests.service.helpers import pipeline, step_one, step_two
from zocalo_nb.monitor import submit
from zocalo_nb.service import Service, ServiceRunner
from zocalo_nb.transport import MemoryBroker
from zocalo_nb.widgets import DeadLetterBrowser, RecipeEditor, RunMonitor, ServicesPanel


@pytest.fixture
def broker() -> Any:
    b = MemoryBroker(redelivery_delay=0.1)
    yield b
    b.close()


def services() -> list[Service]:
    return [
        Service("one", step_one, queues=("pipe.a",)),
        Service("two", step_two, queues=("pipe.b",)),
        Service("end", lambda ctx, p: None, queues=("pipe.end",)),
    ]


def test_the_recipe_editor_builds_validates_saves_loads_and_submits(
    broker: MemoryBroker, tmp_path: Path
) -> None:
    transport = broker.connect()
    editor = RecipeEditor(transport=transport)
    assert editor.steps.options == () and editor.recipe is None
    editor.queue.value, editor.outputs.value = "pipe.a", "[2]"
    editor.add.click()
    assert "step 1" in editor.messages.value and "2" in editor.messages.value  # no step 2 yet
    editor.queue.value, editor.outputs.value = "pipe.b", "[3]"
    editor.add.click()
    editor.queue.value, editor.outputs.value = "pipe.end", ""
    editor.parameters.value = '{"dcid": "{dcid}"}'
    editor.add.click()
    assert [label for label, _ in editor.steps.options] == ["1: pipe.a", "2: pipe.b", "3: pipe.end"]
    assert "valid: 3 steps" in editor.messages.value
    assert "<svg" in editor.graph.get_state()["value"]  # what the browser receives
    # bad JSON is reported, not raised
    editor.parameters.value = "{oops"
    editor.apply.click()
    assert "not valid JSON" in editor.messages.value
    # selecting a step shows it in the form
    editor.steps.value = 1
    assert editor.queue.value == "pipe.a" and editor.outputs.value == "[2]"
    path = tmp_path / "mine.json"
    editor.path.value = str(path)
    editor.save.click()
    assert json.loads(path.read_text())["3"]["parameters"] == {"dcid": "{dcid}"}
    again = RecipeEditor()
    again.path.value = str(path)
    again.load.click()
    assert again.data == editor.data and "loaded" in again.messages.value
    editor.submit_parameters.value = '{"dcid": 7}'
    with ServiceRunner(services(), broker=broker):
        editor.submit.click()
        run = editor.last_run
        assert run is not None and run.id in editor.messages.value
        run.wait(10, progress=False)
        assert run.finished
    editor.steps.value = 2
    editor.remove.click()
    assert "step 1" in editor.messages.value  # step 1 now points at a missing step


def test_the_run_monitor_follows_a_run_to_the_end_on_the_kernels_event_loop(
    broker: MemoryBroker,
) -> None:
    transport = broker.connect()
    changed_on: set[int] = set()

    async def kernel() -> RunMonitor:  # a kernel runs cells inside its asyncio loop
        monitor = RunMonitor(run, interval=0.05)
        assert monitor.running and monitor.progress.value == 0  # no service has run yet
        for child in (monitor.progress, monitor.graph, monitor.events, monitor.title):
            child.observe(lambda _: changed_on.add(threading.get_ident()))
        with ServiceRunner(services(), broker=broker):
            for _ in range(200):
                if not monitor.running:
                    break
                await asyncio.sleep(0.05)
        return monitor

    run = submit(pipeline(), transport=transport)  # waits in its queue until services start
    monitor = asyncio.run(kernel())
    assert not monitor.running
    assert changed_on == {threading.get_ident()}  # widget state only on the main thread
    assert monitor.progress.value == monitor.progress.max == 3
    assert monitor.progress.bar_style == "success"
    assert "<svg" in monitor.graph.value and "succeeded" in monitor.events.value
    assert "finished" in monitor.title.value


def test_the_run_monitor_never_changes_widgets_from_another_thread(
    broker: MemoryBroker,
) -> None:
    transport = broker.connect()
    with ServiceRunner(services(), broker=broker):
        run = submit(pipeline(), transport=transport)
        run.wait(10, progress=False)
    monitor = RunMonitor(run)  # no event loop here: nothing refreshes behind the caller
    assert not monitor.running
    errors: list[BaseException] = []
    worker = threading.Thread(target=lambda: _capture(monitor.refresh, errors))
    worker.start()
    worker.join()
    assert len(errors) == 1 and "main thread" in str(errors[0])
    assert monitor.refresh() is True  # from the thread that made it


def _capture(action: Any, errors: list[BaseException]) -> None:
    try:
        action()
    except RuntimeError as error:
        errors.append(error)


def test_the_dead_letter_browser_groups_and_reinjects_after_confirmation(
    broker: MemoryBroker, tmp_path: Path
) -> None:
    transport = broker.connect()
    work = Pipeline()
    with ServiceRunner(work.services(), broker=broker):
        runs = [submit(recipe(n), transport=transport) for n in (1, 3, 4)]
        for run in runs:
            run.wait(10, progress=False)
        browser = DeadLetterBrowser(transport, location=str(tmp_path))
        assert len(browser.rows.options) == 2
        browser.group.value = "error_type"
        assert "KeyError" in browser.table.value and ">2<" in browser.table.value
        # nothing selected: said at the first click, before any "Really reinject?"
        browser.reinject.button.click()
        assert "select dead letters first" in browser.status.value
        assert browser.reinject.button.description == "Reinject"
        # each entry names its run and time, so two alike are told apart
        labels = [label for label, _ in browser.rows.options]
        assert len(set(labels)) == 2 and all(" run " in label for label in labels)
        assert {label.split(" run ")[1][:8] for label in labels} <= {r.id[:8] for r in runs}
        assert "+00:00" not in browser.table.value and ".0000" not in labels[0]
        browser.rows.value = (0,)
        browser.parameters.value = '{"threshold": 1}'
        browser.reinject.button.click()
        assert browser.reinject.button.description == "Really reinject?"  # armed, not acted
        browser.reinject.button.click()
        assert "1 dead letter(s) reinjected" in browser.status.value
        assert eventually(lambda: len(work.arrived) == 2, timeout=10)
        assert len(browser.rows.options) == 1
        browser.rows.value = (0,)
        browser.purge.button.click()
        browser.purge.button.click()
        assert "purged" in browser.status.value and len(list(tmp_path.rglob("msg-*"))) == 1
        assert browser.rows.options == ()


def test_the_services_panel_lists_services_and_queues(broker: MemoryBroker) -> None:
    transport = broker.connect()
    panel = ServicesPanel(transport, queues=["pipe.a"])
    with ServiceRunner(services(), broker=broker, status_interval=0.2):
        assert eventually(lambda: (panel.refresh(), "one+two+end" in panel.services.value)[1])
        assert "pipe.a" in panel.queues.value


def test_the_services_panel_lists_a_service_that_started_before_it_at_once(
    broker: MemoryBroker,
) -> None:
    """A runner reports every 6 s: a panel opened between two reports listed only what had
    reported since (tutorial 05 showed a stopped tracker, not the running service). The
    panel asks every runner to report now."""
    import time

    with ServiceRunner(services(), broker=broker, status_interval=3600):
        time.sleep(0.3)  # its first reports went out before the panel listened
        panel = ServicesPanel(broker.connect(), queues=["pipe.a"])
        assert "one+two+end" in panel.services.value
        assert 'zocalo-nb-table">' in panel.services.value
        assert "+00:00" not in panel.services.value and "NaN" not in panel.services.value


def test_widget_tables_show_times_as_people_read_them() -> None:
    import pandas as pd

    from zocalo_nb.widgets.common import frame_html, human_time

    now = pd.Timestamp.now(tz="UTC")
    frame = pd.DataFrame({"time": [now, pd.NaT], "n": [1, None]})
    html = frame_html(frame)
    assert human_time(now) in html and len(human_time(now)) == 8  # HH:MM:SS today
    assert "NaN" not in html and "NaT" not in html and now.isoformat()[:19] not in html
    assert human_time(pd.Timestamp("2020-01-02 03:04:05.123456789")) == "2020-01-02 03:04:05"


ROOT = Path(__file__).resolve().parents[2]
UNKNOWN_FIELDS = {
    "comment": "a recipe with fields the editor's form does not show",
    "1": {"service": "Spot finding", "queue": "a", "max-attempts": 4, "transport-delay": 2,
          "comment": "kept", "x-custom": {"nested": [1, 2]}, "parameters": {"k": "{v}"},
          "output": {"success": 2}},
    "2": {"service": "Store", "topic": "t", "queue": "b", "error": 1},
    "start": [[1, {"reason": "test"}]],
}  # fmt: skip


@pytest.mark.parametrize(
    "source",
    [*sorted((ROOT / "recipes").glob("*.json")), "unknown-fields"],
    ids=lambda s: s if isinstance(s, str) else s.name,
)
def test_the_recipe_editor_round_trips_every_field_when_each_step_is_applied(
    source: Any, tmp_path: Path
) -> None:
    """Select each step and press Apply: the recipe is unchanged (before, every field the form
    does not show was dropped: service, max-attempts, transport-delay, comment)."""
    data = UNKNOWN_FIELDS if source == "unknown-fields" else json.loads(Path(source).read_text())
    editor = RecipeEditor(json.loads(json.dumps(data)))
    for step in sorted(int(k) for k in data if k.isdigit()):
        editor.steps.value = step
        editor.apply_step()
    assert editor.data == data
    saved = tmp_path / "saved.json"
    editor.save_file(str(saved))
    editor.load_file(str(saved))
    assert editor.data == data
    edited = RecipeEditor(json.loads(json.dumps(data)))
    edited.steps.value = 1
    edited.queue.value = "renamed"
    edited.apply_step()
    assert edited.data["1"] == {**data["1"], "queue": "renamed"}
