"""Reading a job notebook safely and filling in its parameters the way papermill does."""

from __future__ import annotations

import ast
import copy
import keyword
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from zocalo_nb.errors import MissingExtra

try:
    import nbformat
except ImportError as error:  # an optional part: say which pip install brings it
    raise MissingExtra("notebook", error.name) from error

from zocalo_nb.notebook.emit import MIME
from zocalo_nb.wrapper.lifecycle import JobFailed

_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def resolve(name: str, directories: Sequence[str | Path]) -> Path:
    """The notebook ``name`` inside one of ``directories``; a path that escapes them fails."""
    if not name or Path(name).is_absolute():
        raise JobFailed(
            f"notebook {name!r} must be a path relative to the notebook folders",
            hint="name notebooks as they sit in the folders, e.g. radial_profile.ipynb",
        )
    for directory in directories:
        root = Path(directory).resolve()
        candidate = (root / name).resolve()
        if not candidate.is_relative_to(root):
            raise JobFailed(
                f"notebook path {name!r} escapes the notebook folder {root}",
                hint="notebooks are only taken from the configured folders",
            )
        if candidate.is_file():
            return candidate
    folders = ", ".join(str(Path(d).resolve()) for d in directories)
    raise JobFailed(
        f"notebook {name!r} not found in {folders}",
        hint="check the step's 'notebook' parameter or ZOCALO_NB_NOTEBOOKS",
    )


def load(
    path: Path, parameters: Mapping[str, Any], kernel_name: str = "python3"
) -> nbformat.NotebookNode:
    """The notebook with ``parameters`` injected after its ``parameters`` cell (papermill's
    way); fails clearly when there is no such cell or a value's type does not fit."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    bad = [name for name in parameters if not _is_parameter_name(name)]
    if bad:
        raise JobFailed(
            f"{path.name}: parameter name(s) {', '.join(repr(n)[:80] for n in bad[:5])} are "
            "not Python identifiers",
            hint="only names such as 'threshold' or 'image_path' can become notebook "
            "parameters; rename the key in the recipe step or the payload",
        )
    nb = copy.deepcopy(_read(path, load_notebook_node))
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        raise JobFailed(
            f"{path.name} has no cell tagged 'parameters'",
            hint="tag the cell that sets the defaults with 'parameters'",
        )
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    for name, annotation, default in declared_parameters(cell.source):
        kind = _declared_type(annotation, default)
        if name in parameters and kind in _TYPES:
            value = parameters[name]
            allowed = _TYPES[kind]
            wrong_bool = isinstance(value, bool) and bool not in allowed
            if not isinstance(value, allowed) or wrong_bool:
                raise JobFailed(
                    f"parameter {name!r} of {path.name} is {kind} (default {default}), "
                    f"not {type(value).__name__} {value!r}",
                    hint="fix the value in the recipe step or the payload",
                )
    return parameterize_notebook(
        nb, dict(parameters), report_mode=False, kernel_name=kernel_name, language="python"
    )


#: Notebooks read (and validated) once while unchanged: by path, modification time and size.
_READ: dict[tuple[str, int, int], nbformat.NotebookNode] = {}


def _read(path: Path, reader: Any) -> nbformat.NotebookNode:
    """The notebook at ``path`` as papermill reads it; every job gets a deep copy."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    nb = _READ.get(key)
    if nb is None:
        nb = reader(str(path))
        if len(_READ) >= 64:
            _READ.clear()
        _READ[key] = nb
    return nb


def declared_parameters(source: str) -> list[tuple[str, str, str]]:
    """``(name, annotation, default source)`` of each top-level ``name = value`` or
    ``name: type = value`` in a parameters cell (papermill's reading, without its private
    API); a cell that does not parse declares nothing."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, annotation = node.targets[0], ""
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, annotation = node.target, ast.unparse(node.annotation)
        else:
            continue
        if isinstance(target, ast.Name) and node.value is not None:
            found.append((target.id, annotation, ast.unparse(node.value)))
    return found


def _is_parameter_name(name: object) -> bool:
    """A name papermill may write as ``name = value`` without it becoming code."""
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)


def _declared_type(annotation: str, default: str) -> str:
    """The type a parameter expects: its annotation, else the type of its literal default."""
    if annotation in _TYPES:
        return annotation
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError):
        return "None"
    return type(value).__name__


def emitted(nb: nbformat.NotebookNode) -> dict[str, dict[str, Any]]:
    """Values the notebook emitted, by channel: ``{"success": {"name": value}}``."""
    found: dict[str, dict[str, Any]] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            record = output.get("data", {}).get(MIME)
            if isinstance(record, Mapping):
                found.setdefault(str(record.get("channel", "success")), {})[
                    str(record.get("name"))
                ] = record.get("value")
    return found


#: Characters one output of an executed notebook keeps (a job printing 100 MB would
#: otherwise be kept whole, in memory and in the saved notebook).
MAX_OUTPUT = 1_000_000


def bound_outputs(nb: nbformat.NotebookNode, limit: int = MAX_OUTPUT) -> int:
    """Cut every output longer than ``limit`` characters (text keeps its start and end;
    other data is replaced by a note); returns how many were cut. Our emitted values are
    kept whole: they are what the job returns."""
    cut = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if isinstance(output.get("text"), str) and len(output["text"]) > limit:
                output["text"] = _middle_cut(output["text"], limit)
                cut += 1
            data = output.get("data", {})
            for mime, value in list(data.items()):
                if mime == MIME:
                    continue
                text = value if isinstance(value, str) else "".join(map(str, value))
                if len(text) > limit:
                    data[mime] = (
                        _middle_cut(text, limit)
                        if mime.startswith("text/")
                        else f"({len(text):,} characters of {mime} left out by zocalo_nb)"
                    )
                    cut += 1
    return cut


def _middle_cut(text: str, limit: int) -> str:
    half = limit // 2
    return (
        text[:half]
        + f"\n... {len(text) - 2 * half:,} characters left out by zocalo_nb ...\n"
        + text[-half:]
    )


def failed_cell(nb: nbformat.NotebookNode) -> tuple[int, str, str] | None:
    """(index, error name, error value) of the first code cell with an error output."""
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return index, str(output.get("ename")), str(output.get("evalue"))
    return None


def mark_failure(nb: nbformat.NotebookNode, index: int, ename: str, evalue: str) -> None:
    """Put a visible marker before the failing cell, as papermill does."""
    nb.cells[index].setdefault("metadata", {})["zocalo_nb"] = {"failed": True}
    marker = nbformat.v4.new_markdown_cell(
        f'<span style="color:red; font-size:1.5em">This cell failed: {ename}: {evalue}</span>'
    )
    marker.metadata["zocalo_nb"] = {"marker": True}
    nb.cells.insert(index, marker)
