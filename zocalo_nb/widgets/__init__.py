"""Notebook widgets (ipywidgets 8): a recipe editor, a run monitor, a dead-letter browser and
a services panel; thin shells over the public API.

Example::

    from zocalo_nb.widgets import RecipeEditor, RunMonitor
    editor = RecipeEditor(recipe, transport=t); editor   # edit, validate, submit
    RunMonitor(editor.last_run)                           # watch it
"""

from __future__ import annotations

from zocalo_nb.widgets.panels import DeadLetterBrowser, RunMonitor, ServicesPanel
from zocalo_nb.widgets.recipe_editor import RecipeEditor

__all__ = ["DeadLetterBrowser", "RecipeEditor", "RunMonitor", "ServicesPanel"]
