"""Upstream's dead-letter files (``zocalo.dlq_purge`` / ``zocalo.dlq_reinject``).

One JSON file per message (``indent=2, sort_keys=True``)::

    {"exported": {"date": "YYYY-MM-DD", "time": "HH:MM:SS"}, "header": {...}, "message": ...}

at ``<location>/<YYYY-MM-DD>/msg-<YYYYMMDD-HHMMSS>-<ms>-<message-id, unsafe chars as _>``,
named after the message's own broker timestamp and id, so exporting the same message twice
writes the same file (a purge that was interrupted and run again duplicates nothing).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from zocalo_nb.dlq.letters import DeadLetter
from zocalo_nb.errors import DeadLetterError, NotFound
from zocalo_nb.wire.headers import (
    ATTEMPT,
    BROKER_HEADERS,
    DLQ_HEADERS,
    DLQ_REINJECTED,
    REDELIVERIES,
    TIMESTAMP,
    X_DEATH,
)

_UNSAFE = re.compile(r"[^a-zA-Z0-9._-]+", re.UNICODE)


def file_path(letter: DeadLetter, location: str | os.PathLike[str]) -> Path:
    """Where upstream's purge puts ``letter`` under ``location``."""
    stamp = letter.headers.get(TIMESTAMP)
    millis = int(stamp) if stamp and str(stamp).isdigit() else int((letter.time or 0) * 1000)
    local = time.localtime(millis / 1000)
    name = f"msg-{time.strftime('%Y%m%d-%H%M%S', local)}-{millis % 1000:03d}-" + _UNSAFE.sub(
        "_", letter.broker_id
    )
    return Path(location, time.strftime("%Y-%m-%d", local), name)


def export(letter: DeadLetter, location: str | os.PathLike[str], *, sync: bool = True) -> Path:
    """Write ``letter`` in upstream's format (atomically; synced to disk unless ``sync`` is
    False, for callers that sync a batch at once); returns the path."""
    path = file_path(letter, location)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {
        "exported": {"date": time.strftime("%Y-%m-%d"), "time": time.strftime("%H:%M:%S")},
        "header": {k: _structured(k, v) for k, v in letter.headers.items()},
        "message": letter.body,
    }
    partial = path.with_name(path.name + ".part")
    with partial.open("w") as handle:
        json.dump(content, handle, indent=2, sort_keys=True)
        handle.flush()
        if sync:
            os.fsync(handle.fileno())
    os.replace(partial, path)
    return path


def _structured(name: str, value: str) -> object:
    """A header as upstream's files hold it: RabbitMQ's ``x-death`` as its list of records
    (upstream's dlq_reinject reads it as one), everything else as text."""
    if name == X_DEATH:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def read(path: str | os.PathLike[str]) -> DeadLetter:
    """A dead letter from one file (ours or upstream's)."""
    try:
        content = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise DeadLetterError(
            f"cannot read dead-letter file {path}: {err}",
            path=str(path),
            hint="files come from 'zocalo-nb dlq purge' or upstream's zocalo.dlq_purge",
        ) from err
    if not isinstance(content, dict) or not isinstance(content.get("header"), dict):
        raise DeadLetterError(
            f"{path} is not a dead-letter file (no 'header' object)",
            path=str(path),
            hint="expected {'exported': ..., 'header': {...}, 'message': ...}",
        )
    header = {
        str(k): json.dumps(v) if isinstance(v, list | dict) else str(v)
        for k, v in content["header"].items()
    }
    letter = DeadLetter("", header, content.get("message"), str(path))
    if not letter.destination:
        raise DeadLetterError(
            f"{path} does not say where its message was going",
            path=str(path),
            hint="its header needs 'original-destination' or 'destination' (ActiveMQ), "
            "or an 'x-death' record naming the queue (RabbitMQ)",
        )
    return letter


def find(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Dead-letter files among ``paths``: files as given, folders searched for ``msg-*``.

    Lines of purge output are accepted too (ours: one path per line; upstream's: indented)."""
    for item in paths:
        text = str(item).strip()
        if not text:
            continue
        path = Path(text)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("msg-*") if not p.name.endswith(".part"))
        elif path.is_file():
            yield path
        else:
            raise NotFound(
                f"no such dead-letter file: {text}", hint="check the path", what="file", key=text
            )


def reinject_headers(letter: DeadLetter) -> dict[str, str]:
    """The headers a reinjected message carries: upstream's rule (broker headers dropped,
    ``dlq-reinjected: True``), and our dead-letter notes and counters dropped, so it starts
    afresh."""
    # BROKER_HEADERS holds every header upstream's reinject drops, and more broker-owned ones
    dropped = {*BROKER_HEADERS, *DLQ_HEADERS, ATTEMPT, REDELIVERIES}
    headers = {k: v for k, v in letter.headers.items() if k not in dropped}
    headers[DLQ_REINJECTED] = "True"
    return headers
