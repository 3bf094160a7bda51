"""Writing recipe graphs to files: .svg, .png, .pdf (need graphviz) or .dot (never does)."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from zocalo_nb.errors import RenderError
from zocalo_nb.render.dot import recipe_to_dot
from zocalo_nb.render.graphviz import FORMATS, run_dot
from zocalo_nb.states import StepStateLike

if TYPE_CHECKING:
    from zocalo_nb.recipe.model import Recipe


def write_graph(
    recipe: Recipe, path: str | PathLike[str], *, states: StepStateLike | None = None
) -> Path:
    """Write the recipe graph to ``path``; the suffix picks the format. Returns the path."""
    target = Path(path)
    fmt = target.suffix.lower().lstrip(".")
    source = recipe_to_dot(recipe, states=states)
    if fmt in ("dot", "gv"):
        target.write_text(source, encoding="utf-8")
        return target
    if fmt not in FORMATS:
        raise RenderError(
            f"cannot tell the graph format from {target.name!r}",
            hint="end the file name in .svg, .png, .pdf or .dot",
        )
    data = run_dot(source, fmt)
    target.write_bytes(data)
    return target
