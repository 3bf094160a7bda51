"""DLQ tools skip and report a bad letter; they never stop on one (memory:// and ActiveMQ)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.brokers import eventually
from tests.sites import Site
from zocalo_nb import dlq
from zocalo_nb.transport import RawBody


def good_body(n: int) -> dict[str, object]:
    return {
        "environment": {"ID": f"run-{n}"},
        "payload": {"n": n},
        "recipe": {"1": {"queue": "work", "parameters": {}}, "start": [[1, {}]]},
        "recipe-path": [],
        "recipe-pointer": 1,
    }


def test_bad_letters_are_shown_skipped_and_left_while_the_others_move(
    site: Site, tmp_path: Path
) -> None:
    client = site.connect()
    where = client.dlq("work")
    origin = {"original-destination": f"/queue/{site.prefix}.work", "workflows-recipe": "True"}
    for n in range(3):
        client.send(where, good_body(n), headers=origin)
    client.send(where, good_body(3), headers={**origin, "zocalo-nb-dead-lettered-at": "yesterday"})
    client.send(where, good_body(4), headers={**origin, "zocalo-nb-dead-lettered-at": "1e300"})
    client.send(where, good_body(5), headers={**origin, "zocalo-nb-attempts": "three"})
    broken = {**good_body(6), "recipe": "not a recipe"}  # parameters= cannot edit it
    client.send(where, broken, headers=origin)
    client.send(where, RawBody("{not json"), headers=origin)
    for n in range(8, 11):
        client.send(where, good_body(n), headers=origin)
    assert eventually(lambda: client.statistics(where).depth == 11)

    frame = dlq.frame(client)  # does not stop on a bad letter
    assert len(frame) == 11
    assert frame.time.notna().all()  # a time not believed falls back to the broker's stamp
    assert frame.attempts.isna().all()

    moved = dlq.reinject(client, parameters={"threshold": 3})  # everything, edited
    # The recipe that is not one and the body that is not JSON cannot take parameters: they
    # stay in the DLQ; every other letter moves, before and after them.
    assert len(moved) == 9
    assert eventually(lambda: client.statistics("work").depth == 9)
    left = client.browse(where)
    assert sorted(str(m.body)[:12] for m in left) == sorted([str(broken)[:12], "{not json"])
    arrived = [m.body for m in site.waiting(client, "work")]
    assert all(b["recipe"]["1"]["parameters"] == {"threshold": 3} for b in arrived)
    assert sorted(b["payload"]["n"] for b in arrived) == [0, 1, 2, 3, 4, 5, 8, 9, 10]

    written = dlq.purge(client, location=tmp_path)  # what is left can still be exported
    assert len(written) == 2 and client.browse(where) == []
    assert all(json.loads(p.read_text()) for p in written)
