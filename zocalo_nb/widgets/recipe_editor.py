"""A recipe builder in the notebook: steps, links, parameters as JSON, validation messages, a
live graph, load/save and submit. A thin shell over :class:`~zocalo_nb.recipe.Recipe`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zocalo_nb.errors import InvalidArgument, MissingExtra, RecipeError, ZocaloNbError

try:
    import ipywidgets as w
except ImportError as error:  # an optional part: say which pip install brings it
    raise MissingExtra("widgets", error.name) from error

from zocalo_nb.recipe import Recipe
from zocalo_nb.render.display import mimebundle
from zocalo_nb.transport import Transport
from zocalo_nb.widgets.common import graph_html, message, parse_json


class RecipeEditor(w.VBox):  # type: ignore[misc]
    """Edit a recipe step by step; ``.data`` is the upstream JSON, ``.recipe`` the valid
    Recipe (or None), ``.last_run`` the Run of the last submit."""

    def __init__(
        self, recipe: Recipe | dict[str, Any] | None = None, *, transport: Transport | None = None
    ) -> None:
        self.transport = transport
        self.data: dict[str, Any] = (
            recipe.to_dict() if isinstance(recipe, Recipe) else dict(recipe or {"start": []})
        )
        self.last_run: Any = None
        self.monitor: Any = None  # the RunMonitor of the last submitted run
        self.steps = w.Select(description="steps", rows=6, layout=w.Layout(width="320px"))
        self.queue = w.Text(description="queue", placeholder="per_image_analysis")
        self.topic = w.Text(description="topic")
        self.parameters = w.Textarea(description="parameters", placeholder='{"dcid": "{dcid}"}')
        self.outputs = w.Text(description="output", placeholder='{"success": 2} or [2]')
        self.start = w.Textarea(description="start", placeholder="[[1, {}]]")
        self.add = w.Button(description="Add step", icon="plus")
        self.apply = w.Button(description="Apply", icon="check", button_style="primary")
        self.remove = w.Button(description="Remove step", icon="trash")
        self.path = w.Text(description="file", placeholder="recipes/my-recipe.json")
        self.load = w.Button(description="Load")
        self.save = w.Button(description="Save")
        self.submit_parameters = w.Textarea(description="submit with", placeholder='{"dcid": 1}')
        self.submit = w.Button(description="Submit", icon="play", button_style="success")
        self.messages = w.HTML()
        self.graph = w.HTML()
        self.add.on_click(lambda _: self._guard(self.add_step))
        self.apply.on_click(lambda _: self._guard(self.apply_step))
        self.remove.on_click(lambda _: self._guard(self.remove_step))
        self.load.on_click(lambda _: self._guard(lambda: self.load_file(self.path.value)))
        self.save.on_click(lambda _: self._guard(lambda: self.save_file(self.path.value)))
        self.submit.on_click(lambda _: self._guard(self.submit_run))
        self.steps.observe(lambda _: self._show_step(), names="value")
        form = w.VBox([self.queue, self.topic, self.parameters, self.outputs, self.start,
                       w.HBox([self.add, self.apply, self.remove])])  # fmt: skip
        super().__init__(
            [
                w.HBox([self.steps, form]),
                w.HBox([self.path, self.load, self.save]),
                w.HBox([self.submit_parameters, self.submit]),
                self.messages,
                self.graph,
            ]
        )
        self._refresh()

    # -- actions (also callable from code) ------------------------------------------------
    def add_step(self) -> int:
        """Add a step from the form; returns its id."""
        ids = [int(k) for k in self.data if k.isdigit()]
        new = max(ids, default=0) + 1
        self.data[str(new)] = self._form_step()
        if not self.data.get("start"):
            self.data["start"] = [[new, {}]]
        self._refresh(select=new)
        return new

    def apply_step(self) -> None:
        """Write the form into the selected step, and the start field into ``start``."""
        if self.steps.value is not None:
            key = str(self.steps.value)
            self.data[key] = self._form_step(self.data.get(key, {}))
        self.data["start"] = parse_json(self.start.value, "start", self.data.get("start", []))
        self._refresh(select=self.steps.value)

    def remove_step(self) -> None:
        if self.steps.value is not None:
            self.data.pop(str(self.steps.value), None)
        self._refresh()

    def load_file(self, path: str) -> None:
        """The file's JSON as it is (not normalised: saving it again changes nothing; an
        invalid recipe loads too, with its problems shown, to be fixed here)."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise InvalidArgument(f"cannot read {path}: {err}", hint="a recipe JSON file") from err
        if not isinstance(data, dict):
            raise InvalidArgument(
                f"{path} holds no recipe object", hint='{"1": {...}, "start": [...]}'
            )
        self.data = data
        self._refresh()
        self.messages.value = message("ok", f"loaded {path}")

    def save_file(self, path: str) -> None:
        if not path:
            raise InvalidArgument("no file name", hint="type a path such as recipes/mine.json")
        Path(path).write_text(json.dumps(self.data, indent=2) + "\n")
        self.messages.value = message("ok", f"saved {path}")

    def submit_run(self) -> Any:
        """Submit the recipe with the submit parameters; returns (and keeps) the Run."""
        from zocalo_nb.monitor import submit

        if self.transport is None:
            raise InvalidArgument("no transport to submit with", hint="RecipeEditor(transport=t)")
        recipe = Recipe.from_dict(self.data).validate()
        parameters = parse_json(self.submit_parameters.value, "submit parameters", {})
        self.last_run = submit(recipe, parameters, transport=self.transport)
        self.messages.value = message("ok", f"submitted run {self.last_run.id}")
        from zocalo_nb.widgets.panels import RunMonitor

        # the run as it goes, below the editor (refreshed on the kernel's event loop)
        self.monitor = RunMonitor(self.last_run)
        shown: tuple[Any, ...] = tuple(self.children)[:5]  # type: ignore[has-type]
        self.children = (*shown, self.monitor)
        return self.last_run

    @property
    def recipe(self) -> Recipe | None:
        try:
            return Recipe.from_dict(self.data).validate()
        except RecipeError:
            return None

    # -- internals -------------------------------------------------------------------------
    def _guard(self, action: Any) -> None:
        try:
            action()
        except ZocaloNbError as err:
            self.messages.value = message("error", str(err))

    def _form_step(self, base: dict[str, Any] | None = None) -> dict[str, Any]:
        """``base`` (the step as it was) with the fields the form shows taken from the form:
        every other field (service, max-attempts, comments, anything unknown) is kept."""
        step: dict[str, Any] = dict(base or {})
        for name, value in (("queue", self.queue.value), ("topic", self.topic.value)):
            if value.strip():
                step[name] = value.strip()
            else:
                step.pop(name, None)
        for name, text in (("parameters", self.parameters.value), ("output", self.outputs.value)):
            value = parse_json(text, name, None)
            if value is not None:
                step[name] = value
            else:
                step.pop(name, None)
        return step

    def _show_step(self) -> None:
        step = self.data.get(str(self.steps.value), {}) if self.steps.value else {}
        self.queue.value = step.get("queue", "")
        self.topic.value = step.get("topic", "")
        self.parameters.value = json.dumps(step["parameters"]) if "parameters" in step else ""
        self.outputs.value = json.dumps(step["output"]) if "output" in step else ""

    def _refresh(self, select: Any = None) -> None:
        ids = sorted(int(k) for k in self.data if k.isdigit())
        labels = [
            (f"{i}: {self.data[str(i)].get('queue') or self.data[str(i)].get('topic') or '?'}", i)
            for i in ids
        ]
        self.steps.options = labels
        self.steps.value = select if select in ids else (ids[0] if ids else None)
        self.start.value = json.dumps(self.data.get("start", []))
        try:
            recipe = Recipe.from_dict(self.data)
        except RecipeError as err:
            self.messages.value = message("error", str(err))
            self.graph.value = ""
            return
        problems = recipe.problems()
        notes = recipe.lint()
        if problems:
            text = "\n".join(f"{p.location()}: {p.message} (hint: {p.hint})" for p in problems)
            self.messages.value = message("error", text)
        else:
            lines = [f"valid: {len(recipe)} steps"] + [f"note: {n.message}" for n in notes]
            self.messages.value = message("ok", "\n".join(lines))
        self.graph.value = graph_html(mimebundle(recipe)) if len(recipe) else ""
