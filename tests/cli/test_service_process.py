"""`zocalo-nb service` as a real process: graceful exit on SIGTERM and on `zocalo-nb shutdown`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from typing import Any

import pytest

from tests.brokers import eventually
from tests.conftest import ROOT
from zocalo_nb.cli import main
from zocalo_nb.config import Settings
from zocalo_nb.transport import connect

pytestmark = pytest.mark.activemq


def start_service(url: str, prefix: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zocalo_nb.cli",
            "service",
            "forward",
            "--broker",
            url,
            "--prefix",
            prefix,
        ],
        cwd=ROOT,
        env={**os.environ, "ZOCALO_NB_QUEUES": "fwd.in"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("how", ["SIGTERM", "shutdown command"])
def test_the_service_command_exits_gracefully(activemq_url: str, how: str) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}"
    statuses: list[dict[str, Any]] = []
    with connect(Settings.build(activemq_url, prefix=prefix)) as watcher:
        watcher.subscribe_topic("transient.status", lambda m: statuses.append(m.body))
        process = start_service(activemq_url, prefix)
        try:
            assert eventually(lambda: any(s["statustext"] == "idle" for s in statuses), timeout=30)
            if how == "SIGTERM":
                process.send_signal(signal.SIGTERM)
            else:
                assert (
                    main(
                        [
                            "shutdown",
                            "--service",
                            "forward",
                            "--broker",
                            activemq_url,
                            "--prefix",
                            prefix,
                        ]
                    )
                    == 0
                )
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
        assert eventually(lambda: statuses[-1]["statustext"] == "shutdown")
        assert process.stderr is not None and b"Traceback" not in process.stderr.read()
