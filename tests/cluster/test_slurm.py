"""Cluster jobs on a real single-node Slurm (``slurm_conf``), reporting over a real ActiveMQ:
the job's ``zocalo-nb wrap`` runs on the cluster and sends its outcome itself; jobs that end
without reporting (exit code, time limit, scancel, wrapper killed -9) get a failure from the
watcher; 50 jobs at once; a watcher restarted while its jobs run."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.brokers import eventually
from tests.cluster.conftest import WRAP, Cluster
from zocalo_nb.cluster import cluster_service
from zocalo_nb.service import ServiceRunner


def test_a_job_runs_on_slurm_and_reports_its_own_success(cluster: Cluster) -> None:
    with cluster.runner():
        run = cluster.submit({"commands": [WRAP], "cpus": 1, "memory": "100M",
                              "time_limit": "00:05:00"},
                             command=["sh", "-c", "echo from-the-cluster"])  # fmt: skip
        assert eventually(lambda: len(cluster.of("c.success", run)) == 1, timeout=60)
        # sent long before the success, but on another queue: its delivery is not ordered
        assert eventually(lambda: len(cluster.of("c.submitted", run)) == 1)
        submitted = cluster.of("c.submitted", run)
        assert submitted[0].body["payload"]["scheduler"] == "slurm"
        job = submitted[0].body["payload"]["jobid"]
        assert job.isdigit()
        result = cluster.of("c.success", run)[0].body["payload"]
        assert Path(result["stdout"]).read_text() == "from-the-cluster\n"
        states = lambda: [e["job_state"] for e in cluster.events if e.get("jobid") == job]  # noqa: E731
        assert eventually(lambda: "completed" in states(), timeout=30)
        assert states()[-1] == "completed" and states()[0] in ("queued", "running")
        assert cluster.of("c.failure", run) == []


def test_a_failing_job_reports_its_exit_code_once(cluster: Cluster) -> None:
    with cluster.runner():
        wrapped = cluster.submit({"commands": [WRAP]}, command=["sh", "-c", "exit 3"])
        raw = cluster.submit({"commands": ["echo to-stdout; echo to-stderr >&2; exit 4"]})
        assert eventually(lambda: len(cluster.of("c.failure", wrapped)) == 1, timeout=60)
        assert "exited with code 3" in cluster.of("c.failure", wrapped)[0].body["payload"]
        assert eventually(lambda: len(cluster.of("c.failure", raw)) == 1, timeout=60)
        text = cluster.of("c.failure", raw)[0].body["payload"]
        assert "ended failed" in text and "exit code 4" in text
        assert "to-stdout" in text and "to-stderr" in text
        # the job's end event comes after the failure (it names the steps the failure went to),
        # on the events topic: another destination, so it may reach us later
        jobs = lambda: [e for e in cluster.events if e.get("run") == raw and "jobid" in e]  # noqa: E731
        assert eventually(lambda: any("sent_to" in e for e in jobs()), timeout=30)
        end = jobs()[-1]
        assert end["job_state"] == "failed" and end["exit_code"] == 4 and end["sent_to"] == [4]
        assert [e for e in jobs() if "sent_to" in e] == [end]
        # the wrapped job reported itself: the watcher sent nothing more for it
        eventually(lambda: False, timeout=2)
        assert len(cluster.of("c.failure", wrapped)) == 1
        assert len(cluster.of("c.failure", raw)) == 1


def test_a_cancelled_job_and_a_killed_wrapper_each_get_a_failure(cluster: Cluster) -> None:
    with cluster.runner():
        cancelled = cluster.submit({"commands": ["sleep 120"]})
        killed = cluster.submit({"commands": [WRAP]}, command=["sleep", "120"])
        jobs: dict[str, str] = {}

        def submitted() -> bool:
            for run in (cancelled, killed):
                for m in cluster.of("c.submitted", run):
                    jobs[run] = m.body["payload"]["jobid"]
            return len(jobs) == 2

        assert eventually(submitted, timeout=60)
        cluster.scheduler.cancel([jobs[cancelled]])
        wrap: list[int] = []

        def wrapper_runs() -> bool:
            found = subprocess.run(["pgrep", "-f", "zocalo_nb.cli wrap"], capture_output=True,
                                   text=True).stdout.split()  # fmt: skip
            wrap[:] = [int(p) for p in found if killed in Path(f"/proc/{p}/cmdline").read_text()
                       or _job_of(int(p)) == jobs[killed]]  # fmt: skip
            return bool(wrap)

        assert eventually(wrapper_runs, timeout=60)
        os.kill(wrap[0], signal.SIGKILL)
        assert eventually(lambda: len(cluster.of("c.failure", cancelled)) == 1, timeout=60)
        assert "ended cancelled" in cluster.of("c.failure", cancelled)[0].body["payload"]
        assert eventually(lambda: len(cluster.of("c.failure", killed)) == 1, timeout=60)
        assert "ended failed" in cluster.of("c.failure", killed)[0].body["payload"]
        assert "exit code 137" in cluster.of("c.failure", killed)[0].body["payload"]


def _job_of(pid: int) -> str:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return ""
    for entry in environ:
        if entry.startswith(b"SLURM_JOB_ID="):
            return entry.split(b"=", 1)[1].decode()
    return ""


def test_fifty_jobs_at_once(cluster: Cluster) -> None:
    with cluster.runner():
        runs = [cluster.submit({"commands": [WRAP]}, command=["true"]) for _ in range(50)]
        assert eventually(
            lambda: sum(len(cluster.of("c.success", r)) for r in runs) == 50, timeout=240
        )
        # the submissions went to another queue, whose delivery is not ordered with this one
        assert eventually(lambda: all(len(cluster.of("c.submitted", r)) == 1 for r in runs))
        assert all(cluster.of("c.failure", r) == [] for r in runs)


def test_a_restarted_watcher_reports_a_job_that_ended_while_it_was_down(
    cluster: Cluster,
) -> None:
    with cluster.runner():
        run = cluster.submit({"commands": ["sleep 4; exit 5"]})
        assert eventually(lambda: len(cluster.of("c.submitted", run)) == 1, timeout=60)
    # the service is down while the job runs and fails
    job = cluster.of("c.submitted", run)[0].body["payload"]["jobid"]
    assert eventually(
        lambda: cluster.scheduler.states([job])[job].status.ended, timeout=60, interval=0.5
    )
    assert cluster.of("c.failure", run) == []
    with cluster.runner(), cluster.runner():  # two watchers: still one failure
        assert eventually(lambda: len(cluster.of("c.failure", run)) == 1, timeout=30)
        assert "exit code 5" in cluster.of("c.failure", run)[0].body["payload"]
        eventually(lambda: False, timeout=2)
    assert len(cluster.of("c.failure", run)) == 1


def test_a_job_past_its_time_limit_is_reported_as_timed_out(cluster: Cluster) -> None:
    """Slurm checks limits about every 30 s: the TIMEOUT comes 60-90 s after the start."""
    with cluster.runner():
        run = cluster.submit({"commands": ["echo started; sleep 600"], "time_limit": 1})
        assert eventually(lambda: len(cluster.of("c.failure", run)) == 1, timeout=180)
        text = cluster.of("c.failure", run)[0].body["payload"]
        assert "ended timeout" in text and "started" in text


def test_run_jobs_lists_a_runs_jobs_and_run_cancel_cancels_the_live_ones(
    cluster: Cluster,
) -> None:
    from zocalo_nb.monitor.run import Run

    with cluster.runner():
        run_id = cluster.submit({"commands": ["sleep 120"]})
        run = Run.load(run_id, transport=cluster.transport)
        assert eventually(lambda: list(run.jobs()["job_state"]) == ["running"], timeout=60)
        jobs = run.jobs()
        assert list(jobs.columns[:5]) == ["jobid", "scheduler", "run", "step", "job_state"]
        assert jobs.loc[0, "run"] == run_id and jobs.loc[0, "step"] == 1
        assert jobs.loc[0, "node"] and str(jobs.loc[0, "stdout"]).endswith(".out")
        assert run.cancel(cluster.scheduler) == [jobs.loc[0, "jobid"]]
        assert eventually(lambda: list(run.jobs()["job_state"]) == ["cancelled"], timeout=60)
        assert eventually(lambda: len(cluster.of("c.failure", run_id)) == 1, timeout=30)
        assert run.cancel(cluster.scheduler) == []  # nothing live any more


def test_a_cluster_step_runs_while_its_job_does_and_its_job_s_outputs_count(
    cluster: Cluster,
) -> None:
    """The step that submitted a job is running (queued) while the job is, so the run is not
    finished; the steps the job's outcome went to count as sent work when it ends."""
    from zocalo_nb.monitor.run import Run
    from zocalo_nb.monitor.tap import Tap
    from zocalo_nb.states import StepState

    Tap.for_transport(cluster.transport)  # listening before the run starts: it sees it all
    with cluster.runner():
        run_id = cluster.submit({"commands": [WRAP]}, command=["sleep", "3"])
        run = Run.load(run_id, transport=cluster.transport)
        assert eventually(lambda: run.state().get(1) == StepState.RUNNING, timeout=30)
        assert not run.finished
        assert run.state()[3] == StepState.PENDING
        assert eventually(lambda: len(cluster.of("c.success", run_id)) == 1, timeout=60)
        assert eventually(lambda: run.state().get(1) == StepState.SUCCEEDED, timeout=30)
        assert run.state()[3] == StepState.QUEUED  # sent work by the job, nobody took it here
        assert run.state()[4] == StepState.PENDING and not run.finished


def test_the_demo_runs_its_command_job_on_slurm(
    activemq_url: str, slurm_conf: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zocalo_nb import demo

    monkeypatch.setenv("SLURM_CONF", slurm_conf)
    said: list[str] = []
    root = Path(__file__).resolve().parents[2]
    assert demo.run(tmp_path / "demo", recipes=root / "recipes", notebooks=root / "notebooks"
                    / "jobs", broker=activemq_url, cluster="slurm", say=said.append)  # fmt: skip
    text = "\n".join(said)
    assert "step 2 runs as a cluster job on slurm" in text
    assert "completed" in text.split("cluster jobs of the run:")[1].split("dead letters")[0]


def test_a_notebook_job_runs_on_the_cluster(cluster: Cluster, tmp_path: Path) -> None:
    notebooks = Path(__file__).resolve().parents[2] / "notebooks" / "jobs"
    wrap = WRAP.replace("--wrap command", "--wrap notebook")
    environment = {"ZOCALO_NB_NOTEBOOKS": str(notebooks),
                   "ZOCALO_NB_NOTEBOOK_OUTPUT": str(tmp_path / "executed")}  # fmt: skip
    with cluster.runner():
        run = cluster.submit(
            {"commands": [wrap], "environment": environment, "memory": "1G"},
            notebook="radial_profile.ipynb", image="/dls/i04/x_0001.cbf", bins=20,
        )  # fmt: skip
        assert eventually(lambda: len(cluster.of("c.success", run)) == 1, timeout=120)
        result = cluster.of("c.success", run)[0].body["payload"]
        assert result["ring_radius_px"] > 0 and Path(result["notebook"]).is_file()
        assert Path(result["notebook"]).is_relative_to(tmp_path / "executed")
        assert cluster.of("c.failure", run) == []


def test_a_watcher_follows_only_the_jobs_of_its_own_namespace(
    cluster: Cluster, activemq_url: str
) -> None:
    """Two namespaces (prefixes) share one cluster: a job of one never has its end reported
    by the other's watcher (into the other's queues)."""
    from zocalo_nb.config import Settings
    from zocalo_nb.transport import Message, connect

    other = Settings.build(activemq_url, prefix=f"other{cluster.settings.prefix}")
    with connect(other) as transport:
        stray: list[Message] = []
        transport.subscribe("c.failure", stray.append, ack="auto")
        with ServiceRunner([cluster_service(cluster.scheduler, interval=0.2)], other):
            with cluster.runner():
                run = cluster.submit({"commands": ["sleep 2; exit 7"]})
                assert eventually(lambda: len(cluster.of("c.submitted", run)) == 1, timeout=60)
            # our service is down while the job ends; the other namespace's watcher runs
            job = cluster.of("c.submitted", run)[0].body["payload"]["jobid"]
            assert eventually(lambda: cluster.scheduler.states([job])[job].status.ended,
                              timeout=60, interval=0.5)  # fmt: skip
            eventually(lambda: bool(stray), timeout=2)
            assert stray == [] and cluster.of("c.failure", run) == []
        with cluster.runner():
            assert eventually(lambda: len(cluster.of("c.failure", run)) == 1, timeout=30)
        assert stray == []


def test_a_cluster_wide_frame_of_jobs(cluster: Cluster) -> None:
    from zocalo_nb.cluster import jobs_frame

    with cluster.runner():
        ok = cluster.submit({"commands": ["true"]})
        bad = cluster.submit({"commands": ["exit 2"]})
        assert eventually(lambda: len(cluster.of("c.failure", bad)) == 1, timeout=60)
        name = f"zocalo-nb.{cluster.settings.prefix}"
        frame = jobs_frame(cluster.scheduler, name)
        assert eventually(lambda: set(jobs_frame(cluster.scheduler, name)["state"])
                          == {"completed", "failed"}, timeout=30)  # fmt: skip
        frame = jobs_frame(cluster.scheduler, name).set_index("run")
        assert frame.loc[ok, "state"] == "completed" and frame.loc[bad, "exit_code"] == 2
        assert frame.loc[bad, "step"] == 1 and frame.loc[bad, "node"]
        assert str(frame.loc[bad, "stdout"]).endswith(".out")
        assert len(jobs_frame(cluster.scheduler)) >= 2  # every namespace
