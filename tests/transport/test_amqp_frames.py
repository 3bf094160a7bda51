"""Our encoding of a basic.publish is byte for byte pika's (the services write it instead of
pika, see zocalo_nb/transport/amqp_frames.py)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

pika = pytest.importorskip("pika")
from pika import frame, spec  # noqa: E402

from zocalo_nb.transport.amqp_calls import death_record  # noqa: E402
from zocalo_nb.transport.amqp_frames import publish_frames  # noqa: E402
from zocalo_nb.transport.base import TransportError  # noqa: E402


def pikas(channel: int, max_body: int, exchange: str, key: str, mandatory: bool, body: bytes,
          **properties: Any) -> bytes:  # fmt: skip
    """What pika's Connection._send_message writes for the same publish."""
    pieces = [
        frame.Method(channel, spec.Basic.Publish(exchange=exchange, routing_key=key,
                                                 mandatory=mandatory)).marshal(),
        frame.Header(channel, len(body), spec.BasicProperties(**properties)).marshal(),
    ]  # fmt: skip
    for start in range(0, len(body), max_body):
        pieces.append(frame.Body(channel, body[start : start + max_body]).marshal())
    return b"".join(pieces)


CASES: list[dict[str, Any]] = [
    {},
    {"headers": {"workflows-recipe": True, "zocalo-nb-id": "abc"}, "delivery_mode": 2,
     "message_id": "0123456789abcdef", "timestamp": 1796018743},
    {"headers": {"x-delay": 5000, "n": -3, "big": 2**40, "none": None, "list": [1, "a", True]},
     "delivery_mode": 1, "expiration": "60000"},
    {"headers": {"x-death": death_record("per_image")}, "timestamp": 0},
    {"message_id": "é-ü", "expiration": "0"},
]  # fmt: skip


@pytest.mark.parametrize("properties", CASES)
@pytest.mark.parametrize("body", [b"", b"{}", b"x" * 700, "\u00e9\u4e2d".encode() * 50_000])
@pytest.mark.parametrize(
    ("exchange", "key", "mandatory"), [("", "per_image", True), ("transient.status", "", False)]
)
def test_the_frames_of_a_publish_are_pikas(
    properties: dict[str, Any], body: bytes, exchange: str, key: str, mandatory: bool
) -> None:
    ours = publish_frames(3, 131064, exchange, key, mandatory, body, **properties)
    assert ours == pikas(3, 131064, exchange, key, mandatory, body, **properties)


def test_a_long_body_is_split_into_frames_of_the_negotiated_size() -> None:
    body = bytes(range(256)) * 100
    ours = publish_frames(1, 1000, "", "q", True, body, delivery_mode=2)
    assert ours == pikas(1, 1000, "", "q", True, body, delivery_mode=2)
    assert ours.count(b"\x03\x00\x01") >= 26  # 26 body frames


def test_a_name_longer_than_an_amqp_short_string_is_refused_with_a_hint() -> None:
    with pytest.raises(TransportError) as caught:
        publish_frames(1, 1000, "", "q" * 256, True, b"{}")
    assert "255" in caught.value.message and caught.value.hint


def test_dates_in_headers_encode_as_pika_does() -> None:
    when = datetime.datetime(2026, 11, 30, 6, 0, tzinfo=datetime.UTC)
    headers = {"time": when}
    assert publish_frames(1, 1000, "", "q", True, b"{}", headers=headers) == pikas(
        1, 1000, "", "q", True, b"{}", headers=headers
    )


@given(
    st.dictionaries(
        st.text(max_size=30),
        st.text(max_size=40) | st.booleans() | st.integers(-(2**63), 2**63 - 1),
        max_size=6,
    )
)
def test_a_headers_table_of_text_and_booleans_is_encoded_as_pika_does(
    headers: dict[str, Any],
) -> None:
    # ours encodes text and booleans (what our messages carry), pika's encoder the rest
    ours = publish_frames(1, 131064, "", "q", True, b"{}", headers=headers, delivery_mode=2)
    assert ours == pikas(1, 131064, "", "q", True, b"{}", headers=headers, delivery_mode=2)


def test_a_header_name_past_255_bytes_is_refused_as_pika_refuses_it() -> None:
    with pytest.raises(pika.exceptions.ShortStringTooLong):
        publish_frames(1, 1000, "", "q", True, b"{}", headers={"é" * 128: "x"})
