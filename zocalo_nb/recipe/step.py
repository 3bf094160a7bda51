"""One recipe step, as a read-only view with typed accessors for the fields that mean something."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from zocalo_nb.recipe._frozen import EMPTY, FrozenMap, thaw
from zocalo_nb.recipe.links import channels, is_step_id


@dataclass(frozen=True)
class Step:
    """A step of a recipe: ``id`` plus its fields exactly as in the JSON (read-only).

    Example::

        step = recipe[1]
        step.queue, step.parameters["dcid"], step.outputs()
    """

    id: int
    fields: Mapping[str, Any]

    @property
    def queue(self) -> str | None:
        """The queue messages for this step are sent to, if any."""
        value = self.fields.get("queue")
        return value if isinstance(value, str) else None

    @property
    def topic(self) -> str | None:
        """The topic messages for this step are broadcast on, if any."""
        value = self.fields.get("topic")
        return value if isinstance(value, str) else None

    @property
    def service(self) -> str | None:
        """The human label of the service expected to run this step."""
        value = self.fields.get("service")
        return value if isinstance(value, str) else None

    @property
    def parameters(self) -> Mapping[str, Any]:
        """The step's parameters (read-only; ``thaw`` via :meth:`to_dict` for a mutable copy)."""
        value = self.fields.get("parameters")
        return value if isinstance(value, FrozenMap) else EMPTY

    @property
    def transport_delay(self) -> float | None:
        """Seconds to delay messages sent to this step, if set."""
        value = self.fields.get("transport-delay")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return None

    def outputs(self) -> dict[str, tuple[int, ...]]:
        """Output links by channel; plain outputs under ``""``. Non-int targets are left out."""
        return dict(self._outputs)

    @cached_property
    def _outputs(self) -> dict[str, tuple[int, ...]]:  # read once per step: steps do not change
        return {
            name: tuple(t for t in found if is_step_id(t))
            for name, found in channels(self.fields.get("output")).items()
        }

    def error_links(self) -> tuple[int, ...]:
        """Steps this step's ``error`` field points at."""
        found = channels(self.fields.get("error"))
        return tuple(t for targets in found.values() for t in targets if is_step_id(t))

    def to_dict(self) -> dict[str, Any]:
        """A plain, mutable copy of the step's JSON."""
        result: dict[str, Any] = thaw(self.fields)
        return result
