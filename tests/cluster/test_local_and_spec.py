"""The ``local`` scheduler (processes here) behind the same seam, and what a step's
``parameters.cluster`` may hold."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.brokers import eventually
from zocalo_nb.cluster import JobSpec, JobStatus, LocalScheduler, make_scheduler
from zocalo_nb.errors import InvalidArgument


def spec(tmp_path: Path, command: str, **extra: object) -> JobSpec:
    return JobSpec.from_parameters({"commands": [command], "workingdir": str(tmp_path), **extra})


def test_local_jobs_end_with_their_exit_code_and_are_found_again(tmp_path: Path) -> None:
    scheduler = LocalScheduler(tmp_path / "state")
    files = {"recipewrap": "/x.json", "stdout": tmp_path / "o", "stderr": tmp_path / "e"}
    ok = scheduler.submit(spec(tmp_path, "echo hi"), **files)  # type: ignore[arg-type]
    bad = scheduler.submit(spec(tmp_path, "exit 3"), **files)  # type: ignore[arg-type]
    slow = scheduler.submit(spec(tmp_path, "sleep 60"), **files)  # type: ignore[arg-type]
    assert eventually(
        lambda: LocalScheduler(tmp_path / "state").states([ok, bad])[bad].status.ended
    )
    again = LocalScheduler(tmp_path / "state")  # a restarted watcher: from the files alone
    states = again.states([ok, bad, slow])
    assert eventually(lambda: again.states([ok])[ok].status is JobStatus.COMPLETED)
    assert states[bad].status is JobStatus.FAILED and states[bad].exit_code == 3
    assert states[slow].status is JobStatus.RUNNING
    again.cancel([slow])
    assert eventually(lambda: again.states([slow])[slow].status is JobStatus.CANCELLED)
    assert {j.recipewrap for j in again.jobs()} == {"/x.json"}


def test_a_local_job_past_its_time_limit_times_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = LocalScheduler(tmp_path / "state")
    job = spec(tmp_path, "sleep 30")
    object.__setattr__(job, "minutes", 1)
    monkeypatch.setattr("zocalo_nb.cluster.local.SECONDS_PER_MINUTE", 1)  # a minute lasts 1 s
    started = time.monotonic()
    job_id = scheduler.submit(job, recipewrap="", stdout=tmp_path / "o", stderr=tmp_path / "e")
    assert eventually(lambda: scheduler.states([job_id])[job_id].status.ended, timeout=20)
    assert scheduler.states([job_id])[job_id].status is JobStatus.TIMEOUT
    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    ("cluster", "words"),
    [
        (None, "no parameters.cluster"),
        ({"commands": [], "workingdir": "/tmp"}, "non-empty list"),
        ({"commands": ["true"], "workingdir": "relative/dir"}, "absolute"),
        ({"commands": ["true"], "workingdir": "/tmp", "memory": "lots"}, "not a size"),
        ({"commands": ["true"], "workingdir": "/tmp", "time_limit": "1h"}, "not a duration"),
        ({"commands": ["true"], "workingdir": "/tmp", "cpus": -1}, "whole number"),
    ],
)
def test_a_bad_cluster_parameter_says_what_and_how(cluster: object, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words) as raised:
        JobSpec.from_parameters(cluster)
    assert raised.value.hint


def test_sizes_durations_and_the_scheduler_registry() -> None:
    job = JobSpec.from_parameters(
        {"commands": "true", "workingdir": "/tmp", "memory": "4G", "time_limit": "1-00:30:00"}
    )
    assert job.memory_mb == 4096 and job.minutes == 1470 and job.commands == ("true",)
    assert make_scheduler("local", state_dir="/tmp/x").name == "local"
    with pytest.raises(InvalidArgument, match="known: local, slurm"):
        make_scheduler("pbs")
