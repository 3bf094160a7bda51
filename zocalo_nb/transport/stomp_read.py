"""Reading STOMP frames off the socket quicker than stomp.py does, for the frames it hands on.

stomp.py's receiver spent about four fifths of a forwarding service's Python time on a
STOMP broker (py-spy, 2026-11-30): it parses every header line with a regular expression and
two ``re.sub`` calls, slices its receive buffer once per frame (a copy of all that follows),
and sorts its listeners twice per MESSAGE. :class:`QuickReader` keeps stomp.py's connection,
heart-beats, receipts and listener calls, and replaces only that inner loop:

- :func:`take_frames` splits a buffer into whole frames in one pass (``content-length``
  bodies may hold NUL), parses header lines with ``str.partition`` and unescapes only lines
  that hold a backslash;
- MESSAGE frames reach the listeners' ``on_before_message`` / ``on_message`` through a list of
  bound methods made once per change of listeners; every other frame goes through stomp.py's
  own ``process_frame`` (receipts, CONNECTED, ERROR have side effects there).

What it hands on is what stomp.py's parser makes of the same bytes (a test compares them,
split at every byte). It is used only where the installed stomp.py has the receive loop it
replaces (``_BaseTransport__read_frames``); elsewhere stomp.py reads as before.
"""

from __future__ import annotations

import errno
import functools
import ssl
from typing import Any

import stomp.exception
import stomp.transport
from stomp.utils import HEARTBEAT_FRAME, Frame

#: One read's worth: a batch of prefetched messages comes in a few reads, not one per frame.
RECV_BYTES = 65536
LENGTH = "content-length"


def _unescape(text: str) -> str:
    """STOMP 1.2 header unescaping (``\\\\``, ``\\c``, ``\\n``, ``\\r``); an unknown escape
    is kept as it is, as stomp.py keeps it."""
    if "\\\\" in text:  # an escaped backslash: the others are read between them
        return "\\".join(_unescape(part) for part in text.split("\\\\"))
    return text.replace("\\c", ":").replace("\\n", "\n").replace("\\r", "\r")


def parse_preamble(preamble: bytes) -> tuple[str, dict[str, str]] | None:
    """The command and headers of a frame's preamble, as stomp.py's ``parse_frame`` reads them
    (the first value of a repeated header wins), or None for a preamble of blank lines."""
    lines = preamble.decode("utf-8", "replace").split("\n")
    first = 0
    while first < len(lines) and lines[first] in ("", "\r"):
        first += 1
    if first == len(lines):
        return None
    command = lines[first].removesuffix("\r")
    headers: dict[str, str] = {}
    for line in lines[first + 1 :]:
        key, colon, value = line.partition(":")
        if not colon or not key:
            continue
        if value.endswith("\r"):  # a CRLF line end (an escaped CR is "\\r" still)
            value = value[:-1]
        if "\\" in line:
            key, value = _unescape(key), _unescape(value)
        if key not in headers:
            headers[key] = value
    return command, headers


def _blank_line(buffer: bytes, start: int, end: int) -> tuple[int, int] | None:
    """Where the first blank line (``\\n\\n`` or ``\\r\\n\\r\\n``) in ``buffer[start:end]``
    begins and ends."""
    lf = buffer.find(b"\n\n", start, end)
    crlf = buffer.find(b"\r\n\r\n", start, end if lf == -1 else lf)
    if crlf != -1:
        return crlf, crlf + 4
    return (lf, lf + 2) if lf != -1 else None


def take_frames(buffer: bytes) -> tuple[list[tuple[str, dict[str, str], bytes]], bytes]:
    """The whole frames at the start of ``buffer`` and what is left of it (a frame not yet
    whole). A frame is ``(command, headers, body)``; a ``content-length`` body may hold NUL
    bytes. End-of-line bytes between frames are skipped (heart-beats: see QuickReader)."""
    frames: list[tuple[str, dict[str, str], bytes]] = []
    size, at = len(buffer), 0
    while at < size:
        if buffer[at] in b"\r\n":
            at += 1
            continue
        nul = buffer.find(b"\x00", at)
        blank = _blank_line(buffer, at, size if nul == -1 else nul)
        if blank is None:
            if nul == -1:
                break  # not whole yet
            # No blank line before the NUL: all preamble, no body (as stomp.py reads it).
            parsed = parse_preamble(buffer[at:nul])
            if parsed is not None:
                frames.append((*parsed, b""))
            at = _after(buffer, nul + 1)
            continue
        parsed = parse_preamble(buffer[at : blank[0]])
        length = parsed[1].get(LENGTH) if parsed is not None else None
        if length is not None and length.strip().isdigit():
            body_end = blank[1] + int(length)
            if body_end >= size:
                break  # the body, or the NUL after it, has not arrived
        elif nul == -1:
            break
        else:
            body_end = nul
        if parsed is not None:
            frames.append((*parsed, buffer[blank[1] : body_end]))
        at = _after(buffer, body_end + 1)
    return frames, buffer[at:]


def needed(rest: bytes) -> int:
    """The size ``rest`` (the start of one frame) must reach to be whole, where its headers are
    in and name a ``content-length``; 0 where that is not known yet."""
    nul = rest.find(b"\x00")
    blank = _blank_line(rest, 0, len(rest) if nul == -1 else nul)
    if blank is None:
        return 0
    parsed = parse_preamble(rest[: blank[0]])
    length = parsed[1].get(LENGTH, "") if parsed is not None else ""
    return blank[1] + int(length) + 1 if length.strip().isdigit() else 0


def _after(buffer: bytes, at: int) -> int:
    """Past the end-of-line bytes that may follow a frame's NUL."""
    while buffer[at : at + 1] == b"\n" or buffer[at : at + 2] == b"\r\n":
        at += 1 if buffer[at : at + 1] == b"\n" else 2
    return at


class QuickReader(stomp.transport.Transport):  # type: ignore[misc]
    """stomp.py's Transport with the quicker receive loop (see module docstring). Adopted by
    changing the class of the Transport a stomp.py Connection made (:func:`adopt`), so every
    other part of it stays stomp.py's own."""

    #: The start of a frame not yet whole: its reads, their size, and the size that makes
    #: it whole where its content-length tells (0: it is whole once a NUL arrives).
    _quick_held: list[bytes]
    _quick_size: int
    _quick_need: int
    _quick_decode: bool
    #: The listeners' on_before_message and on_message, in name order (None: to be made).
    _quick_calls: list[Any] | None

    def _BaseTransport__read_frames(self) -> None:
        data = self._quick_receive()
        if data is None:
            return
        if not self._quick_held and not data.strip(b"\r\n"):
            # Ends of line alone, where a frame could start: a heart-beat (stomp.py counts a
            # read of exactly one; two that arrive together count here too).
            self.process_frame(HEARTBEAT_FRAME, data)
            return
        if self._quick_held:  # the rest of a frame: parse again only once it can be whole
            self._quick_held.append(data)
            self._quick_size += len(data)
            if self._quick_size < self._quick_need or (
                not self._quick_need and b"\x00" not in data
            ):
                return  # (joining every read to the rest was quadratic in a large frame)
            data = b"".join(self._quick_held)
        frames, rest = take_frames(data)
        self._quick_held = [rest] if rest else []
        self._quick_size, self._quick_need = len(rest), needed(rest)
        for command, headers, raw in frames:
            frame = Frame(
                command, headers, raw.decode("utf-8", "replace") if self._quick_decode else raw
            )
            if command == "MESSAGE":
                for call in self._quick_calls or self._quick_index():
                    call(frame)
            else:
                self.process_frame(frame, raw)

    def _quick_receive(self) -> bytes | None:
        """One read, with stomp.py's handling of its errors (None: nothing to read now)."""
        if not self.running:
            return None
        try:
            data: bytes = self.socket.recv(RECV_BYTES)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return None
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EINTR):
                return None
            data = b""
        except Exception:  # e.g. the socket closed by another thread: a closed connection
            data = b""
        if data:
            return data
        if not self.blocking:
            return None
        self._quick_held = []
        raise stomp.exception.ConnectionClosedException()

    def _quick_index(self) -> list[Any]:
        """What ``process_frame`` calls for a MESSAGE: every listener's
        ``on_before_message``, then every listener's ``on_message``, in name order."""
        with self._BaseTransport__listeners_change_condition:
            ordered = [listener for _, listener in sorted(self.listeners.items())]
        calls = [v.on_before_message for v in ordered if hasattr(v, "on_before_message")]
        calls += [v.on_message for v in ordered if hasattr(v, "on_message")]
        self._quick_calls = calls
        return calls

    def set_listener(self, name: str, listener: Any) -> None:
        super().set_listener(name, listener)
        self._quick_calls = None

    def remove_listener(self, name: str) -> None:
        super().remove_listener(name)
        self._quick_calls = None


def adopt(connection: Any) -> bool:
    """Give a new (not yet connected) stomp.py Connection the quicker receive loop; False,
    changing nothing, where the installed stomp.py has no such loop to replace."""
    transport: Any = getattr(connection, "transport", None)
    if type(transport) is not stomp.transport.Transport or not _replaceable():
        return False
    transport.__class__ = QuickReader
    transport._quick_held, transport._quick_size, transport._quick_need = [], 0, 0
    transport._quick_calls = None
    transport._quick_decode = bool(transport._BaseTransport__auto_decode)  # as stomp.py decodes
    return True


@functools.cache
def _replaceable() -> bool:
    names = ("_BaseTransport__read_frames", "_BaseTransport__listeners_change_condition")
    base = stomp.transport.BaseTransport
    probe = base.__new__(base)
    try:
        base.__init__(probe)
    except Exception:
        return False
    return (
        hasattr(base, names[0])
        and hasattr(probe, names[1])
        and hasattr(probe, "_BaseTransport__auto_decode")
    )
