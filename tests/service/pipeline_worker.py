"""A service process for fault tests: python -m tests.service.pipeline_worker STEP ...

STEP "a" runs step_one (forwards; raises on "poison"; kills the process on "bomb"), STEP "b"
runs step_two (forwards). Runs in the foreground until SIGTERM, like ``zocalo-nb service``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from tests.service.helpers import step_one, step_two
from zocalo_nb.config import Settings
from zocalo_nb.service import Service, ServiceRunner


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=["a", "b"])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--max-attempts", type=int, default=3)
    parser.add_argument("--max-redeliveries", type=int, default=50)
    parser.add_argument("--backoff", type=float, default=0.05)
    parser.add_argument("--no-events", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    handler, queue = (step_one, "pipe.a") if args.step == "a" else (step_two, "pipe.b")
    service = Service(
        f"step-{args.step}",
        handler,
        queues=(queue,),
        max_attempts=args.max_attempts,
        max_redeliveries=args.max_redeliveries,
        backoff=args.backoff,
    )
    settings = Settings.build(args.broker, prefix=args.prefix)
    runner = ServiceRunner(
        [service], settings, workers=args.workers, batch=args.batch, events=not args.no_events
    )
    return runner.run()


if __name__ == "__main__":
    sys.exit(main())
