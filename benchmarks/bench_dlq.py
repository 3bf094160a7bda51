"""Benchmark: moving dead letters on ActiveMQ, in one run.

- zocalo_nb ``dlq.reinject`` (live: each batch of messages moved from the DLQ to its
  destination in one confirmed transaction);
- zocalo_nb ``dlq.purge`` to files, then ``dlq.reinject_files`` (one confirmed send each);
- upstream ``zocalo.dlq_purge`` then ``zocalo.dlq_reinject`` on the same number of messages
  (the baseline).

Run: python benchmarks/bench_dlq.py [--messages N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.brokers import free_port  # noqa: E402
from zocalo_nb import dlq  # noqa: E402
from zocalo_nb.config import Settings  # noqa: E402
from zocalo_nb.servers.activemq import ActiveMQ  # noqa: E402
from zocalo_nb.transport import Transport, connect  # noqa: E402


def fill(transport: Transport, prefix: str, count: int) -> None:
    with transport.transaction(confirm=True) as tx:
        for n in range(count):
            transport.send(
                f"/queue/DLQ.{prefix}.bench",
                {"n": n, "image": "x" * 200},
                headers={"original-destination": f"/queue/{prefix}.bench"},
                transaction=tx,
            )


def settle(transport: Transport, queue: str, count: int) -> None:
    deadline = time.monotonic() + 300
    while transport.statistics(queue).depth < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{queue} did not reach {count}")
        time.sleep(0.05)


def ours_live(url: str, count: int) -> float:
    prefix = "benchlive"
    with connect(Settings.build(url, prefix=prefix)) as t:
        fill(t, prefix, count)
        started = time.perf_counter()
        moved = dlq.reinject(t)
        settle(t, "bench", count)
        assert len(moved) == count
        return count / (time.perf_counter() - started)


def ours_files(url: str, count: int, folder: Path) -> float:
    prefix = "benchfiles"
    with connect(Settings.build(url, prefix=prefix)) as t:
        fill(t, prefix, count)
        started = time.perf_counter()
        written = dlq.purge(t, location=folder)
        dlq.reinject_files(t, written, remove=True)
        settle(t, "bench", count)
        return count / (time.perf_counter() - started)


def upstream_files(settings: Settings, count: int, folder: Path) -> float:
    prefix = "benchup"
    options = [
        "-t", "StompTransport", "--stomp-host", settings.host, "--stomp-port",
        str(settings.port), "--stomp-user", str(settings.username), "--stomp-pass",
        str(settings.password),
    ]  # fmt: skip
    bin_dir = Path(sys.executable).parent
    url = settings.redacted_url().replace("***", str(settings.password))
    with connect(Settings.build(url, prefix=prefix)) as t:
        fill(t, prefix, count)
        started = time.perf_counter()
        subprocess.run(
            [str(bin_dir / "zocalo.dlq_purge"), *options, "--stomp-prfx", "DLQ",
             "--location", str(folder), "--wait", "1", f"{prefix}.bench"],
            check=True, capture_output=True, cwd=folder,
        )  # fmt: skip
        files = sorted(str(p) for p in folder.rglob("msg-*"))
        subprocess.run(
            [str(bin_dir / "zocalo.dlq_reinject"), *options, "--remove", *files],
            check=True,
            capture_output=True,
            cwd=folder,
        )
        settle(t, "bench", count)
        return count / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    instance = ActiveMQ(
        Path(tempfile.mkdtemp(prefix="bench-dlq-")), stomp_port=free_port(), password="bench-pw"
    )
    instance.start()
    try:
        settings = Settings.build(instance.url)
        live = ours_live(instance.url, args.messages)
        with tempfile.TemporaryDirectory() as ours_dir, tempfile.TemporaryDirectory() as up_dir:
            files = ours_files(instance.url, args.messages, Path(ours_dir))
            upstream = upstream_files(settings, args.messages, Path(up_dir))
    finally:
        instance.stop()
    print(f"Dead letters on ActiveMQ, {args.messages} messages")
    print(f"  upstream zocalo.dlq_purge + dlq_reinject   {upstream:8.0f} msg/s")
    print(
        f"  zocalo_nb purge + reinject_files           {files:8.0f} msg/s"
        f"   ratio {files / upstream:.1f}x"
    )
    print(
        f"  zocalo_nb reinject (live, transactional)   {live:8.0f} msg/s"
        f"   ratio {live / upstream:.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
