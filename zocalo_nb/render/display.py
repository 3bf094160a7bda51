"""How recipes show themselves in Jupyter: SVG when graphviz is there, a table when not.

Always includes ``text/plain``. Honours IPython's ``include``/``exclude`` like
python-graphviz does.
"""

from __future__ import annotations

from collections.abc import Container
from html import escape
from typing import TYPE_CHECKING, Any

from zocalo_nb.errors import GraphvizMissingError
from zocalo_nb.render.dot import recipe_to_dot
from zocalo_nb.render.graphviz import run_dot
from zocalo_nb.states import StepStateLike

if TYPE_CHECKING:
    from zocalo_nb.recipe.model import Recipe


def mimebundle(
    recipe: Recipe,
    *,
    states: StepStateLike | None = None,
    include: Container[str] | None = None,
    exclude: Container[str] | None = None,
) -> dict[str, str]:
    """The display bundle for ``recipe``: image/svg+xml (or a text/html table) + text/plain."""

    def wanted(mime: str) -> bool:
        return (include is None or mime in include) and (exclude is None or mime not in exclude)

    bundle: dict[str, str] = {"text/plain": repr(recipe)}
    if wanted("image/svg+xml"):
        try:
            bundle["image/svg+xml"] = run_dot(recipe_to_dot(recipe, states=states)).decode("utf-8")
            return bundle
        except GraphvizMissingError as err:
            if wanted("text/html"):
                bundle["text/html"] = html_table(recipe, hint=err.hint)
            return bundle
    if wanted("text/html"):
        bundle["text/html"] = html_table(recipe)
    return bundle


def html_table(recipe: Recipe, *, hint: str | None = None) -> str:
    """A readable table of the steps: the fallback display when graphviz is missing."""
    rows = []
    for step in recipe.steps.values():
        outputs = "; ".join(
            f"{name or 'out'} &#8594; {', '.join(map(str, targets))}"
            for name, targets in step.outputs().items()
        )
        errors = ", ".join(map(str, step.error_links()))
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{cell}</td>"
                for cell in (
                    step.id,
                    escape(step.service or ""),
                    escape(step.queue or ""),
                    escape(step.topic or ""),
                    outputs,
                    errors,
                    escape(_params(step.parameters)),
                )
            )
            + "</tr>"
        )
    start = ", ".join(str(step) for step, _ in recipe.start)
    note = f"<p><b>Graph not drawn:</b> {escape(hint)}</p>" if hint else ""
    return (
        f"{note}<p>start &#8594; {start}</p><table><thead><tr><th>step</th><th>service</th>"
        "<th>queue</th><th>topic</th><th>outputs</th><th>error</th><th>parameters</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _params(parameters: Any) -> str:
    text = ", ".join(f"{k}={v}" for k, v in list(parameters.items())[:4])
    return text if len(text) < 80 else text[:79] + "\u2026"


def in_notebook() -> bool:
    """True when this process is a notebook kernel a person looks at (an IPython kernel's
    shell is running), not a process that merely hosts kernels or has imported IPython. Safe
    while another thread is still importing IPython."""
    import sys

    get_ipython = getattr(sys.modules.get("IPython"), "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return type(shell).__name__ == "ZMQInteractiveShell"
