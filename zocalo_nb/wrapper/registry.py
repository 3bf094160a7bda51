"""Finding wrappers by name: built-ins plus the ``zocalo_nb.wrappers`` entry-point group."""

from __future__ import annotations

import difflib
from importlib.metadata import entry_points
from typing import Any

from zocalo_nb.errors import ZocaloNbError
from zocalo_nb.wrapper.command import CommandWrapper
from zocalo_nb.wrapper.lifecycle import Wrapper

GROUP = "zocalo_nb.wrappers"


class UnknownWrapper(ZocaloNbError):
    """No wrapper has that name."""


def builtin() -> dict[str, Any]:
    """Wrappers defined in this package. The notebook wrapper (a layer above, in
    ``zocalo_nb.notebook``) registers like any third-party one, through the entry point
    ``notebook`` of the ``zocalo_nb.wrappers`` group in pyproject.toml."""
    return {"command": CommandWrapper}


def find_wrapper(name: str) -> Wrapper:
    """The wrapper called ``name``; entry points may hold a wrapper or a factory for one."""
    factories = {**builtin(), **{ep.name: ep for ep in entry_points(group=GROUP)}}
    if name not in factories:
        close = difflib.get_close_matches(name, factories, n=3, cutoff=0.5)
        raise UnknownWrapper(
            f"no wrapper called {name!r}",
            hint=(f"did you mean {', '.join(map(repr, close))}? " if close else "")
            + f"known wrappers: {', '.join(sorted(factories))}",
        )
    found = factories[name]
    if hasattr(found, "load"):
        found = found.load()
    wrapper = found() if isinstance(found, type) or not hasattr(found, "run") else found
    if not hasattr(wrapper, "run"):
        raise UnknownWrapper(f"{name!r} does not give a wrapper", hint="it needs a run(job) method")
    return wrapper  # type: ignore[no-any-return]
