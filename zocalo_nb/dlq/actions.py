"""Acting on dead letters: reinject or purge selected rows, and reinject files.

Moving a message out of a DLQ happens in one transaction with what replaces it (its send to
the original destination, or nothing once its file is on disk), so it is never lost and
never doubled. The work runs on a connection of its own; messages not selected are handed
back untouched when it closes, and so are all the others if the process is killed.
"""

from __future__ import annotations

import logging
import os
import queue as queue_module
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd

from zocalo_nb.dlq import files, guard
from zocalo_nb.dlq.letters import DeadLetter, letters_frame
from zocalo_nb.errors import DeadLetterError, InvalidArgument
from zocalo_nb.transport import Message, Prepared, Transport
from zocalo_nb.wire.headers import BROKER_MESSAGE_ID, MESSAGE_ID

log = logging.getLogger(__name__)
#: Rows of :func:`frame` (a DataFrame), DeadLetters, or None for everything.
Selection: TypeAlias = "pd.DataFrame | Iterable[DeadLetter] | None"
#: A new value, or a function of the DeadLetter giving one.
Edit: TypeAlias = Any
#: Seconds without a new message after which a DLQ is taken to be fully delivered to us.
IDLE = 2.0
#: In a selection: every message of that DLQ.
EVERYTHING = None


def dead_letters(transport: Transport, queues: Iterable[str] | None = None) -> list[DeadLetter]:
    """Every message waiting in the given DLQs (default: all ``DLQ.<prefix>.*`` queues of the
    transport's namespace), left in place."""
    names = list(queues) if queues is not None else _dlq_names(transport)
    return [DeadLetter.from_message(m) for name in names for m in transport.browse(name)]


def frame(
    transport: Transport | None = None,
    *,
    queues: Iterable[str] | None = None,
    paths: Iterable[str | os.PathLike[str]] = (),
) -> pd.DataFrame:
    """Dead letters as a DataFrame: from the live broker and/or from dead-letter files."""
    letters = dead_letters(transport, queues) if transport is not None else []
    letters += [files.read(path) for path in files.find(paths)]
    return letters_frame(letters)


def counts(transport: Transport) -> dict[str, int]:
    """Messages waiting per DLQ of the transport's namespace."""
    return {s.queue: s.depth for s in transport.dead_letter_queues()}


def reinject(
    transport: Transport,
    rows: Selection = None,
    *,
    payload: Edit = None,
    parameters: Mapping[str, Any] | None = None,
    rate: float | None = None,
    batch: int = 50,
    progress: bool = False,
    allow_namespace: bool = False,
) -> list[str]:
    """Move the selected dead letters back to their original destinations (the whole DLQs
    of the namespace without ``rows``), optionally with an edited ``payload`` (a value, or a
    function of the DeadLetter) or step ``parameters`` (merged into the recipe step), marked
    ``dlq-reinjected``, at most ``rate`` per second. Returns the message ids moved.

    A letter whose destination (or recipe) lies outside the transport's namespace stays in
    its DLQ, unless ``allow_namespace``."""

    def prepare(dlq: Transport, letter: DeadLetter) -> Prepared:
        return _prepared(dlq, letter, payload, parameters, allow_namespace)

    def move(dlq: Transport, prepared: list[Prepared], tx: str) -> None:
        for item in prepared:
            dlq.send_prepared(item, transaction=tx)

    return take(
        transport, rows, prepare, move, rate=rate, batch=batch, progress=progress, verb="reinject"
    )


def purge(
    transport: Transport,
    rows: Selection = None,
    *,
    location: str | os.PathLike[str] = "DLQ",
    rate: float | None = None,
    batch: int = 50,
    progress: bool = False,
) -> list[Path]:
    """Export the selected dead letters to upstream's files under ``location``, then remove
    them from their DLQs. Returns the files written (what ``reinject_files`` reads)."""
    written: list[Path] = []

    def export(dlq: Transport, letter: DeadLetter) -> Path:
        return files.export(letter, location, sync=False)

    def synced(dlq: Transport, paths: list[Path], tx: str) -> None:
        os.sync()  # on disk before the transaction removes them from the broker
        written.extend(paths)

    take(transport, rows, export, synced, rate=rate, batch=batch, progress=progress, verb="purge")
    return written


def reinject_files(
    transport: Transport,
    paths: Iterable[str | os.PathLike[str]],
    *,
    remove: bool = False,
    wait: float | None = None,
    payload: Edit = None,
    parameters: Mapping[str, Any] | None = None,
    batch: int = 50,
    allow_namespace: bool = False,
) -> list[Path]:
    """Send the messages in dead-letter files (ours or upstream's; folders and purge output
    lines accepted) to their original destinations; ``remove`` deletes each file once the
    broker confirmed its message. Returns the files sent.

    A file's message is sent at least once: if the process dies between the broker's
    confirmation and the file's removal, running again sends it again (with the same
    ``zocalo-nb-id``, so receivers can tell)."""
    sent: list[Path] = []
    found = list(files.find(paths))
    size = 1 if wait else batch
    for start in range(0, len(found), size):
        if start and wait:
            time.sleep(wait)
        chunk, ready = [], []
        for path in found[start : start + size]:
            try:  # a file that cannot be sent as it is stays where it is
                ready.append(
                    _prepared(transport, files.read(path), payload, parameters, allow_namespace)
                )
                chunk.append(path)
            except OSError:
                raise
            except Exception as err:
                log.warning("dead-letter file %s not reinjected: %s", path, err)
        if not ready:
            continue
        with transport.transaction(confirm=True) as tx:
            for item in ready:
                transport.send_prepared(item, transaction=tx)
        if remove:
            for path in chunk:
                path.unlink()
        sent += chunk
    return sent


# -- the move --------------------------------------------------------------------------------
class _Restart(Exception):
    """A letter that cannot be acted on, met while acks are cumulative: start again with
    individual acks, so that it can be left behind; ``done`` were moved before it."""

    def __init__(self, done: list[str]) -> None:
        super().__init__(f"{len(done)} moved before a bad letter")
        self.done = done


def take(
    transport: Transport,
    rows: Selection,
    prepare: Callable[[Transport, DeadLetter], Any],
    act: Callable[[Transport, list[Any], str], None],
    *,
    verb: str,
    rate: float | None = None,
    batch: int = 50,
    progress: bool = False,
) -> list[Any]:
    """Consume the selected messages from their DLQs: ``prepare`` each (outside any
    transaction), then ``act`` on what was prepared in the transaction that acks them
    (``batch`` per transaction, confirmed by the broker). A letter ``prepare`` fails on is
    reported and left in its DLQ; the others move on."""
    wanted = _wanted(transport, rows)
    if rate is not None:
        if rate <= 0:
            raise InvalidArgument(
                f"rate must be positive, not {rate}",
                hint="e.g. rate=10 (per s)",
                name="rate",
                value=rate,
            )
        batch = 1
    total = sum(len(ids) if ids is not None else _depth(transport, q) for q, ids in wanted.items())
    bar = _bar(total, verb) if progress else None
    done: list[str] = []
    skipped: set[str] = set()
    for dlq_name, ids in wanted.items():
        cumulative = ids is None
        while True:
            dlq = transport.sibling()
            try:
                done += _take_from(
                    dlq, dlq_name, ids, (prepare, act), batch, rate, bar, skipped, cumulative
                )
                break
            except _Restart as restart:
                done += restart.done
                cumulative = False
            finally:
                dlq.close()  # what was not taken goes back, untouched
    if bar is not None:
        bar.close()
    if skipped:
        log.warning(
            "%d dead letter(s) could not be moved (%s) and stay in their DLQ", len(skipped), verb
        )
    missing = sum(len(ids) for ids in wanted.values() if ids is not None) - len(done)
    missing -= len(skipped)
    if missing > 0 and all(ids is not None for ids in wanted.values()):
        log.warning("%d selected dead letter(s) were no longer there", missing)
    return done


def _take_from(
    dlq: Transport,
    name: str,
    ids: set[str] | None,
    steps: tuple[
        Callable[[Transport, DeadLetter], Any], Callable[[Transport, list[Any], str], None]
    ],
    batch: int,
    rate: float | None,
    bar: Any,
    skipped: set[str],
    cumulative: bool,
) -> list[str]:
    prepare, act = steps
    inbox: queue_module.Queue[Message] = queue_module.Queue()
    depth = dlq.statistics(name).depth
    everything = ids is None
    # Taking every message in order, an ack may cover the ones before it (cheaper commits
    # on ActiveMQ); a selection skips some, so its acks are one by one.
    mode: Any = "cumulative" if cumulative else "client"
    dlq.subscribe(name, inbox.put, ack=mode, prefetch=depth + 100)
    left: set[str] = set(ids or ()) - skipped
    done: list[str] = []
    ready: list[tuple[DeadLetter, Any]] = []
    taken = 0
    # Everything: the messages there when we started (later ones wait for the next run).
    while (everything and taken < depth) or left:
        try:
            message = inbox.get(timeout=IDLE)
        except queue_module.Empty:
            break
        taken += 1
        letter = _letter(message)
        if letter is None and cumulative:  # a later ack would take it: restart, one by one
            raise _Restart(done + (_commit(dlq, ready, act, bar) if ready else []))
        if letter is None or letter.message_id in skipped:
            continue  # a bad letter: handed back when the connection closes
        if not everything:
            if letter.message_id not in left:
                continue  # not selected: handed back when the connection closes
            left.discard(letter.message_id)
        try:
            ready.append((letter, prepare(dlq, letter)))
        except OSError:
            raise  # the machine's trouble (a full disk), not the letter's: stop here
        except Exception as err:
            skipped.add(letter.message_id)
            log.warning("dead letter %s left in %s: %s", letter.message_id, name, err)
            if cumulative:  # a later ack would take it too: commit what is ready, restart
                raise _Restart(done + (_commit(dlq, ready, act, bar) if ready else [])) from err
            continue
        finished = taken >= depth if everything else not left
        if len(ready) >= batch or finished or inbox.empty():
            done += _commit(dlq, ready, act, bar)
            ready = []
            if rate is not None:
                time.sleep(1.0 / rate)
    if ready:
        done += _commit(dlq, ready, act, bar)
    return done


def _letter(message: Message) -> DeadLetter | None:
    try:
        return DeadLetter.from_message(message)
    except Exception:
        log.exception("unreadable dead letter %s", message.headers.get(BROKER_MESSAGE_ID))
        return None


def _commit(
    dlq: Transport,
    ready: list[tuple[DeadLetter, Any]],
    act: Callable[[Transport, list[Any], str], None],
    bar: Any,
) -> list[str]:
    with dlq.transaction(confirm=True) as tx:
        act(dlq, [prepared for _, prepared in ready], tx)
        for letter, _ in ready:
            assert letter.message is not None
            dlq.ack(letter.message, transaction=tx)
    if bar is not None:
        bar.update(len(ready))
    return [letter.message_id for letter, _ in ready]


def _wanted(transport: Transport, rows: Selection) -> dict[str, set[str] | None]:
    """{DLQ name: message ids} for the selection (everything in the namespace's DLQs when
    ``rows`` is None)."""
    if rows is None:  # everything: no need to browse first
        return {name: EVERYTHING for name in _dlq_names(transport)}
    if isinstance(rows, pd.DataFrame):
        missing = {"queue", "message_id"} - set(rows.columns)
        if missing:
            raise InvalidArgument(
                f"the rows lack the column(s) {sorted(missing)}",
                name="rows",
                hint="select rows of zocalo_nb.dlq.frame(...)",
            )
        letters = [
            DeadLetter(str(q), {MESSAGE_ID: str(i)}, None)
            for q, i in zip(rows["queue"], rows["message_id"], strict=True)
        ]
    else:
        letters = list(rows)
    wanted: dict[str, set[str] | None] = {}
    for letter in letters:
        if not letter.queue:
            raise DeadLetterError(
                f"dead letter {letter.message_id} comes from {letter.source}, not from a DLQ",
                message_id=letter.message_id,
                path=letter.source,
                hint="reinject files with reinject_files(...)",
            )
        ids = wanted.setdefault(str(letter.queue), set())
        assert ids is not None
        ids.add(letter.message_id)
    return wanted


def _depth(transport: Transport, queue: str) -> int:
    return transport.statistics(queue).depth


def _dlq_names(transport: Transport) -> list[str]:
    return [s.queue for s in transport.dead_letter_queues() if s.depth > 0]


def _prepared(
    transport: Transport,
    letter: DeadLetter,
    payload: Edit,
    parameters: Mapping[str, Any] | None,
    allow_namespace: bool,
) -> Prepared:
    """The reinjected message, checked: destination, namespace, edit, headers, encoding
    (header names that could end a STOMP header line are refused here)."""
    destination = _destination(letter)
    body = edited_body(letter, payload, parameters)
    guard.check(
        transport,
        guard.destinations(destination, body),
        allow=allow_namespace,
        action=f"reinjecting {letter.message_id}",
    )
    kind: Any = "queue" if destination.startswith("/queue/") else "topic"
    return transport.prepare(kind, destination, body, files.reinject_headers(letter))


def _destination(letter: DeadLetter) -> str:
    destination = letter.destination
    if not destination.startswith(("/queue/", "/topic/")):
        raise DeadLetterError(
            f"dead letter {letter.message_id} has no usable destination ({destination!r})",
            message_id=letter.message_id,
            queue=letter.queue or None,
            hint="its headers need original-destination: /queue/<name> or /topic/<name>",
        )
    return destination


def edited_body(letter: DeadLetter, payload: Edit, parameters: Mapping[str, Any] | None) -> Any:
    """The body to send: with the payload replaced and/or step parameters merged."""
    body = letter.body
    if payload is None and not parameters:
        return body
    new = payload(letter) if callable(payload) else payload
    if letter.recipe_message is None:
        if parameters:
            raise DeadLetterError(
                f"dead letter {letter.message_id} is not a recipe message",
                message_id=letter.message_id,
                queue=letter.queue or None,
                hint="parameters= edits a recipe step; use payload= for other messages",
            )
        return new
    body = {**body}
    if payload is not None:
        body["payload"] = new
    if parameters:
        step = str(body["recipe-pointer"])
        recipe = {**body.get("recipe", {})}
        entry = {**recipe.get(step, {})}
        entry["parameters"] = {**(entry.get("parameters") or {}), **parameters}
        recipe[step] = entry
        body["recipe"] = recipe
    return body


def _bar(total: int, verb: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"dlq {verb}", unit="msg")
