"""A fluent builder for recipes, for notebooks.

Example::

    b = RecipeBuilder()
    find = b.step("per_image_analysis", service="DLS Per-Image-Analysis",
                  parameters={"dcid": "{ispyb_dcid}"})
    store = b.step(topic="transient.per_image_analysis.results")
    mail = b.step("mailnotification", parameters={"recipients": "{mail}"})
    find.to(store).on_error(mail)
    b.start(find, {"file": "{image}"})
    recipe = b.build()          # validated Recipe

Single targets are written as a bare id inside named channels and ``error`` fields, several
as a list, as hand-written upstream recipes do; plain outputs are always lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zocalo_nb.errors import BuilderError
from zocalo_nb.recipe.model import Recipe


class StepRef:
    """A handle on a step being built; its methods link it to others and return ``self``."""

    def __init__(self, builder: RecipeBuilder, step_id: int) -> None:
        self._builder = builder
        self.id = step_id

    def to(self, *targets: StepRef | int) -> StepRef:
        """Plain output: every ``send`` goes to these steps."""
        self._builder._link(self.id, None, targets)
        return self

    def on(self, channel: str, *targets: StepRef | int) -> StepRef:
        """Named output: messages sent on ``channel`` (e.g. "success") go to these steps."""
        if not isinstance(channel, str) or not channel:
            raise BuilderError(
                f"channel names are non-empty strings, not {channel!r}",
                hint='use e.g. step.on("success", next_step)',
            )
        self._builder._link(self.id, channel, targets)
        return self

    def on_error(self, *targets: StepRef | int) -> StepRef:
        """Error links of this step (validated; upstream services do not send to them)."""
        self._builder._error_link(self.id, targets)
        return self

    def then(self, target: StepRef) -> StepRef:
        """Plain output to ``target``, returning ``target`` so pipelines read left to right."""
        self.to(target)
        return target

    def __repr__(self) -> str:
        return f"<StepRef {self.id}>"


class RecipeBuilder:
    """Builds a :class:`Recipe` step by step; ``build()`` validates and returns it."""

    def __init__(self) -> None:
        self._steps: dict[int, dict[str, Any]] = {}
        self._start: list[tuple[int, Any]] = []
        self._error: list[int] = []

    def step(
        self,
        queue: str | None = None,
        *,
        topic: str | None = None,
        service: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        transport_delay: float | None = None,
        id: int | None = None,
        **extra: Any,
    ) -> StepRef:
        """Add a step sending to ``queue`` and/or ``topic``; extra keyword fields are kept."""
        if queue is None and topic is None:
            raise BuilderError(
                "a step needs a queue or a topic",
                hint='use b.step("queue_name") or b.step(topic="topic.name")',
            )
        step_id = id if id is not None else max(self._steps, default=0) + 1
        if step_id in self._steps or not isinstance(step_id, int) or step_id < 1:
            raise BuilderError(
                f"step id {step_id!r} is taken or not a positive int",
                hint="leave id out to number steps automatically",
            )
        fields: dict[str, Any] = {}
        if service is not None:
            fields["service"] = service
        if queue is not None:
            fields["queue"] = queue
        if topic is not None:
            fields["topic"] = topic
        if parameters is not None:
            fields["parameters"] = dict(parameters)
        if transport_delay is not None:
            fields["transport-delay"] = transport_delay
        fields.update(extra)
        self._steps[step_id] = fields
        return StepRef(self, step_id)

    def start(self, step: StepRef | int, payload: Any = None) -> RecipeBuilder:
        """Start the recipe at ``step`` with ``payload`` (default ``{}``); may be repeated."""
        self._start.append((self._id(step), {} if payload is None else payload))
        return self

    def on_error(self, *steps: StepRef | int) -> RecipeBuilder:
        """The recipe's top-level error entry."""
        self._error += [self._id(s) for s in steps]
        return self

    def build(self, *, validate: bool = True) -> Recipe:
        """The Recipe built so far (validated unless ``validate=False``)."""
        data: dict[str, Any] = {"start": [list(entry) for entry in self._start]}
        data.update({str(k): v for k, v in self._steps.items()})
        if self._error:
            data["error"] = list(self._error)
        recipe = Recipe.from_dict(data)
        return recipe.validate() if validate else recipe

    def _id(self, step: StepRef | int) -> int:
        step_id = step.id if isinstance(step, StepRef) else step
        if step_id not in self._steps:
            raise BuilderError(
                f"step {step_id!r} is not part of this builder",
                hint="link only steps created with this builder's step()",
            )
        return step_id

    def _link(self, source: int, channel: str | None, targets: tuple[StepRef | int, ...]) -> None:
        ids = [self._id(t) for t in targets]
        if not ids:
            raise BuilderError("nothing to link to", hint="pass at least one step")
        fields = self._steps[source]
        current = fields.get("output")
        if channel is None:
            if isinstance(current, dict):
                raise BuilderError(
                    f"step {source} already has named outputs; it cannot also have plain ones",
                    hint='use step.on("success", ...) for every output of this step',
                )
            fields["output"] = (current or []) + ids
            return
        if isinstance(current, list):
            raise BuilderError(
                f"step {source} already has plain outputs; it cannot also have named ones",
                hint="use step.on(channel, ...) for every output of this step",
            )
        outputs = current if isinstance(current, dict) else {}
        outputs[channel] = _compact(_expand(outputs.get(channel)) + ids)
        fields["output"] = outputs

    def _error_link(self, source: int, targets: tuple[StepRef | int, ...]) -> None:
        ids = [self._id(t) for t in targets]
        fields = self._steps[source]
        fields["error"] = _compact(_expand(fields.get("error")) + ids)


def _expand(value: Any) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _compact(ids: list[int]) -> int | list[int]:
    return ids[0] if len(ids) == 1 else ids
