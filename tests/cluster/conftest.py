"""A cluster service on a real Slurm (``slurm_conf``) reporting over a real ActiveMQ, and the
queues its steps' outputs go to."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from zocalo_nb.cluster import Scheduler, SlurmCli, cluster_service
from zocalo_nb.config import Settings
from zocalo_nb.dispatch import submit
from zocalo_nb.dispatch.events import EVENTS_TOPIC, unpack
from zocalo_nb.recipe import Recipe
from zocalo_nb.service import ServiceRunner
from zocalo_nb.transport import Message, Transport, connect

WRAP = f"{sys.executable} -m zocalo_nb.cli wrap --wrap command --recipewrapper $RECIPEWRAP"


@dataclass
class Cluster:
    """A cluster service on Slurm and the queues its steps' outputs go to."""

    settings: Settings
    transport: Transport
    scheduler: Scheduler
    workdir: Path
    got: dict[str, list[Message]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def submit(self, cluster: dict[str, Any], **parameters: Any) -> str:
        recipe = Recipe.from_dict(
            {
                "1": {
                    "queue": "cluster.submission",
                    "parameters": {"cluster": {"workingdir": str(self.workdir), **cluster},
                                   **parameters},
                    "output": {"job_submitted": 2, "success": 3, "failure": 4},
                },
                "2": {"queue": "c.submitted"},
                "3": {"queue": "c.success"},
                "4": {"queue": "c.failure"},
                "start": [[1, {}]],
            }
        )  # fmt: skip
        return submit(recipe, transport=self.transport).id

    def of(self, queue: str, run: str) -> list[Message]:
        return [m for m in self.got[queue] if m.body["environment"]["ID"] == run]

    def runner(self) -> ServiceRunner:
        return ServiceRunner([cluster_service(self.scheduler, interval=0.3)], self.settings)


@pytest.fixture
def cluster(activemq_url: str, slurm_conf: str, tmp_path: Path) -> Iterator[Cluster]:
    settings = Settings.build(activemq_url, prefix=f"cl{uuid.uuid4().hex[:6]}")
    with connect(settings) as transport:
        found = Cluster(settings, transport, SlurmCli(slurm_conf), tmp_path)
        for queue in ("c.submitted", "c.success", "c.failure"):
            found.got[queue] = []
            transport.subscribe(queue, found.got[queue].append, ack="auto")
        transport.subscribe_topic(EVENTS_TOPIC, lambda m: found.events.extend(unpack(m.body)))
        yield found
