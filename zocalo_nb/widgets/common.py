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


def frame_html(frame: Any, columns: list[str] | None = None, empty: str = "(none)") -> str:
    if frame is None or len(frame) == 0:
        return f"<p><i>{escape(empty)}</i></p>"
    shown = frame[columns] if columns else frame
    return str(shown.to_html(index=False, na_rep="", border=0, max_rows=200))


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

    def __init__(self, description: str, action: Any, *, style: str = "warning") -> None:
        self.description, self.action = description, action
        self.button = w.Button(description=description, button_style=style)
        self.armed = False
        self.button.on_click(self._clicked)

    def _clicked(self, _: Any = None) -> None:
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
