"""The ``slurm-rest`` scheduler against a real slurmrestd (API v0.0.38, Debian 12's): on a
Unix socket with local authentication, and over TCP with a JWT."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers import eventually, free_port
from tests.cluster.conftest import WRAP, Cluster
from zocalo_nb.cluster import SchedulerError, SlurmRest, make_scheduler
from zocalo_nb.servers.slurm import Slurm


@pytest.fixture
def rest(slurm_conf: str) -> Iterator[tuple[Slurm, str]]:
    cluster = Slurm(Path(slurm_conf).parent)
    url = cluster.start_rest()
    try:
        yield cluster, url
    finally:
        cluster.stop_rest()


def test_jobs_through_slurmrestd_report_and_fail_like_through_the_cli(
    cluster: Cluster, rest: tuple[Slurm, str]
) -> None:
    cluster.scheduler = make_scheduler("slurm-rest", url=rest[1])
    with cluster.runner():
        ok = cluster.submit({"commands": [WRAP], "memory": 100}, command=["true"])
        bad = cluster.submit({"commands": ["echo out; exit 6"]})
        slow = cluster.submit({"commands": ["sleep 120"]})
        assert eventually(lambda: len(cluster.of("c.success", ok)) == 1, timeout=60)
        # on another queue, whose delivery is not ordered with the success's
        assert eventually(lambda: len(cluster.of("c.submitted", ok)) == 1)
        assert cluster.of("c.submitted", ok)[0].body["payload"]["scheduler"] == "slurm-rest"
        assert eventually(lambda: len(cluster.of("c.failure", bad)) == 1, timeout=60)
        text = cluster.of("c.failure", bad)[0].body["payload"]
        assert "ended failed" in text and "exit code 6" in text and "out" in text
        assert eventually(lambda: len(cluster.of("c.submitted", slow)) == 1, timeout=60)
        job = cluster.of("c.submitted", slow)[0].body["payload"]["jobid"]
        assert eventually(lambda: cluster.scheduler.states([job])[job].status.value == "running")
        cluster.scheduler.cancel([job])
        assert eventually(lambda: len(cluster.of("c.failure", slow)) == 1, timeout=60)
        assert "ended cancelled" in cluster.of("c.failure", slow)[0].body["payload"]


def test_slurmrestd_over_tcp_needs_a_token(slurm_conf: str) -> None:
    cluster = Slurm(Path(slurm_conf).parent)
    url = cluster.start_rest(port=free_port())
    try:
        with pytest.raises(SchedulerError, match="HTTP 401") as refused:
            SlurmRest(url).jobs()
        assert "token" in refused.value.hint
        authorised = SlurmRest(url, user="root", token=cluster.token())
        assert isinstance(authorised.jobs(), list)
        with pytest.raises(SchedulerError, match="HTTP 404"):
            SlurmRest(url, user="root", token=cluster.token(), api_version="v0.0.99").jobs()
    finally:
        cluster.stop_rest()
