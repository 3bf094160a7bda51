"""Deep-frozen JSON values: read-only mappings and tuples, so recipes are immutable values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zocalo_nb.errors import RecipeParseError

_SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)


class FrozenDict(dict):  # type: ignore[type-arg]
    """A read-only dict: how recipes hold mappings. Reads are a dict's (fast, shown as a dict,
    JSON-encodable as it is); every way to change it raises TypeError. Pickled and deep-copied
    as a whole (never item by item)."""

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("recipes are immutable: use apply_parameters, merge or to_dict()")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: Any) -> FrozenDict:
        return self  # immutable all the way down


#: The type of every mapping inside a frozen value (fast to test, unlike the Mapping ABC).
FrozenMap = FrozenDict

#: The empty frozen mapping, shared because it cannot change.
EMPTY: Mapping[str, Any] = FrozenDict()


def freeze(value: Any, *, path: str = "recipe") -> Any:
    """Return a read-only deep copy of JSON-like ``value`` (dicts become read-only dicts,
    lists and tuples become tuples). Anything JSON cannot carry raises RecipeParseError."""
    try:
        try:
            return _freeze_json(value)
        except _NotPlainJson:
            return _freeze(value, path)  # the careful walk, to name what is wrong and where
    except RecursionError:
        raise RecipeParseError(
            f"{path} is nested too deeply to be a recipe",
            hint="recipes are shallow JSON documents; check the generator of this data",
        ) from None


class _NotPlainJson(Exception):
    pass


def _freeze_json(value: Any) -> Any:
    """The fast path for what json.loads produces: exact dict, list, str, int, float, bool, None."""
    kind = type(value)
    if kind is dict:
        frozen = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlainJson
            frozen[key] = item if type(item) in _SCALAR_TYPES else _freeze_json(item)
        return FrozenDict(frozen)
    if kind is list or kind is tuple:
        return tuple([i if type(i) in _SCALAR_TYPES else _freeze_json(i) for i in value])
    if kind in _SCALAR_TYPES:
        return value
    raise _NotPlainJson


def _freeze(value: Any, path: str) -> Any:
    kind = type(value)
    if kind in _SCALAR_TYPES:
        return value
    if kind is dict and all(type(k) is str for k in value):
        return FrozenDict({k: _freeze(v, path) for k, v in value.items()})
    if kind is list or kind is tuple:
        return tuple([_freeze(item, path) for item in value])
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        frozen = {}
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise RecipeParseError(
                    f"{path} has a key of type {type(key).__name__} ({key!r})",
                    hint="JSON object keys are strings (step ids may be ints)",
                )
            frozen[key] = _freeze(item, f"{path}[{key!r}]")
        return FrozenDict(frozen)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item, f"{path}[{index}]") for index, item in enumerate(value))
    raise RecipeParseError(
        f"{path} holds a {type(value).__name__}, which JSON cannot carry",
        hint="use only dict, list, str, int, float, bool and None in recipes",
    )


def thaw(value: Any) -> Any:
    """Return a plain, mutable deep copy of a frozen value (mappings to dicts, tuples to lists)."""
    if isinstance(value, FrozenMap):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value
