"""Fuzz what a message can carry (headers, envelope, recipe, parameters) through dispatcher ->
service -> command wrapper on memory://: only our own outcomes (a job's success or failure
message, or the DLQ with a reason), never a command the values spelled, never a file outside
the job roots, never an exception escaping a service."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service.helpers import Collector
from zocalo_nb.dispatch.envelope import RECIPE_HEADER
from zocalo_nb.service import ServiceRunner
from zocalo_nb.service.dispatcher import Dispatcher
from zocalo_nb.transport import MemoryBroker, RawBody, Transport
from zocalo_nb.wrapper import CommandWrapper
from zocalo_nb.wrapper.service import wrapper_service


class Site:
    def __init__(self, base: Path) -> None:
        self.root = base / "jobs"
        self.root.mkdir()
        self.outside = base / "outside"
        self.outside.mkdir()
        self.marker = base / "pwned"
        self.broker = MemoryBroker(redelivery_delay=0.05)
        self.client = self.broker.connect()
        self.done = [Collector(self.client, q) for q in ("job.success", "job.failure")]
        command = wrapper_service("command")
        service = command.__class__(
            **{**command.__dict__, "handler": _handler(CommandWrapper(roots=[self.root]))}
        )
        self.runner = ServiceRunner(
            [Dispatcher(base / "no-recipes").service(), service], broker=self.broker
        ).start()

    def close(self) -> None:
        self.runner.stop()
        self.broker.close()


def _handler(wrapper: CommandWrapper) -> Any:
    from zocalo_nb.wrapper.lifecycle import run_job

    return lambda ctx, payload: run_job(wrapper, ctx)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    result = Site(tmp_path_factory.mktemp("fuzz"))
    yield result
    result.close()


ATTACKS = st.sampled_from(
    [
        "; touch {marker}",
        "$(touch {marker})",
        "`touch {marker}`",
        "' ; touch {marker} ; '",
        '" ; touch {marker} ; "',
        "\n touch {marker}",
        "{{x}}",
        "{x}",
        "../../outside",
        "{outside}",
        "a b --x",
        "%s%n",
        "\0",
    ]
)
TEXT = st.one_of(ATTACKS, st.text(max_size=30))
COMMANDS = st.sampled_from(
    [
        ("echo {image}", True),
        ("echo {image!r} {n}", True),
        ("echo {image} {n}", False),
        (["echo", "{image}", "{n}"], False),
    ]
)


def _fill(value: str, site: Site) -> str:
    return value.replace("{marker}", str(site.marker)).replace("{outside}", str(site.outside))


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same 60 examples on every run: a fuzz that cannot flake
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    command=COMMANDS,
    image=TEXT,
    n=st.one_of(TEXT, st.integers()),
    workdir=st.one_of(*[st.just("{root}/w")] * 3, TEXT),
    headers=st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=20), max_size=3),
    # mostly well-formed envelopes, so that most examples reach the wrapper
    pointer=st.one_of(*[st.just(1)] * 6, st.integers(-3, 5), st.text(max_size=4), st.none()),
    path=st.one_of(
        *[st.just([])] * 6, st.lists(st.integers(-2, 3), max_size=3), st.text(max_size=3)
    ),
    run_id=st.one_of(st.just(None), TEXT),
    via_dispatcher=st.booleans(),
)
def test_fuzzed_messages_end_in_our_outcomes_only(
    site: Site,
    command: tuple[Any, bool],
    image: str,
    n: Any,
    workdir: str,
    headers: dict[str, str],
    pointer: Any,
    path: Any,
    run_id: Any,
    via_dispatcher: bool,
) -> None:
    image, workdir = _fill(image, site), _fill(workdir, site).replace("{root}", str(site.root))
    n = _fill(n, site) if isinstance(n, str) else n
    template, shell = command
    recipe = {
        "1": {
            "queue": "jobs",
            "parameters": {"command": template, "shell": shell, "workingdir": workdir},
            "output": {"success": 2, "failure": 3},
        },
        "2": {"queue": "job.success"},
        "3": {"queue": "job.failure"},
        "start": [[1, {"n": n}]],
    }
    transport: Transport = site.client
    if via_dispatcher:
        parameters: dict[str, Any] = {"image": image}
        if run_id is not None:
            parameters["guid"] = _fill(run_id, site)
        # raw, as any client could send it (submit() itself refuses a bad guid early)
        transport.send("processing_recipe", {"custom_recipe": recipe, "parameters": parameters})
    else:
        recipe["1"]["parameters"]["image"] = image  # already "substituted" by someone else
        body = {
            "environment": {"ID": run_id if run_id is not None else str(uuid.uuid4())},
            "payload": {"n": n, "image": image},
            "recipe": recipe,
            "recipe-path": path,
            "recipe-pointer": pointer,
        }
        clean = {k: v for k, v in headers.items() if not set(k) & set(":\r\n\0")}
        transport.send("jobs", RawBody(json.dumps(body)), headers={**clean, RECIPE_HEADER: "True"})
    site.broker.join(timeout=60)  # re-raises anything a callback raised
    assert not site.marker.exists(), "a value became a command"
    assert not any(site.outside.iterdir()), "a job wrote outside its roots"
    for dlq in transport.dead_letter_queues():
        for letter in transport.browse(dlq.queue):
            assert letter.headers.get("zocalo-nb-reason"), dict(letter.headers)


def test_the_fuzz_really_ran_jobs(site: Site) -> None:
    # after the fuzz above (same module-wide site): many jobs ran and reported
    succeeded, failed = (len(c.messages) for c in site.done)
    from collections import Counter

    transport = site.client
    reasons = Counter(
        str(letter.headers.get("zocalo-nb-reason"))[:60]
        for dlq in transport.dead_letter_queues()
        for letter in transport.browse(dlq.queue)
    )
    # (the examples are the same on every run: derandomized)
    assert succeeded >= 3 and failed >= 3, (succeeded, failed, reasons)
