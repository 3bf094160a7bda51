"""The JSON codec every transport uses: json.dumps' and json.loads' own results, made
without their per-call set-up (an encoder made for every call cost more than encoding a
small event)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zocalo_nb.transport.message import decode, dumps, encode, loads

KEYS = st.text() | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


@given(VALUES)
def test_dumps_makes_json_dumps_text(value: Any) -> None:
    assert dumps(value) == json.dumps(value) == encode(value)


@given(VALUES, st.sampled_from(["", " ", "\n", " \t"]), st.sampled_from(["", " ", "\r\n"]))
def test_loads_reads_what_json_loads_reads(value: Any, before: str, after: str) -> None:
    text = before + json.dumps(value) + after
    assert repr(loads(text)) == repr(json.loads(text))  # repr: nan != nan


@pytest.mark.parametrize("text", ["", "[1] x", "[1", "{'a': 1}", "NaNa", "\x00"])
def test_loads_raises_what_json_loads_raises(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        loads(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)
    assert decode(text) == (text, False)


def test_what_json_cannot_hold_raises_as_json_dumps_does() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps({"a": object()})
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(RecursionError):  # json.dumps: ValueError; both are handled as one
        dumps(cycle)
    assert dumps({"after": "a cycle"}) == '{"after": "a cycle"}'  # nothing left behind


def test_one_encoder_serves_threads_at_once() -> None:
    values = [{"n": n, "items": list(range(n % 50)), "text": "é" * n} for n in range(200)]
    wrong: list[int] = []

    def encode_all() -> None:
        for _ in range(20):
            wrong.extend(n for n, v in enumerate(values) if dumps(v) != json.dumps(v))

    threads = [threading.Thread(target=encode_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
