"""Nothing runs that should not: what someone with access to the broker could try.

Each test is one finding of the security review (issue 13), on memory:// unless the
behaviour is the broker's own.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.brokers import eventually, free_port
from tests.service.helpers import Collector
from zocalo_nb.config import ConfigError, Settings
from zocalo_nb.dispatch import StepContext, submit
from zocalo_nb.errors import ZocaloNbError
from zocalo_nb.recipe import Recipe
from zocalo_nb.servers.activemq import ActiveMQ
from zocalo_nb.service import ServiceRunner
from zocalo_nb.service.dispatcher import Dispatcher
from zocalo_nb.transport import MemoryBroker, Transport
from zocalo_nb.wrapper import CommandWrapper, JobFailed, wrapper_service
from zocalo_nb.wrapper.lifecycle import Job

SECRET = "hunter2-" + uuid.uuid4().hex[:6]


# -- 1. shell injection through parameters, whichever stage substituted them ---------------
def command_recipe(command: Any, workdir: Path, shell: bool) -> dict[str, Any]:
    return {
        "1": {
            "queue": "jobs",
            "parameters": {"command": command, "shell": shell, "workingdir": str(workdir)},
            "output": {"success": 2, "failure": 3},
        },
        "2": {"queue": "job.success"},
        "3": {"queue": "job.failure"},
        "start": [[1, {}]],
    }


def run_via_dispatcher(
    tmp_path: Path, custom: dict[str, Any], parameters: dict[str, Any]
) -> tuple[list[Any], list[Any]]:
    broker = MemoryBroker()
    client = broker.connect()
    ok, bad = Collector(client, "job.success"), Collector(client, "job.failure")
    dispatcher = Dispatcher(tmp_path / "no-recipes")
    with ServiceRunner([dispatcher.service(), wrapper_service("command")], broker=broker):
        submit([], parameters, transport=client, custom_recipe=custom)
        assert eventually(lambda: len(ok.messages) + len(bad.messages) == 1, timeout=30)
    broker.close()
    return [m.body["payload"] for m in ok.messages], [m.body["payload"] for m in bad.messages]


@pytest.mark.parametrize(
    "value",
    [
        "a.cbf; touch {marker}",
        "a.cbf$(touch {marker})",
        "`touch {marker}`",
        "a.cbf' ; touch {marker} ; echo '",
        "{{x}}",  # a placeholder smuggled in for the wrapper's own formatting
    ],
)
def test_request_parameters_never_become_shell_syntax(tmp_path: Path, value: str) -> None:
    marker = tmp_path / "pwned"
    image = value.format(marker=marker)
    recipe = command_recipe("echo processing {image} {image!r}", tmp_path, shell=True)
    done, failed = run_via_dispatcher(tmp_path, recipe, {"image": image})
    assert not marker.exists()
    assert failed == []
    printed = Path(done[0]["stdout"]).read_text()
    assert printed.startswith(f"processing {image} ")


def test_a_payload_value_smuggled_through_a_parameter_is_still_quoted(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    # The dispatcher puts "{x}" into the command; the wrapper then fills x from the payload.
    recipe = command_recipe("echo {image}", tmp_path, shell=True)
    recipe["start"] = [[1, {"x": f"; touch {marker}"}]]
    done, _ = run_via_dispatcher(tmp_path, recipe, {"image": "{x}"})
    assert not marker.exists()
    assert Path(done[0]["stdout"]).read_text() == "{x}\n"


def test_a_value_never_adds_arguments_to_a_string_command(tmp_path: Path) -> None:
    script = "import sys, json; print(json.dumps(sys.argv[1:]))"
    recipe = command_recipe(f"{sys.executable} -c '{script}' {{image}} end", tmp_path, False)
    done, _ = run_via_dispatcher(tmp_path, recipe, {"image": "a b --delete-everything"})
    assert json.loads(Path(done[0]["stdout"]).read_text()) == ["a b --delete-everything", "end"]


# -- 2. notebook parameter names ------------------------------------------------------------
def test_only_identifiers_become_notebook_parameters(tmp_path: Path) -> None:
    from zocalo_nb.notebook.prepare import load

    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("threshold = 1")
    cell.metadata["tags"] = ["parameters"]
    notebook.cells = [cell]
    path = tmp_path / "job.ipynb"
    nbformat.write(notebook, str(path))
    evil = {f'x = 1\nimport os; os.system("touch {tmp_path}/pwned")\ny': 1}
    for bad in (evil, {"class": 1}, {"1x": 1}, {"a-b": 2}):
        with pytest.raises(JobFailed, match="not Python identifiers"):
            load(path, {"threshold": 2, **bad})
    injected = load(path, {"threshold": 2})
    assert "threshold = 2" in injected.cells[1].source


# -- 4. files outside their folders -----------------------------------------------------------
def test_the_dispatcher_refuses_a_guid_that_is_a_path(tmp_path: Path) -> None:
    broker = MemoryBroker()
    client = broker.connect()
    logbook = tmp_path / "logbook"
    recipe = {"1": {"queue": "x"}, "start": [[1, {}]]}
    with ServiceRunner([Dispatcher(tmp_path, logbook).service()], broker=broker):
        for guid in ("../../escaped", str(tmp_path / "absolute"), "a/b"):
            client.send(
                "processing_recipe", {"custom_recipe": recipe, "parameters": {"guid": guid}}
            )
        assert eventually(lambda: len(client.browse(client.dlq("processing_recipe"))) == 3)
    reasons = {
        m.headers["zocalo-nb-reason"] for m in client.browse(client.dlq("processing_recipe"))
    }
    assert all("is not a run id" in r for r in reasons)
    assert not (tmp_path / "escaped.json").exists()
    assert not (tmp_path / "absolute.json").exists()
    assert not logbook.exists() or not any(logbook.rglob("*.json"))
    with pytest.raises(ZocaloNbError, match="run id"):
        submit(Recipe.from_dict(recipe), transport=client, run_id="../x")
    broker.close()


def test_run_ids_from_messages_never_become_paths() -> None:
    from zocalo_nb.dispatch.envelope import run_file_name

    assert run_file_name("2f1e1c1e-1b2a-4c7f-9a7e-0d6c1b2a3c4d") == (
        "2f1e1c1e-1b2a-4c7f-9a7e-0d6c1b2a3c4d"
    )
    for evil in ("../x", "/etc", "..", "a/../../b", "", "x" * 500, "\0"):
        name = run_file_name(evil)
        assert "/" not in name and name not in ("", ".", "..") and name.startswith("run-")


class FakeContext:
    """What a wrapper reads of its StepContext."""

    run_id = "../../outside"
    step_id = 1

    def __init__(self, parameters: dict[str, Any], payload: Any = None) -> None:
        self.parameters, self.payload = parameters, payload or {}


def make_job(parameters: dict[str, Any]) -> Any:
    return Job(FakeContext(parameters), lambda channel, payload: None, "command")  # type: ignore[arg-type]


def test_command_jobs_work_only_inside_their_roots(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    wrapper = CommandWrapper(roots=[root])
    for workdir in ("/", str(root / ".." / ".."), str(tmp_path)):
        task = make_job({"command": ["true"], "workingdir": workdir})
        with pytest.raises(JobFailed, match="outside the folders jobs may use"):
            wrapper.run(task)
    task = make_job({"command": ["true"], "workingdir": str(root), "stdout": "/tmp/x.out"})
    with pytest.raises(JobFailed, match="stdout"):
        wrapper.run(task)
    task = make_job({"command": ["true"], "workingdir": str(root / "job")})
    result = wrapper.run(task)
    assert Path(result["stdout"]).parent == root / "job"
    assert "outside" not in Path(result["stdout"]).name  # the run id became a digest


# -- 5. secrets ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        f"stomp://u:{SECRET}@host:badport",
        f"stomp://u:pre?{SECRET}@host:61613",
        f"stomp://u:pre#{SECRET}@host:1",
        f"stomp://u:{SECRET}@[::1:61613",
        f"stmop://u:{SECRET}@h:1",
        f"stomp://u:{SECRET}@h:61613?prefetch=many",
    ],
)
def test_a_malformed_broker_url_never_shows_its_password(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from zocalo_nb.cli import main

    with pytest.raises(ConfigError) as caught:
        Settings.build(url)
    assert SECRET not in str(caught.value) and SECRET[:7] not in str(caught.value)
    monkeypatch.setenv("ZOCALO_NB_BROKER", url)
    with pytest.raises(ConfigError) as caught:
        Settings.build()
    assert SECRET[:7] not in str(caught.value)
    main(["status", "--broker", url, "--wait", "0"])
    captured = capsys.readouterr()
    assert SECRET[:7] not in captured.out + captured.err


@pytest.mark.activemq
def test_the_stomp_passcode_never_reaches_the_log(activemq_url: str) -> None:
    from zocalo_nb.transport import connect

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        settings = Settings.build(activemq_url)
        connect(settings).close()
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    text = stream.getvalue()
    assert "passcode" in text  # stomp.py did log the CONNECT frame
    assert settings.password and settings.password not in text


@pytest.mark.activemq
def test_our_activemq_keeps_its_password_off_the_command_line_and_out_of_logs(
    tmp_path: Path,
) -> None:
    password = f"p ss:w=rd#{SECRET}é"
    instance = ActiveMQ(tmp_path / "amq", stomp_port=free_port(), password=password)
    assert SECRET not in repr(instance)
    instance.start()
    try:
        pid = instance.pid()
        assert pid is not None
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        assert SECRET not in cmdline
        from zocalo_nb.transport import connect

        url = f"stomp://zocalo:{password.replace('%', '%25').replace(' ', '%20').replace('#', '%23')}@127.0.0.1:{instance.stomp_port}"
        connect(url).close()  # the password from the file works
        assert SECRET not in instance.log_file.read_text(errors="replace")
        assert instance.log_file.stat().st_mode & 0o077 == 0
        credentials = tmp_path / "amq" / "conf" / "credentials.properties"
        assert credentials.stat().st_mode & 0o077 == 0
    finally:
        instance.stop()


def test_command_jobs_do_not_inherit_broker_or_database_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOCALO_NB_PASSWORD", SECRET)
    monkeypatch.setenv("ZOCALO_NB_BROKER", f"stomp://u:{SECRET}@h:1")
    monkeypatch.setenv("ZOCALO_NB_HISTORY", f"postgresql://u:{SECRET}@h/db")
    monkeypatch.setenv("SOME_API_TOKEN", SECRET)
    monkeypatch.setenv("ORDINARY", "kept")
    task = make_job({"command": ["env"], "workingdir": str(tmp_path)})
    result = CommandWrapper(roots=[tmp_path]).run(task)
    env = Path(result["stdout"]).read_text()
    assert SECRET not in env and "ORDINARY=kept" in env


# -- 6. resources ----------------------------------------------------------------------------
def test_a_format_width_cannot_cost_gigabytes() -> None:
    recipe = Recipe.from_dict({"1": {"queue": "q", "parameters": {"p": "{x:>200000000}"}}})
    applied = recipe.apply_parameters({"x": 1})
    assert applied[1].parameters["p"] == "{x:>200000000}"  # left as written, not 200 MB
    assert (
        Recipe.from_dict({"1": {"queue": "q", "parameters": {"p": "{x:>5}"}}})
        .apply_parameters({"x": 1})[1]
        .parameters["p"]
        == "    1"
    )


def limited(code: str, megabytes: int = 600) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a Python process allowed ``megabytes`` of address space: work that
    should be small fails there with MemoryError if it is not (no timing involved)."""
    prelude = (
        "import resource; "
        f"resource.setrlimit(resource.RLIMIT_AS, ({megabytes} << 20, {megabytes} << 20))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=300,
    )


def test_the_error_tail_is_read_from_the_end_of_a_huge_file(tmp_path: Path) -> None:
    path = tmp_path / "big.err"
    with path.open("wb") as handle:
        handle.truncate(2 * 1024**3)  # 2 GB, sparse
        handle.seek(0, os.SEEK_END)
        handle.write(b"the real error")
    done = limited(
        "from pathlib import Path\n"
        "from zocalo_nb.wrapper.command import STDERR_TAIL, _tail\n"
        f"tail = _tail(Path({str(path)!r}))\n"
        "assert tail.endswith('the real error') and len(tail) < STDERR_TAIL + 100, tail[-50:]\n"
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_processes_a_job_leaves_behind_are_killed_even_after_success(tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    # A daemon escaping the job's process group with setsid, and a plain background child.
    script = (
        f"setsid sh -c 'echo $$ > {pidfile}.1; exec sleep 300' & "
        f"sh -c 'echo $$ > {pidfile}.2; exec sleep 300' & sleep 0.5; exit 0"
    )
    task = make_job({"command": script, "shell": True, "workingdir": str(tmp_path)})
    CommandWrapper(roots=[tmp_path]).run(task)
    for n in (1, 2):
        pid = int(Path(f"{pidfile}.{n}").read_text())
        assert eventually(lambda p=pid: not _alive(p), timeout=5), f"process {n} survived"
    from zocalo_nb.wrapper.command import JOB_MARKER

    assert JOB_MARKER not in os.environ


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def _unused(*_: Any) -> None:  # keep imports used by later sections honest
    _ = (StepContext, Transport, subprocess)


# -- 3. header injection and frame smuggling (the STOMP wire) -------------------------------
def letter_file(folder: Path, name: str, headers: dict[str, str], body: Any) -> Path:
    path = folder / name
    content = {
        "exported": {"date": "2026-11-29", "time": "12:00:00"},
        "header": headers,
        "message": body,
    }
    path.write_text(json.dumps(content))
    return path


@pytest.mark.activemq
def test_header_names_from_a_dead_letter_file_cannot_smuggle_frames(
    activemq_url: str, tmp_path: Path
) -> None:
    from zocalo_nb import dlq
    from zocalo_nb.transport import connect

    prefix = f"test{uuid.uuid4().hex[:8]}"
    transport = connect(Settings.build(activemq_url, prefix=prefix))
    commands: list[Any] = []
    transport.subscribe_topic("/topic/command", commands.append)
    arrived = Collector(transport, "target")
    time.sleep(0.2)
    good = letter_file(
        tmp_path, "good", {"original-destination": f"/queue/{prefix}.target"}, {"n": 1}
    )
    smuggled = (
        "x\n\nSEND\ndestination:/topic/command\n\n"
        '{"command": "shutdown", "service": "dispatcher"}\0\nSEND\ndestination:/queue/junk'
    )
    evil = letter_file(
        tmp_path,
        "evil",
        {
            "original-destination": f"/queue/{prefix}.target",
            smuggled: "y",
            "a\ndestination": "/topic/command",
        },
        {"n": 2},
    )
    try:
        sent = dlq.reinject_files(transport, [good, evil])
        assert sent == [good]
        assert eventually(lambda: len(arrived.messages) == 1)
        time.sleep(0.5)
        assert commands == [] and [m.body for m in arrived.messages] == [{"n": 1}]
        assert evil.exists()  # left for the operator to look at
    finally:
        transport.close()


# -- 6. a recipe message that loops ------------------------------------------------------------
def test_a_recipe_message_that_loops_is_dead_lettered_not_multiplied() -> None:
    from zocalo_nb.dispatch.envelope import RECIPE_HEADER
    from zocalo_nb.service import Service
    from zocalo_nb.transport import RawBody

    broker = MemoryBroker()
    client = broker.connect()
    handled: list[Any] = []

    def forward(ctx: StepContext, payload: Any) -> None:
        handled.append(payload)
        ctx.send(payload)

    body = {
        "environment": {"ID": "loop"},
        "payload": {"n": 1},
        "recipe": {"1": {"queue": "loop", "output": [1, 1]}, "start": [[1, {}]]},
        "recipe-path": [],
        "recipe-pointer": 1,
    }
    with ServiceRunner([Service("looper", forward, queues=("loop",))], broker=broker):
        client.send("loop", RawBody(json.dumps(body)), headers={RECIPE_HEADER: "True"})
        assert eventually(lambda: len(client.browse(client.dlq("loop"))) == 2, timeout=10)
        time.sleep(0.5)
    assert len(handled) == 1  # once, then its two copies went to the DLQ, not round again
    reasons = {m.headers["zocalo-nb-reason"] for m in client.browse(client.dlq("loop"))}
    assert all("already on its path" in r for r in reasons)
    broker.close()


# -- 7. namespace escapes by operator actions --------------------------------------------------
def test_operator_actions_stay_in_their_namespace(tmp_path: Path) -> None:
    from zocalo_nb import dlq
    from zocalo_nb.dlq.guard import NamespaceError

    broker = MemoryBroker()
    test = broker.connect("test")
    production = broker.connect("zocalo")
    arrived = Collector(production, "work")
    recipe = {"1": {"queue": "/queue/zocalo.work"}, "start": [[1, {}]]}
    body = {
        "environment": {"ID": "r1"},
        "payload": {},
        "recipe": recipe,
        "recipe-path": [],
        "recipe-pointer": 1,
    }
    test.send(test.dlq("work"), {"n": 1}, headers={"original-destination": "/queue/zocalo.work"})
    test.send(test.dlq("work"), body, headers={"original-destination": "/queue/test.work"})
    assert eventually(lambda: test.statistics(test.dlq("work")).depth == 2)
    assert dlq.reinject(test) == []  # neither: one goes to zocalo.*, one's recipe does
    assert test.statistics(test.dlq("work")).depth == 2
    path = letter_file(tmp_path, "f", {"original-destination": "/queue/zocalo.work"}, {"n": 3})
    assert dlq.reinject_files(test, [path]) == []
    time.sleep(0.3)
    assert arrived.messages == []
    assert len(dlq.reinject(test, allow_namespace=True)) == 2  # when the operator says so
    assert eventually(lambda: len(arrived.messages) == 1)
    from zocalo_nb.dlq.guard import check

    with pytest.raises(NamespaceError, match="outside the namespace 'test'"):
        check(test, ["/topic/zocalo.command"], action="this")
    broker.close()


# -- 8. small robustness bugs ----------------------------------------------------------------
def test_recipes_hash_whatever_their_keys_and_equal_recipes_hash_equal() -> None:
    data = {"1": {"queue": "q", "parameters": {"a": {1: "x", "b": "y"}}}, "start": [[1, {}]]}
    same = {"start": [[1, {}]], "1": {"parameters": {"a": {"b": "y", 1: "x"}}, "queue": "q"}}
    assert hash(Recipe.from_dict(data)) == hash(Recipe.from_dict(same))
    assert Recipe.from_dict(data) == Recipe.from_dict(same)


def test_rendering_text_with_a_lone_surrogate_does_not_crash(tmp_path: Path) -> None:
    import shutil

    recipe = Recipe.from_dict({"1": {"queue": "q\udc80"}, "start": [[1, {}]]})
    if shutil.which("dot"):
        recipe.render(str(tmp_path / "graph.svg"))
        assert (tmp_path / "graph.svg").read_text().startswith("<?xml")
    assert "q" in recipe.to_dot()


def test_a_time_that_is_not_one_is_a_clear_error(tmp_path: Path) -> None:
    from zocalo_nb.monitor import History

    history = History(f"sqlite:///{tmp_path / 'h.sqlite'}")
    with pytest.raises(ZocaloNbError, match="cannot read 'x' as a time"):
        history.runs(since="x")


def test_runs_filter_by_parameters_named_like_options(tmp_path: Path) -> None:
    from zocalo_nb.cli import main

    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    assert main(["runs", "--history", url, "-s", "since=3", "-s", "limit=2"]) == 0


def test_diff_of_long_chains_is_linear() -> None:
    # A path per step that copies its parent's path costs n**2/2 tuple items: 20,000 chained
    # steps need gigabytes; numbered paths fit in the 600 MB the child process may use.
    done = limited(
        "import itertools\n"
        "from zocalo_nb.recipe import RecipeBuilder\n"
        "def chain(n):\n"
        "    b = RecipeBuilder()\n"
        "    steps = [b.step(f'q{i}') for i in range(n)]\n"
        "    for first, second in itertools.pairwise(steps):\n"
        "        first.then(second)\n"
        "    b.start(steps[0], {})\n"
        "    return b.build()\n"
        "assert not chain(20000).diff(chain(20000)).changes\n"
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_step_ids_are_positive_and_key_zero_survives_a_round_trip() -> None:
    from zocalo_nb.errors import RecipeValidationError

    for key in ("-1", "0"):
        with pytest.raises(RecipeValidationError, match=f"step id {key} is not allowed"):
            Recipe.from_dict(
                {key: {"queue": "a"}, "1": {"queue": "b"}, "start": [[1, {}]]}
            ).validate()
    recipe = Recipe.from_dict({0: {}, "1": {"queue": "q"}})
    assert Recipe.from_dict(recipe.to_dict()) == recipe


def test_notebook_kernels_get_no_credentials_and_huge_outputs_are_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbformat.v4 import new_code_cell, new_notebook

    from zocalo_nb.notebook.prepare import MAX_OUTPUT
    from zocalo_nb.notebook.wrapper import notebook_service

    monkeypatch.setenv("ZOCALO_NB_PASSWORD", SECRET)
    folder = tmp_path / "jobs"
    folder.mkdir()
    parameters = new_code_cell("x = 1")
    parameters.metadata["tags"] = ["parameters"]
    body = new_code_cell(
        "import os\nfrom zocalo_nb import emit\n"
        "emit('password', os.environ.get('ZOCALO_NB_PASSWORD', 'absent'))\n"
        "print('y' * 5_000_000)"
    )
    nbformat.write(new_notebook(cells=[parameters, body]), str(folder / "env.ipynb"))
    recipe = Recipe.from_dict(
        {
            "1": {
                "queue": "notebook.runner",
                "parameters": {"notebook": "env.ipynb"},
                "output": {"success": 2},
            },
            "2": {"queue": "nb.done"},
            "start": [[1, {}]],
        }
    )
    broker = MemoryBroker()
    client = broker.connect()
    done = Collector(client, "nb.done")
    service = notebook_service(directories=[folder], output_dir=tmp_path / "runs", kernels=1)
    with ServiceRunner([service], broker=broker):
        submit(recipe, transport=client)
        assert eventually(lambda: len(done.messages) == 1, timeout=90)
    broker.close()
    payload = done.messages[0].body["payload"]
    assert payload["password"] == "absent"
    saved = nbformat.read(payload["notebook"], as_version=4)
    printed = saved.cells[-1].outputs[-1]["text"]
    assert len(printed) < MAX_OUTPUT + 200 and "left out by zocalo_nb" in printed


def test_a_stuck_handler_times_out_and_its_worker_goes_on() -> None:
    import threading as _threading

    from zocalo_nb.service import Service
    from zocalo_nb.service.service import HandlerTimeout

    release = _threading.Event()
    spun: list[int] = []

    def handler(ctx: StepContext, payload: Any) -> None:
        if payload.get("stuck") == "sleep":
            release.wait(3600)  # a blocking call: abandoned, and its sends never happen
            ctx.send({"late": True})
            return
        if payload.get("stuck") == "spin":
            while True:  # a Python loop: interrupted
                spun.append(1)
                if len(spun) > 10**9:
                    break
        ctx.send(payload)

    broker = MemoryBroker(redelivery_delay=0.05)
    client = broker.connect()
    end = Collector(client, "pipe.b")
    service = Service("slow", handler, queues=("pipe.a",), handler_timeout=0.5, max_attempts=1)
    from tests.service.helpers import pipeline

    recipe = pipeline().to_dict()
    with ServiceRunner([service], broker=broker, workers=1):
        for stuck in ("sleep", "spin"):
            recipe["start"] = [[1, {"stuck": stuck}]]
            submit(Recipe.from_dict(recipe), transport=client)
        good = submit(pipeline(), transport=client)
        assert eventually(lambda: len(end.messages) == 1, timeout=20)  # not blocked
        assert eventually(lambda: len(client.browse(client.dlq("pipe.a"))) == 2, timeout=20)
        release.set()
        time.sleep(0.3)
    assert [m.body["environment"]["ID"] for m in end.messages] == [good.id]  # no late send
    dead = client.browse(client.dlq("pipe.a"))
    assert {m.headers["zocalo-nb-error-type"] for m in dead} == {HandlerTimeout.__name__}
    count = len(spun)
    time.sleep(0.2)
    assert len(spun) == count  # the spinning handler was stopped
    with pytest.raises(ZocaloNbError, match="handler_timeout"):
        Service("bad", handler, queues=("q",), handler_timeout=0)
    broker.close()
