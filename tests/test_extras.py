"""The core install and the extras: what works without them, and the pip install a missing
one names. Each case runs in a fresh interpreter whose import system refuses the modules an
uninstalled extra would bring (as on a machine where ``pip install zocalo_nb`` ran alone)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: The top-level modules each extra installs (pyproject.toml's optional dependencies).
EXTRA_MODULES = {
    "stomp": ["stomp"],
    "rabbitmq": ["pika"],
    "notebook": ["nbformat", "nbclient", "papermill", "ipykernel", "jupyter_client"],
    "sql": ["psycopg", "psycopg2"],
    "widgets": ["ipywidgets"],
    "plots": ["matplotlib"],
}
EVERY_EXTRA = sorted(m for modules in EXTRA_MODULES.values() for m in modules)

BLOCKER = """
import importlib.abc, sys
BLOCKED = set({blocked!r})
class Uninstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Uninstalled())
"""


def run_without(blocked: list[str], code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    program = BLOCKER.format(blocked=blocked) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", program],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "PYTHONPATH": str(REPO)},
    )


def test_the_core_builds_submits_watches_and_stores_runs_without_any_extra(
    tmp_path: Path,
) -> None:
    result = run_without(
        EVERY_EXTRA,
        f"""
        import sys
        import zocalo_nb as z
        from zocalo_nb.monitor import Tracker
        from tests.service.helpers import pipeline, step_one, step_two

        recipe = z.Recipe.load({str(REPO / "recipes/demo-pipeline.json")!r}).validate()
        broker = z.MemoryBroker()
        transport = broker.connect()
        history = z.History("sqlite:///{tmp_path}/runs.sqlite")
        services = [z.Service("one", step_one, queues=("pipe.a",)),
                    z.Service("two", step_two, queues=("pipe.b",)),
                    z.Service("end", lambda ctx, p: None, queues=("pipe.end",))]
        tracker = Tracker(history)
        with tracker, z.ServiceRunner([*services, tracker.service()], broker=broker):
            run = z.submit(pipeline(), transport=transport)
            run.wait(30, progress=False)
            tracker.flush()
        print("states", sorted(s.value for s in run.state().values()))
        print("stored", len(z.history(history, run=run.id)) > 0)
        print("graph", "digraph" in recipe.to_dot())
        print("imported", sorted({{m.split(".")[0] for m in sys.modules}} & set({EVERY_EXTRA!r})))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "states ['succeeded', 'succeeded', 'succeeded']" in result.stdout
    assert "stored True" in result.stdout and "graph True" in result.stdout
    assert "imported []" in result.stdout


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ("stomp", "z.connect('stomp://127.0.0.1:1')"),
        ("rabbitmq", "z.connect('amqp://127.0.0.1:1')"),
        ("notebook", "from zocalo_nb.notebook.wrapper import NotebookWrapper"),
        ("sql", "z.History('postgresql+psycopg://user@127.0.0.1:1/db')"),
        ("widgets", "from zocalo_nb.widgets import RunMonitor"),
        (
            "plots",
            "import pandas as pd; from zocalo_nb.monitor.plots import timeline; "
            "timeline(pd.DataFrame())",
        ),
    ],
)
def test_a_missing_extra_names_the_pip_install_to_run(
    extra: str, code: str, tmp_path: Path
) -> None:
    result = run_without(
        EXTRA_MODULES[extra],
        f"""
        import zocalo_nb as z
        from zocalo_nb.errors import MissingExtra
        try:
            {code}
        except MissingExtra as error:
            assert isinstance(error, ImportError) and error.extra == {extra!r}
            print(error)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert f"pip install 'zocalo_nb[{extra}]'" in result.stdout


def test_the_cli_prints_the_pip_install_for_a_missing_extra(tmp_path: Path) -> None:
    result = run_without(
        EXTRA_MODULES["stomp"],
        """
        import sys
        from zocalo_nb.cli import main
        sys.exit(main(["status", "--broker", "stomp://127.0.0.1:1"]))
        """,
        tmp_path,
    )
    assert result.returncode != 0
    assert "pip install 'zocalo_nb[stomp]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_extra_is_declared_and_all_brings_each_of_them() -> None:
    import tomllib

    from zocalo_nb.errors import EXTRAS

    optional = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(EXTRAS) == set(EXTRA_MODULES) == set(optional) - {"all", "test"}
    assert optional["all"] == [f"zocalo_nb[{','.join(EXTRAS)}]"]
    assert "zocalo_nb[all]" in optional["test"]
