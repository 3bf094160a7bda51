"""The pipeline benchmark's figures: what its steady rate covers, and how repeated runs are
reported (the benchmark itself runs outside the suite: it takes minutes and a quiet machine)."""

from __future__ import annotations

import sys
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


def test_repeated_runs_are_interleaved_and_the_median_run_is_reported(bench: ModuleType) -> None:
    order: list[int] = []
    figures = iter([10, 50, 30, 60, 20, 40])

    def run(count: int) -> object:
        order.append(count)
        return bench.Rates(count, 0.0, float(next(figures)), 0.0)

    runs = bench.repeated(run, [1000, 5000], 3)
    assert order == [1000, 5000, 1000, 5000, 1000, 5000]
    assert [[r.steady for r in found] for found in runs] == [[10, 30, 20], [50, 60, 40]]
    assert [bench.median_run(found).steady for found in runs] == [20, 50]
    line = bench.each_run("ours", runs, [1000, 5000])
    assert "1,000: 10 / 30 / 20; 5,000: 50 / 60 / 40" in line


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
