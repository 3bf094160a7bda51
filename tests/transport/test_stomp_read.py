"""Our STOMP receive loop (stomp_read) against stomp.py's own: the same frames out of the same
bytes, however the bytes are split between reads; and in use on a live connection."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
import stomp.exception
import stomp.transport
from hypothesis import given, settings
from hypothesis import strategies as st
from stomp.utils import parse_frame

from zocalo_nb.transport import stomp_read, stomp_tx
from zocalo_nb.transport.stomp_read import QuickReader, take_frames

# Header text with every character STOMP escapes, and some it does not.
_TEXT = st.lists(st.sampled_from([*'ab:\\\n\r-_ é{}"', "ID:x-1:2"]), max_size=8).map("".join)
_NAMES = st.text(alphabet=st.sampled_from(list("abc-:\\\n\r")), min_size=1, max_size=8)
_BODY = st.lists(st.sampled_from([*'{}":, abcé\n\x00', "x" * 50]), max_size=30).map("".join)


def _stomp_py_frames(data: bytes, chunks: list[bytes]) -> list[tuple[str, dict[str, str], str]]:
    """What stomp.py's receive loop hands its listeners for ``chunks`` read one by one."""
    transport = stomp.transport.BaseTransport()
    transport.running = True
    reads = iter(chunks)
    transport.receive = lambda: next(reads, b"")  # type: ignore[method-assign]
    out: list[tuple[str, dict[str, str], str]] = []
    while True:
        try:
            raw = transport._BaseTransport__read()  # type: ignore[attr-defined]
        except stomp.exception.ConnectionClosedException:
            return out
        for item in raw:
            if item == b"\n":  # a heart-beat
                continue
            frame = parse_frame(item)
            if frame is not None:
                out.append((frame.cmd, frame.headers, frame.body.decode("utf-8", "replace")))


def _our_frames(chunks: list[bytes]) -> list[tuple[str, dict[str, str], str]]:
    out: list[tuple[str, dict[str, str], str]] = []
    rest = b""
    for chunk in chunks:
        frames, rest = take_frames(rest + chunk)
        out += [(c, h, body.decode("utf-8", "replace")) for c, h, body in frames]
    assert rest == b"", "every frame was whole by the last read"
    return out


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def _raw(headers: dict[str, str], body: str, length: bool) -> bytes:
    """A MESSAGE as ActiveMQ writes it: names and values escaped, a content-length or not."""
    escape = stomp_tx._ESCAPES
    data = body.encode()
    lines = [
        "MESSAGE",
        *(f"{k.translate(escape)}:{v.translate(escape)}" for k, v in headers.items()),
    ]
    if length:
        lines.append(f"content-length:{len(data)}")
    return ("\n".join(lines) + "\n\n").encode() + data + b"\x00"


@st.composite
def _wire(draw: Any) -> bytes:
    """A few frames: escaped headers, most bodies with a content-length (those may hold NUL),
    a newline after some NULs."""
    data = b""
    for _ in range(draw(st.integers(1, 4))):
        headers = draw(st.dictionaries(_NAMES, _TEXT, max_size=5))
        body = draw(_BODY)
        data += _raw(headers, body, "\x00" in body or draw(st.booleans()))
        data += b"\n" if draw(st.booleans()) else b""
    return data


@settings(max_examples=300, deadline=None)
@given(_wire(), st.lists(st.integers(0, 10_000), max_size=6))
def test_frames_are_parsed_as_stomp_py_parses_them_however_the_reads_fall(
    data: bytes, cuts: list[int]
) -> None:
    chunks = _split(data, cuts)
    whole = _stomp_py_frames(data, [data])
    assert _our_frames(chunks) == whole
    assert _stomp_py_frames(data, chunks) == whole  # (stomp.py too: the test's own check)


def test_every_split_of_a_batch_of_messages_gives_the_same_frames() -> None:
    one = stomp_tx.frame(
        "MESSAGE",
        {"message-id": "ID:host-1:2:3", "destination": "/queue/a", "x": "a\\b\nc"},
        '{"n": 1, "image": "x\x00y"}',
    )
    data = (one + b"\n") * 3 + stomp_tx.frame("RECEIPT", {"receipt-id": "r-1"})
    expected = _stomp_py_frames(data, [data])
    assert [f[0] for f in expected] == ["MESSAGE"] * 3 + ["RECEIPT"]
    assert expected[0][1]["x"] == "a\\b\nc" and expected[0][2] == '{"n": 1, "image": "x\x00y"}'
    for cut in range(1, len(data)):
        assert _our_frames([data[:cut], data[cut:]]) == expected, cut


def test_a_frame_not_yet_whole_is_kept_for_the_next_read() -> None:
    one = stomp_tx.frame("MESSAGE", {"destination": "/queue/a"}, "x\x00y")  # content-length
    for cut in range(1, len(one)):
        frames, rest = take_frames(one[:cut])
        assert frames == [] and rest == one[:cut], cut
    frames, rest = take_frames(one)
    assert frames == [("MESSAGE", {"destination": "/queue/a", "content-length": "3"}, b"x\x00y")]
    assert rest == b""


class _Socket:
    def __init__(self, reads: list[bytes]) -> None:
        self.reads = reads

    def recv(self, size: int) -> bytes:
        return self.reads.pop(0) if self.reads else b""


class _Recorder:
    def __init__(self, name: str, calls: list[tuple[str, str]]) -> None:
        self.name, self.calls = name, calls

    def on_before_message(self, frame: Any) -> None:
        self.calls.append((self.name, "before"))

    def on_message(self, frame: Any) -> None:
        self.calls.append((self.name, frame.body))

    def on_receipt(self, frame: Any) -> None:
        self.calls.append((self.name, "receipt " + frame.headers["receipt-id"]))

    def on_heartbeat(self) -> None:
        self.calls.append((self.name, "heartbeat"))


def test_listeners_are_called_as_stomp_py_calls_them_and_a_closed_socket_ends_the_loop() -> None:
    conn = stomp.Connection12([("127.0.0.1", 1)])
    assert stomp_read.adopt(conn) and isinstance(conn.transport, QuickReader)
    calls: list[tuple[str, str]] = []
    transport = conn.transport
    transport.set_listener("b", _Recorder("b", calls))
    transport.set_listener("a", _Recorder("a", calls))
    message = stomp_tx.frame("MESSAGE", {"destination": "/queue/a"}, "hello")
    receipt = stomp_tx.frame("RECEIPT", {"receipt-id": "r-1"})
    transport.running = True
    transport.socket = _Socket([message[:7], message[7:] + receipt])
    transport._BaseTransport__read_frames()
    assert calls == []
    transport._BaseTransport__read_frames()
    assert calls == [
        ("a", "before"),
        ("b", "before"),
        ("a", "hello"),
        ("b", "hello"),
        ("a", "receipt r-1"),
        ("b", "receipt r-1"),
    ]
    transport.remove_listener("a")
    calls.clear()
    transport.socket = _Socket([message])
    transport._BaseTransport__read_frames()
    assert calls == [("b", "before"), ("b", "hello")]
    with pytest.raises(stomp.exception.ConnectionClosedException):
        transport._BaseTransport__read_frames()


def test_ends_of_line_alone_are_a_heartbeat_and_those_after_a_frame_are_not() -> None:
    conn = stomp.Connection12([("127.0.0.1", 1)])
    assert stomp_read.adopt(conn)
    calls: list[tuple[str, str]] = []
    transport = conn.transport
    transport.set_listener("a", _Recorder("a", calls))
    receipt = stomp_tx.frame("RECEIPT", {"receipt-id": "r-1"})
    transport.running = True
    transport.socket = _Socket([b"\n", receipt + b"\n", receipt, b"\n", b"\r\n\n", receipt[:3]])
    for _ in range(6):
        transport._BaseTransport__read_frames()
    assert [c for _, c in calls] == [
        "heartbeat",
        "receipt r-1",
        "receipt r-1",
        "heartbeat",
        "heartbeat",
    ]
    transport.socket = _Socket([b"\n"])  # inside a frame: part of it, not a heart-beat
    transport._BaseTransport__read_frames()
    assert len(calls) == 5


def test_a_live_connection_reads_with_the_quick_reader(activemq_url: str) -> None:
    from zocalo_nb.config import Settings
    from zocalo_nb.transport.stomp import StompTransport

    got: list[Any] = []
    arrived = threading.Event()
    with StompTransport(Settings.build(activemq_url, prefix="quick")).connect() as t:
        assert isinstance(t._conn.transport, QuickReader)
        t.subscribe("quick.read", lambda m: (got.append(m), arrived.set()), ack="auto")
        t.send("quick.read", {"text": "a\x00b é", "n": [1, 2]}, headers={"odd": "x:y\nz"})
        assert arrived.wait(10)
    assert got[0].body == {"text": "a\x00b é", "n": [1, 2]}
    assert got[0].headers["odd"] == "x:y\nz"


@pytest.mark.parametrize("length", [True, False])
def test_a_large_frame_is_parsed_once_it_is_whole_not_at_every_read(
    length: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Joining every read to the rest of the frame and parsing it again was quadratic: a 4 MB
    # message in 64 KB reads copied about 128 MB.
    body = '{"image": "' + "x" * 4_000_000 + '"}'
    data = _raw({"destination": "/queue/a"}, body, length) + _raw({"n": "2"}, "{}", length)
    conn = stomp.Connection12([("127.0.0.1", 1)])
    assert stomp_read.adopt(conn)
    calls: list[tuple[str, str]] = []
    transport = conn.transport
    transport.set_listener("a", _Recorder("a", calls))
    parsed: list[int] = []
    real = stomp_read.take_frames
    monkeypatch.setattr(stomp_read, "take_frames", lambda b: (parsed.append(len(b)), real(b))[1])
    transport.running = True
    transport.socket = _Socket([data[i : i + 65536] for i in range(0, len(data), 65536)])
    for _ in range(len(transport.socket.reads)):
        transport._BaseTransport__read_frames()
    assert [c for _, c in calls if c != "before"] == [body, "{}"]
    assert len(parsed) <= 3, parsed
