"""Dead letters on memory:// and ActiveMQ: the frame, reinjection, purge, files, rerun."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import zocalo_nb as z
from tests.brokers import eventually
from tests.sites import Site
from zocalo_nb import dlq
from zocalo_nb.dispatch import StepContext
from zocalo_nb.errors import ZocaloNbError
from zocalo_nb.monitor import History, Tracker
from zocalo_nb.recipe import Recipe
from zocalo_nb.service import Service
from zocalo_nb.states import StepState


class Pipeline:
    """Step 1 counts its executions; step 2 fails unless its ``threshold`` parameter is set."""

    def __init__(self) -> None:
        self.step_one_runs: Counter[str] = Counter()
        self.arrived: list[StepContext] = []
        self.lock = threading.Lock()

    def one(self, ctx: StepContext, payload: Any) -> None:
        with self.lock:
            self.step_one_runs[str(ctx.run_id)] += 1
        ctx.send({**payload, "spots": payload["image"] * 10})

    @staticmethod
    def two(ctx: StepContext, payload: Any) -> None:
        if payload["image"] % 2 and "threshold" not in ctx.parameters:
            raise KeyError("threshold")
        ctx.send({**payload, "indexed": True})

    def end(self, ctx: StepContext, payload: Any) -> None:
        with self.lock:
            self.arrived.append(ctx)

    def services(self) -> list[Service]:
        return [
            Service("spots", self.one, queues=("dq.one",)),
            Service("index", self.two, queues=("dq.two",), max_attempts=2, backoff=0.1),
            Service("end", self.end, queues=("dq.end",)),
        ]


def recipe(image: int) -> Recipe:
    return Recipe.from_dict(
        {
            "1": {"queue": "dq.one", "output": 2},
            "2": {"queue": "dq.two", "parameters": {"beamline": "i04"}, "output": 3},
            "3": {"queue": "dq.end"},
            "start": [[1, {"image": image}]],
        }
    )


def test_failed_step_2_shows_in_the_dlq_frame_and_rerunning_it_completes_the_runs(
    site: Site,
) -> None:
    transport = site.connect()
    pipeline = Pipeline()
    with site.runner(pipeline.services()):
        runs = [z.submit(recipe(n), transport=transport) for n in range(6)]
        for run in runs:
            run.wait(30, progress=False)
        failed = [r for r in runs if r.state()[2] == StepState.DEAD_LETTERED]
        assert len(failed) == 3 and len(pipeline.arrived) == 3
        dead = dlq.frame(transport)
        assert sorted(dead["run"]) == sorted(r.id for r in failed)
        assert set(dead["step"]) == {2} and set(dead["error_type"].astype(str)) == {"KeyError"}
        assert set(dead["service"].astype(str)) == {"index"} and set(dead["attempts"]) == {2}
        assert set(dead["queue"].astype(str)) == {transport.dlq("dq.two")}
        assert set(dead["destination"].astype(str)) == {f"/queue/{site.prefix}.dq.two"}
        assert dead.groupby("error_type", observed=True).size().to_dict() == {"KeyError": 3}
        counts = dlq.counts(transport)  # RabbitMQ's topology has every dlq.* queue, empty
        assert counts[transport.dlq("dq.two")] == sum(counts.values()) == 3
        by_beamline = dead[dead["parameters"].map(lambda p: p.get("beamline") == "i04")]
        assert len(by_beamline) == 3  # filter by a step parameter
        # fix the cause (a parameter) and rerun step 2 of each failed run
        reruns = [r.rerun(2, parameters={"threshold": 5}) for r in failed]
        for rerun in reruns:
            assert rerun.wait(30, progress=False)[2] == StepState.SUCCEEDED
    assert len(pipeline.arrived) == 6
    assert all(pipeline.step_one_runs[r.id] == 1 for r in runs)  # step 1 never ran again
    assert sum(pipeline.step_one_runs.values()) == 6
    counts = dlq.counts(transport)
    assert counts[transport.dlq("dq.two")] == sum(counts.values()) == 0
    rerun_ids = {c.run_id for c in pipeline.arrived} - {r.id for r in runs}
    assert rerun_ids == {r.id for r in reruns}
    origins = {c.environment.get("rerun-of") for c in pipeline.arrived}
    assert origins - {None} == {r.id for r in failed}
    assert reruns[0].state() == {
        1: StepState.NOT_RERUN,  # (it ran in the original run)
        2: StepState.SUCCEEDED,
        3: StepState.SUCCEEDED,
    }


def test_reinject_with_an_edited_step_parameter_and_purge_to_files_and_back(
    site: Site, tmp_path: Path
) -> None:
    transport = site.connect()
    pipeline = Pipeline()
    with site.runner(pipeline.services()):
        runs = [z.submit(recipe(n), transport=transport) for n in (1, 3, 5, 7)]
        for run in runs:
            run.wait(30, progress=False)
        dead = dlq.frame(transport)
        assert len(dead) == 4
        first = dead[dead["run"] == runs[0].id]
        moved = dlq.reinject(transport, first, parameters={"threshold": 1}, rate=20)
        assert moved == list(first["message_id"])
        assert eventually(lambda: len(pipeline.arrived) == 1, timeout=20)
        assert pipeline.arrived[0].run_id == runs[0].id
        # purge two, export first: files in upstream's format
        written = dlq.purge(
            transport, dead[dead["run"].isin([runs[1].id, runs[2].id])], location=tmp_path / "DLQ"
        )
        assert len(written) == 2 and all(p.exists() for p in written)
        content = json.loads(written[0].read_text())
        assert set(content) == {"exported", "header", "message"}
        assert written[0].name.startswith("msg-") and written[0].parent.parent == tmp_path / "DLQ"
        assert len(dlq.frame(transport)) == 1
        files_frame = dlq.frame(paths=[tmp_path / "DLQ"])
        assert set(files_frame["run"]) == {runs[1].id, runs[2].id}
        assert set(files_frame["source"]) == {str(p) for p in written}
        # our reinject reads our purge output (paths, one per line), with an edit
        lines = "\n".join(map(str, written)).splitlines()
        sent = dlq.reinject_files(transport, lines, remove=True, parameters={"threshold": 1})
        assert sent == written and not any(p.exists() for p in written)
        assert eventually(lambda: len(pipeline.arrived) == 3, timeout=20)
    assert sum(pipeline.step_one_runs.values()) == 4


def test_bad_selections_and_files_fail_with_a_hint(site: Site, tmp_path: Path) -> None:
    transport = site.connect()
    with pytest.raises(ZocaloNbError, match="lack the column"):
        dlq.reinject(transport, dlq.frame(transport).drop(columns=["queue"]))
    broken = tmp_path / "msg-broken"
    broken.write_text("{not json")
    with pytest.raises(ZocaloNbError, match="cannot read dead-letter file"):
        dlq.frame(paths=[broken])
    with pytest.raises(ZocaloNbError, match="no such dead-letter file"):
        dlq.reinject_files(transport, [tmp_path / "nothing"])
    with pytest.raises(ZocaloNbError, match="rate must be positive"):
        dlq.reinject(transport, [], rate=0)
    assert dlq.reinject(transport) == []  # nothing dead: nothing to do


def test_a_rerun_outside_the_test_namespace_needs_a_flag(site: Site, tmp_path: Path) -> None:
    from zocalo_nb.config import Settings
    from zocalo_nb.transport import connect

    settings = Settings.build(site.url, prefix="zocalo") if site.url else Settings(prefix="zocalo")
    production = connect(settings, broker=site.broker)
    site.transports.append(production)
    history = History(f"sqlite:///{tmp_path / 'h.sqlite'}")
    tracker = Tracker(history)
    pipeline = Pipeline()
    with site.runner([tracker.service()]), site.runner(pipeline.services()):
        run = z.submit(recipe(2), transport=site.connect())
        run.wait(30, progress=False)
        assert eventually(lambda: len(history.events(run.id)) >= 4, timeout=10)
    view = z.Run.load(run.id, transport=production, history=history)
    plan = view.rerun(2, send=False)
    assert plan.source == "history" and plan.message.payload == {"image": 2, "spots": 20}
    with pytest.raises(ZocaloNbError, match="namespace 'zocalo'") as caught:
        view.rerun(2)
    assert "allow_namespace=True" in caught.value.hint


def test_reinjected_headers_follow_upstreams_rule_and_start_afresh() -> None:
    upstream_drops = ("content-length", "destination", "expires", "message-id",
                      "original-destination", "originalExpiration", "subscription",
                      "timestamp", "redelivered")  # fmt: skip
    headers = {name: "x" for name in upstream_drops}
    headers |= {"zocalo-nb-id": "abc", "workflows-recipe": "True", "zocalo-nb-attempt": "3",
                "zocalo-nb-reason": "failed", "zocalo-nb-error": "KeyError"}  # fmt: skip
    kept = dlq.files.reinject_headers(dlq.DeadLetter("/queue/DLQ.x", headers, {}))
    assert kept == {"zocalo-nb-id": "abc", "workflows-recipe": "True", "dlq-reinjected": "True"}


def test_after_a_rerun_the_history_no_longer_says_the_message_waits_in_the_dlq(
    tmp_path: Path,
) -> None:
    from zocalo_nb.monitor import History, Run, Tracker
    from zocalo_nb.service import ServiceRunner
    from zocalo_nb.transport import MemoryBroker

    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    broker = MemoryBroker()
    transport = broker.connect()
    pipeline = Pipeline()
    tracker = Tracker(History(url))
    with (
        ServiceRunner([tracker.service()], broker=broker),
        ServiceRunner(pipeline.services(), broker=broker),
    ):
        run = z.submit(recipe(1), transport=transport)
        run.wait(30, progress=False)
        stored = Run.load(run.id, history=url)
        assert eventually(lambda: "waits in" in str(stored.explain()))
        rerun = run.rerun(2, parameters={"threshold": 5})
        rerun.wait(30, progress=False)
        assert eventually(lambda: f"rerun since as {rerun.id}" in str(stored.explain()))
        assert "waits in" not in str(stored.explain())
    broker.close()
