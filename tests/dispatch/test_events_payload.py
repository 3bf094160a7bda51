"""The input payload an event records (for reruns): itself when it fits, else a marker."""

from __future__ import annotations

import json

from zocalo_nb.dispatch.events import PAYLOAD_LIMIT, input_payload


def test_a_payload_is_recorded_as_it_is_when_its_json_fits() -> None:
    for payload in (None, True, 3, 2.5, "x" * 100, {"image": "x" * 200}, [1, "a"]):
        assert input_payload(payload) == payload


def test_a_payload_too_large_is_recorded_as_its_size() -> None:
    big_text = "\u0001" * (PAYLOAD_LIMIT // 6 + 1)  # escaped: six characters each
    assert input_payload(big_text) == {"zocalo-nb-truncated": len(json.dumps(big_text))}
    big = {"rows": ["y" * 1000] * 100}
    assert input_payload(big) == {"zocalo-nb-truncated": len(json.dumps(big))}
    assert input_payload("z" * (PAYLOAD_LIMIT - 2)) == "z" * (PAYLOAD_LIMIT - 2)  # exactly fits
