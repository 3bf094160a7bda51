"""Shared bits of the widgets: graphs and frames as HTML, JSON fields, two-step confirms."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from zocalo_nb.errors import InvalidArgument, MissingExtra

try:
    import ipywidgets as w
except ImportError as error:  # an optional part: say which pip install brings it
    raise MissingExtra("widgets", error.name) from error


def graph_html(bundle: dict[str, str]) -> str:
    """What a display bundle shows, as HTML (SVG inline, else the HTML table)."""
    if "image/svg+xml" in bundle:
        return f'<div class="zocalo-nb-graph">{bundle["image/svg+xml"]}</div>'
    return bundle.get("text/html", f"<pre>{escape(bundle.get('text/plain', ''))}</pre>")


#: Tables left-aligned, headers over their columns, a light rule between rows.
TABLE_STYLE = (
    "<style>.zocalo-nb-table{border-collapse:collapse;font-size:12px}"
    ".zocalo-nb-table th,.zocalo-nb-table td{text-align:left;padding:2px 8px;"
    "border-bottom:1px solid #ddd;vertical-align:top}</style>"
)


def human_time(value: Any) -> str:
    """A timestamp as people read it: ``14:03:27`` today, else ``2026-11-29 14:03:27``
    (local time, whole seconds); empty for a missing one."""
    import datetime

    import pandas as pd

    if value is None or pd.isna(value):
        return ""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:  # to this machine's local time
        stamp = stamp.tz_convert(datetime.datetime.now().astimezone().tzinfo).tz_localize(None)
    today = pd.Timestamp.now().normalize()
    return str(stamp.strftime("%H:%M:%S" if stamp.normalize() == today else "%Y-%m-%d %H:%M:%S"))


def frame_html(frame: Any, columns: list[str] | None = None, empty: str = "(none)") -> str:
    """A DataFrame as an HTML table: times as people read them, no NaN, left-aligned."""
    if frame is None or len(frame) == 0:
        return f"<p><i>{escape(empty)}</i></p>"
    shown = (frame[columns] if columns else frame).copy()
    for column in shown.columns:
        if str(shown[column].dtype).startswith("datetime64"):
            shown[column] = shown[column].map(human_time)
    html = shown.to_html(
        index=False, na_rep="", border=0, max_rows=200, classes="zocalo-nb-table", justify="left"
    )
    return TABLE_STYLE + str(html)


def parse_json(text: str, what: str, default: Any) -> Any:
    """The JSON in a text field (``default`` when empty); ZocaloNbError naming the field."""
    if not text.strip():
        return default
    try:
        return json.loads(text)
    except ValueError as err:
        raise InvalidArgument(
            f"{what} is not valid JSON: {err}", hint='e.g. {"dcid": 1234}'
        ) from err


def message(kind: str, text: str) -> str:
    colour = {"ok": "#2b7a2b", "error": "#b00020", "info": "#444"}[kind]
    return f'<div style="color:{colour};white-space:pre-wrap">{escape(text)}</div>'


class Confirm:
    """A button that asks to be clicked a second time before it acts."""

    def __init__(
        self, description: str, action: Any, *, style: str = "warning", ready: Any = None
    ) -> None:
        """``ready()``, when given, returns why the action cannot go ahead (None when it
        can): checked before asking for the second click, not after."""
        self.description, self.action, self.ready = description, action, ready
        self.button = w.Button(description=description, button_style=style)
        self.armed = False
        self.button.on_click(self._clicked)

    def _clicked(self, _: Any = None) -> None:
        if self.ready is not None and self.ready() is not None:
            self.reset()
            return
        if not self.armed:
            self.armed = True
            self.button.description = f"Really {self.description.lower()}?"
            self.button.button_style = "danger"
            return
        self.reset()
        self.action()

    def reset(self) -> None:
        self.armed = False
        self.button.description = self.description
        self.button.button_style = "warning"
