"""Drawing recipes: DOT text, SVG/PNG via graphviz's ``dot``, and the Jupyter display.

Standard library only: the ``dot`` program is run as a subprocess.
"""

from __future__ import annotations

from zocalo_nb.render.display import html_table, mimebundle
from zocalo_nb.render.dot import recipe_to_dot
from zocalo_nb.render.files import write_graph
from zocalo_nb.render.graphviz import dot_available, run_dot

__all__ = ["dot_available", "html_table", "mimebundle", "recipe_to_dot", "run_dot", "write_graph"]
