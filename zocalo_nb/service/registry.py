"""Finding services by name: built-ins and the ``zocalo_nb.services`` entry-point group.

A package offers services with an entry point whose object is a :class:`Service` or a
callable returning one::

    [project.entry-points."zocalo_nb.services"]
    spotfinder = "my_package.services:spotfinder_service"

Names match exactly, or by a unique prefix; otherwise the error suggests close names.
"""

from __future__ import annotations

import difflib
from importlib.metadata import entry_points

from zocalo_nb.errors import ZocaloNbError
from zocalo_nb.service.service import Service

GROUP = "zocalo_nb.services"


class UnknownService(ZocaloNbError):
    """No service (or more than one) matches a name."""


def available() -> dict[str, str]:
    """Service names and where they come from (``module:object``)."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def find_service(name: str) -> Service:
    """The service called ``name`` (exact, else unique prefix); UnknownService otherwise."""
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name in found:
        chosen = found[name]
    else:
        matches = [n for n in found if n.startswith(name)]
        if len(matches) != 1:
            close = difflib.get_close_matches(name, found, n=3, cutoff=0.5)
            if matches:
                hint = f"be more specific: {', '.join(sorted(matches))}"
            elif close:
                hint = f"did you mean {', '.join(repr(c) for c in close)}?"
            else:
                hint = f"known services: {', '.join(sorted(found)) or 'none'}"
            raise UnknownService(f"no single service matches {name!r}", hint=hint)
        chosen = found[matches[0]]
    target = chosen.load()
    service = target() if callable(target) and not isinstance(target, Service) else target
    if not isinstance(service, Service):
        raise UnknownService(
            f"entry point {chosen.name} ({chosen.value}) gave {type(service).__name__}, "
            "not a Service",
            hint="point the entry point at a Service or a function returning one",
        )
    return service
