"""Running the graphviz ``dot`` program (standard library only: subprocess, no bindings)."""

from __future__ import annotations

import shutil
import subprocess

from zocalo_nb.errors import GraphvizMissingError, RenderError

#: Output formats we ask ``dot`` for.
FORMATS = ("svg", "png", "pdf")


def dot_available() -> bool:
    """True when the ``dot`` program is on PATH."""
    return shutil.which("dot") is not None


def run_dot(source: str, fmt: str = "svg", *, timeout: float = 30.0) -> bytes:
    """Render DOT ``source`` to ``fmt`` bytes with the ``dot`` program.

    Raises GraphvizMissingError when graphviz is not installed, RenderError when it fails.
    """
    if fmt not in FORMATS:
        raise RenderError(f"unknown graph format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    executable = shutil.which("dot")
    if executable is None:
        raise GraphvizMissingError()
    try:
        done = subprocess.run(
            [executable, f"-T{fmt}"],
            input=source.encode("utf-8", "replace"),  # a lone surrogate becomes "?"
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise RenderError(
            f"graphviz took longer than {timeout:g} s",
            hint="draw a smaller recipe or raise timeout",
        ) from err
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError(
            f"graphviz failed: {message[-1] if message else done.returncode}",
            hint="this is a bug in zocalo_nb's DOT output; please report it with the recipe",
        )
    return done.stdout
