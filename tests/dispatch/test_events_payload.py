"""The input payload an event records (for reruns): itself when it fits, else a marker."""

from __future__ import annotations

import json

from zocalo_nb.dispatch.events import GROWTH, PAYLOAD_LIMIT, input_payload


def test_a_payload_is_recorded_as_it_is_when_its_json_fits() -> None:
    for payload in (None, True, 3, 2.5, "x" * 100, {"image": "x" * 200}, [1, "a"]):
        assert input_payload(payload) == payload


def test_a_payload_too_large_is_recorded_as_its_size() -> None:
    big_text = "\u0001" * (PAYLOAD_LIMIT // 6 + 1)  # escaped: six characters each
    assert input_payload(big_text) == {"zocalo-nb-truncated": len(json.dumps(big_text))}
    big = {"rows": ["y" * 1000] * 100}
    assert input_payload(big) == {"zocalo-nb-truncated": len(json.dumps(big))}
    assert input_payload("z" * (PAYLOAD_LIMIT - 2)) == "z" * (PAYLOAD_LIMIT - 2)  # exactly fits


def test_no_payload_encodes_longer_than_growth_times_its_text() -> None:
    # The worst cases: astral characters (escaped as a surrogate pair), other non-ASCII,
    # separators given a space, floats written out, nested containers.
    texts = [
        '"\U0001f600"',
        '"\u00e9\u00e9"',
        '"\x7f"',
        "[1,2,3]",
        '{"a":1,"b":[0,0]}',
        "1e15",
        "[-1e15,1e5,1E15]",
        '{"x":{"y":{"z":[[],{}]}}}',
        "1e400",
    ]
    for text in texts:
        assert len(json.dumps(json.loads(text))) <= GROWTH * len(text), text


def test_a_payload_from_a_short_text_is_recorded_without_encoding_it() -> None:
    payload = {"image": "x" * 200}
    text = json.dumps({"payload": payload})
    assert input_payload(payload, decoded_from=len(text)) is payload
    # a long text says nothing: the payload is measured as before
    big = {"rows": ["y" * 1000] * 100}
    text = json.dumps(big)
    assert input_payload(big, decoded_from=len(text)) == {"zocalo-nb-truncated": len(text)}
