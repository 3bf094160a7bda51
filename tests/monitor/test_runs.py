"""Watching runs on memory:// and ActiveMQ: states, failures, explanations, services, queues."""

from __future__ import annotations

import time
from typing import Any

import pytest

import zocalo_nb as z
from tests.brokers import eventually
from tests.service.helpers import pipeline, step_one, step_two
from tests.sites import Site
from zocalo_nb.dispatch import StepContext
from zocalo_nb.monitor import LiveRun, Tap
from zocalo_nb.recipe import Recipe, RecipeBuilder
from zocalo_nb.service import Service
from zocalo_nb.states import StepState
from zocalo_nb.transport import TransportError


def three_services() -> list[Service]:
    return [
        Service("one", step_one, queues=("pipe.a",), max_attempts=2, backoff=0.2),
        Service("two", step_two, queues=("pipe.b",)),
        Service("end", lambda ctx, payload: None, queues=("pipe.end",)),
    ]


def test_a_run_through_three_services_shows_the_right_states_in_order(site: Site) -> None:
    transport = site.connect()
    with site.runner(three_services()):
        run = z.submit(pipeline(), transport=transport)
        states = run.wait(30, progress=False)
    assert states == {1: StepState.SUCCEEDED, 2: StepState.SUCCEEDED, 3: StepState.SUCCEEDED}
    events = run.events()
    assert list(events["state"].astype(str)) == ["submitted", "succeeded", "succeeded", "succeeded"]
    assert list(events["step"].iloc[1:]) == [1, 2, 3]
    assert list(events["service"].iloc[1:].astype(str)) == ["one", "two", "end"]
    assert (
        str(events["time"].dtype).startswith("datetime64")
        and events["time"].is_monotonic_increasing
    )
    summary = run.summary()
    assert list(summary["state"].astype(str)) == ["succeeded"] * 3
    assert list(summary["sent"]) == [1, 1, 1] and list(summary["finished"]) == [1, 1, 1]
    assert run.finished and not run.explain()
    assert run.explain().finished
    assert 'fillcolor="#a1d99b"' in run.graph().to_dot()  # succeeded colour


def test_a_failing_step_shows_failed_then_dead_lettered_with_the_error(site: Site) -> None:
    transport = site.connect()
    builder = RecipeBuilder()
    first, second = builder.step("pipe.a"), builder.step("pipe.b")
    first.then(second)
    builder.start(first, {"poison": "bad input"})
    with site.runner(three_services()):
        run = z.submit(builder.build(), transport=transport)
        states = run.wait(30, progress=False)
    assert states == {1: StepState.DEAD_LETTERED, 2: StepState.SKIPPED}
    events = run.events()
    mine = events[events["step"] == 1]
    assert list(mine["state"].astype(str)) == ["retrying", "failed", "dead-lettered"]
    assert set(mine["error_type"].astype(str)) == {"ValueError"}
    assert (mine["error"] == "poisoned payload bad input").all()
    assert list(mine["attempt"]) == [1, 2, 2]
    reasons = run.explain()
    assert reasons.kinds() == ["dead-lettered"]
    assert "ValueError: poisoned payload bad input" in str(reasons)
    assert site.connect().dlq("pipe.a").removeprefix("/queue/") in str(reasons)


def test_a_send_on_an_unwired_channel_is_explained(site: Site) -> None:
    transport = site.connect()

    def typo(ctx: StepContext, payload: Any) -> None:
        ctx.send_to("sucess", payload)

    recipe = Recipe.from_dict(
        {
            "1": {"queue": "typo", "output": {"success": 2}},
            "2": {"queue": "after"},
            "start": [[1, {}]],
        }
    )
    with site.runner([Service("typo", typo, queues=("typo",))]):
        run = z.submit(recipe, transport=transport)
        run.wait(30, progress=False)
    assert run.state() == {1: StepState.SUCCEEDED, 2: StepState.SKIPPED}
    reasons = run.explain()
    assert reasons.kinds() == ["unwired-send"]
    assert reasons[0].step == 1 and "'sucess'" in reasons[0].message
    assert reasons[0].hint == "did you mean 'success'?"


def test_a_step_nobody_consumes_and_unresolved_parameters_are_explained(site: Site) -> None:
    transport = site.connect()
    recipe = Recipe.from_dict(
        {"1": {"queue": "nobody.home", "parameters": {"dcid": "{dcid}"}}, "start": [[1, {}]]}
    )
    run = z.submit(recipe, transport=transport)
    with pytest.raises(TimeoutError, match="nothing consumes"):
        run.wait(1.0, progress=False)
    assert run.state() == {1: StepState.QUEUED}
    reasons = run.explain()
    assert reasons.kinds() == ["no-consumer", "unresolved-parameter"]
    assert "ZOCALO_NB_QUEUES=nobody.home" in reasons[0].hint
    assert "{dcid}" in reasons[1].message


def test_a_stopped_service_drops_out_of_the_services_frame(site: Site) -> None:
    tap = Tap(site.connect()).ready()
    runner = site.runner([Service("brief", lambda ctx, p: None, queues=("brief",))]).start()
    assert eventually(lambda: bool(tap.services()["alive"].any()), timeout=10)
    frame = tap.services()
    assert list(frame["service"]) == ["brief"] and frame["alive"].all()
    runner.stop()
    assert eventually(lambda: not tap.services()["alive"].any(), timeout=10)
    # kept, so departures show
    assert eventually(lambda: list(tap.services()["statustext"].astype(str)) == ["shutdown"])


def test_browsing_and_queue_frames_leave_queue_depths_unchanged(site: Site) -> None:
    transport = site.connect()
    for n in range(5):
        transport.send("waiting", {"n": n})
    tap = Tap(transport)
    assert eventually(lambda: transport.statistics("waiting").depth == 5)
    before = tap.queues(["waiting"])
    if site.kind == "rabbitmq":  # no browser: a browse would count deliveries, so refused
        with pytest.raises(TransportError, match="delivery-limit"):
            tap.browse("waiting")
    else:
        browsed = tap.browse("waiting")
        assert list(browsed["summary"]) == [f'{{"n": {n}}}' for n in range(5)]
    after = tap.queues(["waiting"])
    assert before.loc[0, "depth"] == after.loc[0, "depth"] == 5
    assert after.loc[0, "dlq"] == transport.dlq("waiting")
    assert after.loc[0, "dlq_depth"] == 0
    assert len(site.waiting(transport, "waiting")) == 5


def test_the_live_display_refreshes_until_the_run_finishes(site: Site) -> None:
    transport = site.connect()
    shown: list[dict[str, str]] = []

    class Handle:
        def update(self, bundle: dict[str, str], raw: bool) -> None:
            shown.append(bundle)

    def display(bundle: dict[str, str], raw: bool, display_id: bool) -> Handle:
        shown.append(bundle)
        return Handle()

    slow = [
        Service("one", lambda ctx, p: (time.sleep(0.5), ctx.send(p)), queues=("pipe.a",)),
        Service("two", step_two, queues=("pipe.b",)),
        Service("end", lambda ctx, payload: None, queues=("pipe.end",)),
    ]
    with site.runner(slow):
        run = z.submit(pipeline(), transport=transport)
        live = LiveRun(run, interval=0.1, display=display).start()
        assert eventually(lambda: not live.running, timeout=30)
    assert run.finished and live.updates >= 2
    assert "<table" in shown[-1]["text/html"] and "finished" in shown[-1]["text/plain"]
    assert "queued" in shown[0]["text/html"] or "running" in shown[0]["text/html"]
    assert "succeeded" in shown[-1]["text/html"]


def test_a_service_that_stopped_is_named_when_a_step_waits_for_it(site: Site) -> None:
    transport = site.connect()
    tap = Tap.for_transport(transport)
    two = site.runner([Service("two", step_two, queues=("pipe.b",))]).start()
    with site.runner([Service("one", step_one, queues=("pipe.a",)),
                      Service("end", lambda ctx, p: None, queues=("pipe.end",))]):  # fmt: skip
        first = z.submit(pipeline(), transport=transport)
        first.wait(30, progress=False)
        two.stop()
        assert eventually(lambda: not tap.services().query("service == 'two'")["alive"].any())
        second = z.submit(pipeline(), transport=transport)
        assert eventually(lambda: second.state()[2] == StepState.QUEUED, timeout=10)
        reasons = second.explain()
    assert reasons.kinds() == ["no-consumer", "service-gone"]
    assert "service two on" in reasons[1].message and "shut down" in reasons[1].message
    assert "where a step waits" in reasons[1].message


def test_runners_sharing_a_process_are_told_apart(site: Site) -> None:
    # Upstream's host id is per process; a notebook kernel hosts several runners under one.
    # The one that stopped must stay named, however often its neighbour reports after it.
    transport = site.connect()
    tap = Tap.for_transport(transport)
    two = site.runner([Service("two", step_two, queues=("pipe.b",))]).start()
    with site.runner([Service("one", step_one, queues=("pipe.a",)),
                      Service("end", lambda ctx, p: None, queues=("pipe.end",))]):  # fmt: skip
        first = z.submit(pipeline(), transport=transport)
        first.wait(30, progress=False)
        two.stop()
        assert eventually(lambda: not tap.services().query("service == 'two'")["alive"].any())
        ended_at = time.time()
        # the neighbour (same host id) reports again after two's last word
        assert eventually(
            lambda: any(
                r.get("service") == "one+end" and float(r.get("arrived", 0)) > ended_at + 0.1
                for r in tap.status_records()
            ),
            timeout=10,
        )
        services = tap.services()
        assert sorted(services.service) == ["one+end", "two"]
        assert services.set_index("service").alive.to_dict() == {"one+end": True, "two": False}
        second = z.submit(pipeline(), transport=transport)
        assert eventually(lambda: second.state()[2] == StepState.QUEUED, timeout=10)
        reasons = second.explain()
    assert reasons.kinds() == ["no-consumer", "service-gone"]
    assert "service two on" in reasons[1].message


def test_the_progress_bar_counts_steps_with_a_total_that_does_not_grow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bar's total is the recipe's steps (before: deliveries found so far, 0/1 -> 1/2 ->
    5/5), it shows no rate (6364 step/s meant nothing), and it is off when the output is a
    log (no carriage returns written into it)."""
    import io
    import sys

    from zocalo_nb.monitor import run as run_module
    from zocalo_nb.service import Service, ServiceRunner
    from zocalo_nb.transport import MemoryBroker

    totals: list[tuple[int, int]] = []
    real = run_module._show_progress

    def watch(bar: Any, state: Any) -> None:
        real(bar, state)
        totals.append((bar.n, bar.total))

    monkeypatch.setattr(run_module, "_show_progress", watch)
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    broker = MemoryBroker()
    services = [Service("one", step_one, queues=("pipe.a",)),
                Service("two", step_two, queues=("pipe.b",)),
                Service("end", lambda ctx, p: None, queues=("pipe.end",))]  # fmt: skip
    with ServiceRunner(services, broker=broker):
        run = z.submit(pipeline(), transport=broker.connect())
        run.wait(20)
    broker.close()
    assert totals and {total for _, total in totals} == {3} and totals[-1] == (3, 3)
    assert "\r" not in log.getvalue() and "step/s" not in log.getvalue()
    assert run_module._progress_bar("abcdef12").disable  # stderr is not a terminal here

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    bar = run_module._progress_bar("abcdef12")
    bar.total, bar.n = 3, 2
    bar.refresh()
    bar.close()
    assert "2/3 steps" in screen.getvalue() and "/s" not in screen.getvalue()


def test_a_rerun_says_which_steps_are_not_part_of_it(tmp_path: Any) -> None:
    from tests.dlq.test_dlq import Pipeline, recipe
    from zocalo_nb.service import ServiceRunner
    from zocalo_nb.states import StepState
    from zocalo_nb.transport import MemoryBroker

    broker = MemoryBroker()
    transport = broker.connect()
    pipeline_ = Pipeline()
    with ServiceRunner(pipeline_.services(), broker=broker):
        run = z.submit(recipe(1), transport=transport)
        assert run.wait(30, progress=False)[2] == StepState.DEAD_LETTERED
        rerun = run.rerun(2, parameters={"threshold": 5})
        states = rerun.wait(30, progress=False)
    broker.close()
    assert states == {1: StepState.NOT_RERUN, 2: StepState.SUCCEEDED, 3: StepState.SUCCEEDED}
    summary = run.summary()
    assert summary["seconds"].map(lambda s: round(s, 3) == s).all()  # no 0.000062


def test_a_progress_bar_made_while_ipython_is_half_imported_does_not_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A notebook runner imports IPython on a thread of its own; a run.wait() meanwhile saw
    the half-imported module (no get_ipython yet) and raised AttributeError (demo on Slurm)."""
    import sys
    import types

    from zocalo_nb.monitor import run as run_module
    from zocalo_nb.render.display import in_notebook

    monkeypatch.setitem(sys.modules, "IPython", types.ModuleType("IPython"))
    assert in_notebook() is False
    run_module._progress_bar("abcdef12").close()
