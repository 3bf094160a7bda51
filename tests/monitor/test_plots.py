"""Pictures of a run and of services: what the bars and lines say, read back from the
figure (values, not just "no exception")."""

from __future__ import annotations

from pathlib import Path

import zocalo_nb as z
from tests.dlq.test_dlq import Pipeline, recipe
from zocalo_nb.monitor.plots import attempts, throughput
from zocalo_nb.service import ServiceRunner
from zocalo_nb.states import STATE_COLOURS, StepState
from zocalo_nb.transport import MemoryBroker


def _failed_run() -> tuple[z.Run, Pipeline]:
    broker = MemoryBroker()
    pipeline = Pipeline()
    with ServiceRunner(pipeline.services(), broker=broker):
        run = z.submit(recipe(1), transport=broker.connect())  # step 2 fails twice
        run.wait(30, progress=False)
    broker.close()
    return run, pipeline


def test_the_timeline_has_a_bar_per_attempt_coloured_by_outcome(tmp_path: Path) -> None:
    from matplotlib.colors import to_hex

    run, _ = _failed_run()
    bars = attempts(run.events())
    assert sorted(zip(bars["step"], bars["outcome"], strict=True)) == [
        (1, "succeeded"), (2, "dead-lettered"), (2, "retrying")]  # fmt: skip
    figure = run.timeline()
    drawn = [p for p in figure.axes[0].patches if abs(p.get_height() - 0.6) < 1e-9]
    assert len(drawn) == 3
    colours = {to_hex(p.get_facecolor()) for p in drawn}
    assert colours == {STATE_COLOURS[StepState.SUCCEEDED], STATE_COLOURS[StepState.RETRYING],
                       STATE_COLOURS[StepState.DEAD_LETTERED]}  # fmt: skip
    retry, dead = sorted((p for p in drawn if p.get_y() > 0.5), key=lambda p: p.get_x())
    assert dead.get_x() >= retry.get_x() + retry.get_width()  # the wait shows as a gap
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == ["step 1", "step 2"]
    figure.savefig(tmp_path / "timeline.png")
    assert (tmp_path / "timeline.png").stat().st_size > 1000


def test_throughput_counts_finished_steps_per_service() -> None:
    run, _ = _failed_run()
    figure = throughput(run.events(), every="1min")
    bars = {
        c.get_label(): sum(p.get_height() for p in c.patches) for c in figure.axes[0].containers
    }
    assert bars == {"spots": 1}  # step 1 finished; step 2 never did
