"""Chaos soak: N runs through a 3-step recipe while service processes are killed -9 at random
and the broker is restarted; then every run must have arrived exactly once, and the DLQs must
hold exactly the poison that was injected. A benchmark, not a CI test (it takes minutes).

- a private ActiveMQ (KahaDB sync "always", so a restart keeps every stored message);
- three service processes (steps a, b, c; --workers threads each, batches of 10) under a
  supervisor that restarts a process as soon as it dies;
- every --kill-every seconds (jittered) a random service process gets SIGKILL;
- the broker is stopped and started again --restarts times, spread over the run;
- --poison runs carry a payload that makes step b raise every time: they must end in
  DLQ.<prefix>.chaos.b (and nowhere else), the others at the end queue exactly once;
- --hogs CPU-burning processes compete for this 2-core machine.

Counting: a run's output is identified by our stable message id (a redelivery of the same
output keeps it, a second output would have a new one): "duplicated" counts runs with two
or more distinct outputs, "lost" runs with none after the pipeline went quiet.

Run: python benchmarks/chaos.py --broker activemq --runs 2000 [--hogs 2] [--seed S]
Last line: chaos: runs N lost L duplicated D poison-in-dlq P/Q seconds S
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.brokers import free_port, free_ports  # noqa: E402
from zocalo_nb.config import Settings  # noqa: E402
from zocalo_nb.dispatch import StepContext, submit  # noqa: E402
from zocalo_nb.recipe import Recipe, RecipeBuilder  # noqa: E402
from zocalo_nb.servers.activemq import ActiveMQ  # noqa: E402
from zocalo_nb.servers.rabbitmq import RabbitMQ  # noqa: E402
from zocalo_nb.service import Service, ServiceRunner  # noqa: E402
from zocalo_nb.transport import Message, Transport, TransportError, connect  # noqa: E402

STEPS = ("a", "b", "c")
PASSWORD = "chaos-pw"


def recipe() -> Recipe:
    b = RecipeBuilder()
    steps = [b.step(f"chaos.{name}") for name in STEPS]
    end = b.step("chaos.end")
    steps[0].then(steps[1]).then(steps[2]).then(end)
    b.start(steps[0], {"n": 0})
    return b.build()


# -- the service processes -------------------------------------------------------------------
def forward(ctx: StepContext, payload: Any) -> None:
    if ctx.step_id == 2 and payload.get("poison"):
        raise ValueError("poisoned on purpose")
    ctx.send({**payload, "n": payload.get("n", 0) + 1})


def worker(step: str, url: str, prefix: str, workers: int) -> int:
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    service = Service(
        f"chaos-{step}",
        forward,
        queues=(f"chaos.{step}",),
        max_attempts=2,
        backoff=0.05,
        max_redeliveries=50,  # kills every few seconds hit innocent messages in quarantine too
    )
    settings = Settings.build(url, prefix=prefix)
    return ServiceRunner([service], settings, workers=workers, batch=10).run()


# -- the conductor ---------------------------------------------------------------------------
class Arrivals:
    """Distinct outputs per run at the end queue (acked after they are counted)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.outputs: dict[str, set[str]] = {}
        self.lock = threading.Lock()
        self.last = time.monotonic()
        transport.subscribe("chaos.end", self._take, prefetch=500)

    def _take(self, message: Message) -> None:
        run = message.body["environment"]["ID"]
        with self.lock:
            self.outputs.setdefault(run, set()).add(message.message_id)
            self.last = time.monotonic()
        with contextlib.suppress(TransportError):  # the broker restarts: it comes again
            self.transport.ack(message)

    def count(self) -> int:
        with self.lock:
            return len(self.outputs)


class Services:
    """The three service processes and their supervisor."""

    def __init__(self, url: str, prefix: str, workers: int, log: Path) -> None:
        self.url, self.prefix, self.workers, self.log = url, prefix, workers, log
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.kills = 0
        self.lock = threading.Lock()

    def start(self, step: str) -> None:
        with self.log.open("ab") as out:
            self.procs[step] = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    step,
                    "--url",
                    self.url,
                    "--prefix",
                    self.prefix,
                    "--workers",
                    str(self.workers),
                ],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=out,
            )

    def supervise(self) -> None:
        with self.lock:
            for step, proc in self.procs.items():
                if proc.poll() is not None:
                    self.start(step)

    def kill_one(self, rng: random.Random) -> None:
        with self.lock:
            step = rng.choice(STEPS)
            proc = self.procs[step]
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                self.kills += 1

    def stop(self) -> None:
        with self.lock:
            for proc in self.procs.values():
                if proc.poll() is None:
                    proc.terminate()
            for proc in self.procs.values():
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def hogs(count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def conduct(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="zocalo-nb-chaos-"))
    broker: ActiveMQ | RabbitMQ
    if args.broker == "rabbitmq":  # quorum queues: every stored message survives a restart
        port, management = free_ports(2)
        broker = RabbitMQ(
            base / "rabbitmq", port=port, management_port=management, password=PASSWORD
        )
        url = broker.url + "&declare=1&delivery_limit=2"
    else:
        broker = ActiveMQ(
            base / "activemq",
            stomp_port=free_port(),
            password=PASSWORD,
            redeliveries=2,
            journal_sync="always",
            heap="1G",
        )
        url = broker.url
    broker.start()
    prefix = f"chaos{uuid.uuid4().hex[:8]}"
    settings = Settings.build(url, prefix=prefix)
    client = connect(settings)
    burners: list[subprocess.Popen[bytes]] = []
    services = Services(url, prefix, args.workers, base / "services.log")
    started = time.monotonic()
    try:
        arrivals = Arrivals(client)
        flow = recipe()
        poison_ids = set(rng.sample(range(args.runs), args.poison))
        runs, poison = [], []
        for n in range(args.runs):
            payload = {"n": 0, "poison": True} if n in poison_ids else {"n": 0}
            run_id = submit(_with_start(flow, payload), transport=client).id
            (poison if n in poison_ids else runs).append(run_id)
        print(
            f"chaos: {args.runs} runs submitted ({len(poison)} poison) in "
            f"{time.monotonic() - started:.1f} s; prefix {prefix}",
            flush=True,
        )
        burners = hogs(args.hogs)
        for step in STEPS:
            services.start(step)
        restarts_at = [args.runs * (k + 1) // (args.restarts + 1) for k in range(args.restarts)]
        next_kill = time.monotonic() + rng.uniform(0.5, 1.5) * args.kill_every
        restarted = 0
        expected = len(runs)
        while arrivals.count() < expected:
            time.sleep(0.1)
            services.supervise()
            now = time.monotonic()
            if now >= next_kill:
                services.kill_one(rng)
                next_kill = now + rng.uniform(0.5, 1.5) * args.kill_every
            if restarted < len(restarts_at) and arrivals.count() >= restarts_at[restarted]:
                print(
                    f"chaos: broker restart {restarted + 1} at {arrivals.count()} arrivals",
                    flush=True,
                )
                broker.stop()
                broker.start(timeout=120)
                restarted += 1
            if now - arrivals.last > args.stall:
                print(f"chaos: no arrival for {args.stall:g} s, giving up", flush=True)
                break
        # The poison may still be between retries or in quarantine when the last good run
        # arrives (kills keep coming): wait for it to settle in the DLQ, then for late
        # duplicates.
        settle_by = time.monotonic() + args.stall
        while time.monotonic() < settle_by:
            services.supervise()
            dead_now = client.statistics(client.dlq("chaos.b")).depth
            if dead_now >= len(poison):
                break
            time.sleep(0.5)
        time.sleep(args.settle)  # late duplicates would show now
        seconds = time.monotonic() - started
        with arrivals.lock:
            found = {run: set(ids) for run, ids in arrivals.outputs.items()}
        lost = [r for r in runs if r not in found]
        duplicated = [r for r, ids in found.items() if len(ids) > 1]
        stray = [r for r in found if r not in set(runs)]
        dead = client.browse(client.dlq("chaos.b"), timeout=30)
        dead_runs = [m.body["environment"]["ID"] for m in dead]
        other_dlqs = {
            s.queue: s.depth
            for s in client.dead_letter_queues()
            if not s.queue.endswith(".chaos.b")
        }
        poison_ok = sorted(dead_runs) == sorted(poison) and not any(other_dlqs.values())
        print(
            f"chaos: kills {services.kills}, broker restarts {restarted}, hogs {args.hogs}, "
            f"workers {args.workers} per service, stray {len(stray)}, "
            f"other DLQs {other_dlqs}",
            flush=True,
        )
        if lost:
            print(f"chaos: lost, e.g. {lost[:5]}", flush=True)
        if duplicated:
            print(f"chaos: duplicated, e.g. {duplicated[:5]}", flush=True)
        print(
            f"chaos: runs {args.runs} lost {len(lost)} duplicated {len(duplicated)} "
            f"poison-in-dlq {len(set(dead_runs) & set(poison))}/{len(poison)} "
            f"seconds {seconds:.0f}",
            flush=True,
        )
        return 0 if not lost and not duplicated and not stray and poison_ok else 1
    finally:
        services.stop()
        for burner in burners:
            burner.kill()
            burner.wait()
        client.close()
        broker.stop()


def _with_start(flow: Recipe, payload: dict[str, Any]) -> Recipe:
    data = flow.to_dict()
    data["start"] = [[data["start"][0][0], payload]]
    return Recipe.from_dict(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=["activemq", "rabbitmq"], default="activemq")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--poison", type=int, default=10)
    parser.add_argument("--hogs", type=int, default=0, help="CPU-burning processes")
    parser.add_argument("--workers", type=int, default=2, help="threads per service")
    parser.add_argument("--kill-every", type=float, default=3.0, help="seconds, jittered")
    parser.add_argument("--restarts", type=int, default=3, help="broker restarts")
    parser.add_argument("--stall", type=float, default=180.0, help="give up after (s)")
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--worker", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.url, args.prefix, args.workers)
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)  # reconnects are expected
    logging.getLogger("stomp.py").setLevel(logging.CRITICAL)  # so are broken pipes then
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "big")
    print(f"chaos: seed {args.seed}", flush=True)
    return conduct(args)


if __name__ == "__main__":
    sys.exit(main())
