"""Reading output and error links the way upstream does, without crashing on bad ones."""

from __future__ import annotations

from typing import Any, TypeGuard

from zocalo_nb.recipe._frozen import FrozenMap

#: Key used in :func:`channels` for plain (unnamed) outputs.
PLAIN = ""


def is_step_id(value: Any) -> TypeGuard[int]:
    """True for an int that can be a step id (bools are not ids, even though Python says int)."""
    return type(value) is int


def channels(links: Any) -> dict[str, tuple[Any, ...]]:
    """Split an ``output`` value into ``{channel: targets}``; plain outputs use :data:`PLAIN`.

    Targets are returned as found (possibly not ints): validation judges them.
    """
    if links is None:
        return {}
    if isinstance(links, FrozenMap):
        result: dict[str, tuple[Any, ...]] = {}
        for name, targets in links.items():
            if targets is None:
                result[str(name)] = ()
            elif isinstance(targets, tuple):
                result[str(name)] = targets
            else:
                result[str(name)] = (targets,)
        return result
    if isinstance(links, tuple):
        return {PLAIN: links}
    return {PLAIN: (links,)}
