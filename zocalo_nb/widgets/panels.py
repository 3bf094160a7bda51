"""Widgets that watch and act: a run monitor, a dead-letter browser, a services panel.

Widget state is touched only on the kernel's main thread: a refresh reads the taps' buffers
(or the broker) and sets widget values from the caller (a cell, a button click) or from the
monitor's task on the kernel's event loop; transport threads never touch a widget.
"""

from __future__ import annotations

import asyncio
import threading
from html import escape
from typing import Any

from zocalo_nb.errors import MissingExtra, ZocaloNbError

try:
    import ipywidgets as w
except ImportError as error:  # an optional part: say which pip install brings it
    raise MissingExtra("widgets", error.name) from error

from zocalo_nb import dlq
from zocalo_nb.monitor import Run, Tap
from zocalo_nb.states import StepState
from zocalo_nb.transport import Transport
from zocalo_nb.widgets.common import (
    Confirm,
    frame_html,
    graph_html,
    human_time,
    message,
    parse_json,
)

EVENT_COLUMNS = ["time", "step", "state", "service", "error"]
DEAD_COLUMNS = ["time", "run", "step", "service", "error_type", "error", "attempts"]


class RunMonitor(w.VBox):  # type: ignore[misc]
    """A run's coloured graph, progress and events, refreshed until it finishes.

    The refreshing runs as a task on the kernel's event loop, so it only ever runs on the
    main thread, between cells: while a cell blocks (``run.wait()``) the monitor catches up
    when the cell ends. Outside a kernel (no running event loop) call :meth:`refresh`.
    """

    def __init__(self, run: Run, *, interval: float = 0.5, auto: bool = True) -> None:
        self.run, self.interval = run, interval
        self.title = w.HTML()
        self.progress = w.IntProgress(min=0, max=1, value=0, description="steps")
        self.graph = w.HTML()
        self.events = w.HTML()
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self._stopped = False
        self._task: asyncio.Task[None] | None = None
        self._owner = threading.get_ident()
        super().__init__([self.title, w.HBox([self.progress, self.refresh_button]),
                          self.graph, self.events])  # fmt: skip
        self.refresh()
        if auto:
            self.start()

    def refresh(self) -> bool:
        """Update from the run's events; returns True once the run finished."""
        if threading.get_ident() != self._owner:
            raise RuntimeError(
                "RunMonitor.refresh() called from another thread; widget state is changed "
                "only on the thread that made the widget (the kernel's main thread)"
            )
        state = self.run._state()
        self.title.value = f"<b>{escape(repr(self.run))}</b>"
        self.progress.max = max(sum(state.sends.values()), 1)
        self.progress.value = min(sum(state.done.values()), self.progress.max)
        self.progress.bar_style = "success" if state.finished else "info"
        if any(s is StepState.DEAD_LETTERED for s in state.states().values()):
            self.progress.bar_style = "danger"
        try:
            self.graph.value = graph_html(self.run.graph()._repr_mimebundle_())
        except ZocaloNbError as err:
            self.graph.value = message("info", str(err))
        self.events.value = frame_html(self.run.events(), EVENT_COLUMNS, "no events yet")
        return state.finished

    def start(self) -> None:
        """Refresh every ``interval`` seconds on the running event loop (the kernel's) until
        the run finishes; does nothing where no event loop runs."""
        if self._task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._stopped = False
        self._task = loop.create_task(self._poll())

    def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _poll(self) -> None:
        while not self._stopped:
            await asyncio.sleep(self.interval)
            if self.refresh():
                return


class DeadLetterBrowser(w.VBox):  # type: ignore[misc]
    """The namespace's dead letters: select rows, group by a column, reinject (with
    edited step parameters) or purge to files, each after a second click to confirm."""

    def __init__(self, transport: Transport, *, location: str = "DLQ") -> None:
        self.transport = transport
        self.frame: Any = None
        self.rows = w.SelectMultiple(description="dead", rows=8, layout=w.Layout(width="95%"))
        self.group = w.Dropdown(
            description="group by", options=["(none)", "error_type", "service", "step", "run"]
        )
        self.table = w.HTML()
        self.parameters = w.Text(description="parameters", placeholder='{"threshold": 3}')
        self.location = w.Text(description="purge to", value=location)
        self.reload = w.Button(description="Refresh", icon="refresh")
        self.reinject = Confirm("Reinject", self._reinject, ready=self._nothing_selected)
        self.purge = Confirm("Purge", self._purge, ready=self._nothing_selected)
        self.status = w.HTML()
        self.reload.on_click(lambda _: self.refresh())
        self.group.observe(lambda _: self._show(), names="value")
        super().__init__([
            w.HBox([self.reload, self.group]), self.rows, self.table,
            w.HBox([self.parameters, self.reinject.button]),
            w.HBox([self.location, self.purge.button]), self.status,
        ])  # fmt: skip
        self.refresh()

    def refresh(self) -> None:
        self.frame = dlq.frame(self.transport)
        self.rows.options = [
            (f"{human_time(r.time)}  run {str(r.run or '?')[:8]}  step {r.step}  {r.service}: "
             f"{r.error_type or r.reason}", i)
            for i, r in enumerate(self.frame.itertuples())
        ]  # fmt: skip
        self._show()

    def selected(self) -> Any:
        return self.frame.iloc[list(self.rows.value)]

    def _nothing_selected(self) -> str | None:
        """Why Reinject/Purge cannot act (said at the first click, before any confirm)."""
        if not self.rows.value:
            self.status.value = message("error", "select dead letters first")
            return "nothing selected"
        return None

    def _show(self) -> None:
        frame = self.frame
        if self.group.value != "(none)" and frame is not None and len(frame):
            counts = frame.groupby(self.group.value, observed=True).size().rename("dead letters")
            self.table.value = frame_html(counts.reset_index())
        else:
            self.table.value = frame_html(frame, DEAD_COLUMNS, "no dead letters")

    def _reinject(self) -> None:
        self._act(lambda rows: dlq.reinject(
            self.transport, rows,
            parameters=parse_json(self.parameters.value, "parameters", None),
        ), "reinjected")  # fmt: skip

    def _purge(self) -> None:
        self._act(lambda rows: dlq.purge(self.transport, rows, location=self.location.value),
                  f"purged to {self.location.value}")  # fmt: skip

    def _act(self, action: Any, verb: str) -> None:
        rows = self.selected()
        if not len(rows):
            self.status.value = message("error", "select dead letters first")
            return
        try:
            done = action(rows)
        except ZocaloNbError as err:
            self.status.value = message("error", str(err))
            return
        self.status.value = message("ok", f"{len(done)} dead letter(s) {verb}")
        self.refresh()


class ServicesPanel(w.VBox):  # type: ignore[misc]
    """Service processes (from their status broadcasts) and queues, as tables."""

    def __init__(self, transport: Transport, queues: list[str] | None = None) -> None:
        self.tap = Tap.for_transport(transport)
        self.queue_names = queues
        self.services = w.HTML()
        self.queues = w.HTML()
        self.reload = w.Button(description="Refresh", icon="refresh")
        self.reload.on_click(lambda _: self.refresh())
        super().__init__([self.reload, w.HTML("<b>services</b>"), self.services,
                          w.HTML("<b>queues</b>"), self.queues])  # fmt: skip
        self.refresh()

    def refresh(self, wait: float = 0.5) -> None:
        """Ask the runners to report now (waiting ``wait`` seconds for them), then show."""
        self.tap.request_status(wait)
        services = self.tap.services()
        columns = ["service", "host", "statustext", "alive", "last_seen", "busy"]
        self.services.value = frame_html(services, columns, "no service has reported yet")
        self.queues.value = frame_html(self.tap.queues(self.queue_names), None, "no queues seen")
