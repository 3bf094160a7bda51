"""The pipeline benchmark's figures: what its steady rate covers, and how repeated runs are
reported (the benchmark itself runs outside the suite: it takes minutes and a quiet machine)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_pipeline
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return bench_pipeline


def _arrivals(rates: list[tuple[float, int]]) -> list[float]:
    """Arrival times for stretches of ``(seconds, messages)`` one after another."""
    times, now = [], 0.0
    for seconds, count in rates:
        times += [now + seconds * (n + 1) / count for n in range(count)]
        now += seconds
    return times


def test_the_steady_rate_starts_once_the_broker_has_taken_in_the_injection(
    bench: ModuleType,
) -> None:
    # 1,000 arrive at 2,000/s while the broker also takes in the injection, then 9,000 at 4,000/s.
    arrivals = _arrivals([(0.5, 1000), (2.25, 9000)])
    assert bench.steady_rate(arrivals, quiet_from=0.5) == pytest.approx(4000, rel=0.01)
    # Without knowing when the injection ended: from the 10% arrival (here the same point).
    assert bench.steady_rate(arrivals) == pytest.approx(4000, rel=0.01)
    # Injection absorbed only at the 30% arrival: the slow stretch is left out.
    arrivals = _arrivals([(1.5, 3000), (1.75, 7000)])
    assert bench.steady_rate(arrivals) < 3500
    assert bench.steady_rate(arrivals, quiet_from=1.5) == pytest.approx(4000, rel=0.01)


def test_an_injection_that_ends_after_the_90_percent_arrival_does_not_empty_the_window(
    bench: ModuleType,
) -> None:
    arrivals = _arrivals([(1.0, 1000)])
    assert bench.steady_rate(arrivals, quiet_from=0.95) == pytest.approx(1000, rel=0.01)


def test_long_runs_take_the_median_of_per_second_rates_after_the_injection(
    bench: ModuleType,
) -> None:
    arrivals = _arrivals([(4.0, 4000), (20.0, 60000)])  # 1,000/s, then 3,000/s
    assert bench.steady_rate(arrivals, quiet_from=4.0) == pytest.approx(3000, rel=0.01)


def test_the_steady_rate_ends_once_the_first_step_has_drained(bench: ModuleType) -> None:
    # 600 arrive at 3,000/s while every step works; then only the second step does, on the 400
    # waiting for it, at 8,000/s: the 10%-90% window held 0.05 s of that tail (found at 1,000).
    arrivals = _arrivals([(0.2, 600), (0.05, 400)])
    assert bench.steady_rate(arrivals, quiet_from=0.0) > 3400  # the tail reads into it
    assert bench.steady_rate(arrivals, 0.0, drained=0.2 + 1e-9) == pytest.approx(3000, rel=0.01)
    # Long runs: the per-second bins stop there too.
    arrivals = _arrivals([(20.0, 60000), (3.0, 24000)])
    assert bench.steady_rate(arrivals, 0.0, drained=20.0 + 1e-9) == pytest.approx(3000, rel=0.01)
    # Seen empty before the window opened (no stretch with every step at work): 10%-90% as ever.
    arrivals = _arrivals([(1.0, 1000)])
    assert bench.steady_rate(arrivals, 0.0, drained=0.05) == pytest.approx(1000, rel=0.01)


def test_the_drain_watch_notes_the_first_empty_queue_after_the_injection(
    bench: ModuleType,
) -> None:
    import time

    depths = iter([5, 3, 0, 0])
    asked: list[float] = []

    def depth() -> int:
        asked.append(time.perf_counter())
        return next(depths)

    with bench.DrainWatch(depth) as watch:
        time.sleep(0.1)
        assert asked == []  # not asked while the injection goes on (its queue fills then)
        watch.injected.set()
        deadline = time.monotonic() + 5
        while watch.drained is None and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(asked) == 3 and asked[1] < watch.drained <= asked[2]  # when the first 0 was asked
    unwatched = bench.DrainWatch(None)
    with unwatched:
        unwatched.injected.set()
    assert unwatched.drained is None


def test_a_failing_depth_probe_ends_the_run_with_its_error(bench: ModuleType) -> None:
    def depth() -> int:
        raise TimeoutError("no statistics reply")

    with pytest.raises(RuntimeError, match="no statistics reply"), bench.DrainWatch(depth) as watch:
        watch.injected.set()
        watch._thread.join(5)


def test_our_first_step_says_when_it_is_done_through_its_events(bench: ModuleType) -> None:
    # Found 2026-12-01: asking ActiveMQ's statistics plugin every 5 ms for the first step's
    # depth cost its broker 0.7-2.3 ms of CPU a question and slowed the runs it measured
    # (1,000 messages: ours by 5% overall, upstream's by 14%, medians). Our services' own events
    # say when the first step is done, with nothing asked of the broker.
    import threading

    from zocalo_nb.dispatch import start_messages
    from zocalo_nb.service import Service, ServiceRunner
    from zocalo_nb.service.builtin import forward
    from zocalo_nb.transport import MemoryBroker

    broker = MemoryBroker()
    services = [Service("a", forward, queues=("a",)), Service("b", forward, queues=("b",))]
    arrived: list[float] = []
    all_there = threading.Event()

    def take(message: object) -> None:
        arrived.append(time.perf_counter())
        if len(arrived) == 200:
            all_there.set()

    with ServiceRunner(services, broker=broker, batch=20), broker.connect() as transport:
        transport.subscribe("end", take, ack="auto")
        _, (template,) = start_messages(bench.recipe("a", "b", "end"))
        with bench.StepEvents(transport, 200) as done, bench.StepEvents(transport, 201) as more:
            injected = time.perf_counter()
            for _ in range(200):
                transport.send(template.destination, template.body, headers=template.headers)
            assert all_there.wait(30)
            broker.join(timeout=10)
        assert done.drained is not None and injected < done.drained <= arrived[-1]
        assert more.drained is None  # 201 were never done at the first step
        with bench.StepEvents(transport, 1, step=2) as second:
            pass
        assert second.drained is None  # its subscription ended with the block
    broker.close()


def test_upstreams_first_step_marks_each_commit_for_the_benchmark(
    bench: ModuleType, tmp_path: Path
) -> None:
    from tests.upstream.forward_service import _TIME, commit_marker

    mark = bench.CommitMark(tmp_path / "mark")
    with mark:
        pass
    assert mark.drained is None  # nothing committed
    marker = commit_marker(mark.env[bench.MARK_ENV])
    assert marker is not None and commit_marker(None) is None
    with mark:
        for _ in range(3):
            moment = time.perf_counter()
            _TIME.pack_into(marker, 0, moment)
    assert mark.drained == moment  # the last commit's


def test_repeated_runs_are_interleaved_and_the_median_run_is_reported(bench: ModuleType) -> None:
    order: list[int] = []
    figures = iter([10, 50, 30, 60, 20, 40])

    def run(count: int) -> object:
        order.append(count)
        return bench.Rates(count, 0.0, float(next(figures)), 0.0)

    runs = bench.repeated(run, [10000, 20000], 3)
    assert order == [10000, 20000, 10000, 20000, 10000, 20000]
    assert [[r.steady for r in found] for found in runs] == [[10, 30, 20], [50, 60, 40]]
    assert [bench.median_run(found).steady for found in runs] == [20, 50]
    line = bench.each_run("ours", runs, [10000, 20000])
    assert "10,000: 10 / 30 / 20; 20,000: 50 / 60 / 40" in line


def test_short_counts_run_several_times_a_round(bench: ModuleType) -> None:
    # A run of 1,000 is over in a fraction of a second, where one stall of the broker's moves
    # it by a quarter, and a run of 5,000 in 2.5 s: each round holds 10,000 of each count's.
    order: list[int] = []

    def run(count: int) -> object:
        order.append(count)
        return bench.Rates(count, 0.0, float(len(order)), 0.0)

    runs = bench.repeated(run, [1000, 3000, 20000], 2)
    assert order == [1000] * 10 + [3000] * 4 + [20000] + [1000] * 10 + [3000] * 4 + [20000]
    assert [len(found) for found in runs] == [20, 8, 2]
    assert bench.median_run(runs[0]).steady == 10  # the lower middle of 20
    text = bench.conditions("ActiveMQ", [1000, 3000, 20000], _Args(), repeat=2)
    assert "2 interleaved rounds of every count" in text
    assert "1,000: 10 runs a round" in text and "3,000: 4 runs a round" in text
    assert "20,000:" not in text
    assert "one run" in bench.conditions("ActiveMQ", [1000], _Args(), repeat=1)


def test_the_output_says_which_way_the_rate_moves_with_the_count(bench: ModuleType) -> None:
    assert bench.trend([1000, 5000, 20000], [3600, 4000, 4500]) == "20,000 reads 25% above 1,000"
    assert bench.trend([1000, 20000], [900, 13]) == "20,000 reads 99% below 1,000"


def test_the_spread_comes_with_how_far_the_luck_of_the_runs_moves_it(bench: ModuleType) -> None:
    def runs(*figures: float) -> list[object]:
        return [bench.Rates(1000, 0.0, figure, 0.0) for figure in figures]

    steady = [4000.0, 4100.0, 4200.0, 4050.0, 3950.0, 4150.0, 4000.0]
    same = [runs(*steady), runs(*steady)]
    assert bench.spread_interval(same) == bench.spread_interval(same)  # seeded
    low, high = bench.spread_interval(same)
    assert low == 0.0 and 0.0 < high < 0.06  # identical runs: only the draws differ
    noisy = [runs(2000, 4000, 6000, 3000, 5000), runs(2100, 3900, 6100, 2900, 5200)]
    low, high = bench.spread_interval(noisy)
    assert low < 0.05 and high >= 0.4  # five runs over a factor of three: anything goes
    apart = [runs(*steady), runs(*(figure * 2 for figure in steady))]
    low, high = bench.spread_interval(apart)
    assert 0.45 < low <= high < 0.56  # a real difference stays whatever the draws
    assert bench.spread_of([4000, 5000, 4500]) == 0.2


def test_the_conditions_give_the_machine_speed_at_the_start_and_the_end(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "SPEED", 0.33)
    monkeypatch.setattr(bench, "SPEED_END", 0.0)
    assert bench.conditions("ActiveMQ", [1000], _Args()).endswith("took 0.33 s at the start")
    monkeypatch.setattr(bench, "SPEED_END", 0.79)
    assert "took 0.33 s at the start and 0.79 s at the end" in bench.conditions(
        "ActiveMQ", [1000], _Args()
    )


class _Args:
    workers, batch, no_events = 2, 20, False


def test_the_memory_counter_notes_each_message_the_broker_hands_out(bench: ModuleType) -> None:
    from counting import MemoryCounter  # on the path once bench_pipeline is imported

    from zocalo_nb.transport import MemoryBroker

    broker = MemoryBroker()
    seen: list[int] = []
    with broker.connect() as transport:
        counter = MemoryCounter(broker, transport.name("end"), seen.append)
        for n in range(5):
            transport.send("end", {"n": n})
        broker.join(timeout=5)  # nothing is left in hand: the counter acknowledged each
        assert seen == [1, 2, 3, 4, 5]
        assert len(counter.arrivals) == 5 and counter.arrivals == sorted(counter.arrivals)
        counter.close()
        transport.send("end", {"n": 5})
        assert broker.stats(transport.name("end"))[:2] == (1, 0)  # waiting, no consumer
    broker.close()
