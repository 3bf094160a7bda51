"""History in SQLite and PostgreSQL: the tracker records, restarts, and reads back the same."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import zocalo_nb as z
from tests.brokers import eventually
from tests.monitor.test_runs import three_services
from tests.service.helpers import pipeline
from tests.sites import Site
from zocalo_nb.errors import ZocaloNbError
from zocalo_nb.monitor import History, Tap, Tracker
from zocalo_nb.recipe import Recipe
from zocalo_nb.states import StepState

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(url, table prefix): a fresh set of tables, dropped afterwards."""
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    url = f"sqlite:///{tmp_path / 'history.sqlite'}" if request.param == "sqlite" else POSTGRES
    yield url, prefix
    engine = sa.create_engine(url)
    with engine.begin() as db:
        for table in ("events", "runs", "run_parameters"):
            db.execute(sa.text(f"DROP TABLE IF EXISTS {prefix}{table}"))
    engine.dispose()


def comparable(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    columns = ["run", "step", "state", "service", "attempt", "error_type", "error", "sent_to"]
    return [
        (*(None if pd.isna(v) else v for v in row[:-1]), row[-1])
        for row in frame[columns].astype(object).itertuples(index=False)
    ]


def test_the_tracker_records_runs_and_history_survives_its_restart(
    site: Site, database: tuple[str, str]
) -> None:
    url, prefix = database
    transport = site.connect()
    tracker = Tracker(History(url, prefix=prefix))
    recipe = Recipe.from_dict(
        {
            "1": {"queue": "pipe.a", "parameters": {"dcid": "{dcid}"}},
            "2": {"queue": "pipe.b"},
            "3": {"queue": "pipe.end"},
            "start": [[1, {"n": 0}]],
        }
    )
    recipe = Recipe.from_dict({**recipe.to_dict(), "1": {**recipe.to_dict()["1"], "output": 2}})
    recipe = Recipe.from_dict({**recipe.to_dict(), "2": {"queue": "pipe.b", "output": 3}})
    with site.runner([tracker.service()]), site.runner(three_services()):
        good = z.submit(recipe, {"dcid": 1234}, transport=transport)
        bad = z.submit(pipeline(), transport=transport)
        poisoned = Recipe.from_dict({**pipeline().to_dict(), "start": [[1, {"poison": "x"}]]})
        failed = z.submit(poisoned, {"dcid": 99}, transport=transport)
        for run in (good, bad, failed):
            run.wait(30, progress=False)
        live = Tap.for_transport(transport).events()
        assert eventually(lambda: tracker.recorded >= len(live), timeout=10)
    # the tracker stopped with its runner (and flushed); a new History reads it all back
    history = History(url, prefix=prefix)
    stored = history.events()
    assert comparable(stored) == comparable(live)
    assert z.Run.load(good.id, history=history).state() == {
        1: StepState.SUCCEEDED,
        2: StepState.SUCCEEDED,
        3: StepState.SUCCEEDED,
    }
    assert z.Run.load(failed.id, history=history).state()[1] == StepState.DEAD_LETTERED
    # filters: by any recipe parameter, by state, step, service, time
    assert set(history.events(dcid=1234)["run"]) == {good.id}
    assert set(z.history(history, state="dead-lettered")["run"]) == {failed.id}
    assert list(history.events(good.id, step=2)["service"].astype(str)) == ["two"]
    assert len(history.events(service="end")) == 2
    assert history.events(since=pd.Timestamp.now(tz="UTC") + pd.Timedelta("1h")).empty
    runs = history.runs()
    assert set(runs["run"]) == {good.id, bad.id, failed.id}
    assert runs.set_index("run").loc[failed.id, "dead_lettered"] == 1
    assert list(history.runs(dcid=1234)["run"]) == [good.id]
    # each step's input, for rerunning: rebuilt from the recipe and the recorded payload
    message = history.input_message(good.id, 2)
    assert message.pointer == 2 and message.payload == {"n": 1} and message.path == (1,)
    assert message.run_id == good.id
    with pytest.raises(ZocaloNbError, match="no recorded input"):
        history.input_message(good.id, 7)
    # a second tracker on the same database keeps adding (restart), retention forgets
    assert History(url, prefix=prefix).forget(older_than_days=1) == 0
    assert History(url, prefix=prefix).forget(older_than_days=-1) > 0
    assert History(url, prefix=prefix).events().empty


def test_a_bad_history_url_fails_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ZocaloNbError, match="cannot") as caught:
        History("nosuchdb://x")
    assert "sqlite:///" in caught.value.hint
    with pytest.raises(ZocaloNbError, match="cannot open") as caught:
        History("postgresql+psycopg://nobody:secret@127.0.0.1:1/x")
    assert "secret" not in str(caught.value)
