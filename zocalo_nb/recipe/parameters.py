"""Parameter substitution with upstream's semantics, minus its crashes and its attribute access.

Upstream (``Recipe.apply_parameters``) runs ``str.format`` over every string in the recipe:

- ``{name}`` is replaced; unknown names stay as they are (``"{a}_{b}"`` -> ``"x_{b}"``);
- ``{d[k]}`` indexes into a parameter (digits index as ints, like ``str.format``);
- ``{{`` and ``}}`` are literal braces; conversions (``!r``) and format specs (``:>5``) apply;
- a whole string ``"{$REPLACE:name}"`` becomes a deep copy of the parameter (any type), or
  None when it is missing; as a mapping key it becomes the key JSON would write for that
  value (``"null"``, ``"5"``, ``"true"``), as upstream's recipe does once it is sent.

Where upstream raises (JSON-like text such as ``'{"a": 1}'``, a stray ``}``, ``{0}``, a missing
key inside a present parameter, a format spec on an unknown name), the text of that field is
left exactly as written. Attribute access (``{x.__class__}``) is never performed: such fields
are also left as written, so recipe text cannot reach into parameter objects.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from _string import formatter_parser as _formatter_parser  # type: ignore[import-not-found]
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from zocalo_nb.recipe._frozen import FrozenDict, FrozenMap

_REPLACE_PREFIX = "{$REPLACE:"
_INDEX = re.compile(r"\[([^\]]*)\]")
_MISSING = object()
_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


#: A recipe step's parameter holding a command line as one string (run by the command
#: wrapper, split like a shell would or given to /bin/sh): values substituted into it are
#: quoted, so they never become shell syntax or extra arguments (see ``quote_command``).
COMMAND = "command"
#: Format specs asking for more than this many characters are left as written (a width of
#: 200000000 would cost 700 MB per request).
MAX_FORMAT_WIDTH = 10_000
_WIDTH = re.compile(r"\d+")


def quote_command(value: str) -> str:
    """A substituted value as one shell word, its braces doubled so that formatting the
    command again (payload values, in the wrapper) keeps it as it is."""
    return shlex.quote(value).replace("{", "{{").replace("}", "}}")


def substitute(value: Any, parameters: Mapping[str, Any]) -> Any:
    """Apply ``parameters`` to a frozen JSON value, returning a new frozen value.

    Inside a mapping (a recipe step's ``parameters``), a string under ``command`` is a
    command line: each value substituted into it is quoted (:func:`quote_command`)."""
    kind = type(value)
    if kind is str:
        if value.startswith(_REPLACE_PREFIX) and value.endswith("}"):
            return _freeze_copy(_lookup(value[len(_REPLACE_PREFIX) : -1], parameters, None))
        return format_string(value, parameters)
    if kind is FrozenMap:
        return FrozenDict(
            {
                (substitute_key(k, parameters) if type(k) is str else k): (
                    format_string(v, parameters, quote=quote_command)
                    if k == COMMAND and type(v) is str and not v.startswith(_REPLACE_PREFIX)
                    else substitute(v, parameters)
                )
                for k, v in value.items()
            }
        )
    if kind is tuple:
        return tuple([substitute(item, parameters) for item in value])
    return value


def substitute_key(key: str, parameters: Mapping[str, Any]) -> str:
    """A mapping key with ``parameters`` applied. A ``{$REPLACE:name}`` key takes the
    parameter's value as JSON writes a key (upstream substitutes it, and JSON then writes
    None as ``"null"``); a value no key can hold (a list, an object) leaves it as written,
    where upstream raises."""
    if key.startswith(_REPLACE_PREFIX) and key.endswith("}"):
        value = _lookup(key[len(_REPLACE_PREFIX) : -1], parameters, None)
        if value is None or type(value) in (str, int, float, bool):
            written: str = next(iter(json.loads(json.dumps({value: None}))))
            return written
        return key
    return format_string(key, parameters)


def format_string(
    text: str, parameters: Mapping[str, Any], *, quote: Callable[[str], str] | None = None
) -> str:
    """Format one string like upstream, leaving any field that cannot be resolved as written.

    ``quote``, when given, is applied to the text of every substituted field (after its
    conversion and format spec), e.g. ``shlex.quote`` for a command line."""
    if "{" not in text and "}" not in text:
        return text
    try:
        parts = list(_formatter_parser(text))  # str.format's own parser, in C
    except ValueError:  # unbalanced braces: our tokenizer keeps them as text
        return _format_tokens(text, parameters, quote)
    out: list[str] = []
    for literal, name, spec, conversion in parts:
        out.append(literal)
        if name is None:
            continue
        if not spec and conversion is None and name in parameters and "." not in name:
            value = parameters[name]  # the common case: a plain {name}
            text_value = value if type(value) is str else format(value, "")
            out.append(quote(text_value) if quote else text_value)
            continue
        field = name + ("!" + conversion if conversion else "") + (":" + spec if spec else "")
        out.append(_render_field("{" + field + "}", field, parameters, quote))
    return "".join(out)


def _format_tokens(
    text: str, parameters: Mapping[str, Any], quote: Callable[[str], str] | None = None
) -> str:
    out: list[str] = []
    for literal, raw, field in tokenize(text):
        out.append(literal)
        if field is not None:
            out.append(_render_field(raw, field, parameters, quote))
    return "".join(out)


def placeholders(text: str) -> Iterator[str]:
    """The field names (``name``, ``d[k]``) of every ``{...}`` placeholder in ``text``."""
    if "{" not in text:
        return
    if text.startswith(_REPLACE_PREFIX) and text.endswith("}"):
        yield text[len(_REPLACE_PREFIX) : -1]
        return
    for _literal, _raw, field in tokenize(text):
        if field is not None:
            name = _split_field(field)[0]
            if _is_name(name):
                yield name


def looks_like_json(text: str) -> bool:
    """True when ``text`` holds JSON-like braces (``{"a": 1}``) rather than placeholders."""
    return any(
        field is not None and field.lstrip().startswith('"') for _, _, field in tokenize(text)
    )


def tokenize(text: str) -> Iterator[tuple[str, str, str | None]]:
    """Split ``text`` into (literal, raw field text, field content or None) like ``str.format``.

    Unbalanced braces never raise: a brace without a partner is kept as literal text.
    """
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in "{}" and i + 1 < n and text[i + 1] == char:
            literal.append(char)
            i += 2
        elif char == "{":
            end = _matching_brace(text, i)
            if end < 0:
                literal.append(text[i:])
                break
            yield "".join(literal), text[i : end + 1], text[i + 1 : end]
            literal = []
            i = end + 1
        else:
            literal.append(char)
            i += 1
    if literal:
        yield "".join(literal), "", None


def _matching_brace(text: str, start: int) -> int:
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _split_field(field: str) -> tuple[str, str | None, str]:
    """(field name, conversion, format spec), splitting at the first ``!`` or ``:`` outside []."""
    depth = 0
    for index, char in enumerate(field):
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(depth - 1, 0)
        elif depth == 0 and char in "!:":
            name, rest = field[:index], field[index:]
            if char == "!":
                conversion, _, spec = rest[1:].partition(":")
                return name, conversion, spec
            return name, None, rest[1:]
    return field, None, ""


def _is_name(name: str) -> bool:
    head = name.split("[", 1)[0]
    return bool(head) and not head.isdigit() and "." not in head and '"' not in head


def _render_field(
    raw: str, field: str, parameters: Mapping[str, Any], quote: Callable[[str], str] | None = None
) -> str:
    name, conversion, spec = _split_field(field)
    if not _is_name(name) or conversion not in (None, "r", "s", "a"):
        return raw
    value = _lookup(name, parameters, _MISSING)
    if value is _MISSING:
        # Upstream keeps an unknown placeholder (dropping any conversion); with a format spec
        # it crashes, and we keep the text as written instead.
        return "{" + name + "}" if not spec else raw
    if conversion == "r":
        value = repr(value)
    elif conversion == "s":
        value = str(value)
    elif conversion == "a":
        value = ascii(value)
    if spec and "{" in spec:
        spec = format_string(spec, parameters)
    if any(int(width) > MAX_FORMAT_WIDTH for width in _WIDTH.findall(spec)):
        return raw
    try:
        text = format(value, spec)
    except (TypeError, ValueError):
        return raw
    return quote(text) if quote else text


def _lookup(name: str, parameters: Mapping[str, Any], default: Any) -> Any:
    """Resolve ``name`` or ``name[k][j]`` by item access only; ``default`` when impossible."""
    head, _, rest = name.partition("[")
    if not head or "." in head or head not in parameters:
        return default
    value = parameters[head]
    rest = "[" + rest if rest else ""
    position = 0
    for match in _INDEX.finditer(rest):
        if match.start() != position or not match.group(1):
            return default
        key: Any = match.group(1)
        if key.isdigit():
            key = int(key)
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return default
        position = match.end()
    if position != len(rest):
        return default
    return value


def _freeze_copy(value: Any) -> Any:
    """A deep copy of a parameter value in frozen form (so the recipe stays immutable)."""
    if type(value) in _IMMUTABLE:
        return value
    if isinstance(value, Mapping):
        return FrozenDict({k: _freeze_copy(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze_copy(v) for v in value)
    return copy.deepcopy(value)
