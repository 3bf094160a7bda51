"""A run shown live in the notebook: graph + step table, refreshed from a background thread
(the kernel stays free), until the run finishes or ``stop()``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any

from zocalo_nb.errors import GraphvizMissingError

if TYPE_CHECKING:
    from zocalo_nb.monitor.run import Run


class LiveRun:
    """Keeps one display of ``run`` up to date (see module docstring)."""

    def __init__(
        self,
        run: Run,
        *,
        interval: float = 0.5,
        display: Callable[..., Any] | None = None,
    ) -> None:
        self.run, self.interval = run, interval
        self._display = display
        self._handle: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="zocalo-nb-live")
        self.updates = 0

    def start(self) -> LiveRun:
        show: Callable[..., Any]
        if self._display is not None:
            show = self._display
        else:
            from IPython.display import display as show
        self._handle = show(self._bundle(), raw=True, display_id=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def __enter__(self) -> LiveRun:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            finished = self.run.finished
            if self._handle is not None:
                self._handle.update(self._bundle(), raw=True)
                self.updates += 1
            if finished:
                return

    def _bundle(self) -> dict[str, str]:
        """What the notebook receives: the coloured graph and the step table as HTML."""
        table = self.run.summary().to_html(index=False, na_rep="")
        head = escape(repr(self.run))
        try:
            graph = self.run.graph()._repr_mimebundle_(include={"image/svg+xml", "text/html"})
            picture = graph.get("image/svg+xml") or graph.get("text/html", "")
        except (GraphvizMissingError, Exception) as err:  # the table still shows
            picture = f"<p>(graph not drawn: {escape(str(err))})</p>"
        return {"text/html": f"<div><p>{head}</p>{picture}{table}</div>", "text/plain": head}

    def _repr_html_(self) -> str:
        return self._bundle()["text/html"]
