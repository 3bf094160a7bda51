"""One guard for every send an operator starts (reinject, reinject files, rerun): it stays in
the transport's namespace, unless the operator says otherwise.

A dead letter names its own destination (``original-destination``) and carries a whole
recipe whose steps may name absolute queues (``/queue/zocalo.x``): reinjecting from a
``test`` connection must not reach production because a letter or a file says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from zocalo_nb.errors import ZocaloNbError
from zocalo_nb.transport import Transport


class NamespaceError(ZocaloNbError):
    """An operator action would send outside the transport's namespace."""


def destinations(destination: str, body: Any) -> list[str]:
    """``destination`` and every queue and topic named by the recipe in ``body`` (if any)."""
    found = [destination]
    recipe = body.get("recipe") if isinstance(body, Mapping) else None
    if isinstance(recipe, Mapping):
        for step in recipe.values():
            if isinstance(step, Mapping):
                found += [str(step[k]) for k in ("queue", "topic") if isinstance(step.get(k), str)]
    return found


def check(
    transport: Transport, names: Iterable[str], *, allow: bool = False, action: str = "this"
) -> None:
    """Raise NamespaceError if any of ``names`` lies outside the transport's namespace."""
    if allow:
        return
    prefix = transport.settings.prefix
    outside = sorted({name for name in names if not _inside(name, prefix)})
    if outside:
        raise NamespaceError(
            f"{action} would send outside the namespace {prefix!r}: {', '.join(outside[:3])}"
            + (f" and {len(outside) - 3} more" if len(outside) > 3 else ""),
            hint="connect with that namespace (--prefix), or pass allow_namespace=True "
            "(--allow-namespace) if that is what you mean",
        )


def _inside(name: str, prefix: str) -> bool:
    if not name.startswith("/") or not prefix:
        return True  # a plain name: put in the namespace by the transport; or no namespace
    parts = name.split("/", 2)
    return len(parts) == 3 and parts[2].startswith(prefix + ".")
