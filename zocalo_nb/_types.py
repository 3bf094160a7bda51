"""Type aliases shared across zocalo_nb (standard library only)."""

from __future__ import annotations

from typing import Any, TypeAlias

#: Any value that JSON can carry: what parameters and payloads are made of.
JSON: TypeAlias = Any
#: A JSON object as Python sees it.
JSONDict: TypeAlias = dict[str, Any]
